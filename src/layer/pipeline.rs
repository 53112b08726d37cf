//! The one request pipeline of [`MeshService`](super::MeshService) and
//! [`MeshRouter`](super::MeshRouter): decide, take the fast path when there is nothing to
//! carry out, answer locally (fault, 404, redirect, direct response, CORS preflight, a
//! rewrite that cannot be applied), or rewrite the request, keep its body for retries and
//! mirrors, and call the service, after the injected delay if one fired.
//!
//! The two differ only in where a forwarded request goes ([`Dispatch::choose`]) and in
//! whether mirrored copies can be sent (the `mirror` argument of [`carry_out`]).

use http::{Request, Response};
use tower_service::Service;

use super::future::{Next, ResponseFuture, ResponsePlan};
use super::observe::Observation;
use super::replay::BodyCopy;
use super::reply::{local_reply, no_healthy_upstream, preflight_reply, rewrite_failed};
use super::retry_state::{Deferred, Mirrored, RetryState};
use super::shared::{BodyMode, Shared};
use super::timer::Timer;
use crate::model::{Cors, Decision, Outcome, Retries};

/// The service a forwarded request goes to.
pub(crate) enum Chosen<'a, S> {
    /// The wrapped service, already made ready by the caller: it is called at once.
    Ready(&'a mut S),
    /// A destination picked for this request: a clone, driven to readiness first.
    Picked(S),
}

impl<S: Clone> Chosen<'_, S> {
    /// A service of one's own, for a call after a delay or for retries.
    fn owned(&self) -> S {
        match self {
            Chosen::Ready(svc) => (**svc).clone(),
            Chosen::Picked(svc) => svc.clone(),
        }
    }

    /// Calls the service now (the wrapped one) or once it is ready (a picked one).
    #[inline]
    fn call<B, ResB, T>(
        self,
        req: Request<B>,
        carried: ResponsePlan<S, B, T>,
    ) -> ResponseFuture<S, B, ResB, T>
    where
        S: Service<Request<B>, Response = Response<ResB>>,
        T: Timer,
    {
        match self {
            Chosen::Ready(svc) => ResponseFuture::called(svc.call(req), carried),
            Chosen::Picked(svc) => ResponseFuture::oneshot(svc, req, carried),
        }
    }
}

/// Where forwarded requests go: the one wrapped service, or the registered destination the
/// decision names.
pub(crate) trait Dispatch {
    /// The service type requests are sent to.
    type Svc: Clone;
    /// Whether mirrored copies can be sent (a router can; a layer around one service knows no
    /// other host's services and counts them as dropped).
    const MIRRORS: bool;
    /// Istio's `reporter` for this side of the call: `destination` for a layer around the
    /// called service, `source` for a router in front of the services it calls.
    const REPORTER: &'static str;
    /// The service for a decision that forwards; `None` answers 503 `no healthy upstream`.
    fn choose<B>(&mut self, decision: &Decision, req: &Request<B>)
    -> Option<Chosen<'_, Self::Svc>>;
}

/// Carries a request through the pipeline. `mirror` turns the mirrors that fired into the
/// sending of their copies (with the kept body), or gives `None` when none can be sent.
#[inline]
pub(crate) fn carry_out<D, M, ReqB, ResB, T>(
    shared: &Shared<T>,
    mut req: Request<ReqB>,
    target: &mut D,
    mirror: impl FnOnce(Mirrored) -> Option<(Deferred, BodyCopy)>,
) -> ResponseFuture<D::Svc, M::Body, ResB, T>
where
    D: Dispatch,
    M: BodyMode<ReqB>,
    D::Svc: Service<Request<M::Body>, Response = Response<ResB>>,
    T: Timer,
{
    if !super::authority::settle(&mut req) {
        return ResponseFuture::local(super::authority::bad_request());
    }
    let decision = shared.decide(&mut req);
    match &shared.observer {
        None => decided::<D, M, ReqB, ResB, T>(shared, req, decision, target, mirror),
        Some(observer) => {
            let obs = Observation::start(observer, D::REPORTER, &req, &decision);
            decided::<D, M, ReqB, ResB, T>(shared, req, decision, target, mirror)
                .observed(Some(obs))
        }
    }
}

/// [`carry_out`], once the request is decided.
#[inline(always)]
fn decided<D, M, ReqB, ResB, T>(
    shared: &Shared<T>,
    mut req: Request<ReqB>,
    decision: Decision,
    target: &mut D,
    mirror: impl FnOnce(Mirrored) -> Option<(Deferred, BodyCopy)>,
) -> ResponseFuture<D::Svc, M::Body, ResB, T>
where
    D: Dispatch,
    M: BodyMode<ReqB>,
    D::Svc: Service<Request<M::Body>, Response = Response<ResB>>,
    T: Timer,
{
    if takes_fast_path(&decision, M::KEEPS)
        && let Some(svc) = target.choose(&decision, &req)
    {
        let carried =
            ResponsePlan::new(decision, shared.response_copy(), &shared.timer, None, None);
        return svc.call(M::pass(req), carried);
    }
    let mut cors = None;
    let mut again = None;
    let next = if !forwards(&decision) {
        Next::Reply(
            local_reply(&decision, shared.response_copy())
                .unwrap_or_else(|| no_healthy_upstream(&decision, shared.response_copy())),
        )
    } else {
        match decision.cors(&req) {
            Cors::Preflight(headers) => {
                Next::Reply(preflight_reply(&decision, headers, shared.response_copy()))
            }
            answer => match target.choose(&decision, &req) {
                None => Next::Reply(no_healthy_upstream(&decision, shared.response_copy())),
                Some(svc) => {
                    if let Cors::Response(headers) = answer {
                        cors = Some(headers);
                    }
                    if let Err(e) = decision.apply_request(&mut req) {
                        Next::Reply(rewrite_failed(&decision, &e, shared.response_copy()))
                    } else {
                        let (req, plan) =
                            shared.prepare::<M, ReqB, D::Svc>(req, &decision, D::MIRRORS);
                        again = plan.map(|a| with_retries_and_mirrors(a, &svc, mirror));
                        if decision.delay().is_none() {
                            let s = shared;
                            let carried = ResponsePlan::new(
                                decision,
                                s.response_copy(),
                                &s.timer,
                                cors,
                                again,
                            );
                            return svc.call(req, carried);
                        }
                        Next::Call {
                            svc: svc.owned(),
                            req,
                        }
                    }
                }
            },
        }
    };
    plan(shared, decision, next, cors, again)
}

/// Completes a retry and mirror plan: the service retries go to, and the mirrored copies
/// sent now (the body is already whole) or after the first try has read the body.
fn with_retries_and_mirrors<S: Clone, B, T: Timer>(
    mut again: Box<RetryState<S, B, T>>,
    svc: &Chosen<'_, S>,
    mirror: impl FnOnce(Mirrored) -> Option<(Deferred, BodyCopy)>,
) -> Box<RetryState<S, B, T>> {
    if let Some((send, keeper)) = again.mirrored.take().and_then(mirror) {
        if keeper.is_whole() {
            send(&keeper);
        } else {
            again.after_first(send);
        }
    }
    if again.retries() {
        again.svc = Some(svc.owned());
    }
    again
}

/// Sleeps first when a delay fired, then goes on with `next`.
pub(crate) fn plan<S, ReqB, ResB, T>(
    shared: &Shared<T>,
    decision: Decision,
    next: Next<S, ReqB, ResB>,
    cors: Option<http::HeaderMap>,
    again: Option<Box<RetryState<S, ReqB, T>>>,
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
            let carried = ResponsePlan::new(decision, s.response_copy(), &s.timer, cors, again);
            ResponseFuture::delayed(s.timer.sleep(d), next, carried)
        }
        (None, Next::Call { svc, req }) => {
            let carried = ResponsePlan::new(decision, s.response_copy(), &s.timer, cors, again);
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
