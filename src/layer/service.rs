//! [`MeshLayer`] and [`MeshService`]: the rules enforced around one service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::future::ResponseFuture;
use super::live::LiveTable;
use super::pipeline::{Chosen, Dispatch, carry_out};
use super::replay::DEFAULT_REPLAY_LIMIT;
use super::shared::{BodyMode, MirrorStats, Replaying, Shared, Streaming};
use super::timer::Timer;
use crate::model::{Caller, Context, Decision, Sampler, ThreadSampler};

#[cfg(feature = "tokio")]
use super::timer::TokioTimer;

/// Applies Istio routing rules to every request of the service it wraps: evaluates the
/// request, puts the [`Decision`] in the request's extensions (and, on request, the
/// response's: [`MeshLayer::response_decisions`]), and carries
/// it out: forward, abort with the configured status, delay then forward or abort, 404 when no
/// route matched, redirect, direct response.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_mesh::{Decision, RuleSet, layer::MeshLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: config.istio.io/v1alpha2
/// kind: RouteRule
/// metadata: {name: helloworld-service-503}
/// spec:
///   destination: {name: helloworld-service}
///   httpFault:
///     abort: {percent: 100, httpStatus: 503}
/// "#)?;
/// let svc = ServiceBuilder::new()
///     .layer(MeshLayer::new(rules).host("helloworld-service").response_decisions(true))
///     .service(service_fn(|_req: Request<String>| async {
///         Ok::<_, Infallible>(Response::new(String::from("Hello World!")))
///     }));
/// let res = svc.oneshot(Request::new(String::new())).await?;
/// assert_eq!(res.status(), 503);
/// assert_eq!(res.extensions().get::<Decision>().unwrap().rule(), Some("helloworld-service-503"));
/// # Ok(()) }
/// ```
///
/// # Readiness
///
/// `poll_ready` is the inner service's. A request that is answered locally (abort, 404, ...)
/// does not use the reservation, which carries over to the next call. A delayed request does
/// not hold it either: after the delay it drives a clone of the inner service to readiness
/// and calls that, so no slot is held while it waits.
///
/// # Who sees faults
///
/// Istio injects faults on the caller's side of a hop. A layer on a server applies its rules to
/// every caller; a layer on a client (around an HTTP client) applies them as Istio's sidecar
/// would.
pub struct MeshLayer<T = DefaultTimer, M = Streaming> {
    shared: Arc<Shared<T>>,
    mode: std::marker::PhantomData<fn() -> M>,
}

/// The default timer: [`TokioTimer`](super::TokioTimer) with feature `tokio`.
#[cfg(feature = "tokio")]
pub type DefaultTimer = TokioTimer;

/// Without feature `tokio` there is no default timer: set one with
/// [`MeshLayer::timer`].
#[cfg(not(feature = "tokio"))]
pub type DefaultTimer = NoTimer;

/// A placeholder timer for builds without `tokio`: delays complete at once. Set a real one
/// with [`MeshLayer::timer`].
#[cfg(not(feature = "tokio"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTimer;

#[cfg(not(feature = "tokio"))]
impl Timer for NoTimer {
    type Sleep = std::future::Ready<()>;
    fn sleep(&self, _: std::time::Duration) -> Self::Sleep {
        std::future::ready(())
    }
}

impl<T, M> Clone for MeshLayer<T, M> {
    fn clone(&self) -> Self {
        MeshLayer {
            shared: self.shared.clone(),
            mode: std::marker::PhantomData,
        }
    }
}

impl<T, M> fmt::Debug for MeshLayer<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshLayer")
            .field("rules", &self.shared.rules)
            .field("context", &self.shared.context)
            .finish_non_exhaustive()
    }
}

impl MeshLayer<DefaultTimer> {
    /// A layer enforcing the live table `rules`; [`MeshLayer::new`] builds it from a rule set.
    pub(crate) fn with_rules(rules: LiveTable) -> Self {
        MeshLayer {
            shared: Arc::new(
                Shared {
                    rules,
                    extensions: true,
                    response_decisions: false,
                    context: Context::new(),
                    sampler: Arc::new(ThreadSampler),
                    timer: DefaultTimer::default(),
                    replay_limit: DEFAULT_REPLAY_LIMIT,
                    mirror_limit: DEFAULT_MIRROR_LIMIT,
                    mirrors: Arc::default(),
                    warned: Arc::default(),
                    access_log: false,
                    metrics: cfg!(feature = "metrics"),
                    observer: None,
                }
                .with_observer(),
            ),
            mode: std::marker::PhantomData,
        }
    }
}

/// The default limit on shadow requests in flight.
pub const DEFAULT_MIRROR_LIMIT: usize = 128;

impl<T: Timer, M> MeshLayer<T, M> {
    fn with(self, f: impl FnOnce(&mut Shared<T>)) -> Self {
        let mut shared = (*self.shared).clone();
        f(&mut shared);
        shared.refresh_observer();
        MeshLayer {
            shared: Arc::new(shared),
            mode: std::marker::PhantomData,
        }
    }

    /// Carries out routes' `retries` and mirrors: the inner service gets each request body
    /// wrapped in a [`ReplayBody`](super::ReplayBody) that keeps a copy of up to `limit` bytes (64 KiB is a
    /// sensible value; see [`DEFAULT_REPLAY_LIMIT`](super::DEFAULT_REPLAY_LIMIT)) as it is
    /// read, for requests whose route retries or mirrors.
    ///
    /// A retry sends what the failed try read of the body, then the rest of the original
    /// body when the failed try stopped reading early and let go of it. A request is not
    /// tried again when its body outgrew the limit, or when the failed try still holds the
    /// unread rest (an HTTP client may keep sending it after the answer came); the failed
    /// try's answer then stands. A body without data (a `GET`, say) always qualifies.
    /// Injected aborts, redirects and direct responses are never retried: they are answered
    /// before the request is forwarded.
    ///
    /// The inner service must accept `Request<ReplayBody<B>>`, which an axum `Router` and a
    /// hyper client do for any body `B` with `Bytes` data.
    pub fn replay_bodies(self, limit: usize) -> MeshLayer<T, Replaying> {
        let mut shared = (*self.shared).clone();
        shared.replay_limit = limit;
        MeshLayer {
            shared: Arc::new(shared),
            mode: std::marker::PhantomData,
        }
    }

    /// The most shadow requests in flight at once (default
    /// [`DEFAULT_MIRROR_LIMIT`](super::DEFAULT_MIRROR_LIMIT)); a copy past it is dropped
    /// and counted in [`MirrorStats::dropped`].
    pub fn mirror_limit(self, limit: usize) -> Self {
        self.with(|s| s.mirror_limit = limit)
    }

    /// What happened to mirrored copies so far, for every service built from this layer.
    pub fn mirror_stats(&self) -> MirrorStats {
        self.shared.mirrors.snapshot()
    }

    /// The host the wrapped service serves (e.g. `helloworld-service`): every request is
    /// evaluated as addressed to it. Without it, the request's authority is used.
    pub fn host(self, host: impl Into<Arc<str>>) -> Self {
        let host = host.into();
        self.with(|s| s.context = s.context.clone().with_host(host))
    }

    /// The proxy's gateway name (default `mesh`, a sidecar).
    pub fn gateway(self, gateway: impl Into<Arc<str>>) -> Self {
        let gateway = gateway.into();
        self.with(|s| s.context = s.context.clone().with_gateway(gateway))
    }

    /// The local port requests arrive on (matched by `match.port`).
    pub fn port(self, port: u32) -> Self {
        self.with(|s| s.context = s.context.clone().with_port(port))
    }

    /// The calling workload for every request (its labels, namespace, service). A [`Caller`]
    /// in a request's extensions takes precedence for that request.
    pub fn caller(self, caller: Caller) -> Self {
        self.with(|s| s.context = s.context.clone().with_caller(caller))
    }

    /// Requests arrive over TLS: those without a scheme count as `https`.
    pub fn https(self, https: bool) -> Self {
        self.with(|s| s.context = s.context.clone().with_https(https))
    }

    /// The sampler for percentages and weights (default: [`ThreadSampler`]); tests inject a
    /// seeded or scripted one.
    pub fn sampler(self, sampler: impl Sampler + 'static) -> Self {
        let sampler: Arc<dyn Sampler> = Arc::new(sampler);
        self.with(|s| s.sampler = sampler)
    }

    /// Whether the decision goes into each request's extensions, where handlers read it
    /// (default: yes), and, with [`response_decisions`](MeshLayer::response_decisions), into
    /// each response's. `http::Extensions` allocates for its first entry, three times per
    /// message; a service that does not read the decision can turn this off and allocate
    /// nothing per request.
    pub fn decision_extensions(self, on: bool) -> Self {
        self.with(|s| s.extensions = on)
    }

    /// Whether each response also carries the decision in its extensions, completed with what
    /// the middleware found while carrying it out (its
    /// [`response_flags`](crate::Decision::response_flags): no destination, route timeout,
    /// retries used up), for a layer above that logs or counts it (default: no; the request's
    /// copy, the access log and the metrics serve most needs).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use tower_mesh::{Decision, MeshLayer, RuleSet};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hello = service_fn(|_req: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(String::from("hello")))
    /// });
    /// let rules = RuleSet::empty();
    /// let plain = MeshLayer::new(rules.clone()).host("hello").layer(hello);
    /// let res = plain.oneshot(Request::new(String::new())).await?;
    /// assert!(res.extensions().get::<Decision>().is_none());
    /// let with = MeshLayer::new(rules).host("hello").response_decisions(true).layer(hello);
    /// let res = with.oneshot(Request::new(String::new())).await?;
    /// assert!(res.extensions().get::<Decision>().is_some());
    /// # Ok(()) }
    /// ```
    pub fn response_decisions(self, on: bool) -> Self {
        self.with(|s| s.response_decisions = on)
    }

    /// Whether each request gets an access-log event (default: no): one `tracing` event at
    /// level INFO with the target `tower_mesh::access`, carrying the fields of Envoy's default
    /// access log that apply in-process (method, path, protocol, status, response flags,
    /// bytes, duration) and the decision (outcome, resource, route, destination host and
    /// subset).
    ///
    /// ```
    /// use tower_mesh::{MeshLayer, RuleSet};
    ///
    /// let layer = MeshLayer::new(RuleSet::empty()).host("reviews").access_log(true);
    /// # let _ = layer;
    /// ```
    pub fn access_log(self, on: bool) -> Self {
        self.with(|s| s.access_log = on)
    }

    /// Whether Istio's standard metrics are recorded (feature `metrics`; default: yes). They go
    /// to the `metrics` recorder the application installs (for example
    /// `metrics-exporter-prometheus`); without one, recording costs next to nothing.
    #[cfg(feature = "metrics")]
    pub fn metrics(self, on: bool) -> Self {
        self.with(|s| s.metrics = on)
    }

    /// The timer delay faults, timeouts and retry back-offs sleep on.
    pub fn timer<U: Timer>(self, timer: U) -> MeshLayer<U, M> {
        let s = &*self.shared;
        MeshLayer {
            shared: Arc::new(Shared {
                rules: s.rules.clone(),
                extensions: s.extensions,
                response_decisions: s.response_decisions,
                context: s.context.clone(),
                sampler: s.sampler.clone(),
                timer,
                replay_limit: s.replay_limit,
                mirror_limit: s.mirror_limit,
                mirrors: s.mirrors.clone(),
                warned: s.warned.clone(),
                access_log: s.access_log,
                metrics: s.metrics,
                observer: s.observer.clone(),
            }),
            mode: std::marker::PhantomData,
        }
    }

    /// The live table this layer enforces.
    pub(crate) fn live_table(&self) -> &LiveTable {
        &self.shared.rules
    }

    pub(crate) fn shared(&self) -> Arc<Shared<T>> {
        self.shared.clone()
    }
}

impl<S, T: Timer, M> Layer<S> for MeshLayer<T, M> {
    type Service = MeshService<S, T, M>;

    fn layer(&self, inner: S) -> Self::Service {
        MeshService {
            inner,
            shared: self.shared.clone(),
            mode: std::marker::PhantomData,
        }
    }
}

/// The service [`MeshLayer`] builds around one inner service.
///
/// It carries out retries (with [`MeshLayer::replay_bodies`]) but not mirrors: a mirror
/// names another host, and only a [`MeshRouter`](super::MeshRouter) knows the services of
/// other hosts. Mirrored copies are counted as dropped.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::BodyExt;
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_mesh::{MeshLayer, RuleSet};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: hello}
/// spec:
///   hosts: [hello]
///   http:
///   - match: [{uri: {prefix: /teapot}}]
///     directResponse: {status: 418, body: {string: "I'm a teapot"}}
///   - route: [{destination: {host: hello}}]
/// "#)?;
/// let hello = service_fn(|_req: Request<String>| async {
///     Ok::<_, Infallible>(Response::new(String::from("hello")))
/// });
/// let svc = MeshLayer::new(rules).host("hello").layer(hello);
/// // The inner service answers what the rules forward; the layer answers the rest itself.
/// let res = svc.clone().oneshot(Request::get("/").body(String::new())?).await?;
/// assert_eq!(res.into_body().collect().await?.to_bytes(), "hello");
/// let res = svc.oneshot(Request::get("/teapot").body(String::new())?).await?;
/// assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
/// # Ok(()) }
/// ```
pub struct MeshService<S, T = DefaultTimer, M = Streaming> {
    inner: S,
    shared: Arc<Shared<T>>,
    mode: std::marker::PhantomData<fn() -> M>,
}

impl<S: Clone, T, M> Clone for MeshService<S, T, M> {
    fn clone(&self) -> Self {
        MeshService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            mode: std::marker::PhantomData,
        }
    }
}

impl<S: fmt::Debug, T, M> fmt::Debug for MeshService<S, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshService")
            .field("inner", &self.inner)
            .field("rules", &self.shared.rules)
            .finish_non_exhaustive()
    }
}

impl<S, T, M> MeshService<S, T, M> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// What happened to mirrored copies so far (a `MeshService` drops them all).
    pub fn mirror_stats(&self) -> MirrorStats {
        self.shared.mirrors.snapshot()
    }
}

impl<S, ReqB, ResB, T, M> Service<Request<ReqB>> for MeshService<S, T, M>
where
    M: BodyMode<ReqB>,
    S: Service<Request<M::Body>, Response = Response<ResB>> + Clone,
    ResB: http_body::Body,
    T: Timer,
{
    type Response = Response<super::MeshBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, M::Body, ResB, T>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        carry_out::<_, M, _, _, _>(&self.shared, req, &mut Wrapped(&mut self.inner), |_| None)
    }
}

/// The layer around one service sends every forwarded request to it.
struct Wrapped<'a, S>(&'a mut S);

impl<S: Clone> Dispatch for Wrapped<'_, S> {
    type Svc = S;
    const MIRRORS: bool = false;
    const REPORTER: &'static str = "destination";

    #[inline]
    fn choose<B>(&mut self, _: &Decision, _: &Request<B>) -> Option<Chosen<'_, S>> {
        Some(Chosen::Ready(&mut *self.0))
    }
}
