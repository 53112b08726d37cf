//! Delegation across VirtualServices: a root route's place is taken by the delegate
//! VirtualService's routes. Here: finding the delegate, refusing a second level, and counting
//! the result against the limits; merging one route with its root is `model::delegation`'s.

use std::collections::HashMap;
use std::sync::Arc;

use super::inputs::VirtualServiceIn;
use super::{Finding, FindingKind, SetLimits};
use crate::model::delegation::{delegated_route, merged_bound};
use crate::model::route::Route;

/// How many routes and match entries a rule set has, against `Limits::max_routes` and
/// `Limits::max_matches`. Delegation is checked as it goes, before each merge allocates, so a
/// delegate repeated under many roots fails at the limit instead of building every copy.
#[derive(Debug)]
pub(crate) struct Size {
    pub(crate) routes: usize,
    pub(crate) matches: usize,
    limits: SetLimits,
}

/// A limit the set is over: which, and the message.
pub(crate) type Over = (FindingKind, String);

impl Size {
    pub(crate) fn new(limits: SetLimits) -> Self {
        Size {
            routes: 0,
            matches: 0,
            limits,
        }
    }

    /// Counts one route with `matches` match entries (a route without any counts one).
    pub(crate) fn add(&mut self, matches: usize) -> Result<(), Over> {
        self.routes += 1;
        self.matches = self.matches.saturating_add(matches.max(1));
        let l = self.limits;
        if self.routes > l.max_routes {
            return Err((
                FindingKind::Limit("max_routes"),
                format!(
                    "the configuration has more than {} routes, counting each delegate's routes \
                     once for every route that delegates to it, and a Gateway API route once for \
                     each of its matches and each Service it attaches to (Limits::max_routes)",
                    l.max_routes
                ),
            ));
        }
        if self.matches > l.max_matches {
            return Err((
                FindingKind::Limit("max_matches"),
                format!(
                    "the configuration has more than {} match entries, counting those that \
                     delegation merges and those of Gateway API routes for each Service they \
                     attach to (Limits::max_matches)",
                    l.max_matches
                ),
            ));
        }
        Ok(())
    }

    /// Whether `matches` more entries still fit (checked before a merge builds them).
    fn fits(&self, matches: usize) -> bool {
        self.matches.saturating_add(matches) <= self.limits.max_matches
    }
}

/// Replaces every delegating route by the delegate's routes, counting every route into `size`.
/// Only a VirtualService without hosts is a delegate. As istiod does, a route whose delegate
/// is not loaded, or has hosts, is dropped (with a warning here); a root left with no routes
/// takes no host. A host-less VirtualService that no root delegates to is warned about.
pub(crate) fn expand<T: Clone>(
    services: &mut [(T, VirtualServiceIn<T>)],
    warnings: &mut Vec<Finding<T>>,
    size: &mut Size,
) -> Result<(), Finding<T>> {
    let targets = delegate_targets(services, warnings);
    if services.iter().all(|(_, vs)| vs.delegates.is_empty()) {
        // Nothing to merge: only the routes to count.
        for (doc, vs) in services.iter() {
            for route in &vs.routes {
                size.add(route.matches().len())
                    .map_err(|e| Finding::over(doc, e))?;
            }
        }
        return Ok(());
    }
    let snapshot: Vec<Delegate> = services
        .iter()
        .map(|(_, vs)| Delegate {
            routes: vs.routes.clone(),
            delegates_again: !vs.delegates.is_empty(),
        })
        .collect();
    for ((doc, vs), targets) in services.iter_mut().zip(targets) {
        let delegating = !vs.delegates.is_empty();
        let mut routes = Vec::with_capacity(vs.routes.len());
        for (i, route) in vs.routes.iter().enumerate() {
            let Some(at) = vs.delegates.iter().position(|d| d.index == i) else {
                size.add(route.matches().len())
                    .map_err(|e| Finding::over(doc, e))?;
                routes.push(route.clone());
                continue;
            };
            let d = &vs.delegates[at];
            let target = match &targets[at] {
                Ok(t) => *t,
                Err(message) => {
                    warnings.push(Finding::warning(d.at.clone(), message.clone()));
                    continue;
                }
            };
            let (ns, name) = (&d.namespace, &d.name);
            if snapshot[target].delegates_again {
                return Err(Finding {
                    at: d.at.clone(),
                    kind: FindingKind::BadDelegate,
                    message: format!(
                        "{ns}/{name} delegates again; Istio allows one level of delegation"
                    ),
                    value: None,
                    code: None,
                });
            }
            let dropped = merge_into(&mut routes, route, &snapshot[target].routes, size)
                .map_err(|e| Finding::over(doc, e))?;
            warnings.extend(dropped.into_iter().map(|path| {
                Finding::warning(
                    d.at.clone(),
                    format!(
                        "delegate route {path} of {ns}/{name} is dropped: none of its matches fits within this route's"
                    ),
                )
            }));
        }
        vs.routes = routes;
        vs.delegates.clear();
        if delegating && vs.routes.is_empty() {
            // No route survived: the root takes no host, which falls to the next resource.
            vs.hosts.clear();
        }
    }
    Ok(())
}

/// For each VirtualService, the index of each of its delegates, or why the route is dropped;
/// a warning for each host-less VirtualService that no root delegates to.
fn delegate_targets<T: Clone>(
    services: &[(T, VirtualServiceIn<T>)],
    warnings: &mut Vec<Finding<T>>,
) -> Vec<Vec<Result<usize, String>>> {
    let by_name: HashMap<(&str, &str), usize> = services
        .iter()
        .enumerate()
        .map(|(i, (_, vs))| ((vs.resource.namespace(), vs.resource.name()), i))
        .collect();
    let mut used = vec![false; services.len()];
    let mut targets: Vec<Vec<Result<usize, String>>> = Vec::with_capacity(services.len());
    for (_, vs) in services.iter() {
        let root_ns = vs.resource.namespace();
        let found = vs.delegates.iter().map(|d| {
            let (ns, name) = (d.namespace.as_str(), d.name.as_str());
            match by_name.get(&(ns, name)) {
                Some(&t) if services[t].1.hosts.is_empty() => {
                    used[t] = true;
                    let exported = services[t].1.export.as_ref();
                    if exported.is_some_and(|list| !list.iter().any(|n| &**n == root_ns)) {
                        return Err(format!("the delegate VirtualService {ns}/{name} is not exported to {root_ns}: this route is dropped, as istiod drops it"));
                    }
                    Ok(t)
                }
                Some(_) => Err(format!("the VirtualService {ns}/{name} has hosts, so it is not a delegate (only a VirtualService without hosts is): this route is dropped, as istiod drops it")),
                None => Err(format!("the delegate VirtualService {ns}/{name} is not loaded: this route is dropped, as istiod drops it (load the delegate in the same set)")),
            }
        });
        targets.push(found.collect());
    }
    for (i, (at, vs)) in services.iter().enumerate() {
        if vs.hosts.is_empty() && !used[i] {
            let message = format!(
                "{} has no `hosts` and no root VirtualService delegates to it: it has no effect",
                vs.resource
            );
            warnings.push(Finding::note(at.clone(), message));
        }
    }
    targets
}

/// A VirtualService as a delegate: its routes, and whether it delegates in turn.
struct Delegate {
    routes: Vec<Arc<Route>>,
    delegates_again: bool,
}

/// Puts the delegate's routes, merged with `root`, in `routes`; returns the paths of the
/// delegate routes none of whose matches fits within the root's. Each merge is counted
/// against the limits before it is built.
fn merge_into(
    routes: &mut Vec<Arc<Route>>,
    root: &Route,
    delegate_routes: &[Arc<Route>],
    size: &mut Size,
) -> Result<Vec<String>, Over> {
    let mut dropped = Vec::new();
    for dr in delegate_routes {
        if !size.fits(merged_bound(root, dr)) {
            // Fails with the limit's own message.
            size.add(merged_bound(root, dr))?;
        }
        match delegated_route(root, dr) {
            Some(merged) => {
                size.add(merged.matches().len())?;
                routes.push(Arc::new(merged));
            }
            None => dropped.push(dr.path().to_string()),
        }
    }
    Ok(dropped)
}
