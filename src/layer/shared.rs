//! What every service built from one layer shares: the live rules, the context and sampler,
//! the timer, the body limits and the mirror counters; and how a layer hands request bodies
//! to its inner service ([`BodyMode`]: [`Streaming`] or [`Replaying`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use http::Request;

use super::live::LiveTable;
use super::observe::Observer;
use super::replay::{BodyCopy, ReplayBody};
use super::retry_state::{Mirrored, RetryState};
use super::timer::Timer;
use crate::model::{Caller, Context, Decision, Destination, Outcome, Route, Sampler};

/// What every service built from one layer shares.
#[derive(Clone)]
pub(crate) struct Shared<T> {
    pub(crate) rules: LiveTable,
    /// Whether decisions go into request extensions (and, with `response_decisions`, response
    /// extensions).
    pub(crate) extensions: bool,
    /// Whether the decision also goes into each response's extensions.
    pub(crate) response_decisions: bool,
    pub(crate) context: Context,
    pub(crate) sampler: Arc<dyn Sampler>,
    pub(crate) timer: T,
    /// The largest request body kept for a retry or a mirror.
    pub(crate) replay_limit: usize,
    /// The most shadow requests in flight at once.
    pub(crate) mirror_limit: usize,
    pub(crate) mirrors: Arc<MirrorCounters>,
    pub(crate) warned: Arc<Warned>,
    /// Whether each request gets an access-log event.
    pub(crate) access_log: bool,
    /// Whether Istio's metrics are recorded (feature `metrics`).
    pub(crate) metrics: bool,
    /// What is reported of each request, built from the settings above.
    pub(crate) observer: Option<Arc<Observer>>,
}

/// Warnings logged once per layer.
#[derive(Default)]
pub(crate) struct Warned {
    retries: AtomicBool,
    mirrors: AtomicBool,
    no_host: AtomicBool,
}

/// The counts behind [`MirrorStats`].
#[derive(Default, Debug)]
pub(crate) struct MirrorCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
}

/// How long a mirrored copy may run when its route sets no `timeout`: 15 s, Envoy's default
/// route timeout. A copy still unanswered then is given up and counted as failed, so that
/// shadows that never answer do not fill the
/// [`DEFAULT_MIRROR_LIMIT`](super::DEFAULT_MIRROR_LIMIT) slots for good.
pub const DEFAULT_MIRROR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// What happened to the shadow copies of mirrored requests so far.
///
/// A copy is *dropped*, not sent, when the limit on shadow requests in flight is reached, when
/// no registered destination serves the mirror's host and labels, when the request body was
/// larger than the replay limit (or was not read whole by the first try), or when no runtime
/// can run it.
///
/// ```
/// use tower_mesh::{MeshLayer, RuleSet};
/// use tower_mesh::layer::Destinations;
///
/// let router = MeshLayer::new(RuleSet::empty())
///     .route_to(Destinations::<()>::new());
/// let stats = router.mirror_stats();
/// assert_eq!((stats.sent, stats.dropped, stats.failed, stats.in_flight), (0, 0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorStats {
    /// Copies handed to a mirror destination.
    pub sent: u64,
    /// Copies not sent.
    pub dropped: u64,
    /// Sent copies whose destination returned an error or did not answer within the mirror
    /// timeout (the route's `timeout`, else
    /// [`DEFAULT_MIRROR_TIMEOUT`](super::DEFAULT_MIRROR_TIMEOUT)); their responses are
    /// ignored either way.
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

    /// Counts a copy handed to its destination (a Tokio task).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn sent_one(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        super::metrics::mirror("sent");
    }

    /// Counts a sent copy whose destination failed.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn failed_one(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        super::metrics::mirror("failed");
    }

    /// One more copy in flight (`up`) or one fewer; false, and nothing changed, when one more
    /// would pass `limit`.
    pub(crate) fn in_flight_change(&self, up: bool, limit: usize) -> bool {
        let now = if up {
            let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
            if before >= limit {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                return false;
            }
            before + 1
        } else {
            self.in_flight.fetch_sub(1, Ordering::Relaxed) - 1
        };
        #[cfg(feature = "metrics")]
        super::metrics::mirrors_in_flight(now);
        let _ = now;
        true
    }

    pub(crate) fn drop_one(&self, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        super::metrics::mirror("dropped");
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
///
/// ```
/// use tower_mesh::{MeshLayer, RuleSet};
/// use tower_mesh::layer::{MeshLayer as Layer, Streaming};
///
/// // The default: bodies stream to the inner service untouched; routes' retries are not carried out.
/// let layer: Layer<_, Streaming> = MeshLayer::new(RuleSet::empty());
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Streaming;

/// A layer whose inner service gets request bodies wrapped in a [`ReplayBody`], kept up to a
/// limit, so that routes' `retries` and mirrors are carried out. Chosen with
/// [`MeshLayer::replay_bodies`](super::MeshLayer::replay_bodies).
///
/// ```
/// use tower_mesh::{MeshLayer, RuleSet};
/// use tower_mesh::layer::{DEFAULT_REPLAY_LIMIT, MeshLayer as Layer, Replaying};
///
/// // Bodies kept up to 64 KiB, so that routes' retries and mirrors are carried out.
/// let layer: Layer<_, Replaying> = MeshLayer::new(RuleSet::empty()).replay_bodies(DEFAULT_REPLAY_LIMIT);
/// # let _ = layer;
/// ```
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
    fn keep(req: Request<B>, limit: usize) -> (Request<Self::Body>, Option<BodyCopy>);
    #[doc(hidden)]
    fn rebuild(keeper: &BodyCopy) -> Option<Self::Body>;
    #[doc(hidden)]
    fn client_gone(body: &mut Self::Body, cx: &mut std::task::Context<'_>) -> bool;
}

impl<B> BodyMode<B> for Streaming {
    type Body = B;
    const KEEPS: bool = false;
    #[inline(always)]
    fn pass(req: Request<B>) -> Request<B> {
        req
    }
    fn keep(req: Request<B>, _: usize) -> (Request<B>, Option<BodyCopy>) {
        (req, None)
    }
    fn rebuild(_: &BodyCopy) -> Option<B> {
        None
    }
    fn client_gone(_: &mut B, _: &mut std::task::Context<'_>) -> bool {
        false
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
    fn keep(req: Request<B>, limit: usize) -> (Request<ReplayBody<B>>, Option<BodyCopy>) {
        let (parts, body) = req.into_parts();
        let (body, keeper) = ReplayBody::keep(body, limit);
        (Request::from_parts(parts, body), Some(keeper))
    }
    fn rebuild(keeper: &BodyCopy) -> Option<ReplayBody<B>> {
        keeper.replay()
    }
    fn client_gone(body: &mut ReplayBody<B>, cx: &mut std::task::Context<'_>) -> bool {
        body.client_gone(cx)
    }
}

/// A request for the inner service, and the plan for its retries and mirrors, if any.
pub(crate) type Prepared<ReqB, S, T> = (Request<ReqB>, Option<Box<RetryState<S, ReqB, T>>>);

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
        if decision.outcome() == Outcome::PassThrough && self.context.host().is_none() {
            self.warn_no_host(req);
        }
        if self.extensions {
            req.extensions_mut().insert(decision.clone());
        }
        decision
    }

    /// Once per layer: rules exist, but a request of a layer without `.host(...)` names no
    /// host they cover (often a forgotten `.host(...)`: then no rule ever applies).
    #[cold]
    fn warn_no_host<B>(&self, req: &Request<B>) {
        if self.rules.load().route_count() == 0 || self.warned.no_host.swap(true, Ordering::Relaxed)
        {
            return;
        }
        tracing::warn!(
            target: "tower_mesh",
            authority = req.uri().authority().map(|a| a.as_str()),
            host_header = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()),
            "a request matched no configured host, and this layer has no `.host(...)`: requests are evaluated for the host they name, so if this service is one of the configured hosts, set it with `MeshLayer::host`"
        );
    }

    /// Whether responses get the decision in their extensions.
    #[inline(always)]
    pub(crate) fn response_copy(&self) -> bool {
        self.extensions && self.response_decisions
    }

    /// Builds what is reported of each request from the layer's settings.
    pub(crate) fn refresh_observer(&mut self) {
        self.observer = Observer::new(self.access_log, self.metrics, &self.context);
    }

    /// The same, with its observer built.
    pub(crate) fn with_observer(mut self) -> Self {
        self.refresh_observer();
        self
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
            .map(|m| m.destination_arc().clone())
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
            timeout: route.policy().timeout().unwrap_or(DEFAULT_MIRROR_TIMEOUT),
            head: head.clone(),
            keeper: keeper.clone(),
        });
        let again = RetryState::new(
            head.clone(),
            keeper,
            M::rebuild,
            M::client_gone,
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
