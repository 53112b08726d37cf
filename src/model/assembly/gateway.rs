//! Gateway API routes put under the Services they attach to, with the warnings attachment
//! calls for (an HTTPRoute and a VirtualService or RouteRule for one host).

use std::collections::HashMap;

use super::Finding;
use super::delegate::Size;
use super::inputs::GatewayRouteIn;
use crate::model::builder::TableBuilder;
use crate::model::gateway::GatewayEntry;
use crate::model::resource::{Resource, ResourceKind};

/// One Service's attached routes: its names, namespace, and each route's entries.
struct Attached<T> {
    names: Vec<String>,
    namespace: String,
    /// The routes' tags and resources, to name them in warnings.
    docs: Vec<(T, std::sync::Arc<Resource>)>,
    entries: Vec<(Box<str>, GatewayEntry)>,
}

/// Adds every HTTPRoute's entries under the Services it attaches to. `other_hosts` are the
/// canonical hosts of VirtualServices and RouteRules with their first document: where one is
/// also a route's Service, the Gateway API routes decide the requests they apply to, and a
/// warning names both. Each entry put under a Service counts as one route and one match entry
/// in `size` (a route attached to several Services counts once for each); past a limit the
/// error names the route. Linear in the entries and parentRefs.
pub(super) fn add_http_routes<T: Clone + std::fmt::Display>(
    builder: &mut TableBuilder,
    routes: Vec<(T, GatewayRouteIn)>,
    other_hosts: &HashMap<String, T>,
    warnings: &mut Vec<Finding<T>>,
    size: &mut Size,
) -> Result<(), Finding<T>> {
    let mut services: Vec<(String, Attached<T>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (doc, route) in routes {
        for (canonical, ports) in parent_ports(&route) {
            let i = *at.entry(canonical.clone()).or_insert_with(|| {
                let parent = route
                    .parents
                    .iter()
                    .find(|p| p.host.canonical == canonical)
                    .expect("a canonical host comes from a parentRef");
                services.push((
                    canonical,
                    Attached {
                        names: parent.host.names.clone(),
                        namespace: parent.namespace.clone(),
                        docs: Vec::new(),
                        entries: Vec::new(),
                    },
                ));
                services.len() - 1
            });
            let attached = &mut services[i].1;
            attached.docs.push((doc.clone(), route.resource.clone()));
            let ns: Box<str> = route.resource.namespace().into();
            for (r, precedence) in &route.entries {
                size.add(1).map_err(|e| Finding::over(&doc, e))?;
                attached.entries.push((
                    ns.clone(),
                    GatewayEntry {
                        route: r.clone(),
                        ports: ports.clone(),
                        precedence: precedence.clone(),
                    },
                ));
            }
        }
    }
    for (canonical, attached) in services {
        warn_http_beside_grpc(&attached, warnings);
        if let Some(other) = other_hosts.get(&canonical) {
            warnings.push(Finding::warning(
                other.clone(),
                format!(
                    "host {canonical} also has Gateway API routes ({}): they decide every request they apply to, and this resource only the others",
                    attached.docs[0].0
                ),
            ));
        }
        builder.add_gateway_service(&attached.names, &attached.namespace, attached.entries);
    }
    Ok(())
}

/// The Services one route attaches to, each once, with the ports its parentRefs name (`None`:
/// every port, when one parentRef names no port).
fn parent_ports(route: &GatewayRouteIn) -> Vec<(String, Option<Vec<u32>>)> {
    let mut ports: Vec<(String, Option<Vec<u32>>)> = Vec::new();
    for parent in &route.parents {
        let canonical = &parent.host.canonical;
        match ports.iter_mut().find(|(c, _)| c == canonical) {
            Some((_, list)) => match (list.as_mut(), parent.port) {
                (Some(list), Some(p)) => list.push(p),
                (Some(_), None) => *list = None,
                (None, _) => {}
            },
            None => ports.push((canonical.clone(), parent.port.map(|p| vec![p]))),
        }
    }
    ports
}

/// Where one namespace's routes for a Service and port hold GRPCRoutes, its HTTPRoutes there
/// never apply (GRPCRoute wins the route-type conflict, per Service and port; the table drops
/// them). Each HTTPRoute that loses somewhere gets a warning saying where.
fn warn_http_beside_grpc<T: Clone>(attached: &Attached<T>, warnings: &mut Vec<Finding<T>>) {
    let kind = |e: &GatewayEntry| e.route.resource().kind();
    let grpc: Vec<(&str, &Option<Vec<u32>>)> = attached
        .entries
        .iter()
        .filter(|(_, e)| kind(e) == ResourceKind::GrpcRoute)
        .map(|(ns, e)| (&**ns, &e.ports))
        .collect();
    if grpc.is_empty() {
        return;
    }
    // Where a GRPCRoute and an HTTPRoute entry of one namespace both apply: every port
    // (`None`), or these.
    let shared = |a: &Option<Vec<u32>>, b: &Option<Vec<u32>>| -> Option<Option<Vec<u32>>> {
        match (a, b) {
            (None, None) => Some(None),
            (Some(p), None) | (None, Some(p)) => Some(Some(p.clone())),
            (Some(a), Some(b)) => {
                let both: Vec<u32> = a.iter().filter(|p| b.contains(p)).copied().collect();
                (!both.is_empty()).then_some(Some(both))
            }
        }
    };
    let mut losing: Vec<(String, Option<Vec<u32>>)> = Vec::new();
    for (ns, e) in &attached.entries {
        if kind(e) != ResourceKind::HttpRoute {
            continue;
        }
        for (_, g) in grpc.iter().filter(|(g_ns, _)| *g_ns == &**ns) {
            if let Some(ports) = shared(&e.ports, g) {
                let name = e.route.resource().to_string();
                match losing.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, known)) => match (known.as_mut(), ports) {
                        (Some(k), Some(p)) => k.extend(p),
                        (_, None) => *known = None,
                        (None, Some(_)) => {}
                    },
                    None => losing.push((name, ports)),
                }
            }
        }
    }
    for (doc, resource) in &attached.docs {
        let Some((_, ports)) = losing.iter().find(|(n, _)| *n == resource.to_string()) else {
            continue;
        };
        let at = match ports {
            None => String::new(),
            Some(p) => {
                let mut p = p.clone();
                p.sort_unstable();
                p.dedup();
                let list: Vec<String> = p.iter().map(u32::to_string).collect();
                format!(" at port {}", list.join(", "))
            }
        };
        warnings.push(Finding::warning(
            doc.clone(),
            format!(
                "GRPCRoutes of namespace {} are attached to the same Service{at}: there only they apply, and this HTTPRoute is ignored",
                resource.namespace()
            ),
        ));
    }
}
