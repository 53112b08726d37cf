//! CORS, per route, after the fault stage (Envoy's CORS filter; docs/semantics.md §3).

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::{HeaderMap, HeaderValue, Method, Request};
use std::time::Duration;

use super::string_match::StringMatch;

/// What CORS does with one request.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
/// use tower_mesh::model::Cors;
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: api}
/// spec:
///   hosts: [api]
///   http:
///   - corsPolicy: {allowOrigins: [{exact: "https://shop.example"}], allowMethods: [GET, POST]}
///     route: [{destination: {host: api}}]
/// "#)?;
/// let ctx = Context::new().with_host("api");
/// let preflight = Request::options("/")
///     .header("origin", "https://shop.example")
///     .header("access-control-request-method", "POST")
///     .body(())?;
/// let decision = rules.evaluate(&preflight, &ctx, &NeverSampler);
/// let Cors::Preflight(headers) = decision.cors(&preflight) else { panic!("a preflight") };
/// assert_eq!(headers["access-control-allow-origin"], "https://shop.example");
/// let plain = Request::get("/").body(())?;
/// assert!(matches!(decision.cors(&plain), Cors::Nothing), "no Origin: not a CORS request");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Cors {
    /// Not a CORS request, or the route has no CORS policy: nothing to do.
    Nothing,
    /// A preflight to answer at once (200) with these headers (none for an ignored one).
    Preflight(HeaderMap),
    /// A request to forward; these headers go on its response.
    Response(HeaderMap),
}

fn join(items: impl Iterator<Item = impl AsRef<str>>) -> Option<HeaderValue> {
    let joined = items
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(",");
    (!joined.is_empty())
        .then(|| HeaderValue::from_str(&joined).ok())
        .flatten()
}

impl CorsPolicy {
    fn allows(&self, origin: &[u8]) -> bool {
        self.allow_origins.iter().any(|m| m.matches(origin))
    }
}

impl CorsPolicy {
    /// What this policy does with `req` (a request the route forwards).
    pub(super) fn answer<B>(&self, req: &Request<B>) -> Cors {
        let policy = self;
        let Some(origin) = req.headers().get(ORIGIN) else {
            return Cors::Nothing;
        };
        let allowed = policy.allows(origin.as_bytes());
        let preflight = req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        let mut headers = HeaderMap::new();
        if preflight {
            if !allowed {
                return if policy.forward_unmatched_preflights {
                    Cors::Nothing
                } else {
                    Cors::Preflight(headers)
                };
            }
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            if let Some(v) = join(policy.allow_methods()) {
                headers.insert(ACCESS_CONTROL_ALLOW_METHODS, v);
            }
            if let Some(v) = join(policy.allow_headers()) {
                headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
            if let Some(age) = policy.max_age {
                headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age.as_secs()));
            }
            if policy.allow_credentials == Some(true) {
                headers.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            return Cors::Preflight(headers);
        }
        if !allowed {
            return Cors::Nothing;
        }
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if let Some(v) = join(policy.expose_headers()) {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
        if policy.allow_credentials == Some(true) {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        Cors::Response(headers)
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
