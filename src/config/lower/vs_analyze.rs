//! The checks Istio's webhook runs over one VirtualService's routes and `istioctl analyze`
//! reports as IST0130 (a route no request reaches) and IST0131 (a match entry that an earlier
//! one already takes). They look at the written matches only, before delegation.

use std::collections::BTreeMap;

use crate::config::wire::StringMatch;
use crate::config::wire::networking::HttpMatchRequest;

/// One route as the checks see it: its name and its match entries.
pub(super) struct RouteShape {
    pub(super) name: Option<String>,
    pub(super) matches: Vec<HttpMatchRequest>,
}

/// What the checks found about one route (`entry`: one of its match entries).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) route: usize,
    pub(super) entry: Option<usize>,
    pub(super) code: &'static str,
    pub(super) message: String,
}

/// `"name"` when named, else `#index`, as Istio labels routes and match entries.
fn label(name: Option<&str>, index: usize) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("\"{n}\""),
        _ => format!("#{index}"),
    }
}

fn unreachable(routes: &[RouteShape], i: usize, reason: &str) -> Found {
    Found {
        route: i,
        entry: None,
        code: "IST0130",
        message: format!(
            "VirtualService rule {} not used ({reason}).",
            label(routes[i].name.as_deref(), i)
        ),
    }
}

/// The entry without its name: two entries with equal keys match the same requests.
fn key(m: &HttpMatchRequest) -> HttpMatchRequest {
    HttpMatchRequest {
        name: None,
        ..m.clone()
    }
}

/// IST0130 (at most one per route) and IST0131 findings for `routes`, in route order.
pub(super) fn analyze(routes: &[RouteShape]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut seen: Vec<(HttpMatchRequest, usize)> = Vec::new();
    let mut catch_all = false;
    let mut prefixes: Vec<(usize, usize, &str)> = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        if r.matches.is_empty() {
            if catch_all {
                found.push(unreachable(
                    routes,
                    i,
                    "only the last rule can have no matches",
                ));
            }
            catch_all = true;
            continue;
        }
        if catch_all {
            found.push(unreachable(
                routes,
                i,
                "route without matches defined before",
            ));
            continue;
        }
        let mut duplicates = 0;
        for (j, m) in r.matches.iter().enumerate() {
            let k = key(m);
            if let Some((_, earlier)) = seen.iter().find(|(s, _)| *s == k) {
                duplicates += 1;
                found.push(Found {
                    route: i,
                    entry: Some(j),
                    code: "IST0131",
                    message: format!(
                        "VirtualService rule {} match {} is not used (duplicate/overlapping match in rule {}).",
                        label(r.name.as_deref(), i),
                        label(m.name.as_deref(), j),
                        label(routes[*earlier].name.as_deref(), *earlier)
                    ),
                });
                continue;
            }
            seen.push((k, i));
            if let Some(p) = m.uri.as_ref().and_then(|u| u.prefix.as_deref())
                && !p.is_empty()
            {
                prefixes.push((i, j, p));
            }
        }
        if duplicates == r.matches.len() {
            found.push(unreachable(routes, i, "all matches used by prior rules"));
        }
    }
    overlaps(routes, &prefixes, &mut found);
    found.sort_by_key(|f| f.route);
    found
}

/// IST0131 for a prefix entry that an earlier, shorter prefix entry takes whole.
fn overlaps(routes: &[RouteShape], prefixes: &[(usize, usize, &str)], found: &mut Vec<Found>) {
    for (n, &(bi, bj, bp)) in prefixes.iter().enumerate() {
        for &(ai, aj, ap) in &prefixes[..n] {
            let (a, b) = (&routes[ai].matches[aj], &routes[bi].matches[bj]);
            if ap == bp || !bp.starts_with(ap) || !istio_covers(a, b) || !covers(a, b) {
                continue;
            }
            found.push(Found {
                route: bi,
                entry: Some(bj),
                code: "IST0131",
                message: format!(
                    "VirtualService rule {} match {} of prefix {bp} is not used (duplicate/overlapping match in rule {} of prefix {ap} on {}).",
                    label(routes[bi].name.as_deref(), bi),
                    label(b.name.as_deref(), bj),
                    label(a.name.as_deref(), aj),
                    label(routes[ai].name.as_deref(), ai),
                ),
            });
        }
    }
}

/// A string match as Istio's check compares them: `exact:v`, `prefix:v`, or empty.
fn reduced(m: Option<&StringMatch>) -> String {
    match m {
        Some(m) => match (m.exact.as_deref().or(m.bare.as_deref()), &m.prefix) {
            (Some(v), _) => format!("exact:{v}"),
            (None, Some(v)) => format!("prefix:{v}"),
            _ => String::new(),
        },
        None => String::new(),
    }
}

/// Istio's own test: equal ports, and each reduced method, authority, header, query and
/// without-header value of `a` starting with `b`'s, over equal key sets.
fn istio_covers(a: &HttpMatchRequest, b: &HttpMatchRequest) -> bool {
    let method = |m: &HttpMatchRequest| match &m.method {
        None => "exact:GET".to_string(),
        Some(s) => reduced(Some(s)),
    };
    let maps = |x: &Option<BTreeMap<String, StringMatch>>,
                y: &Option<BTreeMap<String, StringMatch>>| {
        let (x, y) = (x.clone().unwrap_or_default(), y.clone().unwrap_or_default());
        x.len() == y.len()
            && x.iter().all(|(k, v)| {
                y.get(k)
                    .is_some_and(|w| reduced(Some(v)).starts_with(&reduced(Some(w))))
            })
    };
    a.port == b.port
        && method(a).starts_with(&method(b))
        && reduced(a.authority.as_ref()).starts_with(&reduced(b.authority.as_ref()))
        && maps(&a.headers, &b.headers)
        && maps(&a.query_params, &b.query_params)
        && maps(&a.without_headers, &b.without_headers)
}

/// Whether every request `b` matches also matches `a` (apart from the path, which the caller
/// compares): what makes Istio's finding sound.
fn covers(a: &HttpMatchRequest, b: &HttpMatchRequest) -> bool {
    let maps = |x: &Option<BTreeMap<String, StringMatch>>,
                y: &Option<BTreeMap<String, StringMatch>>| {
        x.iter()
            .flatten()
            .all(|(k, v)| implies(y.as_ref().and_then(|y| y.get(k)), v))
    };
    let labels = a.source_labels.iter().flatten();
    let b_labels = b.source_labels.clone().unwrap_or_default();
    a.ignore_uri_case.unwrap_or(false) == b.ignore_uri_case.unwrap_or(false)
        && [
            (&a.method, &b.method),
            (&a.authority, &b.authority),
            (&a.scheme, &b.scheme),
        ]
        .iter()
        .all(|(x, y)| x.as_ref().is_none_or(|x| implies(y.as_ref(), x)))
        && maps(&a.headers, &b.headers)
        && maps(&a.query_params, &b.query_params)
        && a.without_headers.clone().unwrap_or_default()
            == b.without_headers.clone().unwrap_or_default()
        && a.port.is_none_or(|p| p == 0 || Some(p) == b.port)
        && labels.into_iter().all(|(k, v)| b_labels.get(k) == Some(v))
        && a.source_namespace
            .as_deref()
            .is_none_or(|n| n.is_empty() || b.source_namespace.as_deref() == Some(n))
        && a.gateways.as_ref().is_none_or(|g| {
            g.is_empty()
                || b.gateways.iter().flatten().all(|x| g.contains(x)) && b.gateways.is_some()
        })
}

/// Whether a value meeting `by` (absent: any value, or none) always meets `cond`.
fn implies(by: Option<&StringMatch>, cond: &StringMatch) -> bool {
    let Some(by) = by else { return false };
    let exact = |m: &StringMatch| m.exact.clone().or(m.bare.clone());
    match (exact(cond), &cond.prefix, &cond.regex) {
        (Some(v), _, _) => exact(by).as_ref() == Some(&v),
        (None, Some(p), _) => {
            exact(by).is_some_and(|v| v.starts_with(p.as_str()))
                || by
                    .prefix
                    .as_ref()
                    .is_some_and(|q| q.starts_with(p.as_str()))
        }
        (None, None, Some(r)) => by.regex.as_ref() == Some(r),
        // Presence: any condition on the value says it is there.
        (None, None, None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(yaml: &str) -> HttpMatchRequest {
        let docs = crate::config::node::parse_stream(yaml, &Default::default()).unwrap();
        let node = docs[0].root.as_ref().unwrap();
        crate::config::de::from_node(node, "match").unwrap()
    }

    fn route(name: Option<&str>, matches: &[&str]) -> RouteShape {
        RouteShape {
            name: name.map(str::to_string),
            matches: matches.iter().map(|y| m(y)).collect(),
        }
    }

    fn messages(routes: &[RouteShape]) -> Vec<String> {
        analyze(routes)
            .into_iter()
            .map(|f| format!("{} {}", f.code, f.message))
            .collect()
    }

    #[test]
    fn a_route_after_one_without_matches_is_unreachable() {
        let routes = [
            route(None, &[]),
            route(Some("late"), &["{uri: {prefix: /a}}"]),
            route(None, &[]),
        ];
        assert_eq!(
            messages(&routes),
            [
                "IST0130 VirtualService rule \"late\" not used (route without matches defined before).",
                "IST0130 VirtualService rule #2 not used (only the last rule can have no matches).",
            ]
        );
    }

    #[test]
    fn duplicate_entries_are_ist0131_and_a_route_of_duplicates_ist0130() {
        let routes = [
            route(
                None,
                &["{uri: {exact: /a}}", "{name: again, uri: {exact: /a}}"],
            ),
            route(None, &["{name: x, uri: {exact: /a}}"]),
        ];
        assert_eq!(
            messages(&routes),
            [
                "IST0131 VirtualService rule #0 match \"again\" is not used (duplicate/overlapping match in rule #0).",
                "IST0131 VirtualService rule #1 match \"x\" is not used (duplicate/overlapping match in rule #0).",
                "IST0130 VirtualService rule #1 not used (all matches used by prior rules).",
            ]
        );
    }

    #[test]
    fn a_longer_prefix_after_a_shorter_one_is_ist0131_only_when_sound() {
        let routes = [
            route(None, &["{uri: {prefix: /api}}"]),
            route(None, &["{uri: {prefix: /api/v1}}"]),
            // A header condition on the earlier entry that the later one lacks: not covered.
            route(None, &["{uri: {prefix: /b}, headers: {x: {exact: '1'}}}"]),
            route(None, &["{uri: {prefix: /b/c}}"]),
            // Istio's reversed comparison would report this pair; it is not sound.
            route(None, &["{uri: {prefix: /d}, method: {prefix: GE}}"]),
            route(None, &["{uri: {prefix: /d/e}, method: {prefix: G}}"]),
        ];
        assert_eq!(
            messages(&routes),
            [
                "IST0131 VirtualService rule #1 match #0 of prefix /api/v1 is not used (duplicate/overlapping match in rule #0 of prefix /api on #0)."
            ]
        );
    }

    #[test]
    fn distinct_entries_find_nothing() {
        let routes = [
            route(None, &["{uri: {prefix: /api}, port: 8080}"]),
            route(None, &["{uri: {prefix: /api/v1}, port: 9090}"]),
            route(None, &["{uri: {exact: /x}, headers: {a: {exact: '1'}}}"]),
            route(None, &["{uri: {exact: /x}, headers: {a: {exact: '2'}}}"]),
            route(None, &[]),
        ];
        assert_eq!(messages(&routes), Vec::<String>::new());
    }
}
