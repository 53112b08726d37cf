//! Retries: what a response future keeps to send a request again.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};

use super::replay::BodyCopy;
use super::timer::Timer;
use crate::model::{RetryPolicy, Route, Sampler};

/// Sends mirrored copies once the request body has been read (or counts them as dropped when
/// it never is).
pub(crate) type Deferred = Box<dyn FnOnce(&BodyCopy) + Send>;

/// The mirrors that fired for a request, with its head and its kept body.
pub(crate) struct Mirrored {
    pub(crate) fired: Vec<Arc<crate::model::Destination>>,
    /// How long a copy may run: the route's timeout, else
    /// [`DEFAULT_MIRROR_TIMEOUT`](super::DEFAULT_MIRROR_TIMEOUT).
    pub(crate) timeout: Duration,
    pub(crate) head: http::request::Parts,
    pub(crate) keeper: BodyCopy,
}

/// Everything needed to try a forwarded request again, and the mirrors that wait for its
/// body to be read.
pub(crate) struct RetryState<S, ReqB, T: Timer> {
    /// A clone of the service the first try went to; each retry calls a clone of it.
    pub(crate) svc: Option<S>,
    /// The request head as the first try had it (after rewrites and header operations).
    head: http::request::Parts,
    keeper: BodyCopy,
    rebuild: fn(&BodyCopy) -> Option<ReqB>,
    /// Reads the next try's body ahead while it waits: `true` when the client went away.
    gone: fn(&mut ReqB, &mut std::task::Context<'_>) -> bool,
    route: Arc<Route>,
    /// Retries left.
    left: u32,
    /// Retries made.
    made: u32,
    /// The last answer was one the policy retries, and no retry was left (`URX`).
    pub(crate) exhausted: bool,
    sampler: Arc<dyn Sampler>,
    /// Mirrors that could not go when the request arrived, because its body had not been read
    /// yet: they go once the first try is over.
    after_first: Option<Deferred>,
    pub(crate) timer: T,
    /// The mirrors that fired, until the router sends them.
    pub(crate) mirrored: Option<Mirrored>,
    /// The running try's per-try timeout, armed when the try does not finish at once.
    pub(crate) per_try: Option<Pin<Box<T::Sleep>>>,
}

impl<S, ReqB, T: Timer> RetryState<S, ReqB, T> {
    pub(crate) fn new(
        head: http::request::Parts,
        keeper: BodyCopy,
        rebuild: fn(&BodyCopy) -> Option<ReqB>,
        gone: fn(&mut ReqB, &mut std::task::Context<'_>) -> bool,
        route: Arc<Route>,
        sampler: Arc<dyn Sampler>,
        timer: T,
    ) -> Self {
        let left = route.policy().retries().map_or(0, RetryPolicy::attempts);
        RetryState {
            svc: None,
            head,
            keeper,
            rebuild,
            gone,
            route,
            left,
            made: 0,
            exhausted: false,
            sampler,
            after_first: None,
            timer,
            mirrored: None,
            per_try: None,
        }
    }

    /// Whether any retry is possible at all.
    pub(crate) fn retries(&self) -> bool {
        self.left > 0
    }

    pub(crate) fn with_mirrors(mut self, mirrored: Option<Mirrored>) -> Self {
        self.mirrored = mirrored;
        self
    }

    /// Sends the mirrors with `f` once a try is over and the body has been read whole.
    pub(crate) fn after_first(&mut self, f: Deferred) {
        self.after_first = Some(f);
    }

    fn policy(&self) -> Option<&RetryPolicy> {
        self.route.policy().retries()
    }

    /// A try is over: sends the mirrors that waited for the body, once it has been read
    /// whole (by this try or, after a try that stopped early, by a later one).
    pub(crate) fn try_over(&mut self) {
        self.per_try = None;
        if self.keeper.is_whole()
            && let Some(f) = self.after_first.take()
        {
            f(&self.keeper);
        }
    }

    /// Whether the running try outlived the per-try timeout (armed on the first call).
    pub(crate) fn poll_per_try(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        let Some(d) = self.policy().and_then(RetryPolicy::per_try_timeout) else {
            return false;
        };
        let timer = &self.timer;
        let sleep = self.per_try.get_or_insert_with(|| Box::pin(timer.sleep(d)));
        sleep.as_mut().poll(cx).is_ready()
    }

    /// Whether the client of the request whose next try is `req` went away (its body failed
    /// when read ahead); then no further try is started.
    pub(crate) fn client_gone(
        &self,
        req: &mut Request<ReqB>,
        cx: &mut std::task::Context<'_>,
    ) -> bool {
        let gone = (self.gone)(req.body_mut(), cx);
        if gone {
            tracing::debug!(
                target: "tower_mesh",
                retry = self.made,
                "not retried: the client went away (its request body failed)"
            );
        }
        gone
    }

    /// The sleep before the retry just planned.
    pub(crate) fn backoff_sleep(&self) -> Pin<Box<T::Sleep>> {
        Box::pin(self.timer.sleep(self.backoff()))
    }

    /// After a try that answered or failed: the request for the next try, if the policy
    /// retries this result, a retry is left and the body was kept whole.
    pub(crate) fn after<R, E>(&mut self, result: &Result<Response<R>, E>) -> Option<Request<ReqB>> {
        let policy = self.policy()?;
        let wanted = match result {
            Ok(res) => policy.retries_response(res.status(), res.headers()),
            Err(_) => policy.retries_failure(),
        };
        if !wanted {
            return None;
        }
        self.exhausted = self.left == 0 && self.made > 0;
        let req = self.next_request()?;
        tracing::debug!(
            target: "tower_mesh",
            retry = self.made,
            status = result.as_ref().ok().map(|r| r.status().as_u16()),
            "retrying: the try answered a status or failed as `retryOn` lists"
        );
        Some(req)
    }

    /// After a try that outlived the per-try timeout.
    pub(crate) fn after_timeout(&mut self) -> Option<Request<ReqB>> {
        if !self.policy()?.retries_timeout() {
            return None;
        }
        let req = self.next_request()?;
        tracing::debug!(
            target: "tower_mesh",
            retry = self.made,
            "retrying: the try outlived perTryTimeout"
        );
        Some(req)
    }

    fn next_request(&mut self) -> Option<Request<ReqB>> {
        if self.left == 0 || self.svc.is_none() {
            return None;
        }
        let Some(body) = (self.rebuild)(&self.keeper) else {
            tracing::debug!(
                target: "tower_mesh",
                "not retried: the request body outgrew the replay limit, or the failed try still holds its unread rest"
            );
            return None;
        };
        self.left -= 1;
        self.made += 1;
        Some(Request::from_parts(self.head.clone(), body))
    }

    /// How long to wait before the retry just planned: Envoy's jittered exponential back-off.
    fn backoff(&self) -> Duration {
        let ceiling = self
            .policy()
            .map_or(Duration::ZERO, |p| p.backoff_ceiling(self.made));
        let ms = u32::try_from(ceiling.as_millis()).unwrap_or(u32::MAX);
        if ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(u64::from(self.sampler.pick(ms)))
    }
}

impl<S, ReqB, T: Timer> Drop for RetryState<S, ReqB, T> {
    fn drop(&mut self) {
        // Mirrors still waiting when the exchange ends: the body was never read whole, so
        // they are counted as dropped.
        if let Some(f) = self.after_first.take() {
            f(&self.keeper);
        }
    }
}
