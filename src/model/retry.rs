//! A route's retry policy: how many tries, on which answers, with which back-off.

use std::time::Duration;

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
