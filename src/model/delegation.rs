//! Delegation, as Pilot merges a delegate VirtualService's route into its root's place
//! (`mergeHTTPRoute`): each delegate match entry is merged with each root entry it does not
//! conflict with, and the fields the delegate route leaves unset are inherited from the root.

use super::condition::{Condition, RequestMatch};
use super::request::Field;
use super::route::{Route, RoutePolicy};

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

/// The delegate's route in the root's place, its matches merged with the root's and the
/// fields it leaves unset inherited, or `None` when no match of the two is compatible.
pub(crate) fn delegated_route(root: &Route, delegate: &Route) -> Option<Route> {
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

/// The most match entries merging `root` with `delegate` can give.
pub(crate) fn merged_bound(root: &Route, delegate: &Route) -> usize {
    match (root.matches.len(), delegate.matches.len()) {
        (0, d) => d,
        (r, 0) => r,
        (r, d) => r.saturating_mul(d),
    }
}
