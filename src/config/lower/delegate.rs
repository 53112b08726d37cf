//! Delegation (docs/semantics.md §3): a root route's place is taken by the delegate
//! VirtualService's routes, each match merged with the root's, unset fields inherited.

use std::collections::HashMap;

use super::networking::LoweredVirtualService;
use crate::config::Limits;
use crate::config::error::{DocumentRef, ErrorKind, LoadError, Warning};
use crate::model::{Condition, Field, RequestMatch, Route, RoutePolicy};

fn same_field(a: &Field, b: &Field) -> bool {
    match (a, b) {
        (Field::Header(x), Field::Header(y)) => x == y,
        (Field::Query(x), Field::Query(y)) | (Field::Absent(x), Field::Absent(y)) => x == y,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// A delegate condition merged into the root's: `Some(keep)` where `keep` is the narrower of
/// the two, `None` when they conflict (Pilot's `hasConflict`).
fn narrower<'a>(root: &'a Condition, delegate: &'a Condition) -> Option<&'a Condition> {
    let (r, d) = (root.matcher(), delegate.matcher());
    if r.describe() == d.describe() {
        return Some(delegate);
    }
    if r.is_regex() || d.is_regex() || !matches!(root.field(), Field::Uri) {
        return None;
    }
    // On the path: a delegate prefix or exact path must lie under the root's prefix.
    match r.rewrite_prefix_len() {
        Some(_) if d.source().starts_with(r.source()) => Some(delegate),
        _ => None,
    }
}

fn merge_match(root: &RequestMatch, delegate: &RequestMatch) -> Option<RequestMatch> {
    let mut conditions: Vec<Condition> = root.conditions.clone();
    for dc in &delegate.conditions {
        match conditions.iter().position(|rc| {
            rc.is_inverted() == dc.is_inverted() && same_field(rc.field(), dc.field())
        }) {
            None => conditions.push(dc.clone()),
            Some(at) => {
                let keep = narrower(&conditions[at], dc)?.clone();
                conditions[at] = keep;
            }
        }
    }
    let selector = match (root.selector.is_empty(), delegate.selector.is_empty()) {
        (_, true) => root.selector.clone(),
        (true, false) => delegate.selector.clone(),
        (false, false) => return None,
    };
    Some(RequestMatch {
        name: delegate.name.clone().or_else(|| root.name.clone()),
        conditions,
        selector,
    })
}

/// The delegate's route in the root's place, or `None` when no match of the two is compatible.
fn merge_route(root: &Route, delegate: &Route) -> Option<Route> {
    let matches = match (root.matches.is_empty(), delegate.matches.is_empty()) {
        (true, _) => delegate.matches.clone(),
        (false, true) => root.matches.clone(),
        (false, false) => {
            let merged: Vec<RequestMatch> = root
                .matches
                .iter()
                .flat_map(|r| {
                    delegate
                        .matches
                        .iter()
                        .filter_map(move |d| merge_match(r, d))
                })
                .collect();
            if merged.is_empty() {
                return None;
            }
            merged
        }
    };
    let (rp, dp) = (&root.policy, &delegate.policy);
    let policy = RoutePolicy {
        rewrite: dp.rewrite.clone().or_else(|| rp.rewrite.clone()),
        headers: if dp.headers.request().is_empty()
            && dp.headers.response().is_empty()
            && dp.headers.authority().is_none()
        {
            rp.headers.clone()
        } else {
            dp.headers.clone()
        },
        timeout: dp.timeout.or(rp.timeout),
        retries: dp.retries.clone().or_else(|| rp.retries.clone()),
        mirrors: if dp.mirrors.is_empty() {
            rp.mirrors.clone()
        } else {
            dp.mirrors.clone()
        },
        cors: dp.cors.clone().or_else(|| rp.cors.clone()),
    };
    let name = match (&root.name, &delegate.name) {
        (Some(r), Some(d)) => Some(format!("{r}-{d}").into()),
        (r, d) => d.clone().or_else(|| r.clone()),
    };
    let action = delegate.action.clone();
    Some(Route::new(
        root.resource.clone(),
        name,
        format!("{} (delegated from {})", delegate.path, root.path),
        matches,
        action,
        delegate.fault.or(root.fault),
        policy,
    ))
}

/// How many routes and match entries a rule set has, against `Limits::max_routes` and
/// `Limits::max_matches`. Delegation is checked as it goes, before each merge allocates, so a
/// delegate repeated under many roots fails at the limit instead of building every copy.
#[derive(Debug)]
pub(crate) struct Size<'l> {
    pub(crate) routes: usize,
    pub(crate) matches: usize,
    limits: &'l Limits,
}

impl<'l> Size<'l> {
    pub(crate) fn new(limits: &'l Limits) -> Self {
        Size {
            routes: 0,
            matches: 0,
            limits,
        }
    }

    /// Counts one route with `matches` match entries (a route without any counts one).
    pub(crate) fn add(&mut self, matches: usize) -> Result<(), LoadError> {
        self.routes += 1;
        self.matches = self.matches.saturating_add(matches.max(1));
        let l = self.limits;
        if self.routes > l.max_routes {
            return Err(LoadError::new(
                ErrorKind::Limit,
                format!(
                    "the configuration has more than {} routes, counting each delegate's routes \
                     once for every route that delegates to it (Limits::max_routes)",
                    l.max_routes
                ),
            ));
        }
        if self.matches > l.max_matches {
            return Err(LoadError::new(
                ErrorKind::Limit,
                format!(
                    "the configuration has more than {} match entries, counting those that \
                     delegation merges (Limits::max_matches)",
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

/// The most match entries merging `root` with `delegate` can give.
fn merged_bound(root: &Route, delegate: &Route) -> usize {
    match (root.matches.len(), delegate.matches.len()) {
        (0, d) => d,
        (r, 0) => r,
        (r, d) => r.saturating_mul(d),
    }
}

/// Replaces every delegating route by the delegate's routes, counting every route into `size`.
pub(crate) fn expand(
    services: &mut [(DocumentRef, LoweredVirtualService)],
    warnings: &mut Vec<Warning>,
    size: &mut Size<'_>,
) -> Result<(), LoadError> {
    let by_name: HashMap<(String, String), usize> = services
        .iter()
        .enumerate()
        .map(|(i, (_, vs))| {
            let r = &vs.resource;
            ((r.namespace().to_string(), r.name().to_string()), i)
        })
        .collect();
    let snapshot: Vec<Delegate> = services
        .iter()
        .map(|(_, vs)| Delegate {
            routes: vs.routes.clone(),
            delegates_again: !vs.delegates.is_empty(),
        })
        .collect();
    for (doc, vs) in services.iter_mut() {
        let mut routes = Vec::with_capacity(vs.routes.len());
        for (i, route) in vs.routes.iter().enumerate() {
            let Some(d) = vs.delegates.iter().find(|d| d.index == i) else {
                size.add(route.matches.len())?;
                routes.push(route.clone());
                continue;
            };
            let err = |message: String| {
                LoadError::new(ErrorKind::InvalidValue, message)
                    .with_document(doc.clone())
                    .with_path(d.path.clone())
                    .at(d.line, d.column)
            };
            let (ns, name) = (&d.namespace, &d.name);
            let Some(&target) = by_name.get(&(ns.clone(), name.clone())) else {
                return Err(err(format!(
                    "the delegate VirtualService {ns}/{name} is not loaded (load it in the same set)"
                )));
            };
            if snapshot[target].delegates_again {
                return Err(err(format!(
                    "{ns}/{name} delegates again; Istio allows one level of delegation"
                )));
            }
            let dropped = merge_into(&mut routes, route, &snapshot[target].routes, size)?;
            warnings.extend(dropped.into_iter().map(|path| Warning {
                document: doc.clone(),
                path: Some(d.path.clone()),
                line: Some(d.line),
                message: format!(
                    "delegate route {path} of {ns}/{name} is dropped: none of its matches fits within this route's"
                ),
            }));
        }
        vs.routes = routes;
        vs.delegates.clear();
    }
    Ok(())
}

/// A VirtualService as a delegate: its routes, and whether it delegates in turn.
struct Delegate {
    routes: Vec<Route>,
    delegates_again: bool,
}

/// Puts the delegate's routes, merged with `root`, in `routes`; returns the paths of the
/// delegate routes none of whose matches fits within the root's. Each merge is counted
/// against the limits before it is built.
fn merge_into(
    routes: &mut Vec<Route>,
    root: &Route,
    delegate_routes: &[Route],
    size: &mut Size<'_>,
) -> Result<Vec<String>, LoadError> {
    let mut dropped = Vec::new();
    for dr in delegate_routes {
        if !size.fits(merged_bound(root, dr)) {
            // Fails with the limit's own message.
            size.add(merged_bound(root, dr))?;
        }
        match merge_route(root, dr) {
            Some(merged) => {
                size.add(merged.matches.len())?;
                routes.push(merged);
            }
            None => dropped.push(dr.path.to_string()),
        }
    }
    Ok(dropped)
}
