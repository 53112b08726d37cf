//! The compiled route table: hosts, their routes, and the evaluation of a request.

use std::borrow::Cow;
use std::sync::Arc;

use http::{Request, StatusCode};

use super::action::Action;
use super::condition::gateway_is;
use super::context::Context;
use super::decision::{Decision, DestinationRef, Outcome};
use super::destination::Destination;
use super::explain::{Explanation, NoTrace, Recorder, Tracer, Verdict, show_value};
use super::gateway::{Entries, GatewayHosts};
use super::host::{HostIndex, normalize_host};
use super::index::RouteIndex;
use super::policy::DestinationPolicy;
use super::request::RequestView;
use super::resource::{Resource, ResourceKind};
use super::route::{NO_ENTRY, Route};
use super::sampler::{PPM, Sampler};

/// The routes of one VirtualService, in list order.
#[derive(Debug)]
pub(crate) struct VirtualServiceRoutes {
    pub(super) resource: Arc<Resource>,
    /// `spec.gateways`; empty means `mesh`.
    pub(super) gateways: Vec<Box<str>>,
    pub(super) routes: Vec<Arc<Route>>,
    pub(super) index: Option<RouteIndex>,
    /// Whether some match entry has a config-time selector.
    pub(super) has_selectors: bool,
    /// `exportTo` with `.` made the VirtualService's namespace; `None`: every namespace (`*`).
    pub(super) export: Option<Box<[Box<str>]>>,
}

impl VirtualServiceRoutes {
    pub(crate) fn new(
        resource: Arc<Resource>,
        gateways: Vec<Box<str>>,
        routes: Vec<Arc<Route>>,
    ) -> Self {
        VirtualServiceRoutes {
            index: RouteIndex::build(&routes),
            has_selectors: routes
                .iter()
                .any(|r| r.matches.iter().any(|m| !m.selector.is_empty())),
            resource,
            gateways,
            routes,
            export: None,
        }
    }

    /// The same routes, visible only to callers of these namespaces (`exportTo` without `*`,
    /// `.` already made the VirtualService's namespace).
    pub(crate) fn exported_to(mut self, namespaces: Vec<Box<str>>) -> Self {
        self.export = Some(namespaces.into_boxed_slice());
        self
    }

    /// Whether some caller sees this VirtualService and `other` in the same group of Istio's
    /// order (IST0109's condition): both public, or both exported to one namespace and either
    /// both of it or both of others. A consumer's private override meets no public one.
    pub(crate) fn meets(&self, other: &VirtualServiceRoutes) -> bool {
        match (&self.export, &other.export) {
            (None, None) => true,
            (Some(a), Some(b)) => a.iter().any(|n| {
                b.contains(n)
                    && (self.resource.namespace() == &**n) == (other.resource.namespace() == &**n)
            }),
            _ => false,
        }
    }

    /// Where a caller of namespace `caller` sees this VirtualService in Istio's order (`None`:
    /// not at all): 1, the caller's own namespace exports it to itself; 2, another namespace
    /// exports it to the caller's; 3, it is exported to every namespace. A caller without a
    /// namespace sees only the last.
    pub(super) fn group(&self, caller: Option<&str>) -> Option<u8> {
        match (&self.export, caller) {
            (None, _) => Some(3),
            (Some(list), Some(c)) if list.iter().any(|n| &**n == c) => {
                Some(if self.resource.namespace() == c { 1 } else { 2 })
            }
            (Some(_), _) => None,
        }
    }

    /// The VirtualService these routes belong to.
    pub(crate) fn resource(&self) -> &Resource {
        &self.resource
    }

    /// `spec.gateways`; empty means `mesh`.
    pub(crate) fn gateways(&self) -> &[Box<str>] {
        &self.gateways
    }

    /// The HTTP routes.
    pub(crate) fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    fn applies_to(&self, ctx: &Context) -> bool {
        if self.gateways.is_empty() {
            return ctx.gateway_unset() || gateway_is("mesh", ctx.gateway());
        }
        self.gateways.iter().any(|g| gateway_is(g, ctx.gateway()))
    }
}

/// What one host's traffic is evaluated against.
#[derive(Debug)]
pub(super) enum HostTable {
    /// RouteRules, sorted by precedence (descending) then `namespace/name`; a miss goes to
    /// `default` (the whole service).
    Legacy {
        routes: Vec<Arc<Route>>,
        index: Option<RouteIndex>,
        default: Arc<Destination>,
    },
    /// VirtualServices in load order: the first that applies claims the host.
    Virtual {
        services: Vec<Arc<VirtualServiceRoutes>>,
        /// Whether one of them is exported to some namespaces only: then the caller's
        /// namespace decides which apply and in what order.
        restricted: bool,
        /// Every route of every service, catch-alls last: what a gateway evaluates, and the
        /// sidecar too with `merge_mesh` (gateway merge).
        merged: Vec<(Arc<VirtualServiceRoutes>, Arc<Route>)>,
        merge_mesh: bool,
    },
}

/// The compiled rules: every host's route table, ready to evaluate requests.
///
/// Built by the loader ([`RuleSet`](crate::RuleSet) holds one); pure and immutable, so it is
/// shared between threads behind an `Arc`.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: DestinationRule
/// metadata: {name: reviews, namespace: shop}
/// spec:
///   host: reviews
///   subsets:
///   - {name: v2, labels: {version: v2}}
/// ---
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews, namespace: shop}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match: [{headers: {end-user: {exact: jason}}}]
///     fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}
///     route: [{destination: {host: reviews, subset: v2}}]
///   - name: others
///     match: [{uri: {prefix: /api}}]
///     route: [{destination: {host: reviews}}]
/// "#)?;
/// let table = rules.table();
/// assert_eq!(table.route_count(), 2);
/// let req = Request::get("/api").body(())?;
/// let decision = table.evaluate(&req, &Context::new().with_host("reviews"), &NeverSampler);
/// assert_eq!(decision.route_name(), Some("others"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Distinguishes rule sets, for the per-context host cache; 0 for none.
    pub(super) generation: u64,
    pub(super) index: HostIndex,
    pub(super) tables: Vec<HostTable>,
    pub(super) route_count: usize,
    /// Services with Gateway API routes attached; they decide before the host's tables.
    pub(super) gateway: GatewayHosts,
    /// The DestinationRule in force for each service, by its fully qualified name.
    pub(super) policies: std::collections::HashMap<Box<str>, Arc<DestinationPolicy>>,
}

/// The next rule set generation (1, 2, ...).
pub(super) fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl RouteTable {
    /// The number of routes (RouteRules and VirtualService HTTP routes).
    pub fn route_count(&self) -> usize {
        self.route_count
    }

    /// The DestinationRule in force for a service, by its fully qualified name
    /// (`reviews.shop.svc.cluster.local`; letter case and a final dot do not matter): its
    /// subsets and traffic policy. See [`DestinationPolicy`].
    pub fn destination_policy(&self, service: &str) -> Option<&DestinationPolicy> {
        let name = service
            .strip_suffix('.')
            .unwrap_or(service)
            .to_ascii_lowercase();
        self.policies.get(name.as_str()).map(|p| &**p)
    }

    /// Evaluates a request: which rule and route apply, where it goes, which faults fire.
    pub fn evaluate<B>(&self, req: &Request<B>, ctx: &Context, sampler: &dyn Sampler) -> Decision {
        self.run(req, ctx, sampler, &mut NoTrace)
    }

    /// Evaluates a request and writes out every step.
    pub fn explain<B>(
        &self,
        req: &Request<B>,
        ctx: &Context,
        sampler: &dyn Sampler,
    ) -> Explanation {
        let mut rec = Recorder::default();
        let decision = self.run(req, ctx, sampler, &mut rec);
        Explanation {
            lines: rec.lines,
            decision,
        }
    }

    fn run<B, T: Tracer>(
        &self,
        req: &Request<B>,
        ctx: &Context,
        sampler: &dyn Sampler,
        t: &mut T,
    ) -> Decision {
        let view = RequestView::new(req, ctx.default_scheme());
        let host = match ctx.target_key() {
            Some(key) => Some(Cow::Borrowed(key)),
            None => view.authority().and_then(normalize_host),
        };
        let Some(host) = host else {
            t.line(0, Verdict::Info, || {
                "the request names no host: passthrough".into()
            });
            return Decision::pass_through();
        };
        let on = Evaluation {
            view: &view,
            ctx,
            sampler,
        };
        t.line(0, Verdict::Info, || {
            let (method, uri, gateway) = (req.method(), req.uri(), ctx.gateway());
            match ctx.caller().and_then(|c| c.namespace()) {
                Some(ns) => {
                    format!("{method} {uri} to {host} (gateway {gateway}, caller namespace {ns})")
                }
                None => format!("{method} {uri} to {host} (gateway {gateway})"),
            }
        });
        if !self.gateway.is_empty()
            && let Some(decision) = on.gateway_routes(&self.gateway, &host, t)
        {
            return decision;
        }
        let Some(id) = self.table_for(&host, ctx) else {
            t.line(0, Verdict::Info, || {
                format!("host {host}: no configuration covers it: passthrough")
            });
            return Decision::pass_through();
        };
        match &self.tables[id] {
            HostTable::Legacy {
                routes,
                index,
                default,
            } => on.route_rules(&host, routes, index.as_ref(), default, t),
            HostTable::Virtual {
                services,
                merged,
                merge_mesh,
                restricted,
            } => {
                let sidecar = ctx.gateway_unset() || gateway_is("mesh", ctx.gateway());
                match sidecar && !merge_mesh {
                    true => on.virtual_services(&host, services, *restricted, t),
                    false => on.merged(&host, merged, t),
                }
            }
        }
    }

    /// The table for a host, through the context's cache when the context names its target.
    fn table_for(&self, host: &str, ctx: &Context) -> Option<usize> {
        match ctx.target_key() {
            Some(_) if self.generation != 0 => match ctx.cached_table(self.generation) {
                Some(found) => found,
                None => {
                    let found = self.index.lookup(host);
                    ctx.remember_table(self.generation, found);
                    found
                }
            },
            _ => self.index.lookup(host),
        }
    }
}

/// One request's evaluation against one host's table.
struct Evaluation<'a, 'r> {
    view: &'a RequestView<'r>,
    ctx: &'a Context,
    sampler: &'a dyn Sampler,
}

impl Evaluation<'_, '_> {
    /// RouteRules: the first that matches, else the default route to the whole service.
    fn route_rules<T: Tracer>(
        &self,
        host: &str,
        routes: &[Arc<Route>],
        index: Option<&RouteIndex>,
        default: &Arc<Destination>,
        t: &mut T,
    ) -> Decision {
        t.line(0, Verdict::Info, || {
            let n = routes.len();
            format!("host {host}: {n} RouteRule(s), by precedence then namespace/name")
        });
        if let Some((i, entry)) = first_match(routes, index, self.view, self.ctx, t, true) {
            return execute(&routes[i], entry, self, t);
        }
        t.line(1, Verdict::Matched, || {
            format!("no rule matched: default route to all of {}", default.host)
        });
        Decision {
            outcome: Outcome::Forward,
            destination: DestinationRef::Shared(default.clone()),
            ..Decision::pass_through()
        }
    }

    /// VirtualServices in load order: the first that applies to the gateway and has a route
    /// for the caller decides (404 when none of its routes matches).
    fn virtual_services<T: Tracer>(
        &self,
        host: &str,
        services: &[Arc<VirtualServiceRoutes>],
        restricted: bool,
        t: &mut T,
    ) -> Decision {
        t.line(0, Verdict::Info, || {
            format!("host {host}: {} VirtualService(s)", services.len())
        });
        if !restricted {
            for vs in services {
                if let Some(d) = self.one_virtual_service(vs, t) {
                    return d;
                }
            }
        } else {
            // Istio's order for the caller's namespace: its own namespace's private ones,
            // then those other namespaces export to it, then the public ones.
            let caller = self.ctx.caller().and_then(|c| c.namespace());
            for vs in services.iter().filter(|vs| vs.group(caller).is_none()) {
                t.line(1, Verdict::Skipped, || {
                    format!(
                        "{}: not exported to the caller's namespace ({})",
                        vs.resource,
                        caller.unwrap_or("none set")
                    )
                });
            }
            for group in 1..=3 {
                for vs in services.iter().filter(|vs| vs.group(caller) == Some(group)) {
                    if let Some(d) = self.one_virtual_service(vs, t) {
                        return d;
                    }
                }
            }
        }
        t.line(0, Verdict::Info, || {
            "no VirtualService applies: passthrough".into()
        });
        Decision::pass_through()
    }

    /// One VirtualService's say: the route that matches, a 404 when it has routes for this
    /// gateway, caller and port but none matches, or nothing (the next one is asked).
    fn one_virtual_service<T: Tracer>(
        &self,
        vs: &VirtualServiceRoutes,
        t: &mut T,
    ) -> Option<Decision> {
        let ctx = self.ctx;
        if !vs.applies_to(ctx) {
            t.line(1, Verdict::Skipped, || {
                let gateways = gateways_text(&vs.gateways);
                format!(
                    "{}: gateways [{gateways}] do not include {}",
                    vs.resource,
                    ctx.gateway()
                )
            });
            return None;
        }
        t.line(1, Verdict::Info, || vs.resource.to_string());
        if let Some((i, entry)) =
            first_match(&vs.routes, vs.index.as_ref(), self.view, ctx, t, false)
        {
            return Some(execute(&vs.routes[i], entry, self, t));
        }
        let survived = if vs.has_selectors {
            vs.routes.iter().any(|r| route_exists(r, ctx, self.view))
        } else {
            !vs.routes.is_empty()
        };
        if survived {
            t.line(1, Verdict::NotMatched, || "no route matched: 404".into());
            return Some(not_found(&vs.resource));
        }
        t.line(1, Verdict::Skipped, || {
            "no route exists for this caller: the VirtualService does not apply".into()
        });
        None
    }

    /// Gateway merge: every route of every VirtualService that applies, catch-alls last.
    fn merged<T: Tracer>(
        &self,
        host: &str,
        routes: &[(Arc<VirtualServiceRoutes>, Arc<Route>)],
        t: &mut T,
    ) -> Decision {
        t.line(0, Verdict::Info, || {
            format!(
                "host {host}: {} merged route(s) (on a gateway, or with gateway merge)",
                routes.len()
            )
        });
        let mut first: Option<&Arc<Resource>> = None;
        let caller = self.ctx.caller().and_then(|c| c.namespace());
        for (vs, route) in routes {
            if !vs.applies_to(self.ctx) || vs.group(caller).is_none() {
                continue;
            }
            if route_exists(route, self.ctx, self.view) {
                first.get_or_insert(&vs.resource);
            }
            if let Some(entry) = route_matches(route, self.view, self.ctx, t, false) {
                return execute(route, entry, self, t);
            }
        }
        match first {
            Some(resource) => not_found(resource),
            None => Decision::pass_through(),
        }
    }
}

impl Evaluation<'_, '_> {
    /// The Gateway API routes attached to the Service the request is for, when some apply to
    /// it (mesh only, the caller's or the producer's group, at the service port): the first
    /// entry in precedence order decides, and none matching is a 404. `None` leaves the request
    /// to the host's other rules.
    fn gateway_routes<T: Tracer>(
        &self,
        gateway: &GatewayHosts,
        host: &str,
        t: &mut T,
    ) -> Option<Decision> {
        let ctx = self.ctx;
        if !(ctx.gateway_unset() || gateway_is("mesh", ctx.gateway())) {
            return None;
        }
        let service = gateway.lookup(host)?;
        let port = super::condition::service_port(self.view, ctx);
        let caller = ctx.caller().and_then(|c| c.namespace());
        let (namespace, entries) = service.entries(caller, port)?;
        t.line(0, Verdict::Info, || {
            let n = entries.routes.len();
            format!(
                "host {host}: {n} Gateway API match entr{} of namespace {namespace} at port {port}, in precedence order",
                if n == 1 { "y" } else { "ies" }
            )
        });
        let Some((i, entry)) = first_match(
            &entries.routes,
            entries.index.as_ref(),
            self.view,
            ctx,
            t,
            false,
        ) else {
            t.line(1, Verdict::NotMatched, || "no rule matched: 404".into());
            return Some(Decision {
                outcome: Outcome::NotFound,
                status: Some(StatusCode::NOT_FOUND),
                ..Decision::pass_through()
            });
        };
        if T::ON {
            explain_precedence(entries, i, self.view, ctx, t);
        }
        Some(execute(&entries.routes[i], entry, self, t))
    }
}

/// For an explanation: why entry `i` won over the next entry that also matches.
fn explain_precedence<T: Tracer>(
    entries: &Entries,
    i: usize,
    view: &RequestView<'_>,
    ctx: &Context,
    t: &mut T,
) {
    let later = (i + 1..entries.routes.len())
        .find(|&j| route_matches(&entries.routes[j], view, ctx, &mut NoTrace, false).is_some());
    let winner = &entries.keys[i];
    let rule = |k: &super::gateway::Precedence| format!("rule {} of route {}", k.rule, k.route);
    match later {
        Some(j) => {
            let loser = &entries.keys[j];
            let why = winner.reason_over(loser);
            t.line(1, Verdict::Info, || {
                format!(
                    "{} wins over {}, which also matches: {why}",
                    rule(winner),
                    rule(loser)
                )
            });
        }
        None => t.line(1, Verdict::Info, || {
            format!("{} is the only entry that matches", rule(winner))
        }),
    }
}

/// The weighted draw among a forward's destinations, into `decision`; a Gateway API backend
/// that cannot be sent to answers with an error instead.
fn choose_destination<T: Tracer>(
    decision: &mut Decision,
    route: &Route,
    (destinations, total_weight): (&[super::destination::WeightedDestination], u32),
    on: &Evaluation<'_, '_>,
    t: &mut T,
) {
    let (view, sampler) = (on.view, on.sampler);
    let (picked, draw) = pick(destinations, total_weight, sampler);
    if let (Some(i), Some(draw)) = (picked, draw) {
        t.line(1, Verdict::Info, || {
            weight_line(destinations, total_weight, draw, i)
        });
    }
    let Some(i) = picked else { return };
    decision.destination = DestinationRef::Route(i);
    if let Some(callers) = &destinations[i].destination.callers {
        let caller = on.ctx.caller().and_then(|c| c.namespace());
        match callers.for_caller(caller) {
            Ok(None) => {}
            Ok(Some(seen)) => decision.destination = DestinationRef::Shared(seen.clone()),
            Err(()) => {
                t.line(1, Verdict::Info, || {
                    format!(
                        "the DestinationRule a caller of namespace {} gets for {} has no subset {}: 503, as Envoy answers a missing cluster",
                        caller.unwrap_or("(none)"),
                        destinations[i].destination.host,
                        destinations[i].destination.subset.as_deref().unwrap_or("")
                    )
                });
                decision.outcome = Outcome::DirectResponse;
                decision.destination = DestinationRef::None;
                decision.status = Some(StatusCode::SERVICE_UNAVAILABLE);
                return;
            }
        }
    }
    if destinations[i].unusable {
        decision.outcome = Outcome::DirectResponse;
        decision.destination = DestinationRef::None;
        decision.status = Some(match route.resource.kind {
            ResourceKind::GrpcRoute => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        });
        grpc_unavailable(decision, route, view);
    }
}

/// A GRPCRoute's error answer to a gRPC request: `UNAVAILABLE` in gRPC form (HTTP 200).
fn grpc_unavailable(decision: &mut Decision, route: &Route, view: &RequestView<'_>) {
    if route.resource.kind == ResourceKind::GrpcRoute && view.is_grpc() {
        decision.status = Some(StatusCode::OK);
        decision.grpc_status = Some(14);
    }
}

fn gateways_text(g: &[Box<str>]) -> String {
    if g.is_empty() {
        "mesh".into()
    } else {
        g.join(", ")
    }
}

fn not_found(resource: &Arc<Resource>) -> Decision {
    Decision {
        outcome: Outcome::NotFound,
        resource: Some(resource.clone()),
        status: Some(StatusCode::NOT_FOUND),
        ..Decision::pass_through()
    }
}

/// The first route that matches, by the index when there is one (and nothing is traced).
#[inline]
fn first_match<T: Tracer>(
    routes: &[Arc<Route>],
    index: Option<&RouteIndex>,
    view: &RequestView<'_>,
    ctx: &Context,
    t: &mut T,
    legacy: bool,
) -> Option<(usize, usize)> {
    if !T::ON
        && let Some(index) = index
    {
        return index.find(routes, view, ctx);
    }
    for (i, route) in routes.iter().enumerate() {
        if let Some(entry) = route_matches(route, view, ctx, t, legacy) {
            skip_rest(&routes[i + 1..], t);
            return Some((i, entry));
        }
    }
    None
}

fn skip_rest<T: Tracer>(rest: &[Arc<Route>], t: &mut T) {
    if T::ON {
        for r in rest {
            t.push(
                1,
                Verdict::Skipped,
                format!("{}: not reached", route_title(r)),
            );
        }
    }
}

fn route_title(route: &Route) -> String {
    let mut s = route.resource.to_string();
    if let Some(p) = route.resource.precedence {
        s.push_str(&format!(" (precedence {p})"));
    } else {
        s.push_str(&format!(" {}", route.path));
    }
    if let Some(name) = &route.name {
        s.push_str(&format!(" (route {name})"));
    }
    s
}

/// Whether some match entry of the route exists for this context.
fn route_exists(route: &Route, ctx: &Context, view: &RequestView<'_>) -> bool {
    route.matches.is_empty() || route.matches.iter().any(|m| m.selector.fits(ctx, view))
}

#[inline]
fn route_matches<T: Tracer>(
    route: &Route,
    view: &RequestView<'_>,
    ctx: &Context,
    t: &mut T,
    legacy: bool,
) -> Option<usize> {
    if route.matches.is_empty() {
        t.line(1, Verdict::Matched, || {
            format!(
                "{}: no conditions, matches every request",
                route_title(route)
            )
        });
        return Some(NO_ENTRY);
    }
    t.line(1, Verdict::Info, || route_title(route));
    for (i, m) in route.matches.iter().enumerate() {
        if !T::ON {
            if m.selector.fits(ctx, view) && m.matches(view) {
                return Some(i);
            }
            continue;
        }
        let label = if legacy {
            "match".to_string()
        } else {
            match &m.name {
                Some(n) => format!("match[{i}] ({n})"),
                None => format!("match[{i}]"),
            }
        };
        if let Some(why) = m.selector.misfit(ctx, view) {
            t.push(2, Verdict::Skipped, format!("{label}: {why}"));
            continue;
        }
        let mut all = true;
        let mut lines = Vec::new();
        for c in &m.conditions {
            let value = c.value_for_explain(view);
            let ok = c.holds_for(value.as_deref());
            lines.push((
                if ok {
                    Verdict::Matched
                } else {
                    Verdict::NotMatched
                },
                format!("{} on {}", c.describe(), show_value(value.as_deref())),
            ));
            all &= ok;
        }
        let verdict = if all {
            Verdict::Matched
        } else {
            Verdict::NotMatched
        };
        let summary = if m.conditions.is_empty() {
            format!("{label}: no runtime conditions")
        } else {
            label
        };
        t.push(2, verdict, summary);
        for (v, text) in lines {
            t.push(3, v, text);
        }
        if all {
            return Some(i);
        }
    }
    None
}

#[inline]
/// Whether a fault applied to `ppm` parts per million of requests fires, and the draw made to
/// decide (none at 0 % and 100 %).
fn fires(ppm: u32, sampler: &dyn Sampler) -> (bool, Option<u32>) {
    match ppm {
        0 => (false, None),
        p if p >= PPM => (true, None),
        p => {
            let draw = sampler.roll_ppm();
            (draw < p, Some(draw))
        }
    }
}

/// The explanation's line for a fault's draw.
fn fault_line(what: &str, ppm: u32, (fired, draw): (bool, Option<u32>)) -> String {
    let outcome = if fired { "fires" } else { "does not fire" };
    let percent = f64::from(ppm) / 10_000.0;
    match draw {
        Some(d) => format!(
            "{what} fault for {percent}% of requests: drew {d} of {PPM}, {} {ppm}: {outcome}",
            if fired { "below" } else { "not below" }
        ),
        None => format!("{what} fault for {percent}% of requests: {outcome} without a draw"),
    }
}

fn execute<T: Tracer>(
    route: &Arc<Route>,
    entry: usize,
    on: &Evaluation<'_, '_>,
    t: &mut T,
) -> Decision {
    let (view, sampler) = (on.view, on.sampler);
    let mut decision = Decision {
        outcome: Outcome::Forward,
        route: Some(route.clone()),
        entry: (entry != NO_ENTRY).then_some(entry as u32),
        ..Decision::pass_through()
    };
    match &route.action {
        Action::Redirect(r) => {
            decision.outcome = Outcome::Redirect;
            decision.status = Some(r.code);
            // A request without an authority (origin-form, no `Host`) is for the context's host.
            let authority = view
                .authority()
                .and_then(|a| std::str::from_utf8(a).ok())
                .or(on.ctx.host());
            let path = r.path(view.path(), route.matched_prefix_len(decision.entry));
            decision.location = Some(
                r.location(view.scheme(), authority, &path, view.query())
                    .into(),
            );
        }
        Action::DirectResponse(d) => {
            decision.outcome = Outcome::DirectResponse;
            decision.status = Some(d.status);
            grpc_unavailable(&mut decision, route, view);
        }
        Action::Forward {
            destinations,
            total_weight,
        } => {
            if let Some(fault) = &route.fault {
                if let Some(delay) = &fault.delay {
                    let fired = fires(delay.ppm, sampler);
                    t.line(1, Verdict::Info, || {
                        fault_line(&format!("delay ({:?})", delay.duration), delay.ppm, fired)
                    });
                    if fired.0 {
                        decision.delay = Some(delay.duration);
                    }
                }
                let abort = fault.abort.as_ref().filter(|abort| {
                    let fired = fires(abort.ppm, sampler);
                    t.line(1, Verdict::Info, || fault_line("abort", abort.ppm, fired));
                    fired.0
                });
                if let Some(abort) = abort {
                    decision.abort_with(abort.status, view.is_grpc());
                    return decision;
                }
            }
            choose_destination(&mut decision, route, (destinations, *total_weight), on, t);
        }
    }
    decision
}

/// The index of the chosen destination: a cumulative walk over the non-zero weights.
#[inline]
/// The destination a request goes to, and the draw made to choose it (none when only one
/// destination has weight).
fn pick(
    destinations: &[super::destination::WeightedDestination],
    total: u32,
    sampler: &dyn Sampler,
) -> (Option<usize>, Option<u32>) {
    if destinations.len() == 1 {
        return (Some(0), None);
    }
    let mut candidates = destinations
        .iter()
        .enumerate()
        .filter(|(_, d)| d.weight > 0);
    let Some((first, _)) = candidates.next() else {
        return (None, None);
    };
    if candidates.next().is_none() {
        return (Some(first), None);
    }
    let draw = sampler.pick(total);
    let mut r = draw;
    for (i, d) in destinations
        .iter()
        .enumerate()
        .filter(|(_, d)| d.weight > 0)
    {
        if r < d.weight {
            return (Some(i), Some(draw));
        }
        r -= d.weight;
    }
    (Some(first), Some(draw))
}

/// The explanation's line for a weighted choice: the draw, each destination's range of the
/// cumulative weights, and the one whose range holds the draw.
fn weight_line(
    destinations: &[super::destination::WeightedDestination],
    total: u32,
    draw: u32,
    picked: usize,
) -> String {
    let mut from = 0u64;
    let ranges: Vec<String> = destinations
        .iter()
        .filter(|d| d.weight > 0)
        .map(|d| {
            let to = from + u64::from(d.weight);
            let range = format!("{} [{from}, {to})", d.destination);
            from = to;
            range
        })
        .collect();
    format!(
        "weighted choice: drew {draw} of {total}; cumulative weights: {}; {draw} falls in the range of {}",
        ranges.join(", "),
        destinations[picked].destination
    )
}
