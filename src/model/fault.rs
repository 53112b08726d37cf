//! Injected faults: a delay, an abort, or both.

use std::time::Duration;

use http::StatusCode;

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
