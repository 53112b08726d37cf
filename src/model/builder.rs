//! Building a [`RouteTable`]: the order of each host's routes, catch-all placement, which
//! names each host's table answers for, and the host index. The loader hands over lowered
//! routes grouped by host; everything that makes the table what it is happens here.

use std::sync::Arc;

use super::destination::Destination;
use super::gateway::{GatewayEntry, GatewayHosts};
use super::host::HostIndex;
use super::index::RouteIndex;
use super::labels::Labels;
use super::policy::DestinationPolicy;
use super::route::Route;
use super::table::{HostTable, RouteTable, VirtualServiceRoutes, next_generation};

/// A RouteRule as the builder takes it: its route, precedence and `namespace/name` key, and a
/// tag of the loader's (where the rule came from) handed back in what the builder reports.
#[derive(Debug)]
pub(crate) struct RankedRule<D> {
    pub(crate) tag: D,
    pub(crate) precedence: i32,
    pub(crate) key: String,
    pub(crate) route: Route,
}

/// A RouteRule that no request reaches: a catch-all rule comes before it.
#[derive(Debug)]
pub(crate) struct Shadowed<D> {
    /// The tag of the unreachable rule.
    pub(crate) tag: D,
    pub(crate) key: String,
    /// The catch-all rule's key and precedence.
    pub(crate) by: String,
    pub(crate) by_precedence: i32,
}

/// What adding one host's rules found: unreachable rules, and the names that an earlier host
/// had already claimed (the earlier one keeps them).
#[derive(Debug)]
pub(crate) struct Added<D> {
    pub(crate) shadowed: Vec<Shadowed<D>>,
    pub(crate) taken: Vec<String>,
}

/// Builds a [`RouteTable`] host by host.
#[derive(Debug, Default)]
pub(crate) struct TableBuilder {
    index: HostIndex,
    tables: Vec<HostTable>,
    gateway: GatewayHosts,
    policies: std::collections::HashMap<Box<str>, std::sync::Arc<DestinationPolicy>>,
}

impl TableBuilder {
    pub(crate) fn new() -> Self {
        TableBuilder::default()
    }

    /// Adds the RouteRules of one service, answering for `names`; a request no rule takes goes
    /// to `service` as a whole. The rules are tried by precedence, highest first, and equal
    /// precedences by ascending `namespace/name` (Pilot's order); rules after a catch-all are
    /// reported as shadowed. `rules` must not be empty.
    pub(crate) fn add_route_rules<D>(
        &mut self,
        names: &[String],
        service: Arc<str>,
        mut rules: Vec<RankedRule<D>>,
    ) -> Added<D> {
        rules.sort_by(|a, b| {
            b.precedence
                .cmp(&a.precedence)
                .then_with(|| a.key.cmp(&b.key))
        });
        let mut shadowed = Vec::new();
        let mut catch_all: Option<(String, i32)> = None;
        let mut routes = Vec::with_capacity(rules.len());
        for rule in rules {
            if let Some((by, by_precedence)) = &catch_all {
                shadowed.push(Shadowed {
                    tag: rule.tag,
                    key: rule.key,
                    by: by.clone(),
                    by_precedence: *by_precedence,
                });
            } else if rule.route.is_unconditional() {
                catch_all = Some((rule.key.clone(), rule.precedence));
            }
            routes.push(Arc::new(rule.route));
        }
        let table = HostTable::Legacy {
            index: RouteIndex::build(&routes),
            routes,
            default: Arc::new(Destination::new(service, Labels::new())),
        };
        let taken = self.claim(names, table);
        Added { shadowed, taken }
    }

    /// Adds the VirtualServices of one host, in load order, answering for `names`. Without
    /// `merge` the first that applies to a request's gateway claims it, as on a sidecar; with
    /// it, all their routes are tried in load order with catch-all routes moved last, as on an
    /// ingress gateway.
    pub(crate) fn add_virtual_services(
        &mut self,
        names: &[String],
        services: Vec<Arc<VirtualServiceRoutes>>,
        merge: bool,
    ) -> Vec<String> {
        // Gateways always merge (Istio concatenates per host on a gateway); the sidecar
        // (`mesh`) merges only with `merge`.
        let all = services
            .iter()
            .flat_map(|vs| vs.routes.iter().map(move |r| (vs.clone(), r.clone())));
        let (mut merged, catch_alls): (Vec<_>, Vec<_>) = all.partition(|(_, r)| !r.is_catch_all());
        merged.extend(catch_alls);
        let restricted = services.iter().any(|vs| vs.export.is_some());
        self.claim(
            names,
            HostTable::Virtual {
                services,
                merged,
                merge_mesh: merge,
                restricted,
            },
        )
    }

    /// Adds the Gateway API routes attached to one Service of `namespace`, answering for
    /// `names`; each entry comes with its route's namespace. They are sorted into the API's
    /// precedence here.
    pub(crate) fn add_gateway_service(
        &mut self,
        names: &[String],
        namespace: &str,
        entries: Vec<(Box<str>, GatewayEntry)>,
    ) {
        self.gateway.add(names, namespace, entries);
    }

    /// Adds `table` under `names`; returns the names another table already had.
    fn claim(&mut self, names: &[String], table: HostTable) -> Vec<String> {
        let id = self.tables.len();
        self.tables.push(table);
        names
            .iter()
            .filter(|name| !self.index.insert(name, id))
            .cloned()
            .collect()
    }

    /// The table, with `route_count` routes in all and a generation of its own.
    /// Keeps the DestinationRule in force for the service `canonical` (its fully qualified
    /// name).
    pub(crate) fn add_destination_policy(
        &mut self,
        canonical: &str,
        policy: std::sync::Arc<DestinationPolicy>,
    ) {
        self.policies.insert(canonical.into(), policy);
    }

    pub(crate) fn finish(self, route_count: usize) -> RouteTable {
        RouteTable {
            generation: next_generation(),
            index: self.index,
            tables: self.tables,
            route_count,
            gateway: self.gateway,
            policies: self.policies,
        }
    }
}
