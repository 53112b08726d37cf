//! Compiled routes: where a matched request goes, and what happens to it on the way.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

use super::condition::RequestMatch;
use super::labels::Labels;
use super::request::Field;
use super::string_match::StringMatch;

/// Which Istio resource kind a rule came from.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::ResourceKind;
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
/// assert_eq!(decision.resource().unwrap().kind(), ResourceKind::VirtualService);
/// assert_eq!(ResourceKind::RouteRule.to_string(), "RouteRule");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `config.istio.io/v1alpha2` `RouteRule`.
    RouteRule,
    /// `networking.istio.io` `VirtualService`.
    VirtualService,
    /// `gateway.networking.k8s.io` `HTTPRoute`.
    HttpRoute,
    /// `gateway.networking.k8s.io` `GRPCRoute`.
    GrpcRoute,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::RouteRule => "RouteRule",
            ResourceKind::VirtualService => "VirtualService",
            ResourceKind::HttpRoute => "HTTPRoute",
            ResourceKind::GrpcRoute => "GRPCRoute",
        })
    }
}

/// The resource (RouteRule or VirtualService) a route belongs to.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, ResourceKind, RuleSet};
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
/// let req = Request::get("/api").body(())?;
/// let decision = rules.evaluate(&req, &Context::new().with_host("reviews"), &NeverSampler);
/// let resource = decision.resource().unwrap();
/// assert_eq!(resource.kind(), ResourceKind::VirtualService);
/// assert_eq!((resource.namespace(), resource.name()), ("shop", "reviews"));
/// assert_eq!(resource.precedence(), None, "only RouteRules have one");
/// assert_eq!(resource.to_string(), "VirtualService shop/reviews");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub(super) kind: ResourceKind,
    pub(super) namespace: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) precedence: Option<i32>,
}

impl Resource {
    /// A resource of `kind` named `namespace/name`; RouteRules have a `precedence`.
    pub(crate) fn new(
        kind: ResourceKind,
        namespace: impl Into<Arc<str>>,
        name: impl Into<Arc<str>>,
        precedence: Option<i32>,
    ) -> Self {
        Resource {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            precedence,
        }
    }

    /// RouteRule or VirtualService.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// `metadata.namespace` (`default` when absent).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A RouteRule's precedence (0 when absent); `None` for a VirtualService.
    pub fn precedence(&self) -> Option<i32> {
        self.precedence
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Where a forwarded request goes: a service host and a version (subset and its labels).
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
/// let req = Request::get("/").header("end-user", "jason").body(())?;
/// let decision = rules.evaluate(&req, &Context::new().with_host("reviews"), &NeverSampler);
/// let destination = decision.destination().unwrap();
/// assert_eq!(destination.host(), "reviews");
/// assert_eq!(destination.subset(), Some("v2"));
/// assert_eq!(destination.labels().get("version"), Some("v2"));
/// assert_eq!(destination.port(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub(super) host: Arc<str>,
    pub(super) subset: Option<Arc<str>>,
    pub(super) labels: Labels,
    pub(super) port: Option<u32>,
}

impl Destination {
    /// A destination on `host` with the given labels.
    pub fn new(host: impl Into<Arc<str>>, labels: Labels) -> Self {
        Destination {
            host: host.into(),
            subset: None,
            labels,
            port: None,
        }
    }

    /// The same destination as `subset` of its service (whose labels these are), on `port`.
    pub(crate) fn in_subset(mut self, subset: Option<Arc<str>>, port: Option<u32>) -> Self {
        self.subset = subset;
        self.port = port;
        self
    }

    /// The service host, as the configuration names it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The DestinationRule subset, when the route names one.
    pub fn subset(&self) -> Option<&str> {
        self.subset.as_deref()
    }

    /// The labels that select the version (the subset's labels, or a RouteRule's `labels`);
    /// empty for the whole service.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The destination port, when the route names one.
    pub fn port(&self) -> Option<u32> {
        self.port
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if let Some(subset) = &self.subset {
            write!(f, " subset {subset}")?;
        }
        if !self.labels.is_empty() {
            write!(f, " {}", self.labels)?;
        }
        Ok(())
    }
}

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

/// One weighted destination of a route.
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
/// let Action::Forward { destinations, total_weight } = route.action() else { unreachable!() };
/// assert_eq!(*total_weight, 100);
/// let weights: Vec<_> = destinations.iter().map(|d| (d.destination().host(), d.weight())).collect();
/// assert_eq!(weights, [("reviews", 90), ("reviews-canary", 10)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct WeightedDestination {
    pub(super) destination: Arc<Destination>,
    pub(super) weight: u32,
    pub(super) headers: HeaderPolicy,
    /// A backend of a kind tower-mesh cannot send to: its share is answered 500.
    pub(super) unusable: bool,
}

impl WeightedDestination {
    /// `destination` with a relative `weight` and its own header operations.
    pub(crate) fn new(destination: Arc<Destination>, weight: u32, headers: HeaderPolicy) -> Self {
        WeightedDestination {
            destination,
            weight,
            headers,
            unusable: false,
        }
    }

    /// A Gateway API backend of a kind that cannot be sent to (not a Service): it keeps its
    /// `weight`, and the requests it draws are answered 500.
    pub(crate) fn unusable(destination: Arc<Destination>, weight: u32) -> Self {
        WeightedDestination {
            unusable: true,
            ..WeightedDestination::new(destination, weight, HeaderPolicy::default())
        }
    }

    /// Whether requests drawn for this backend are answered 500 (a Gateway API backend of a
    /// kind other than Service).
    pub fn is_unusable(&self) -> bool {
        self.unusable
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }
    /// Its relative weight (0 never receives traffic when there are several).
    pub fn weight(&self) -> u32 {
        self.weight
    }
    /// Header operations applied when this destination is chosen.
    pub fn headers(&self) -> &HeaderPolicy {
        &self.headers
    }
}

/// How a redirect chooses its port.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::model::{Action, RedirectPort};
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
/// let other = Request::get("/").body(())?;
/// let decision = rules.evaluate(&other, &ctx, &NeverSampler);
/// let Action::Redirect(redirect) = decision.route().unwrap().action() else { unreachable!() };
/// assert_eq!(redirect.port(), Some(RedirectPort::Number(8443)));
/// assert_eq!(decision.location(), Some("http://reviews:8443/login"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectPort {
    /// A fixed port.
    Number(u16),
    /// The scheme's default port (80 or 443): no port in the `Location`.
    FromProtocolDefault,
    /// The port the request was sent to.
    FromRequestPort,
}

/// A redirect answered by the middleware.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
/// use tower_mesh::model::Action;
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
/// let Action::Redirect(redirect) = route("/old/page").action().clone() else { unreachable!() };
/// assert_eq!((redirect.uri(), redirect.code().as_u16()), (Some("/new"), 308));
/// assert_eq!(redirect.authority(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Redirect {
    pub(super) path: RedirectPath,
    pub(super) authority: Option<Box<str>>,
    pub(super) port: Option<RedirectPort>,
    pub(super) scheme: Option<Box<str>>,
    pub(super) code: StatusCode,
}

impl Redirect {
    /// A redirect answered with `code`, its `Location` built from the request with the parts
    /// given replaced.
    pub(crate) fn new(
        path: RedirectPath,
        authority: Option<Box<str>>,
        port: Option<RedirectPort>,
        scheme: Option<Box<str>>,
        code: StatusCode,
    ) -> Self {
        Redirect {
            path,
            authority,
            port,
            scheme,
            code,
        }
    }

    /// The path that replaces the request's (`redirect.uri`).
    pub fn uri(&self) -> Option<&str> {
        match &self.path {
            RedirectPath::Replace(uri) => Some(uri),
            _ => None,
        }
    }
    /// The text that replaces the matched prefix of the request's path
    /// (`redirect.prefixRewrite`).
    pub fn prefix_rewrite(&self) -> Option<&str> {
        match &self.path {
            RedirectPath::ReplacePrefix(prefix) => Some(prefix),
            _ => None,
        }
    }

    /// The `Location`'s path for a request with `path`, whose first `matched_prefix` bytes
    /// were matched by a `prefix` uri match (`None`: the whole path was matched).
    pub(super) fn path<'a>(&'a self, path: &'a str, matched_prefix: Option<usize>) -> Cow<'a, str> {
        match &self.path {
            RedirectPath::Keep => Cow::Borrowed(path),
            RedirectPath::Replace(uri) => Cow::Borrowed(uri),
            RedirectPath::ReplacePrefix(prefix) => {
                let kept = matched_prefix.and_then(|n| path.get(n..)).unwrap_or("");
                Cow::Owned(format!("{prefix}{kept}"))
            }
            RedirectPath::ReplaceSegments(prefix) => {
                let kept = matched_prefix.and_then(|n| path.get(n..)).unwrap_or("");
                match format!("{prefix}{kept}") {
                    empty if empty.is_empty() => Cow::Borrowed("/"),
                    new => Cow::Owned(new),
                }
            }
        }
    }
    /// The host that replaces the request's.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }
    /// The port rule.
    pub fn port(&self) -> Option<RedirectPort> {
        self.port
    }
    /// The scheme that replaces the request's.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }
    /// The status (301 unless configured).
    pub fn code(&self) -> StatusCode {
        self.code
    }

    /// The `Location` for a request with this scheme, authority, query and the path given by
    /// [`Redirect::path`] (the query kept unless that path has one): the host is replaced by
    /// `authority`, the scheme by `scheme`, the port by the port rule; default ports (80, 443)
    /// are left out.
    pub(super) fn location(
        &self,
        scheme: &str,
        authority: Option<&str>,
        path: &str,
        query: Option<&str>,
    ) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(scheme);
        let original = authority.unwrap_or("");
        let (orig_host, orig_port) = split_port(original);
        let (host, mut port) = match &self.authority {
            Some(a) => split_port(a),
            None => (orig_host, orig_port),
        };
        match self.port {
            Some(RedirectPort::Number(p)) => port = Some(p),
            Some(RedirectPort::FromProtocolDefault) => port = None,
            Some(RedirectPort::FromRequestPort) => port = orig_port,
            None => {}
        }
        let default_port = match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        let mut out = format!("{scheme}://{host}");
        if let Some(p) = port.filter(|p| Some(*p) != default_port) {
            out.push_str(&format!(":{p}"));
        }
        out.push_str(path);
        if !path.contains('?')
            && let Some(q) = query
        {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

/// What a redirect does with the request's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RedirectPath {
    /// Kept as it is.
    Keep,
    /// Replaced whole (`redirect.uri`).
    Replace(Box<str>),
    /// Its matched prefix replaced (`redirect.prefixRewrite`).
    ReplacePrefix(Box<str>),
    /// Its matched path segments replaced (the Gateway API's `ReplacePrefixMatch`, whose value
    /// is kept without a trailing `/`); an empty result is `/`.
    ReplaceSegments(Box<str>),
}

/// `host:port` → (`host`, port); IPv6 literals keep their brackets.
fn split_port(authority: &str) -> (&str, Option<u16>) {
    if let Some((host, port)) = authority.rsplit_once(':')
        && !host.ends_with(':')
        && (!host.contains(':') || host.ends_with(']'))
        && let Ok(p) = port.parse::<u16>()
    {
        return (host, Some(p));
    }
    (authority, None)
}

/// A fixed response answered by the middleware.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
/// use tower_mesh::model::Action;
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
/// let Action::DirectResponse(answer) = route("/tea").action().clone() else { unreachable!() };
/// assert_eq!(answer.status().as_u16(), 418);
/// assert_eq!(answer.body().map(|b| &b[..]), Some(&b"short and stout"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct DirectResponse {
    pub(super) status: StatusCode,
    pub(super) body: Option<Bytes>,
}

impl DirectResponse {
    /// An answer with `status` and, if given, `body`.
    pub(crate) fn new(status: StatusCode, body: Option<Bytes>) -> Self {
        DirectResponse { status, body }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The body, when configured.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }
}

/// What a matched route does.
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
/// match decision.route().unwrap().action() {
///     Action::Forward { destinations, .. } => {
///         assert_eq!(destinations[0].destination().subset(), Some("v2"));
///         assert_eq!(destinations[0].weight(), 0, "a single destination needs no weight");
///     }
///     other => panic!("expected a forward, found {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Action {
    /// Forward to one of the weighted destinations.
    Forward {
        /// The destinations in configured order.
        destinations: Vec<WeightedDestination>,
        /// The sum of the weights of the destinations that can be chosen.
        total_weight: u32,
    },
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed response.
    DirectResponse(DirectResponse),
}

impl Action {
    /// A forward to `destinations`, its total weight their sum (at most `u32::MAX`, which
    /// the loader checks).
    pub(crate) fn forward(mut destinations: Vec<WeightedDestination>) -> Action {
        destinations.shrink_to_fit();
        let total: u64 = destinations.iter().map(|d| u64::from(d.weight)).sum();
        Action::Forward {
            destinations,
            total_weight: u32::try_from(total).unwrap_or(u32::MAX),
        }
    }
}

/// An injected delay: `duration`, with probability `ppm` / 1,000,000.
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
/// let delay = route.fault().and_then(|f| f.delay()).unwrap();
/// assert_eq!(delay.duration(), std::time::Duration::from_secs(2));
/// assert_eq!(delay.ppm(), 500_000, "50% in parts per million");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayFault {
    pub(super) duration: Duration,
    pub(super) ppm: u32,
}

impl DelayFault {
    /// A delay of `duration`, with probability `ppm` / 1,000,000.
    pub(crate) fn new(duration: Duration, ppm: u32) -> Self {
        DelayFault { duration, ppm }
    }

    /// How long the request waits.
    pub fn duration(&self) -> Duration {
        self.duration
    }
    /// The probability, in parts per million.
    pub fn ppm(&self) -> u32 {
        self.ppm
    }
}

/// What an abort answers with.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::model::AbortStatus;
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
/// let abort = route.fault().and_then(|f| f.abort()).unwrap();
/// assert_eq!(abort.status(), AbortStatus::Http(http::StatusCode::SERVICE_UNAVAILABLE));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortStatus {
    /// An HTTP status (gRPC requests get the gRPC status Envoy maps it to).
    Http(StatusCode),
    /// A gRPC status code (0 to 16).
    Grpc(u32),
}

/// An injected abort, with probability `ppm` / 1,000,000.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
/// use tower_mesh::model::AbortStatus;
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
/// let abort = *route("/").fault().unwrap().abort().unwrap();
/// assert_eq!(abort.status(), AbortStatus::Grpc(14), "UNAVAILABLE");
/// assert_eq!(abort.ppm(), 50_000, "5% in parts per million");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortFault {
    pub(super) status: AbortStatus,
    pub(super) ppm: u32,
}

impl AbortFault {
    /// An abort answering `status`, with probability `ppm` / 1,000,000.
    pub(crate) fn new(status: AbortStatus, ppm: u32) -> Self {
        AbortFault { status, ppm }
    }

    /// What the abort answers with.
    pub fn status(&self) -> AbortStatus {
        self.status
    }
    /// The probability, in parts per million.
    pub fn ppm(&self) -> u32 {
        self.ppm
    }
}

/// A route's fault injection: a delay, an abort, or both (drawn independently).
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::model::AbortStatus;
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
/// let fault = route.fault().unwrap();
/// assert_eq!(fault.delay().map(|d| (d.duration().as_secs(), d.ppm())), Some((2, 500_000)));
/// assert_eq!(fault.abort().map(|a| (a.status(), a.ppm())), Some((AbortStatus::Http(http::StatusCode::SERVICE_UNAVAILABLE), 10_000)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    pub(super) delay: Option<DelayFault>,
    pub(super) abort: Option<AbortFault>,
}

impl Fault {
    /// With this delay.
    pub(crate) fn set_delay(&mut self, delay: DelayFault) {
        self.delay = Some(delay);
    }

    /// With this abort.
    pub(crate) fn set_abort(&mut self, abort: AbortFault) {
        self.abort = Some(abort);
    }

    /// The delay, if any.
    pub fn delay(&self) -> Option<&DelayFault> {
        self.delay.as_ref()
    }
    /// The abort, if any.
    pub fn abort(&self) -> Option<&AbortFault> {
        self.abort.as_ref()
    }
}

/// The entry index of a route that has no match entries (it matches every request).
pub(super) const NO_ENTRY: usize = usize::MAX;

/// A `uriRegexRewrite`: every match of a regex in the path is replaced by a template whose
/// `\1` back-references stand for the match's groups (RE2's and Envoy's form).
#[derive(Clone, Debug)]
pub(crate) struct RegexRewrite {
    re: regex_automata::meta::Regex,
    pattern: Box<str>,
    /// The replacement as configured.
    template: Box<str>,
    pieces: Box<[Piece]>,
}

/// A part of a rewrite template: text, or the text of a group of the match (`\1`).
#[derive(Clone, Debug)]
enum Piece {
    Text(Box<str>),
    Group(usize),
}

/// A rewritten path would have been longer than the limit given (`limit`, in bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TooLong {
    pub(super) limit: usize,
}

impl RegexRewrite {
    /// Compiles `pattern` (unanchored: every match is replaced) with its compiled size bounded
    /// by `max_size`, and reads the template.
    pub(crate) fn new(
        pattern: &str,
        template: &str,
        max_size: usize,
    ) -> Result<Self, super::string_match::PatternError> {
        use regex_automata::meta;
        let config = meta::Config::new()
            .nfa_size_limit(Some(max_size))
            .hybrid_cache_capacity(max_size.saturating_mul(2));
        let re = meta::Builder::new()
            .configure(config)
            .build(pattern)
            .map_err(|e| super::string_match::PatternError {
                message: e.to_string(),
            })?;
        Ok(RegexRewrite {
            re,
            pattern: pattern.into(),
            template: template.into(),
            pieces: parse_template(template),
        })
    }

    /// The heap memory the compiled regex holds, in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.re.memory_usage()
    }

    /// `path` with every match replaced, or [`TooLong`] as soon as the result would pass
    /// `limit` bytes: however the template repeats a group, no more than `limit` bytes are
    /// ever written.
    pub(super) fn apply(&self, path: &str, limit: usize) -> Result<String, TooLong> {
        let too_long = TooLong { limit };
        let mut out = String::new();
        let push = |out: &mut String, text: &str| {
            if out.len() + text.len() > limit {
                return Err(too_long);
            }
            out.push_str(text);
            Ok(())
        };
        let mut last = 0;
        for caps in self.re.captures_iter(path) {
            let Some(whole) = caps.get_match() else {
                continue;
            };
            push(&mut out, &path[last..whole.start()])?;
            for piece in &self.pieces {
                match piece {
                    Piece::Text(t) => push(&mut out, t)?,
                    Piece::Group(i) => {
                        if let Some(span) = caps.get_group(*i) {
                            push(&mut out, &path[span.range()])?;
                        }
                    }
                }
            }
            last = whole.end();
        }
        push(&mut out, &path[last..])?;
        Ok(out)
    }
}

/// Splits a template into text and `\N` group references; a `\` not followed by a digit is text.
fn parse_template(template: &str) -> Box<[Piece]> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('\\') {
        let digits = rest[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits == 0 {
            text.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        }
        text.push_str(&rest[..at]);
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text).into()));
        }
        // A group number too large for any regex refers to no group: it expands to nothing.
        let n = rest[at + 1..at + 1 + digits].parse().unwrap_or(usize::MAX);
        pieces.push(Piece::Group(n));
        rest = &rest[at + 1 + digits..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text.into()));
    }
    pieces.into()
}

/// A path rewrite.
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
/// let rewrite = route.policy().rewrite().unwrap();
/// assert_eq!((rewrite.uri(), rewrite.authority(), rewrite.uri_regex()), (Some("/v2"), None, None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Rewrite {
    pub(super) uri: Option<Box<str>>,
    pub(super) authority: Option<Box<str>>,
    pub(super) uri_regex: Option<RegexRewrite>,
    /// `uri` replaces the whole path, whatever the match (the Gateway API's
    /// `ReplaceFullPath`).
    pub(super) full_path: bool,
}

impl Rewrite {
    /// A rewrite of the path (`uri`, or every match of `uri_regex`) and of the authority.
    pub(crate) fn new(
        uri: Option<Box<str>>,
        authority: Option<Box<str>>,
        uri_regex: Option<RegexRewrite>,
    ) -> Self {
        Rewrite {
            uri,
            authority,
            uri_regex,
            full_path: false,
        }
    }

    /// The same rewrite, with `uri` replacing the whole path whatever the match.
    pub(crate) fn replacing_full_path(mut self) -> Self {
        self.full_path = true;
        self
    }

    /// The prefix (or path) that replaces the matched part.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
    /// The authority that replaces the request's.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }
    /// The `uriRegexRewrite` pattern (as written) and its replacement.
    pub fn uri_regex(&self) -> Option<(&str, &str)> {
        self.uri_regex.as_ref().map(|r| (&*r.pattern, &*r.template))
    }
}

/// A retry policy: how many more tries a forwarded request gets, and after which results.
///
/// The layer carries it out when it keeps request bodies
/// ([`MeshLayer::replay_bodies`](crate::layer::MeshLayer::replay_bodies)). In-process, an
/// error from the inner service stands for Envoy's "no response" results (`connect-failure`,
/// `refused-stream`, `reset`), and a try that outlives `perTryTimeout` for Envoy's per-try
/// timeout.
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
/// let retries = main.policy().retries().unwrap();
/// assert_eq!(retries.attempts(), 3);
/// assert_eq!(retries.per_try_timeout(), Some(std::time::Duration::from_millis(500)));
/// assert_eq!(retries.retry_on().collect::<Vec<_>>(), ["5xx"]);
/// assert!(!retries.is_mesh_default());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(super) attempts: u32,
    pub(super) per_try_timeout: Option<Duration>,
    pub(super) retry_on: Vec<Box<str>>,
    pub(super) backoff: Option<Duration>,
    pub(super) mesh_default: bool,
}

/// Envoy's back-off base when a route sets none.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(25);

/// The gRPC conditions and the `grpc-status` codes they retry.
const GRPC_CONDITIONS: [(&str, u64); 5] = [
    ("cancelled", 1),
    ("deadline-exceeded", 4),
    ("resource-exhausted", 8),
    ("internal", 13),
    ("unavailable", 14),
];

impl RetryPolicy {
    /// `attempts` more tries, each bounded by `per_try_timeout`, after the results `retry_on`
    /// names, waiting `backoff` (Envoy's 25 ms when `None`) and more between them.
    pub(crate) fn new(
        attempts: u32,
        per_try_timeout: Option<Duration>,
        retry_on: Vec<Box<str>>,
        backoff: Option<Duration>,
    ) -> Self {
        RetryPolicy {
            attempts,
            per_try_timeout,
            retry_on,
            backoff,
            mesh_default: false,
        }
    }

    /// Istio's policy for a VirtualService route that sets no `retries`: two more tries on
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`.
    pub(crate) fn mesh_default() -> Self {
        RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: Self::default_retry_on(),
            backoff: None,
            mesh_default: true,
        }
    }

    /// Pilot's `retryOn` when a policy sets none.
    pub(crate) fn default_retry_on() -> Vec<Box<str>> {
        [
            "connect-failure",
            "refused-stream",
            "unavailable",
            "cancelled",
            "retriable-status-codes",
        ]
        .into_iter()
        .map(Into::into)
        .collect()
    }

    /// How many retries after the first try.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    /// The limit on each try.
    pub fn per_try_timeout(&self) -> Option<Duration> {
        self.per_try_timeout
    }
    /// The conditions (`5xx`, `connect-failure`, a status code, ...).
    pub fn retry_on(&self) -> impl Iterator<Item = &str> {
        self.retry_on.iter().map(|s| &**s)
    }
    /// The base back-off interval, if the route sets one (Envoy's default is 25 ms).
    pub fn backoff(&self) -> Option<Duration> {
        self.backoff
    }
    /// Whether this is Istio's default policy for a route that sets no `retries`.
    pub fn is_mesh_default(&self) -> bool {
        self.mesh_default
    }

    fn has(&self, condition: &str) -> bool {
        self.retry_on.iter().any(|c| &**c == condition)
    }

    /// Whether a response with this status and these headers is tried again: `5xx`,
    /// `gateway-error` (502, 503, 504), `retriable-4xx` (409), listed status codes, and the
    /// gRPC conditions on a `grpc-status` response header (a trailers-only gRPC answer). As in
    /// Envoy, a status sent in the trailers after a body is not looked at, and an answer that
    /// carries `x-envoy-ratelimited` is tried again only under `envoy-ratelimited`, whatever
    /// its status.
    ///
    /// ```
    /// use tower_mesh::model::RetryPolicy;
    /// use tower_mesh::{Context, NeverSampler, RuleSet};
    ///
    /// fn retrying_on(retry_on: &str) -> RetryPolicy {
    ///     let rules = RuleSet::from_yaml(&format!(r#"
    /// apiVersion: networking.istio.io/v1
    /// kind: VirtualService
    /// metadata: {{name: ratings}}
    /// spec:
    ///   hosts: [ratings]
    ///   http:
    ///   - route: [{{destination: {{host: ratings}}}}]
    ///     retries: {{attempts: 3, retryOn: "{retry_on}"}}
    /// "#)).unwrap();
    ///     let req = http::Request::new(());
    ///     let decision = rules.evaluate(&req, &Context::new().with_host("ratings"), &NeverSampler);
    ///     decision.route().unwrap().policy().retries().unwrap().clone()
    /// }
    ///
    /// let none = http::HeaderMap::new();
    /// let policy = retrying_on("gateway-error,409");
    /// assert!(policy.retries_response(http::StatusCode::BAD_GATEWAY, &none));
    /// assert!(policy.retries_response(http::StatusCode::CONFLICT, &none));
    /// assert!(!policy.retries_response(http::StatusCode::INTERNAL_SERVER_ERROR, &none));
    ///
    /// // An upstream Envoy's rate-limit answer is left alone unless `envoy-ratelimited` is listed.
    /// let mut limited = http::HeaderMap::new();
    /// limited.insert("x-envoy-ratelimited", "true".parse().unwrap());
    /// assert!(!policy.retries_response(http::StatusCode::BAD_GATEWAY, &limited));
    /// assert!(retrying_on("envoy-ratelimited").retries_response(http::StatusCode::OK, &limited));
    ///
    /// // A trailers-only gRPC answer with `grpc-status` 14 (UNAVAILABLE).
    /// let mut unavailable = http::HeaderMap::new();
    /// unavailable.insert("grpc-status", "14".parse().unwrap());
    /// assert!(retrying_on("unavailable").retries_response(http::StatusCode::OK, &unavailable));
    /// assert!(!retrying_on("cancelled").retries_response(http::StatusCode::OK, &unavailable));
    /// ```
    pub fn retries_response(&self, status: http::StatusCode, headers: &http::HeaderMap) -> bool {
        let code = status.as_u16();
        let listed = || {
            let text = status.as_str();
            self.retry_on.iter().any(|c| &**c == text)
        };
        let grpc = || {
            headers
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|v| {
                    GRPC_CONDITIONS
                        .iter()
                        .any(|(name, c)| *c == v && self.has(name))
                })
        };
        if headers.contains_key("x-envoy-ratelimited") {
            return self.has("envoy-ratelimited");
        }
        (code >= 500 && self.has("5xx"))
            || (matches!(code, 502..=504) && self.has("gateway-error"))
            || (code == 409 && self.has("retriable-4xx"))
            || listed()
            || grpc()
    }

    /// Whether a try that ended without a response (the inner service returned an error) is
    /// tried again: `5xx`, `gateway-error`, `reset`, `connect-failure`, `refused-stream`,
    /// `reset-before-request` or `http3-post-connect-failure`.
    pub fn retries_failure(&self) -> bool {
        [
            "5xx",
            "gateway-error",
            "reset",
            "connect-failure",
            "refused-stream",
            "reset-before-request",
            "http3-post-connect-failure",
        ]
        .iter()
        .any(|c| self.has(c))
    }

    /// Whether a try that outlived `perTryTimeout` is tried again: `5xx`, `gateway-error` or
    /// `reset`, as in Envoy.
    pub fn retries_timeout(&self) -> bool {
        ["5xx", "gateway-error", "reset"]
            .iter()
            .any(|c| self.has(c))
    }

    /// The longest wait before retry number `retry` (1 for the first): Envoy's jittered
    /// exponential back-off draws the wait below `base × (2^retry − 1)`, capped at ten times
    /// the base.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let base = self.backoff.unwrap_or(DEFAULT_BACKOFF);
        let factor = (1u32 << retry.clamp(1, 16)) - 1;
        (base * factor).min(base * 10)
    }
}

/// A mirror: a copy of the request goes to `destination` with probability `ppm` / 1,000,000.
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
/// let mirror = &main.policy().mirrors()[0];
/// assert_eq!(mirror.destination().host(), "ratings-canary");
/// assert_eq!(mirror.ppm(), 100_000, "10% in parts per million");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Mirror {
    pub(super) destination: Arc<Destination>,
    pub(super) ppm: u32,
}

impl Mirror {
    /// A copy of each request, with probability `ppm` / 1,000,000, to `destination`.
    pub(crate) fn new(destination: Arc<Destination>, ppm: u32) -> Self {
        Mirror { destination, ppm }
    }

    /// Where the copy goes.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Where the copy goes, shared.
    pub(crate) fn destination_arc(&self) -> &Arc<Destination> {
        &self.destination
    }
    /// The share of requests mirrored, in parts per million.
    pub fn ppm(&self) -> u32 {
        self.ppm
    }
}

/// A CORS policy.
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
/// let cors = main.policy().cors().unwrap();
/// assert!(cors.allow_origins()[0].matches(b"https://shop.example"));
/// assert_eq!(cors.allow_methods().collect::<Vec<_>>(), ["GET"]);
/// assert_eq!(cors.allow_credentials(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct CorsPolicy {
    pub(super) allow_origins: Vec<StringMatch>,
    pub(super) allow_methods: Vec<Box<str>>,
    pub(super) allow_headers: Vec<Box<str>>,
    pub(super) expose_headers: Vec<Box<str>>,
    pub(super) max_age: Option<Duration>,
    pub(super) allow_credentials: Option<bool>,
    pub(super) forward_unmatched_preflights: bool,
}

impl CorsPolicy {
    /// A CORS policy: the origins allowed, the `Access-Control-*` values, and whether a
    /// preflight from an origin not allowed goes on to the service.
    pub(crate) fn new(
        allow_origins: Vec<StringMatch>,
        allow_methods: Vec<Box<str>>,
        allow_headers: Vec<Box<str>>,
        expose_headers: Vec<Box<str>>,
        max_age: Option<Duration>,
        allow_credentials: Option<bool>,
        forward_unmatched_preflights: bool,
    ) -> Self {
        CorsPolicy {
            allow_origins,
            allow_methods,
            allow_headers,
            expose_headers,
            max_age,
            allow_credentials,
            forward_unmatched_preflights,
        }
    }

    /// The origin matchers.
    pub fn allow_origins(&self) -> &[StringMatch] {
        &self.allow_origins
    }
    /// `Access-Control-Allow-Methods` values.
    pub fn allow_methods(&self) -> impl Iterator<Item = &str> {
        self.allow_methods.iter().map(|s| &**s)
    }
    /// `Access-Control-Allow-Headers` values.
    pub fn allow_headers(&self) -> impl Iterator<Item = &str> {
        self.allow_headers.iter().map(|s| &**s)
    }
    /// `Access-Control-Expose-Headers` values.
    pub fn expose_headers(&self) -> impl Iterator<Item = &str> {
        self.expose_headers.iter().map(|s| &**s)
    }
    /// `Access-Control-Max-Age`.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }
    /// `Access-Control-Allow-Credentials`.
    pub fn allow_credentials(&self) -> Option<bool> {
        self.allow_credentials
    }
    /// Whether preflights that match no origin are forwarded (`FORWARD`, the default) rather
    /// than answered (`IGNORE`).
    pub fn forward_unmatched_preflights(&self) -> bool {
        self.forward_unmatched_preflights
    }
}

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

#[cfg(test)]
mod tests {
    use super::{RegexRewrite, TooLong};

    #[test]
    fn regex_rewrites_expand_back_references() {
        let r =
            RegexRewrite::new(r"^/service/([^/]+)(/.*)$", r"/customprefix/\2/\1", 1 << 20).unwrap();
        assert_eq!(
            r.apply("/service/a/b/c", 100).unwrap(),
            "/customprefix//b/c/a"
        );
        // Every match is replaced; `$` and a `\` without a digit are plain text.
        let r = RegexRewrite::new("o", r"$\x\1", 1 << 20).unwrap();
        assert_eq!(r.apply("/foo", 100).unwrap(), r"/f$\x$\x");
        // A group the regex does not have expands to nothing.
        let r = RegexRewrite::new("(o)", r"[\1\9]", 1 << 20).unwrap();
        assert_eq!(r.apply("/o", 100).unwrap(), "/[o]");
    }

    #[test]
    fn regex_rewrites_stop_at_the_limit() {
        let r = RegexRewrite::new("^(.*)$", &r"\1".repeat(1000), 1 << 20).unwrap();
        let path = format!("/{}", "a".repeat(65_000));
        assert_eq!(r.apply(&path, 65_534), Err(TooLong { limit: 65_534 }));
        assert_eq!(r.apply("/a", 2_000).unwrap().len(), 2_000);
    }
}
