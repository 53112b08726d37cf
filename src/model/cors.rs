//! CORS, per route, after the fault stage (Envoy's CORS filter; docs/semantics.md §3).

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::{HeaderMap, HeaderValue, Method, Request};

use super::route::CorsPolicy;

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
