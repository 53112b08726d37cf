//! Compiled routes: where a matched request goes, and what happens to it on the way.

use std::sync::Arc;
use std::time::Duration;

use super::action::Action;
use super::condition::RequestMatch;
use super::cors::CorsPolicy;
use super::destination::{CallerSubsets, Destination, Mirror, SubsetLabels};
use super::fault::Fault;
use super::header_policy::HeaderPolicy;
use super::labels::Labels;
use super::path_rewrite::Rewrite;
use super::request::Field;
use super::resource::Resource;
use super::retry::RetryPolicy;

/// The entry index of a route that has no match entries (it matches every request).
pub(super) const NO_ENTRY: usize = usize::MAX;

/// Everything a route does besides choosing a destination: carried in the model for the
/// middleware's later stages.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: ratings}
/// spec:
///   hosts: [ratings]
///   http:
///   - name: moved
///     match: [{uri: {prefix: /old}}]
///     redirect: {uri: /new, redirectCode: 308}
///   - name: teapot
///     match: [{uri: {exact: /tea}}]
///     directResponse: {status: 418, body: {string: "short and stout"}}
///   - name: main
///     fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 5}}}
///     rewrite: {uri: /v1}
///     headers: {request: {set: {x-route: main}}}
///     timeout: 2s
///     retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx"}
///     mirror: {host: ratings-canary}
///     mirrorPercentage: {value: 10}
///     corsPolicy: {allowOrigins: [{exact: "https://shop.example"}], allowMethods: [GET]}
///     route: [{destination: {host: ratings}}]
/// "#)?;
/// let route = |path: &str| {
///     let req = Request::get(path).body(()).unwrap();
///     let decision = rules.evaluate(&req, &Context::new().with_host("ratings"), &NeverSampler);
///     decision.route().cloned().unwrap()
/// };
/// let main = route("/");
/// let policy = main.policy();
/// assert_eq!(policy.rewrite().and_then(|r| r.uri()), Some("/v1"));
/// assert_eq!(policy.headers().request().set()[0].0, "x-route");
/// assert_eq!(policy.timeout(), Some(std::time::Duration::from_secs(2)));
/// assert_eq!(policy.mirrors().len(), 1);
/// assert!(policy.cors().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct RoutePolicy {
    pub(super) rewrite: Option<Rewrite>,
    pub(super) headers: HeaderPolicy,
    pub(super) timeout: Option<Duration>,
    pub(super) retries: Option<RetryPolicy>,
    pub(super) mirrors: Vec<Mirror>,
    pub(super) cors: Option<CorsPolicy>,
}

impl RoutePolicy {
    /// With this rewrite.
    pub(crate) fn with_rewrite(mut self, rewrite: Option<Rewrite>) -> Self {
        self.rewrite = rewrite;
        self
    }

    /// With these header operations.
    pub(crate) fn with_headers(mut self, headers: HeaderPolicy) -> Self {
        self.headers = headers;
        self
    }

    /// With this timeout for the whole exchange.
    pub(crate) fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// With these retries.
    pub(crate) fn with_retries(mut self, retries: Option<RetryPolicy>) -> Self {
        self.retries = retries;
        self
    }

    /// With these mirrors.
    pub(crate) fn with_mirrors(mut self, mirrors: Vec<Mirror>) -> Self {
        self.mirrors = mirrors;
        self
    }

    /// With this CORS policy.
    pub(crate) fn with_cors(mut self, cors: Option<CorsPolicy>) -> Self {
        self.cors = cors;
        self
    }

    /// The rewrite, if any.
    pub fn rewrite(&self) -> Option<&Rewrite> {
        self.rewrite.as_ref()
    }
    /// Route-level header operations.
    pub fn headers(&self) -> &HeaderPolicy {
        &self.headers
    }
    /// The route timeout (RouteRule: 15 s unless set; VirtualService: none unless set).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    /// The retry policy, if any.
    pub fn retries(&self) -> Option<&RetryPolicy> {
        self.retries.as_ref()
    }
    /// The mirrors.
    pub fn mirrors(&self) -> &[Mirror] {
        &self.mirrors
    }
    /// The CORS policy, if any.
    pub fn cors(&self) -> Option<&CorsPolicy> {
        self.cors.as_ref()
    }
}

/// One compiled route: a RouteRule, or one entry of a VirtualService's `http` list.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
/// use tower_mesh::model::Action;
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
/// let req = Request::get("/").header("end-user", "jason").body(())?;
/// let decision = rules.evaluate(&req, &Context::new().with_host("reviews"), &NeverSampler);
/// let route = decision.route().unwrap();
/// assert_eq!(route.name(), Some("jason"));
/// assert_eq!(route.path(), "spec.http[0]");
/// assert_eq!(route.matches().len(), 1);
/// assert!(matches!(route.action(), Action::Forward { .. }));
/// let delay = route.fault().and_then(|f| f.delay()).unwrap();
/// assert_eq!((delay.duration().as_secs(), delay.ppm()), (7, 1_000_000));
/// assert_eq!(route.policy().timeout(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Route {
    pub(super) resource: Arc<Resource>,
    pub(super) name: Option<Arc<str>>,
    /// Where it stands in its resource: `spec` for a RouteRule, `spec.http[2]` for a route.
    pub(super) path: Box<str>,
    pub(super) matches: Vec<RequestMatch>,
    pub(super) action: Action,
    pub(super) fault: Option<Fault>,
    pub(super) policy: RoutePolicy,
    /// Facts about the route, worked out when it is built.
    facts: Facts,
}

/// Facts about a route that follow from its action and policy, worked out once when it is
/// built so that reading them per request costs a field load.
#[derive(Clone, Copy, Debug)]
struct Facts {
    /// The route changes the request or the response (rewrites, header operations).
    changes: bool,
    /// A forward with no message changes, no CORS policy and no mirrors: carrying it out is
    /// sending the request on as it is (retries aside).
    plain_forward: bool,
    retries: Retries,
}

/// What a route's retry policy amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retries {
    /// No retries: none configured, or `attempts: 0`.
    Never,
    /// Istio's mesh-wide default, which a route without `retries` gets.
    MeshDefault,
    /// A policy the route configures.
    Configured,
}

impl Facts {
    fn of(action: &Action, p: &RoutePolicy) -> Facts {
        let destination_changes = match action {
            Action::Forward { destinations, .. } => destinations.iter().any(|d| {
                !d.headers.request.is_empty()
                    || !d.headers.response.is_empty()
                    || d.headers.authority.is_some()
            }),
            _ => false,
        };
        let changes = p.rewrite.is_some()
            || !p.headers.request.is_empty()
            || !p.headers.response.is_empty()
            || p.headers.authority.is_some()
            || destination_changes;
        let retries = match &p.retries {
            None => Retries::Never,
            Some(r) if r.attempts() == 0 => Retries::Never,
            Some(r) if r.is_mesh_default() => Retries::MeshDefault,
            Some(_) => Retries::Configured,
        };
        Facts {
            changes,
            plain_forward: matches!(action, Action::Forward { .. })
                && !changes
                && p.cors.is_none()
                && p.mirrors.is_empty(),
            retries,
        }
    }
}

impl Route {
    /// Gives each destination that names a subset the subset's labels, as `labels` finds them
    /// for the destination's host (as written) and subset; where it finds none, the
    /// destination names no subset (its DestinationRule did not load, and the error that
    /// matters is that one's).
    pub(crate) fn resolve_subsets(&mut self, labels: &dyn Fn(&str, &str) -> Option<SubsetLabels>) {
        let fill = |d: &mut Arc<Destination>| {
            let Some(subset) = d.subset.clone() else {
                return;
            };
            let mut resolved = Destination::clone(d);
            match labels(&d.host, &subset) {
                Some(l) => {
                    resolved.labels = l.default.clone().unwrap_or_default();
                    resolved.callers = None;
                    if l.default.is_none() || !l.by_namespace.is_empty() {
                        let view = |labels: Labels| {
                            Arc::new(Destination {
                                labels,
                                callers: None,
                                ..resolved.clone()
                            })
                        };
                        let by_namespace = l
                            .by_namespace
                            .into_iter()
                            .map(|(ns, l)| (ns, l.map(view)))
                            .collect();
                        resolved.callers = Some(Arc::new(CallerSubsets {
                            by_namespace,
                            default_missing: l.default.is_none(),
                        }));
                    }
                }
                None => resolved.subset = None,
            }
            *d = Arc::new(resolved);
        };
        if let Action::Forward { destinations, .. } = &mut self.action {
            destinations
                .iter_mut()
                .for_each(|w| fill(&mut w.destination));
        }
        self.policy
            .mirrors
            .iter_mut()
            .for_each(|m| fill(&mut m.destination));
    }

    /// How many leading bytes of the path match entry `entry` matched by prefix, for a rewrite
    /// or redirect that replaces them: the prefix's length for a `prefix` uri match, 1 (`/`)
    /// when the entry has no uri condition, `None` (the whole path) for exact and regex.
    pub(super) fn matched_prefix_len(&self, entry: Option<u32>) -> Option<usize> {
        let uri_condition = entry
            .and_then(|e| self.matches.get(e as usize))
            .and_then(|m| {
                m.conditions
                    .iter()
                    .find(|c| matches!(c.field, Field::Uri) && !c.invert)
            });
        match uri_condition {
            Some(c) => c.matcher.rewrite_prefix_len(),
            None => Some(1),
        }
    }

    /// A route of `resource`, standing at `path` in it (`spec`, `spec.http[2]`), taken by a
    /// request that fits any of `matches` (every request when there are none).
    pub(crate) fn new(
        resource: Arc<Resource>,
        name: Option<Arc<str>>,
        path: impl Into<Box<str>>,
        matches: Vec<RequestMatch>,
        action: Action,
        fault: Option<Fault>,
        policy: RoutePolicy,
    ) -> Route {
        // A rule set holds many routes for a long time: no spare capacity.
        let mut matches = matches;
        matches.shrink_to_fit();
        Route {
            facts: Facts::of(&action, &policy),
            resource,
            name,
            path: path.into(),
            matches,
            action,
            fault,
            policy,
        }
    }

    /// The resource the route belongs to.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// The route's `name` (VirtualService routes only).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The match entries (any one suffices); empty means every request.
    pub fn matches(&self) -> &[RequestMatch] {
        &self.matches
    }

    /// What the route does.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// The fault injection, if any.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    /// Rewrite, headers, timeout, retries, mirrors and CORS.
    pub fn policy(&self) -> &RoutePolicy {
        &self.policy
    }

    /// Where the route stands in its resource, e.g. `spec.http[2]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the route rewrites the request or has header operations.
    pub(super) fn changes_messages(&self) -> bool {
        self.facts.changes
    }

    /// Whether the route forwards with no message changes, no CORS policy and no mirrors.
    #[inline]
    pub(crate) fn is_plain_forward(&self) -> bool {
        self.facts.plain_forward
    }

    /// What the route's retry policy amounts to.
    #[inline]
    pub(crate) fn retries(&self) -> Retries {
        self.facts.retries
    }

    /// Whether the route may send a request more than once (retries or mirrors).
    pub(crate) fn replays(&self) -> bool {
        self.policy.retries.is_some() || !self.policy.mirrors.is_empty()
    }

    /// Whether some match entry (with no config-time selector) matches every request.
    pub(crate) fn is_unconditional(&self) -> bool {
        self.matches.is_empty()
            || self
                .matches
                .iter()
                .any(|m| m.selector.is_empty() && m.is_catch_all())
    }

    /// Whether every entry matches every request once its selector fits.
    pub(super) fn is_catch_all(&self) -> bool {
        self.matches.is_empty() || self.matches.iter().any(RequestMatch::is_catch_all)
    }
}
