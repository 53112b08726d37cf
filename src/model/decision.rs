//! The result of evaluating one request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};

use super::action::Action;
use super::destination::Destination;
use super::fault::AbortStatus;
use super::flags::ResponseFlags;
use super::resource::Resource;
use super::rewrite::RewriteError;
use super::route::Route;

/// Where a forwarded request goes, without copying: an index into the route's destinations,
/// or a destination of its own (a RouteRule host's default route).
#[derive(Clone, Debug)]
pub(super) enum DestinationRef {
    None,
    Route(usize),
    Shared(Arc<Destination>),
}

/// What happens to a request.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, Outcome, RuleSet};
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
/// let ctx = Context::new().with_host("reviews");
/// let outcome = |path: &str| {
///     let req = Request::get(path).body(()).unwrap();
///     rules.evaluate(&req, &ctx, &NeverSampler).outcome()
/// };
/// assert_eq!(outcome("/api/books"), Outcome::Forward);
/// assert_eq!(outcome("/other"), Outcome::NotFound, "a VirtualService answers 404");
/// assert_eq!(outcome("/other").as_str(), "not_found");
/// let elsewhere = Request::get("http://ratings/").body(())?;
/// assert_eq!(rules.evaluate(&elsewhere, &Context::new(), &NeverSampler).outcome(), Outcome::PassThrough);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Sent on to [`Decision::destination`].
    Forward,
    /// Answered by an injected fault ([`Decision::status`], or a gRPC status).
    Abort,
    /// The host has routing configuration, but no route matched: 404 (VirtualService only).
    NotFound,
    /// Answered with a redirect.
    Redirect,
    /// Answered with a fixed response.
    DirectResponse,
    /// No configuration covers the target host: the request goes on untouched.
    PassThrough,
}

impl Outcome {
    /// The name conformance case files use: `forward`, `abort`, `not_found`, `redirect`,
    /// `direct_response`, `passthrough`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forward => "forward",
            Outcome::Abort => "abort",
            Outcome::NotFound => "not_found",
            Outcome::Redirect => "redirect",
            Outcome::DirectResponse => "direct_response",
            Outcome::PassThrough => "passthrough",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision for one request: the outcome, the rule and route that decided, where the
/// request goes, and the faults that fired.
///
/// Cloning is cheap (reference counts only); the middleware puts a clone in the request's and
/// the response's extensions.
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
/// let ctx = Context::new().with_host("reviews");
/// let req = Request::get("/").header("end-user", "jason").body(())?;
/// let decision = rules.evaluate(&req, &ctx, &NeverSampler);
/// assert_eq!(decision.outcome(), tower_mesh::Outcome::Forward);
/// assert_eq!(decision.rule(), Some("reviews"));
/// assert_eq!(decision.route_name(), Some("jason"));
/// assert_eq!(decision.destination().unwrap().subset(), Some("v2"));
/// assert_eq!(decision.delay(), Some(std::time::Duration::from_secs(7)));
/// assert_eq!(decision.status(), None, "a forward has no status of the layer's own");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Decision {
    pub(super) outcome: Outcome,
    /// The resource, when no route decided (a 404); otherwise the route's.
    pub(super) resource: Option<Arc<Resource>>,
    pub(super) route: Option<Arc<Route>>,
    /// Which match entry of the route matched (`None`: the route has none).
    pub(super) entry: Option<u32>,
    pub(super) destination: DestinationRef,
    pub(super) delay: Option<Duration>,
    pub(super) status: Option<StatusCode>,
    pub(super) grpc_status: Option<u32>,
    pub(super) location: Option<Arc<str>>,
    /// Flags the middleware added while carrying the decision out (`UH`, `UT`, `URX`).
    pub(super) carried_flags: ResponseFlags,
}

impl Decision {
    /// Makes this decision an abort with `status`; a gRPC request gets the gRPC status in a
    /// 200 response.
    pub(super) fn abort_with(&mut self, status: AbortStatus, grpc_request: bool) {
        self.outcome = Outcome::Abort;
        match (status, grpc_request) {
            (AbortStatus::Http(s), false) => self.status = Some(s),
            (AbortStatus::Http(s), true) => {
                self.status = Some(StatusCode::OK);
                self.grpc_status = Some(grpc_status_for_http(s));
            }
            (AbortStatus::Grpc(code), _) => {
                self.status = Some(StatusCode::OK);
                self.grpc_status = Some(code);
            }
        }
    }
}

impl Decision {
    /// Applies the route's rewrite and request header operations (route level, then the chosen
    /// destination's) to a request about to be forwarded. Nothing happens for other outcomes.
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
    ///   - match: [{uri: {prefix: /ratings}}]
    ///     rewrite: {uri: /v1/bookRatings}
    ///     headers: {request: {set: {x-route: ratings}}}
    ///     route: [{destination: {host: ratings}}]
    /// "#)?;
    /// let mut req = Request::get("/ratings/7?x=1").body(())?;
    /// let decision = rules.evaluate(&req, &Context::new().with_host("ratings"), &NeverSampler);
    /// decision.apply_request(&mut req)?;
    /// assert_eq!(req.uri(), "/v1/bookRatings/7?x=1");
    /// assert_eq!(req.headers()["x-route"], "ratings");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_request<B>(&self, req: &mut Request<B>) -> Result<(), RewriteError> {
        match self.route.as_deref() {
            Some(route) if self.outcome == Outcome::Forward && route.changes_messages() => {
                let chosen = self.destination_headers(route);
                super::rewrite::apply_request(route, self.entry, chosen, req)
            }
            _ => Ok(()),
        }
    }

    /// The header operations of the weighted destination the decision chose, if any.
    fn destination_headers<'r>(
        &self,
        route: &'r Route,
    ) -> Option<&'r super::header_policy::HeaderPolicy> {
        match (route.action(), &self.destination) {
            (Action::Forward { destinations, .. }, DestinationRef::Route(i)) => {
                destinations.get(*i).map(|d| d.headers())
            }
            _ => None,
        }
    }

    /// Applies the route's response header operations (route level, then the chosen
    /// destination's) to a response. Nothing happens when no route decided.
    pub fn apply_response<B>(&self, res: &mut http::Response<B>) {
        if let Some(route) = self.route.as_deref() {
            super::rewrite::apply_response(route, self.destination_headers(route), res);
        }
    }

    /// What the route's CORS policy does with `req` (only for a request that is forwarded).
    pub fn cors<B>(&self, req: &Request<B>) -> super::cors::Cors {
        let policy = (self.outcome == Outcome::Forward)
            .then_some(())
            .and_then(|_| self.route.as_deref()?.policy.cors.as_ref());
        match policy {
            Some(policy) => policy.answer(req),
            None => super::cors::Cors::Nothing,
        }
    }

    /// Whether carrying the decision out changes the request or the response.
    pub(crate) fn has_message_changes(&self) -> bool {
        self.route.as_deref().is_some_and(Route::changes_messages)
    }

    pub(super) fn pass_through() -> Self {
        Decision {
            outcome: Outcome::PassThrough,
            resource: None,
            route: None,
            entry: None,
            destination: DestinationRef::None,
            delay: None,
            status: None,
            grpc_status: None,
            location: None,
            carried_flags: ResponseFlags::NONE,
        }
    }

    /// What happens to the request.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The name (`metadata.name`) of the RouteRule or VirtualService that decided; `None` for
    /// a pass-through and for a RouteRule host's default route.
    pub fn rule(&self) -> Option<&str> {
        self.resource().map(Resource::name)
    }

    /// The resource that decided.
    pub fn resource(&self) -> Option<&Resource> {
        match &self.route {
            Some(route) => Some(route.resource()),
            None => self.resource.as_deref(),
        }
    }

    /// The route that matched, with its policies (timeouts, retries, ...).
    pub fn route(&self) -> Option<&Route> {
        self.route.as_deref()
    }

    pub(crate) fn route_arc(&self) -> Option<&Arc<Route>> {
        self.route.as_ref()
    }

    /// The matched VirtualService route's `name`.
    pub fn route_name(&self) -> Option<&str> {
        self.route.as_deref().and_then(Route::name)
    }

    /// Where the request goes (outcome [`Outcome::Forward`] only).
    pub fn destination(&self) -> Option<&Destination> {
        match &self.destination {
            DestinationRef::None => None,
            DestinationRef::Shared(d) => Some(d),
            DestinationRef::Route(i) => match self.route.as_deref()?.action() {
                Action::Forward { destinations, .. } => {
                    destinations.get(*i).map(|d| d.destination())
                }
                _ => None,
            },
        }
    }

    /// The injected delay, when a delay fault fired.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// Whether a fault was injected: an abort, a delay, or both.
    pub fn fault_injected(&self) -> bool {
        self.outcome == Outcome::Abort || self.delay.is_some()
    }

    /// Envoy's response flags for this request: `FI` for an injected abort, `DI` for an
    /// injected delay, `NR` when no route matched; and, on the decision the middleware puts in
    /// a response's extensions, what happened when it was carried out (`UH`: no registered
    /// destination, `UT`: the route timeout ran out, `URX`: retries used up).
    ///
    /// ```
    /// use http::Request;
    /// use tower_mesh::{Context, NeverSampler, ResponseFlags, RuleSet};
    ///
    /// let rules = RuleSet::from_yaml(r#"
    /// apiVersion: networking.istio.io/v1
    /// kind: VirtualService
    /// metadata: {name: ratings}
    /// spec:
    ///   hosts: [ratings]
    ///   http:
    ///   - match: [{uri: {prefix: /slow}}]
    ///     fault:
    ///       delay: {fixedDelay: 2s, percentage: {value: 100}}
    ///       abort: {httpStatus: 503, percentage: {value: 100}}
    ///     route: [{destination: {host: ratings}}]
    /// "#)?;
    /// let ctx = Context::new().with_host("ratings");
    /// let slow = rules.evaluate(&Request::get("/slow").body(())?, &ctx, &NeverSampler);
    /// assert!(slow.fault_injected());
    /// assert_eq!(slow.response_flags().to_string(), "DI,FI");
    /// let other = rules.evaluate(&Request::get("/other").body(())?, &ctx, &NeverSampler);
    /// assert_eq!(other.response_flags(), ResponseFlags::NO_ROUTE_FOUND);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn response_flags(&self) -> ResponseFlags {
        let mut flags = self.carried_flags;
        if self.delay.is_some() {
            flags |= ResponseFlags::DELAY_INJECTED;
        }
        match self.outcome {
            Outcome::Abort => flags |= ResponseFlags::FAULT_INJECTED,
            Outcome::NotFound => flags |= ResponseFlags::NO_ROUTE_FOUND,
            _ => {}
        }
        flags
    }

    /// The route that decided, shared.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn route_shared(&self) -> Option<&Arc<Route>> {
        self.route.as_ref()
    }

    /// Records a flag the middleware found while carrying the decision out.
    pub(crate) fn add_flags(&mut self, flags: ResponseFlags) {
        self.carried_flags |= flags;
    }

    /// The status the middleware answers with itself (abort, 404, redirect, direct response);
    /// `None` when the request is forwarded or passes through. A gRPC abort answers 200 with
    /// a [`grpc_status`](Decision::grpc_status).
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// For an abort answered in gRPC form, the gRPC status code.
    pub fn grpc_status(&self) -> Option<u32> {
        self.grpc_status
    }

    /// For a redirect, the `Location` the response carries.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.outcome.as_str())?;
        if let Some(d) = self.destination() {
            write!(f, " to {d}")?;
        }
        if let Some(s) = self.status {
            write!(f, " with status {}", s.as_u16())?;
        }
        if let Some(g) = self.grpc_status {
            write!(f, " (grpc-status {g})")?;
        }
        if let Some(d) = self.delay {
            write!(f, " after a delay of {d:?}")?;
        }
        match (self.resource(), self.route_name()) {
            (Some(r), Some(name)) => write!(f, " (by {r}, route {name})"),
            (Some(r), None) => write!(f, " (by {r})"),
            (None, _) if self.outcome == Outcome::Forward => f.write_str(" (default route)"),
            _ => Ok(()),
        }
    }
}

/// The gRPC status Envoy gives an HTTP status (gRPC's "HTTP to gRPC status code mapping").
pub(super) fn grpc_status_for_http(status: StatusCode) -> u32 {
    match status.as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}
