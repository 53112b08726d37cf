//! Header operations for requests and responses, at route and destination level.

use http::{HeaderName, HeaderValue};

/// Header operations (`set`, `add`, `remove`) for one direction.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::model::Action;
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match:
///     - headers: {end-user: {exact: jason}}
///       sourceLabels: {app: productpage}
///     fault:
///       delay: {fixedDelay: 2s, percentage: {value: 50}}
///       abort: {httpStatus: 503, percentage: {value: 1}}
///     rewrite: {uri: /v2}
///     headers: {response: {set: {x-version: v2}}}
///     route:
///     - destination: {host: reviews}
///       weight: 90
///     - destination: {host: reviews-canary}
///       weight: 10
///       headers: {request: {add: {x-canary: "yes"}}}
///   - redirect: {uri: /login, port: 8443}
/// "#)?;
/// let jason = Request::get("/").header("end-user", "jason").body(())?;
/// let ctx = Context::new()
///     .with_host("reviews")
///     .with_caller(Caller::new().with_labels([("app", "productpage")]));
/// let decision = rules.evaluate(&jason, &ctx, &NeverSampler);
/// let route = decision.route().unwrap();
/// let Action::Forward { destinations, .. } = route.action() else { unreachable!() };
/// let canary = destinations[1].headers().request();
/// assert_eq!(canary.add()[0].0, "x-canary");
/// assert!(canary.set().is_empty() && canary.remove().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct HeaderOperations {
    pub(super) set: Vec<(HeaderName, HeaderValue)>,
    pub(super) add: Vec<(HeaderName, HeaderValue)>,
    pub(super) remove: Vec<HeaderName>,
}

impl HeaderOperations {
    /// Headers to `set` (replacing any value), to `add` (as another line) and to `remove`.
    pub(crate) fn new(
        set: Vec<(HeaderName, HeaderValue)>,
        add: Vec<(HeaderName, HeaderValue)>,
        remove: Vec<HeaderName>,
    ) -> Self {
        HeaderOperations { set, add, remove }
    }

    /// Adds `more`'s operations after these.
    pub(crate) fn extend(&mut self, more: HeaderOperations) {
        self.set.extend(more.set);
        self.add.extend(more.add);
        self.remove.extend(more.remove);
    }

    /// Headers overwritten (or added when absent).
    pub fn set(&self) -> &[(HeaderName, HeaderValue)] {
        &self.set
    }
    /// Headers appended.
    pub fn add(&self) -> &[(HeaderName, HeaderValue)] {
        &self.add
    }
    /// Headers removed.
    pub fn remove(&self) -> &[HeaderName] {
        &self.remove
    }
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// Request and response header operations.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match:
///     - headers: {end-user: {exact: jason}}
///       sourceLabels: {app: productpage}
///     fault:
///       delay: {fixedDelay: 2s, percentage: {value: 50}}
///       abort: {httpStatus: 503, percentage: {value: 1}}
///     rewrite: {uri: /v2}
///     headers: {response: {set: {x-version: v2}}}
///     route:
///     - destination: {host: reviews}
///       weight: 90
///     - destination: {host: reviews-canary}
///       weight: 10
///       headers: {request: {add: {x-canary: "yes"}}}
///   - redirect: {uri: /login, port: 8443}
/// "#)?;
/// let jason = Request::get("/").header("end-user", "jason").body(())?;
/// let ctx = Context::new()
///     .with_host("reviews")
///     .with_caller(Caller::new().with_labels([("app", "productpage")]));
/// let decision = rules.evaluate(&jason, &ctx, &NeverSampler);
/// let route = decision.route().unwrap();
/// let headers = route.policy().headers();
/// assert!(headers.request().is_empty());
/// assert_eq!(headers.response().set()[0].1, "v2");
/// assert_eq!(headers.authority(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct HeaderPolicy {
    pub(super) request: HeaderOperations,
    pub(super) response: HeaderOperations,
    /// An authority set through `headers.request.set[":authority" | "host"]`.
    pub(super) authority: Option<Box<str>>,
}

impl HeaderPolicy {
    /// Operations on the request and on the response, and an authority set through them.
    pub(crate) fn new(
        request: HeaderOperations,
        response: HeaderOperations,
        authority: Option<Box<str>>,
    ) -> Self {
        HeaderPolicy {
            request,
            response,
            authority,
        }
    }

    /// Adds `more` after the request's operations (`request`) or the response's.
    pub(crate) fn extend(&mut self, request: bool, more: HeaderOperations) {
        if request {
            self.request.extend(more);
        } else {
            self.response.extend(more);
        }
    }

    /// Operations on the request before it is forwarded.
    pub fn request(&self) -> &HeaderOperations {
        &self.request
    }
    /// Operations on the response before it is returned.
    pub fn response(&self) -> &HeaderOperations {
        &self.response
    }
    /// The authority the request operations set, if any.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }
}
