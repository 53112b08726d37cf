//! Which resources take a host: VirtualServices (the first for a host, unless gateway merge),
//! RouteRules (for hosts no VirtualService takes), each host name given once.

use std::collections::HashMap;
use std::sync::Arc;

use super::Finding;
use super::inputs::{RouteRuleIn, VirtualServiceIn};
use crate::model::builder::RankedRule;
use crate::model::table::VirtualServiceRoutes;

/// The VirtualServices of one host, in load order, with the names the host answers for.
pub(super) struct VirtualHost<T> {
    pub(super) canonical: String,
    pub(super) names: Vec<String>,
    pub(super) services: Vec<Arc<VirtualServiceRoutes>>,
    /// The first VirtualService's tag.
    pub(super) doc: T,
}

/// Groups VirtualServices by canonical host, warning where a later one is ignored for a host
/// (without gateway merge) because an earlier one applies to the same gateways.
pub(super) fn group_virtual_services<T: Clone>(
    services: Vec<(T, VirtualServiceIn<T>)>,
    gateway_merge: bool,
    warnings: &mut Vec<Finding<T>>,
) -> Vec<VirtualHost<T>> {
    let mut hosts: Vec<VirtualHost<T>> = Vec::new();
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (doc, vs) in services {
        let mut routes = VirtualServiceRoutes::new(
            vs.resource.clone(),
            vs.gateways,
            vs.routes.into_boxed_slice().into_vec(),
        );
        if let Some(namespaces) = vs.export {
            routes = routes.exported_to(namespaces);
        }
        let routes = Arc::new(routes);
        for host in vs.hosts {
            let Some(&at) = by_host.get(&host.canonical) else {
                by_host.insert(host.canonical.clone(), hosts.len());
                hosts.push(VirtualHost {
                    canonical: host.canonical,
                    names: host.names,
                    services: vec![routes.clone()],
                    doc: doc.clone(),
                });
                continue;
            };
            let earlier = &hosts[at].services;
            // Istio's IST0109: VirtualServices with HTTP routes that both apply to `mesh`
            // (gateway-only and TCP- or TLS-only ones do not conflict in a sidecar).
            if let Some(first) = earlier.iter().find(|f| {
                in_mesh_with_routes(f) && in_mesh_with_routes(&routes) && f.meets(&routes)
            }) {
                let outcome = match gateway_merge {
                    true => "with gateway merge their routes are concatenated here".to_string(),
                    false => format!(
                        "{} was loaded first and is used, and this one is ignored where both apply; set gateway merge to combine them",
                        first.resource()
                    ),
                };
                let mut names = [first.resource(), routes.resource()]
                    .map(|r| format!("{}/{}", r.namespace(), r.name()));
                names.sort();
                warnings.push(
                    Finding::warning(
                        doc.clone(),
                        format!(
                            "The VirtualServices {} associated with mesh gateway define the same host */{} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource. ({outcome})",
                            names.join(","),
                            host.canonical
                        ),
                    )
                    .coded("IST0109"),
                );
            }
            hosts[at].services.push(routes.clone());
        }
    }
    hosts
}

/// The RouteRules of one service, with the names it answers for.
pub(super) struct LegacyHost<T> {
    pub(super) canonical: String,
    pub(super) names: Vec<String>,
    pub(super) service: Arc<str>,
    pub(super) rules: Vec<RankedRule<T>>,
}

/// Groups RouteRules by canonical host, in load order; a rule for a host that a VirtualService
/// covers is dropped with a warning (VirtualServices take the host).
pub(super) fn group_route_rules<T: Clone>(
    legacy: Vec<(T, RouteRuleIn)>,
    claimed: &HashMap<&str, &Arc<VirtualServiceRoutes>>,
    warnings: &mut Vec<Finding<T>>,
) -> Vec<LegacyHost<T>> {
    let mut hosts: Vec<LegacyHost<T>> = Vec::new();
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (doc, rule) in legacy {
        if let Some(vs) = claimed.get(rule.host.canonical.as_str()) {
            let message = format!(
                "ignored: {} also covers host {}, and VirtualServices take the host",
                vs.resource(),
                rule.display_host
            );
            warnings.push(Finding::warning(doc, message));
            continue;
        }
        let ranked = RankedRule {
            tag: doc,
            precedence: rule.precedence,
            key: rule.key,
            route: rule.route,
        };
        match by_host.get(&rule.host.canonical) {
            Some(&at) => hosts[at].rules.push(ranked),
            None => {
                by_host.insert(rule.host.canonical.clone(), hosts.len());
                hosts.push(LegacyHost {
                    canonical: rule.host.canonical.clone(),
                    names: rule.host.names,
                    service: rule.display_host,
                    rules: vec![ranked],
                });
            }
        }
    }
    hosts
}

/// A warning for each host name that another service's rules had claimed first.
pub(super) fn warn_taken<T: Clone>(warnings: &mut Vec<Finding<T>>, doc: &T, taken: Vec<String>) {
    for name in taken {
        warnings.push(Finding::warning(
            doc.clone(),
            format!(
                "host name {name} already belongs to another service's rules; those are used for it"
            ),
        ));
    }
}

/// A VirtualService that applies to `mesh` (no `gateways`, or `mesh` among them) and has HTTP
/// routes.
fn in_mesh_with_routes(vs: &VirtualServiceRoutes) -> bool {
    let gateways = vs.gateways();
    !vs.routes().is_empty() && (gateways.is_empty() || gateways.iter().any(|g| &**g == "mesh"))
}
