//! Assembling a rule set from the documents read: lowering each, then what spans them (subsets
//! for VirtualServices, delegation, which VirtualService or RouteRules take a host, Gateway API
//! attachment, the limits on the whole set) into one [`RouteTable`].

use std::collections::HashMap;
use std::sync::Arc;

use super::LoadOptions;
use super::destinations::DestinationRules;
use super::error::{DocumentRef, LoadError, Warning};
use super::lower::Lowerer;
use super::lower::gateway::LoweredHttpRoute;
use super::lower::legacy::LegacyRule;
use super::lower::networking::{LoweredDestinationRule, LoweredVirtualService, SubsetUse};
use super::reader::{Entry, Gathered, Spec};
use crate::model::{
    RankedRule, Resource, RouteTable, TableBuilder, VirtualServiceRoutes, gateways_overlap,
};

fn doc_warning(doc: &DocumentRef, message: String) -> Warning {
    Warning {
        document: doc.clone(),
        path: None,
        line: Some(doc.line),
        message,
    }
}

/// Counts the RouteRules' routes against the limits; an error names the rule past them.
fn count_routes(
    legacy: &[(DocumentRef, LegacyRule)],
    size: &mut super::lower::delegate::Size<'_>,
) -> Result<(), LoadError> {
    for (doc, rule) in legacy {
        size.add(rule.route.matches().len())
            .map_err(|e| e.with_document(doc.clone()))?;
    }
    Ok(())
}

/// Lowers the documents `gathered` holds and assembles them into one table, with the warnings;
/// the errors of reading and lowering, if any, in input order.
pub(super) fn build(
    gathered: &mut Gathered,
    options: &LoadOptions,
) -> Result<(RouteTable, Vec<Warning>), LoadError> {
    let entries = std::mem::take(&mut gathered.entries);
    let lowered = lower_all(entries, options, gathered);
    assemble(lowered, gathered, options)
}

/// Assembles lowered documents into one table, with the warnings: the DestinationRules in
/// force, the subsets VirtualServices name, delegation, which resources take a host, and the
/// limits on the whole set. The errors of reading and lowering (in `gathered`) and of
/// assembling, if any, in input order.
pub(super) fn assemble(
    lowered: Lowered,
    gathered: &mut Gathered,
    options: &LoadOptions,
) -> Result<(RouteTable, Vec<Warning>), LoadError> {
    let Lowered {
        legacy,
        mut services,
        uses,
        http_routes,
        rules,
        broken,
        mut warnings,
        regex_bytes: _,
    } = lowered;
    let mut index = DestinationRules::new(rules, &mut warnings);
    for (host, namespace) in &broken {
        index.mark_broken(host, namespace);
    }
    resolve_subsets(&index, &mut services, uses, gathered);
    if let Err(e) = gathered.finish_errors() {
        return Err(e.with_warnings(warnings));
    }
    let mut size = super::lower::delegate::Size::new(&options.limits);
    let sized = count_routes(&legacy, &mut size)
        .and_then(|()| super::lower::delegate::expand(&mut services, &mut warnings, &mut size));
    if let Err(e) = sized {
        return Err(e.with_warnings(warnings));
    }

    let mut builder = TableBuilder::new();
    index
        .policies()
        .for_each(|(host, policy)| builder.add_destination_policy(host, policy.clone()));
    let vs_hosts = group_virtual_services(services, options, &mut warnings);
    let claimed: HashMap<&str, &Arc<VirtualServiceRoutes>> = vs_hosts
        .iter()
        .map(|h| (h.canonical.as_str(), &h.services[0]))
        .collect();
    let rr_hosts = group_route_rules(legacy, &claimed, &mut warnings);
    drop(claimed);
    let mut legacy_hosts: Vec<(String, DocumentRef)> = Vec::new();
    for host in rr_hosts {
        let first = host.rules[0].tag.clone();
        legacy_hosts.push((host.canonical.clone(), first.clone()));
        let added = builder.add_route_rules(&host.names, host.service, host.rules);
        for s in added.shadowed {
            warnings.push(doc_warning(
                &s.tag,
                format!("RouteRule {} is unreachable: it is shadowed by the catch-all rule {} (precedence {}), which comes first (higher precedence, or equal precedence and a smaller name)", s.key, s.by, s.by_precedence),
            ));
        }
        warn_taken(&mut warnings, &first, added.taken);
    }
    let mut other_hosts: HashMap<String, DocumentRef> = HashMap::new();
    for host in vs_hosts {
        other_hosts
            .entry(host.canonical.clone())
            .or_insert_with(|| host.doc.clone());
        let taken = builder.add_virtual_services(&host.names, host.services, options.gateway_merge);
        warn_taken(&mut warnings, &host.doc, taken);
    }
    other_hosts.extend(legacy_hosts);
    let attached = super::attach::add_http_routes(
        &mut builder,
        http_routes,
        &other_hosts,
        &mut warnings,
        &mut size,
    );
    if let Err(e) = attached {
        return Err(e.with_warnings(warnings));
    }
    Ok((builder.finish(size.routes), warnings))
}

/// Lowers every document in load order, each on its own (no document reads another); the
/// errors go to `gathered`.
pub(super) fn lower_all(
    entries: Vec<Entry>,
    options: &LoadOptions,
    gathered: &mut Gathered,
) -> Lowered {
    let regex_bytes = std::cell::Cell::new(0);
    let mut lowered = Lowered {
        broken: std::mem::take(&mut gathered.broken_hosts),
        ..Lowered::default()
    };
    for e in entries {
        let Entry {
            doc,
            root,
            spec,
            resource,
        } = e;
        let mut lw = Lowerer {
            doc: &doc,
            root: &root,
            options,
            warnings: &mut lowered.warnings,
            regex_bytes: &regex_bytes,
            subset_uses: Vec::new(),
        };
        let failed = match spec {
            Spec::DestinationRule(spec) => {
                let host = spec.host.clone().unwrap_or_default();
                let ns = resource.namespace().to_string();
                match lw.destination_rule(resource, *spec) {
                    Ok(rule) => {
                        lowered.rules.push(rule);
                        None
                    }
                    Err(e) => {
                        lowered.broken.push((host, ns));
                        Some(e)
                    }
                }
            }
            Spec::VirtualService(spec) => {
                let r = lw.virtual_service(resource, *spec);
                let uses = std::mem::take(&mut lw.subset_uses);
                lowered.uses.push((r.is_ok(), uses.into()));
                r.map(|vs| lowered.services.push((doc.clone(), vs))).err()
            }
            spec => {
                let r = lower_route(&mut lw, doc.clone(), spec, resource);
                r.map(|route| lowered.add(route)).err()
            }
        };
        if let Some(err) = failed
            && gathered.errors.push(err)
        {
            break;
        }
    }
    lowered.regex_bytes = regex_bytes.get();
    lowered
}

/// Resolves the subsets each VirtualService names; the errors for subsets not defined go to
/// `gathered` (also for VirtualServices that failed to lower: their other mistakes are
/// reported beside these).
fn resolve_subsets(
    index: &DestinationRules,
    lowered: &mut [(DocumentRef, LoweredVirtualService)],
    uses: Vec<(bool, Arc<[SubsetUse]>)>,
    gathered: &mut Gathered,
) {
    let mut lowered = lowered.iter_mut();
    for (ok, uses) in uses {
        // One lowered VirtualService for each that lowered without error, in the same order.
        let next = if ok { lowered.next() } else { None };
        let resolved = match next {
            Some((_, vs)) => index.resolve_subsets(vs, &uses),
            None => index.check_subsets(&uses).map(drop),
        };
        if let Err(errors) = resolved {
            for e in errors {
                if gathered.errors.push(e) {
                    return;
                }
            }
        }
    }
}

/// A lowered RouteRule, HTTPRoute or GRPCRoute, with its document.
enum LoweredRoute {
    Legacy(DocumentRef, Box<LegacyRule>),
    Gateway(DocumentRef, LoweredHttpRoute),
}

/// Lowers one RouteRule, HTTPRoute or GRPCRoute.
fn lower_route(
    lw: &mut Lowerer<'_>,
    doc: DocumentRef,
    spec: Spec,
    resource: Arc<Resource>,
) -> Result<LoweredRoute, LoadError> {
    match spec {
        Spec::RouteRule(spec) => Ok(LoweredRoute::Legacy(
            doc,
            Box::new(lw.route_rule(resource, *spec)?),
        )),
        Spec::HttpRoute(spec, created) => Ok(LoweredRoute::Gateway(
            doc,
            lw.gateway_http_route(resource, *spec, created)?,
        )),
        Spec::GrpcRoute(spec, created) => Ok(LoweredRoute::Gateway(
            doc,
            lw.gateway_grpc_route(resource, *spec, created)?,
        )),
        Spec::VirtualService(_) | Spec::DestinationRule(_) => {
            unreachable!("lowered by lower_all")
        }
    }
}

/// Documents lowered each on its own, in load order, before what spans them is assembled.
#[derive(Clone, Default)]
pub(super) struct Lowered {
    legacy: Vec<(DocumentRef, LegacyRule)>,
    services: Vec<(DocumentRef, LoweredVirtualService)>,
    /// For each VirtualService read: whether it lowered, and the subsets it names.
    uses: Vec<(bool, Arc<[SubsetUse]>)>,
    http_routes: Vec<(DocumentRef, LoweredHttpRoute)>,
    rules: Vec<LoweredDestinationRule>,
    /// Host and namespace of each DestinationRule that failed to read or lower.
    broken: Vec<(String, String)>,
    warnings: Vec<Warning>,
    /// Heap bytes of the regexes compiled.
    pub(super) regex_bytes: usize,
}

impl Lowered {
    fn add(&mut self, route: LoweredRoute) {
        match route {
            LoweredRoute::Legacy(doc, rule) => self.legacy.push((doc, *rule)),
            LoweredRoute::Gateway(doc, route) => self.http_routes.push((doc, route)),
        }
    }

    /// Appends copies of `other`'s documents, after this one's.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    pub(super) fn extend_from(&mut self, other: &Lowered) {
        self.legacy.reserve(other.legacy.len());
        self.services.reserve(other.services.len());
        self.uses.reserve(other.uses.len());
        self.http_routes.reserve(other.http_routes.len());
        self.rules.reserve(other.rules.len());
        self.legacy.extend(other.legacy.iter().cloned());
        self.services.extend(other.services.iter().cloned());
        self.uses.extend(other.uses.iter().cloned());
        self.http_routes.extend(other.http_routes.iter().cloned());
        self.rules.extend(other.rules.iter().cloned());
        self.broken.extend(other.broken.iter().cloned());
        self.warnings.extend(other.warnings.iter().cloned());
        self.regex_bytes = self.regex_bytes.saturating_add(other.regex_bytes);
    }
}

/// The VirtualServices of one host, in load order, with the names the host answers for.
struct VirtualHost {
    canonical: String,
    names: Vec<String>,
    services: Vec<Arc<VirtualServiceRoutes>>,
    /// The first VirtualService's document.
    doc: DocumentRef,
}

/// Groups VirtualServices by canonical host, warning where a later one is ignored for a host
/// (without gateway merge) because an earlier one applies to the same gateways.
fn group_virtual_services(
    services: Vec<(DocumentRef, LoweredVirtualService)>,
    options: &LoadOptions,
    warnings: &mut Vec<Warning>,
) -> Vec<VirtualHost> {
    let mut hosts: Vec<VirtualHost> = Vec::new();
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (doc, vs) in services {
        let routes = Arc::new(VirtualServiceRoutes::new(
            vs.resource.clone(),
            vs.gateways,
            vs.routes.into_boxed_slice().into_vec(),
        ));
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
            if let Some(first) = earlier
                .iter()
                .find(|f| gateways_overlap(f.gateways(), routes.gateways()))
                && !options.gateway_merge
            {
                warnings.push(doc_warning(
                    &doc,
                    format!(
                        "several VirtualServices for host {}: {} was loaded first, so this one is ignored where both apply (Istio IST0109); set gateway merge to combine them",
                        host.names[0], first.resource()
                    ),
                ));
            }
            hosts[at].services.push(routes.clone());
        }
    }
    hosts
}

/// The RouteRules of one service, with the names it answers for.
struct LegacyHost {
    canonical: String,
    names: Vec<String>,
    service: Arc<str>,
    rules: Vec<RankedRule<DocumentRef>>,
}

/// Groups RouteRules by canonical host, in load order; a rule for a host that a VirtualService
/// covers is dropped with a warning (VirtualServices take the host).
fn group_route_rules(
    legacy: Vec<(DocumentRef, LegacyRule)>,
    claimed: &HashMap<&str, &Arc<VirtualServiceRoutes>>,
    warnings: &mut Vec<Warning>,
) -> Vec<LegacyHost> {
    let mut hosts: Vec<LegacyHost> = Vec::new();
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (doc, rule) in legacy {
        if let Some(vs) = claimed.get(rule.host.canonical.as_str()) {
            warnings.push(doc_warning(
                &doc,
                format!(
                    "ignored: {} also covers host {}, and VirtualServices take the host",
                    vs.resource(),
                    rule.display_host
                ),
            ));
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
fn warn_taken(warnings: &mut Vec<Warning>, doc: &DocumentRef, taken: Vec<String>) {
    for name in taken {
        warnings.push(doc_warning(
            doc,
            format!(
                "host name {name} already belongs to another service's rules; those are used for it"
            ),
        ));
    }
}
