//! The response future shared by [`MeshService`](super::MeshService) and
//! [`MeshRouter`](super::MeshRouter).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::MeshBody;
use super::observe::Observation;
use super::reply::LayerFlags;
use super::retry_state::RetryState;
use super::timer::Timer;
use crate::model::{Decision, ResponseFlags};

/// What happens once an injected delay is over.
pub(crate) enum Next<S, ReqB, ResB> {
    /// Call a service (made ready first) with the request.
    Call { svc: S, req: Request<ReqB> },
    /// Answer with a local reply.
    Reply(Response<MeshBody<ResB>>),
}

pin_project! {
    /// The response future of tower-mesh's services: a local reply, or a call carried out by
    /// small futures of one concern each, after an injected delay if one fired:
    /// [`Finish`] (what the decision adds to the answer) around [`Deadline`] (the route
    /// timeout) around [`Tries`] (calling the service, retries, per-try timeouts).
    pub struct ResponseFuture<S, ReqB, ResB, T>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
        T: Timer,
    {
        #[pin]
        kind: Kind<S, ReqB, ResB, T>,
        // What is reported of the request once it is answered (access log, metrics).
        obs: Option<Box<Observation>>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, ReqB, ResB, T>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
        T: Timer,
    {
        Local { res: Option<Response<MeshBody<ResB>>> },
        Call { #[pin] fut: Finish<S, ReqB, ResB, T> },
        Delay { sleep: Pin<Box<T::Sleep>>, then: Option<Box<Kind<S, ReqB, ResB, T>>> },
    }
}

/// What a call ends in: the service's answer, or the route's (or a try's) time running out.
pub(crate) enum Ended<R> {
    Answered(R),
    TimedOut,
}

/// What a response future carries besides the call: the decision for the response, the
/// route timeout, CORS headers, and the retry plan.
pub(crate) struct ResponsePlan<S, ReqB, T: Timer> {
    // The decision, when the response gets it in its extensions (`insert`) or its response
    // header operations apply to the inner response (`respond`).
    decision: Option<Decision>,
    insert: bool,
    respond: bool,
    // CORS headers for the inner response.
    cors: Option<Box<http::HeaderMap>>,
    // The route timeout, armed when a call first waits.
    timeout: Option<(T, Duration)>,
    // What retries and late mirrors need.
    again: Option<Box<RetryState<S, ReqB, T>>>,
}

impl<S, ReqB, T: Timer> ResponsePlan<S, ReqB, T> {
    /// Carries `decision` to the response (into its extensions when `insert`, its response
    /// header operations onto the inner response), with the route's timeout on `timer`, CORS
    /// headers and a retry plan.
    #[inline(always)]
    pub(crate) fn new(
        decision: Decision,
        insert: bool,
        timer: &T,
        cors: Option<http::HeaderMap>,
        again: Option<Box<RetryState<S, ReqB, T>>>,
    ) -> Self {
        let respond = decision.has_message_changes();
        let timeout = decision
            .route()
            .and_then(|r| r.policy().timeout())
            .map(|d| (timer.clone(), d));
        ResponsePlan {
            decision: (insert || respond).then_some(decision),
            insert,
            respond,
            cors: cors.map(Box::new),
            timeout,
            again,
        }
    }
}

impl<S, ReqB, ResB, T> ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    /// The inner service was already called.
    #[inline(always)]
    pub(crate) fn called(fut: S::Future, carried: ResponsePlan<S, ReqB, T>) -> Self {
        Self::call(TryState::Inner { fut }, true, carried)
    }

    /// Drive `svc` to readiness, then call it.
    #[inline(always)]
    pub(crate) fn oneshot(svc: S, req: Request<ReqB>, carried: ResponsePlan<S, ReqB, T>) -> Self {
        let state = TryState::Ready {
            svc: Some(svc),
            req: Some(req),
        };
        Self::call(state, false, carried)
    }

    #[inline(always)]
    fn call(state: TryState<S, ReqB, T>, called: bool, c: ResponsePlan<S, ReqB, T>) -> Self {
        ResponseFuture {
            kind: Kind::Call {
                fut: Finish::new(state, called, c),
            },
            obs: None,
        }
    }

    /// Sleep, then carry on with `next`.
    pub(crate) fn delayed(
        sleep: T::Sleep,
        next: Next<S, ReqB, ResB>,
        carried: ResponsePlan<S, ReqB, T>,
    ) -> Self {
        let then = match next {
            Next::Call { svc, req } => Self::oneshot(svc, req, carried).kind,
            Next::Reply(res) => Kind::Local { res: Some(res) },
        };
        ResponseFuture {
            kind: Kind::Delay {
                sleep: Box::pin(sleep),
                then: Some(Box::new(then)),
            },
            obs: None,
        }
    }

    /// Answer at once.
    pub(crate) fn local(res: Response<MeshBody<ResB>>) -> Self {
        ResponseFuture {
            kind: Kind::Local { res: Some(res) },
            obs: None,
        }
    }

    /// Reports the request with `obs` once it is answered.
    pub(crate) fn observed(mut self, obs: Option<Box<Observation>>) -> Self {
        self.obs = obs;
        self
    }
}

impl<S, ReqB, ResB, T> Future for ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ResB: http_body::Body,
    T: Timer,
{
    type Output = Result<Response<MeshBody<ResB>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = ready!(self.as_mut().poll_answer(cx));
        if let Some(obs) = self.project().obs.take()
            && let Ok(res) = &out
        {
            obs.finish(res);
        }
        Poll::Ready(out)
    }
}

impl<S, ReqB, ResB, T> ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    T: Timer,
{
    /// The answer, after the delay if one fired.
    #[inline(always)]
    fn poll_answer(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<MeshBody<ResB>>, S::Error>> {
        loop {
            let next = match self.as_mut().project().kind.project() {
                KindProj::Call { fut } => return fut.poll(cx),
                KindProj::Local { res } => match res.take() {
                    Some(res) => return Poll::Ready(Ok(res)),
                    None => panic!("ResponseFuture polled after completion"),
                },
                KindProj::Delay { sleep, then } => {
                    ready!(sleep.as_mut().poll(cx));
                    match then.take() {
                        Some(then) => *then,
                        None => panic!("ResponseFuture polled after completion"),
                    }
                }
            };
            self.as_mut().project().kind.set(next);
        }
    }
}

pin_project! {
    /// The answer with what the decision adds: CORS headers, the route's response header
    /// operations and the decision in its extensions; a 504 when time ran out.
    pub(crate) struct Finish<S, ReqB, ResB, T>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
        T: Timer,
    {
        #[pin]
        inner: Deadline<S, ReqB, ResB, T>,
        decision: Option<Decision>,
        insert: bool,
        respond: bool,
        cors: Option<Box<http::HeaderMap>>,
    }
}

impl<S, ReqB, ResB, T> Finish<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    #[inline(always)]
    fn new(state: TryState<S, ReqB, T>, called: bool, c: ResponsePlan<S, ReqB, T>) -> Self {
        let tries = Tries {
            state,
            again: c.again,
            called,
        };
        Finish {
            inner: Deadline {
                tries,
                timeout: c.timeout,
                sleep: None,
            },
            decision: c.decision,
            insert: c.insert,
            respond: c.respond,
            cors: c.cors,
        }
    }
}

impl<S, ReqB, ResB, T> Future for Finish<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    T: Timer,
{
    type Output = Result<Response<MeshBody<ResB>>, S::Error>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let ended = ready!(this.inner.poll(cx))?;
        let mut res = match ended {
            Ended::Answered(res) => res.map(MeshBody::new),
            Ended::TimedOut => {
                let mut res = super::reply::upstream_timeout();
                let ut = ResponseFlags::UPSTREAM_REQUEST_TIMEOUT;
                if let Some(mut d) = this.decision.take().filter(|_| *this.insert) {
                    d.add_flags(ut);
                    res.extensions_mut().insert(d);
                }
                res.extensions_mut().insert(LayerFlags(ut));
                return Poll::Ready(Ok(res));
            }
        };
        if let Some(cors) = this.cors.take() {
            res.headers_mut().extend(*cors);
        }
        if let Some(mut d) = this.decision.take() {
            if *this.respond {
                d.apply_response(&mut res);
            }
            if *this.insert {
                if let Some(LayerFlags(flags)) = res.extensions().get::<LayerFlags>() {
                    d.add_flags(*flags);
                }
                res.extensions_mut().insert(d);
            }
        }
        Poll::Ready(Ok(res))
    }
}

pin_project! {
    /// The route timeout around the tries: armed when a call first waits (or a retry
    /// begins), and answered with `Ended::TimedOut` once it passes.
    pub(crate) struct Deadline<S, ReqB, ResB, T>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
        T: Timer,
    {
        #[pin]
        tries: Tries<S, ReqB, ResB, T>,
        timeout: Option<(T, Duration)>,
        sleep: Option<Pin<Box<T::Sleep>>>,
    }
}

impl<S, ReqB, ResB, T> Future for Deadline<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    T: Timer,
{
    type Output = Result<Ended<Response<ResB>>, S::Error>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.tries.as_mut().poll(cx) {
            Poll::Ready(ended) => Poll::Ready(ended),
            Poll::Pending => {
                // Only a call that waits pays for the timer.
                if this.tries.called
                    && let Some((timer, d)) = this.timeout.take()
                {
                    *this.sleep = Some(Box::pin(timer.sleep(d)));
                }
                let expired = this
                    .sleep
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Ok(Ended::TimedOut))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

pin_project! {
    /// Calling the service: made ready first when it was not called yet, tried again as the
    /// route's retry policy says (after a back-off), each try bounded by the per-try timeout.
    pub(crate) struct Tries<S, ReqB, ResB, T>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
        T: Timer,
    {
        #[pin]
        state: TryState<S, ReqB, T>,
        again: Option<Box<RetryState<S, ReqB, T>>>,
        // Whether the service has been called (the route timeout starts then).
        called: bool,
    }
}

pin_project! {
    #[project = TryProj]
    enum TryState<S, ReqB, T>
    where
        S: Service<Request<ReqB>>,
        T: Timer,
    {
        Inner { #[pin] fut: S::Future },
        Ready { svc: Option<S>, req: Option<Request<ReqB>> },
        // The answer of the try before (none after a per-try timeout) stands when the client
        // goes away meanwhile.
        Backoff {
            sleep: Pin<Box<T::Sleep>>,
            req: Option<Request<ReqB>>,
            last: Option<Result<S::Response, S::Error>>,
        },
    }
}

impl<S, ReqB, ResB, T> Future for Tries<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    T: Timer,
{
    type Output = Result<Ended<Response<ResB>>, S::Error>;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            let next = match this.state.project() {
                TryProj::Inner { fut } => match fut.poll(cx) {
                    Poll::Ready(mut result) => match this.again.as_mut() {
                        None => return Poll::Ready(result.map(Ended::Answered)),
                        Some(again) => {
                            again.try_over();
                            match again.after(&result) {
                                None => {
                                    if again.exhausted
                                        && let Ok(res) = result.as_mut()
                                    {
                                        let urx = ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED;
                                        res.extensions_mut().insert(LayerFlags(urx));
                                    }
                                    return Poll::Ready(result.map(Ended::Answered));
                                }
                                Some(req) => TryState::Backoff {
                                    sleep: again.backoff_sleep(),
                                    req: Some(req),
                                    last: Some(result),
                                },
                            }
                        }
                    },
                    Poll::Pending => {
                        let Some(again) = this.again.as_mut() else {
                            return Poll::Pending;
                        };
                        if !again.poll_per_try(cx) {
                            return Poll::Pending;
                        }
                        // The try outlived its per-try timeout: drop it, maybe retry.
                        again.try_over();
                        match again.after_timeout() {
                            Some(req) => TryState::Backoff {
                                sleep: again.backoff_sleep(),
                                req: Some(req),
                                last: None,
                            },
                            None => return Poll::Ready(Ok(Ended::TimedOut)),
                        }
                    }
                },
                TryProj::Ready { svc, req } => {
                    let Some(service) = svc.as_mut() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    ready!(service.poll_ready(cx))?;
                    let (Some(mut service), Some(req)) = (svc.take(), req.take()) else {
                        panic!("ResponseFuture polled after completion");
                    };
                    *this.called = true;
                    TryState::Inner {
                        fut: service.call(req),
                    }
                }
                TryProj::Backoff { sleep, req, last } => {
                    if let (Some(again), Some(next)) = (this.again.as_ref(), req.as_mut())
                        && again.client_gone(next, cx)
                    {
                        return Poll::Ready(match last.take() {
                            Some(result) => result.map(Ended::Answered),
                            None => Ok(Ended::TimedOut),
                        });
                    }
                    ready!(sleep.as_mut().poll(cx));
                    TryState::Ready {
                        svc: this.again.as_ref().and_then(|a| a.svc.clone()),
                        req: req.take(),
                    }
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

impl<S, ReqB, ResB, T> std::fmt::Debug for ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
