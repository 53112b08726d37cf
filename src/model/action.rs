//! What a route does with a matched request: forward it, redirect it, or answer it directly.

use std::borrow::Cow;

use bytes::Bytes;
use http::StatusCode;

use super::destination::WeightedDestination;

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
