//! [`MeshLayer`] and [`MeshService`]: the rules enforced around one service.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::again::{Again, Mirrored};
use super::future::{Carried, Next, ResponseFuture};
use super::live::LiveTable;
use super::pipeline::{Chosen, Dispatch, carry_out};
use super::replay::{DEFAULT_REPLAY_LIMIT, Keeper, ReplayBody};
use super::timer::Timer;
use crate::model::{
    Caller, Context, Decision, Destination, Outcome, Retries, Route, Sampler, ThreadSampler,
};

#[cfg(feature = "tokio")]
use super::timer::TokioTimer;

/// What every service built from one layer shares.
#[derive(Clone)]
pub(crate) struct Shared<T> {
    pub(crate) rules: LiveTable,
    /// Whether decisions go into request and response extensions.
    pub(crate) extensions: bool,
    pub(crate) context: Context,
    pub(crate) sampler: Arc<dyn Sampler>,
    pub(crate) timer: T,
    /// The largest request body kept for a retry or a mirror.
    pub(crate) replay_limit: usize,
    /// The most shadow requests in flight at once.
    pub(crate) mirror_limit: usize,
    pub(crate) mirrors: Arc<MirrorCounters>,
    warned: Arc<Warned>,
}

/// Warnings logged once per layer.
#[derive(Default)]
struct Warned {
    retries: AtomicBool,
    mirrors: AtomicBool,
}

/// The counts behind [`MirrorStats`].
#[derive(Default, Debug)]
pub(crate) struct MirrorCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
}

/// What happened to the shadow copies of mirrored requests so far.
///
/// A copy is *dropped*, not sent, when the limit on shadow requests in flight is reached, when
/// no registered destination serves the mirror's host and labels, when the request body was
/// larger than the replay limit (or was not read whole by the first try), or when no runtime
/// can run it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorStats {
    /// Copies handed to a mirror destination.
    pub sent: u64,
    /// Copies not sent.
    pub dropped: u64,
    /// Sent copies whose destination returned an error (their responses are ignored either
    /// way).
    pub failed: u64,
    /// Copies running now.
    pub in_flight: usize,
}

impl MirrorCounters {
    pub(crate) fn snapshot(&self) -> MirrorStats {
        MirrorStats {
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn drop_one(&self, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "tower_mesh", "mirror copy dropped: {why}");
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Streaming {}
    impl Sealed for super::Replaying {}
}

/// A layer whose inner service gets the request bodies as they arrive. Routes' `retries` and
/// mirrors are not carried out (a warning says so once). The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Streaming;

/// A layer whose inner service gets request bodies wrapped in a [`ReplayBody`], kept up to a
/// limit, so that routes' `retries` and mirrors are carried out. Chosen with
/// [`MeshLayer::replay_bodies`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Replaying;

/// How a layer hands request bodies to its inner service: [`Streaming`] or [`Replaying`].
pub trait BodyMode<B>: sealed::Sealed + Send + Sync + 'static {
    /// The request body the inner service gets.
    type Body;
    #[doc(hidden)]
    const KEEPS: bool;
    #[doc(hidden)]
    fn pass(req: Request<B>) -> Request<Self::Body>;
    #[doc(hidden)]
    fn keep(req: Request<B>, limit: usize) -> (Request<Self::Body>, Option<Keeper>);
    #[doc(hidden)]
    fn rebuild(keeper: &Keeper) -> Option<Self::Body>;
}

impl<B> BodyMode<B> for Streaming {
    type Body = B;
    const KEEPS: bool = false;
    #[inline(always)]
    fn pass(req: Request<B>) -> Request<B> {
        req
    }
    fn keep(req: Request<B>, _: usize) -> (Request<B>, Option<Keeper>) {
        (req, None)
    }
    fn rebuild(_: &Keeper) -> Option<B> {
        None
    }
}

impl<B> BodyMode<B> for Replaying
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
{
    type Body = ReplayBody<B>;
    const KEEPS: bool = true;
    #[inline(always)]
    fn pass(req: Request<B>) -> Request<ReplayBody<B>> {
        req.map(ReplayBody::plain)
    }
    fn keep(req: Request<B>, limit: usize) -> (Request<ReplayBody<B>>, Option<Keeper>) {
        let (parts, body) = req.into_parts();
        let (body, keeper) = ReplayBody::keep(body, limit);
        (Request::from_parts(parts, body), Some(keeper))
    }
    fn rebuild(keeper: &Keeper) -> Option<ReplayBody<B>> {
        keeper.replay()
    }
}

/// A request for the inner service, and the plan for its retries and mirrors, if any.
pub(crate) type Prepared<ReqB, S, T> = (Request<ReqB>, Option<Box<Again<S, ReqB, T>>>);

impl<T> Shared<T> {
    /// Evaluates a request with the rules in force, puts the decision in its extensions, and
    /// logs it.
    pub(crate) fn decide<B>(&self, req: &mut Request<B>) -> Decision {
        let decision = {
            let rules = self.rules.load();
            match req.extensions().get::<Caller>() {
                Some(caller) => {
                    let ctx = self.context.clone().with_caller(caller.clone());
                    rules.evaluate(req, &ctx, &*self.sampler)
                }
                None => rules.evaluate(req, &self.context, &*self.sampler),
            }
        };
        tracing::debug!(
            target: "tower_mesh",
            outcome = decision.outcome().as_str(),
            resource = decision.resource().map(tracing::field::display),
            route = decision.route_name(),
            destination = decision.destination().map(tracing::field::display),
            delay_ms = decision.delay().map(|d| d.as_millis() as u64),
            status = decision.status().map(|s| s.as_u16()),
            grpc_status = decision.grpc_status(),
            "{} {} decided",
            req.method(),
            req.uri(),
        );
        if self.extensions {
            req.extensions_mut().insert(decision.clone());
        }
        decision
    }

    /// Wraps a request that goes on to the inner service in the body `M` gives it, and plans
    /// its retries and mirrors. `mirrors`: whether the caller can send mirrored copies (a
    /// router can); when it cannot, they are counted as dropped.
    #[inline(always)]
    pub(crate) fn prepare<M, B, S>(
        &self,
        req: Request<B>,
        decision: &Decision,
        mirrors: bool,
    ) -> Prepared<M::Body, S, T>
    where
        M: BodyMode<B>,
        T: Timer,
    {
        let route = match (decision.outcome(), decision.route_arc()) {
            (Outcome::Forward, Some(route)) if route.replays() => route,
            _ => return (M::pass(req), None),
        };
        if !M::KEEPS {
            self.not_carried_out(route);
            return (M::pass(req), None);
        }
        self.keep::<M, B, S>(req, route, mirrors)
    }

    /// A route's explicit retries and its mirrors, on a layer that keeps no bodies.
    #[cold]
    fn not_carried_out(&self, route: &Route) {
        if route
            .policy()
            .retries()
            .is_some_and(|r| r.attempts() > 0 && !r.is_mesh_default())
        {
            self.warn_once(&self.warned.retries, "retries");
        }
        let fired = self.fire_mirrors(route);
        if !fired.is_empty() {
            self.mirrors
                .dropped
                .fetch_add(fired.len() as u64, Ordering::Relaxed);
            self.warn_once(&self.warned.mirrors, "mirrors");
        }
    }

    /// The mirror destinations whose percentage fired for this request.
    fn fire_mirrors(&self, route: &Route) -> Vec<Arc<Destination>> {
        route
            .policy()
            .mirrors()
            .iter()
            .filter(|m| self.sampler.roll_ppm() < m.ppm())
            .map(|m| m.destination.clone())
            .collect()
    }

    /// Wraps the body to keep it, and plans retries and mirrors.
    fn keep<M, B, S>(
        &self,
        req: Request<B>,
        route: &Arc<Route>,
        can_mirror: bool,
    ) -> Prepared<M::Body, S, T>
    where
        M: BodyMode<B>,
        T: Timer,
    {
        let retries = route.policy().retries().is_some_and(|r| r.attempts() > 0);
        let mut fired = self.fire_mirrors(route);
        if !can_mirror {
            for _ in fired.drain(..) {
                self.mirrors
                    .drop_one("a MeshService has no mirror destinations; use MeshLayer::route_to");
            }
        }
        if !retries && fired.is_empty() {
            return (M::pass(req), None);
        }
        let (req, keeper) = M::keep(req, self.replay_limit);
        let keeper = keeper.expect("a replaying mode keeps the body it is asked to keep");
        let (head, body) = req.into_parts();
        let mirrored = (!fired.is_empty()).then(|| Mirrored {
            fired,
            head: head.clone(),
            keeper: keeper.clone(),
        });
        let again = Again::new(
            head.clone(),
            keeper,
            M::rebuild,
            route.clone(),
            self.sampler.clone(),
            self.timer.clone(),
        )
        .with_mirrors(mirrored);
        (Request::from_parts(head, body), Some(Box::new(again)))
    }

    fn warn_once(&self, flag: &AtomicBool, what: &str) {
        if !flag.load(Ordering::Relaxed) && !flag.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "tower_mesh",
                "a route has {what}, but this layer does not keep request bodies, so they are not carried out; build it with MeshLayer::replay_bodies"
            );
        }
    }
}

/// Applies Istio routing rules to every request of the service it wraps: evaluates the
/// request, puts the [`Decision`] in the request's extensions (and the response's), and carries
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
///     .layer(MeshLayer::new(rules).host("helloworld-service"))
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
            shared: Arc::new(Shared {
                rules,
                extensions: true,
                context: Context::new(),
                sampler: Arc::new(ThreadSampler),
                timer: DefaultTimer::default(),
                replay_limit: DEFAULT_REPLAY_LIMIT,
                mirror_limit: DEFAULT_MIRROR_LIMIT,
                mirrors: Arc::default(),
                warned: Arc::default(),
            }),
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
        MeshLayer {
            shared: Arc::new(shared),
            mode: std::marker::PhantomData,
        }
    }

    /// Carries out routes' `retries` and mirrors: the inner service gets each request body
    /// wrapped in a [`ReplayBody`] that keeps a copy of up to `limit` bytes (64 KiB is a
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
        self.with(|s| s.context = s.context.clone().with_target(host))
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

    /// Whether the decision goes into each request's and response's extensions (default:
    /// yes). `http::Extensions` allocates for its first entry, three times per message; a
    /// service that does not read the decision can turn this off and allocate nothing per
    /// request.
    pub fn decision_extensions(self, on: bool) -> Self {
        self.with(|s| s.extensions = on)
    }

    /// The timer delay faults, timeouts and retry back-offs sleep on.
    pub fn timer<U: Timer>(self, timer: U) -> MeshLayer<U, M> {
        let s = &*self.shared;
        MeshLayer {
            shared: Arc::new(Shared {
                rules: s.rules.clone(),
                extensions: s.extensions,
                context: s.context.clone(),
                sampler: s.sampler.clone(),
                timer,
                replay_limit: s.replay_limit,
                mirror_limit: s.mirror_limit,
                mirrors: s.mirrors.clone(),
                warned: s.warned.clone(),
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

    #[inline]
    fn choose<B>(&mut self, _: &Decision, _: &Request<B>) -> Option<Chosen<'_, S>> {
        Some(Chosen::Ready(&mut *self.0))
    }
}

/// Sleeps first when a delay fired, then goes on with `next`.
pub(crate) fn plan<S, ReqB, ResB, T>(
    shared: &Shared<T>,
    decision: Decision,
    next: Next<S, ReqB, ResB>,
    cors: Option<http::HeaderMap>,
    again: Option<Box<Again<S, ReqB, T>>>,
) -> ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    let delay = decision.delay();
    let s = shared;
    match (delay, next) {
        (None, Next::Reply(res)) => ResponseFuture::local(res),
        (Some(d), next) => {
            let carried = Carried::new(decision, s.extensions, &s.timer, cors, again);
            ResponseFuture::delayed(s.timer.sleep(d), next, carried)
        }
        (None, Next::Call { svc, req }) => {
            let carried = Carried::new(decision, s.extensions, &s.timer, cors, again);
            ResponseFuture::oneshot(svc, req, carried)
        }
    }
}

/// Whether a layer (one that keeps bodies when `keeps_bodies`) has nothing to do but call the
/// inner service with the request as it is and hand back its answer as it is: a forward or
/// pass-through with no delay, whose route (if any) forwards plainly and has no retries this
/// layer would carry out (a layer that keeps bodies carries them out) or warn about (one that
/// does not warns about a configured policy, never about Istio's default).
#[inline]
pub(crate) fn takes_fast_path(decision: &Decision, keeps_bodies: bool) -> bool {
    forwards(decision)
        && decision.delay().is_none()
        && decision.route().is_none_or(|r| {
            r.is_plain_forward()
                && match r.retries() {
                    Retries::Never => true,
                    Retries::MeshDefault => !keeps_bodies,
                    Retries::Configured => false,
                }
        })
}

/// Whether a decision sends the request on (to a destination or through).
pub(crate) fn forwards(decision: &Decision) -> bool {
    matches!(decision.outcome(), Outcome::Forward | Outcome::PassThrough)
}
