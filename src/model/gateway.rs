//! Gateway API routes attached to a Service (the mesh profile): which group of routes a request
//! uses, and the precedence every match entry of the group is sorted by.

use std::cmp::Ordering;
use std::sync::Arc;

use super::hash::FxHashMap;
use super::index::RouteIndex;
use super::resource::ResourceKind;
use super::route::Route;

/// How an HTTPRoute match entry tests the path, with the value as written.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PathMatch<'v> {
    Exact(&'v str),
    Prefix(&'v str),
    Regex(&'v str),
}

/// Where a match entry stands in the Gateway API's order; entries sort best first. Made by
/// [`Precedence::http`] or [`Precedence::grpc`] from what the entry tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Precedence {
    /// `Exact` 3, `PathPrefix` 2, `RegularExpression` 1.
    path_rank: u8,
    /// Characters of the path value (a prefix without its trailing `/`, a regex's pattern).
    path_len: usize,
    has_method: bool,
    headers: usize,
    queries: usize,
    /// `metadata.creationTimestamp` as (seconds, nanoseconds) since the epoch; none is newest.
    created: Option<(i64, u32)>,
    /// `namespace/name` of the route.
    pub(super) route: Arc<str>,
    pub(super) rule: usize,
    entry: usize,
    /// A GRPCRoute entry: `path_len` holds the service's length, `headers` the method's and
    /// `queries` the number of header matches, which is the GRPCRoute order.
    grpc: bool,
}

/// Where a rule stands among all: its route's `namespace/name` and creation time, its index.
#[derive(Clone, Debug)]
pub(crate) struct RuleAt {
    pub(crate) route: Arc<str>,
    pub(crate) created: Option<(i64, u32)>,
    pub(crate) rule: usize,
}

impl Precedence {
    fn base(at: &RuleAt, entry: usize, grpc: bool) -> Precedence {
        Precedence {
            path_rank: 0,
            path_len: 0,
            has_method: false,
            headers: 0,
            queries: 0,
            created: at.created,
            route: at.route.clone(),
            rule: at.rule,
            entry,
            grpc,
        }
    }

    /// An HTTPRoute match entry (`entry` of its rule): its path match, whether it tests the
    /// method, and how many headers and query parameters it tests.
    pub(crate) fn http(
        at: &RuleAt,
        entry: usize,
        path: PathMatch<'_>,
        has_method: bool,
        headers: usize,
        queries: usize,
    ) -> Precedence {
        let (path_rank, path_len) = match path {
            PathMatch::Exact(v) => (3, v.len()),
            // A prefix counts without its trailing `/`.
            PathMatch::Prefix(v) => (
                2,
                v.strip_suffix('/')
                    .filter(|v| !v.is_empty())
                    .unwrap_or(v)
                    .len(),
            ),
            PathMatch::Regex(v) => (1, v.len()),
        };
        Precedence {
            path_rank,
            path_len,
            has_method,
            headers,
            queries,
            ..Precedence::base(at, entry, false)
        }
    }

    /// A GRPCRoute match entry: the lengths of the service and method it names (0 when it
    /// names none), and how many headers it tests; GRPCRoute's order weighs them in turn.
    pub(crate) fn grpc(
        at: &RuleAt,
        entry: usize,
        service_len: usize,
        method_len: usize,
        headers: usize,
    ) -> Precedence {
        Precedence {
            path_len: service_len,
            headers: method_len,
            queries: headers,
            ..Precedence::base(at, entry, true)
        }
    }

    /// A `PathPrefix /` entry, which every request's path matches.
    pub(crate) fn is_catch_all_prefix(&self) -> bool {
        !self.grpc && self.path_rank == 2 && self.path_len <= 1
    }

    /// A `RegularExpression` path entry.
    pub(crate) fn is_regex_path(&self) -> bool {
        !self.grpc && self.path_rank == 1
    }

    /// The indexes of its rule and of its entry in the rule.
    pub(crate) fn position(&self) -> (usize, usize) {
        (self.rule, self.entry)
    }

    /// Compares two entries key by key; `Less` is the better one. Returns the ordering and the
    /// key that decided, in words.
    fn compare(&self, other: &Precedence) -> (Ordering, &'static str) {
        let words: [&'static str; 4] = if self.grpc {
            [
                "longer service name",
                "-",
                "longer method name",
                "more header matches",
            ]
        } else {
            [
                "longer path",
                "method match",
                "more header matches",
                "more query parameter matches",
            ]
        };
        let keys: [(Ordering, &'static str); 8] = [
            (
                other.path_rank.cmp(&self.path_rank),
                "path match type (Exact, then PathPrefix, then RegularExpression)",
            ),
            (other.path_len.cmp(&self.path_len), words[0]),
            (other.has_method.cmp(&self.has_method), words[1]),
            (other.headers.cmp(&self.headers), words[2]),
            (other.queries.cmp(&self.queries), words[3]),
            (older(self.created, other.created), "older route"),
            (self.route.cmp(&other.route), "route namespace/name"),
            (
                (self.rule, self.entry).cmp(&(other.rule, other.entry)),
                "earlier rule or match",
            ),
        ];
        keys.into_iter()
            .find(|(o, _)| o.is_ne())
            .unwrap_or((Ordering::Equal, "equal"))
    }

    /// Why this entry comes before `other`.
    pub(super) fn reason_over(&self, other: &Precedence) -> &'static str {
        self.compare(other).1
    }
}

/// `Less` when `a` is older; a route without a timestamp is newer than any with one.
fn older(a: Option<(i64, u32)>, b: Option<(i64, u32)>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// One match entry of one rule, lowered: a route with a single match entry, the service ports
/// its route attaches at (`None`: every port), and its precedence.
#[derive(Debug)]
pub(crate) struct GatewayEntry {
    pub(crate) route: Route,
    pub(crate) ports: Option<Vec<u32>>,
    pub(crate) precedence: Precedence,
}

/// The sorted entries that apply at one service port.
#[derive(Debug, Default)]
pub(super) struct Entries {
    pub(super) routes: Vec<Arc<Route>>,
    pub(super) keys: Vec<Precedence>,
    pub(super) index: Option<RouteIndex>,
}

/// The routes of one namespace attached to one Service.
#[derive(Debug)]
struct Group {
    namespace: Box<str>,
    /// For each port some route attaches at: the entries there (port-less ones included).
    by_port: Vec<(u32, Entries)>,
    /// The entries of routes attached without a port, for any other port.
    any_port: Entries,
}

impl Group {
    fn new(
        namespace: Box<str>,
        mut entries: Vec<(Option<Vec<u32>>, Arc<Route>, Precedence)>,
    ) -> Group {
        entries.sort_by(|a, b| a.2.compare(&b.2).0);
        let mut ports: Vec<u32> = entries
            .iter()
            .flat_map(|(p, _, _)| p.iter().flatten().copied())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let select = |keep: &dyn Fn(&Option<Vec<u32>>) -> bool| {
            let mut chosen: Vec<_> = entries.iter().filter(|(p, _, _)| keep(p)).collect();
            // Routes of both types at one Service and port: only the GRPCRoutes apply.
            let kind = |r: &Route| r.resource().kind();
            if chosen
                .iter()
                .any(|(_, r, _)| kind(r) == ResourceKind::GrpcRoute)
            {
                chosen.retain(|(_, r, _)| kind(r) != ResourceKind::HttpRoute);
            }
            let routes: Vec<Arc<Route>> = chosen.iter().map(|(_, r, _)| r.clone()).collect();
            Entries {
                index: RouteIndex::build(&routes),
                keys: chosen.iter().map(|(_, _, k)| k.clone()).collect(),
                routes,
            }
        };
        let by_port = ports
            .iter()
            .map(|&port| {
                (
                    port,
                    select(&|p| p.as_ref().is_none_or(|ps| ps.contains(&port))),
                )
            })
            .collect();
        Group {
            namespace,
            by_port,
            any_port: select(&|p| p.is_none()),
        }
    }

    /// The entries at `port`; `None` when no route of the group attaches there.
    fn at(&self, port: u32) -> Option<&Entries> {
        let entries = match self.by_port.binary_search_by_key(&port, |(p, _)| *p) {
            Ok(i) => &self.by_port[i].1,
            Err(_) => &self.any_port,
        };
        (!entries.routes.is_empty()).then_some(entries)
    }
}

/// The Gateway API routes attached to one Service, by the routes' namespace.
#[derive(Debug)]
pub(super) struct GatewayService {
    /// The Service's namespace: its routes are the producer routes.
    namespace: Box<str>,
    groups: Vec<Group>,
}

impl GatewayService {
    /// The entries a request uses: the consumer routes of the caller's namespace when it has
    /// some at this port, else the producer routes; `None` when neither applies.
    pub(super) fn entries(
        &self,
        caller_namespace: Option<&str>,
        port: u32,
    ) -> Option<(&str, &Entries)> {
        let group = |ns: &str| self.groups.iter().find(|g| &*g.namespace == ns);
        if let Some(caller) = caller_namespace.filter(|c| *c != &*self.namespace)
            && let Some(g) = group(caller)
            && let Some(found) = g.at(port)
        {
            return Some((&g.namespace, found));
        }
        group(&self.namespace)
            .and_then(|g| g.at(port))
            .map(|e| (&*self.namespace, e))
    }
}

/// Every Service that has Gateway API routes, by each name it answers to.
#[derive(Debug, Default)]
pub(super) struct GatewayHosts {
    index: FxHashMap<Box<str>, usize>,
    services: Vec<GatewayService>,
}

impl GatewayHosts {
    pub(super) fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Adds the routes attached to one Service of `namespace`, answering for `names`; each
    /// entry comes with its route's namespace.
    pub(super) fn add(
        &mut self,
        names: &[String],
        namespace: &str,
        entries: Vec<(Box<str>, GatewayEntry)>,
    ) {
        let mut by_ns: Vec<(Box<str>, Vec<_>)> = Vec::new();
        for (ns, e) in entries {
            let item = (e.ports, Arc::new(e.route), e.precedence);
            match by_ns.iter_mut().find(|(n, _)| *n == ns) {
                Some((_, list)) => list.push(item),
                None => by_ns.push((ns, vec![item])),
            }
        }
        let groups = by_ns
            .into_iter()
            .map(|(ns, list)| Group::new(ns, list))
            .collect();
        let id = self.services.len();
        self.services.push(GatewayService {
            namespace: namespace.into(),
            groups,
        });
        for name in names {
            self.index.entry(name.as_str().into()).or_insert(id);
        }
    }

    /// The Service a host names, if Gateway API routes are attached to it.
    pub(super) fn lookup(&self, host: &str) -> Option<&GatewayService> {
        self.index.get(host).map(|&i| &self.services[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rank: u8, len: usize, created: Option<(i64, u32)>, route: &str) -> Precedence {
        Precedence {
            path_rank: rank,
            path_len: len,
            has_method: false,
            headers: 0,
            queries: 0,
            created,
            route: route.into(),
            rule: 0,
            entry: 0,
            grpc: false,
        }
    }

    #[test]
    fn keys_in_order() {
        let exact = key(3, 2, None, "ns/b");
        let prefix = key(2, 10, None, "ns/a");
        assert_eq!(exact.compare(&prefix).0, Ordering::Less);
        assert_eq!(
            exact.reason_over(&prefix),
            "path match type (Exact, then PathPrefix, then RegularExpression)"
        );
        let longer = key(2, 11, None, "ns/z");
        assert_eq!(longer.reason_over(&prefix), "longer path");
        let old = key(2, 10, Some((1, 0)), "ns/z");
        assert_eq!(
            old.compare(&prefix).0,
            Ordering::Less,
            "a timestamp is older than none"
        );
        assert_eq!(old.reason_over(&prefix), "older route");
        let named = key(2, 10, None, "ns/route-10");
        assert_eq!(
            named.compare(&key(2, 10, None, "ns/route-9")).0,
            Ordering::Less
        );
    }
}
