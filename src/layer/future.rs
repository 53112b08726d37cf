//! The response future shared by [`MeshService`](super::MeshService) and
//! [`MeshRouter`](super::MeshRouter).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::again::Again;
use super::body::MeshBody;
use super::timer::Timer;
use crate::model::Decision;

/// What happens once an injected delay is over.
pub(crate) enum Next<S, ReqB, ResB> {
    /// Call a service (made ready first) with the request.
    Call { svc: S, req: Request<ReqB> },
    /// Answer with a local reply.
    Reply(Response<MeshBody<ResB>>),
}

pin_project! {
    /// The response future of tower-mesh's services.
    pub struct ResponseFuture<S, ReqB, ResB, T>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
        T: Timer,
    {
        #[pin]
        state: State<S, ReqB, ResB, T>,
        // The decision, when the response gets it in its extensions (`insert`) or its
        // response header operations apply to the inner response (`respond`).
        decision: Option<Decision>,
        insert: bool,
        respond: bool,
        // CORS headers for the inner response.
        cors: Option<Box<http::HeaderMap>>,
        // The route timeout, armed when the inner call first returns Pending.
        timeout: Option<(T, Duration)>,
        deadline: Option<Pin<Box<T::Sleep>>>,
        // What retries and late mirrors need.
        again: Option<Box<Again<S, ReqB, T>>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB, ResB, T>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
        T: Timer,
    {
        Inner { #[pin] fut: S::Future },
        Ready { svc: Option<S>, req: Option<Request<ReqB>> },
        Delay { sleep: Pin<Box<T::Sleep>>, next: Option<Box<Next<S, ReqB, ResB>>> },
        Local { res: Option<Response<MeshBody<ResB>>> },
        Backoff { sleep: Pin<Box<T::Sleep>>, req: Option<Request<ReqB>> },
    }
}

impl<S, ReqB, ResB, T> ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    /// The inner service was already called.
    #[inline(always)]
    pub(crate) fn called(fut: S::Future) -> Self {
        ResponseFuture {
            state: State::Inner { fut },
            decision: None,
            insert: false,
            respond: false,
            cors: None,
            timeout: None,
            deadline: None,
            again: None,
        }
    }

    /// Drive `svc` to readiness, then call it.
    #[inline(always)]
    pub(crate) fn oneshot(svc: S, req: Request<ReqB>) -> Self {
        ResponseFuture {
            state: State::Ready {
                svc: Some(svc),
                req: Some(req),
            },
            decision: None,
            insert: false,
            respond: false,
            cors: None,
            timeout: None,
            deadline: None,
            again: None,
        }
    }

    /// Sleep, then carry on with `next`.
    #[inline(always)]
    pub(crate) fn delayed(sleep: T::Sleep, next: Next<S, ReqB, ResB>) -> Self {
        ResponseFuture {
            state: State::Delay {
                sleep: Box::pin(sleep),
                next: Some(Box::new(next)),
            },
            decision: None,
            insert: false,
            respond: false,
            cors: None,
            timeout: None,
            deadline: None,
            again: None,
        }
    }

    /// Answer at once.
    #[inline(always)]
    pub(crate) fn local(res: Response<MeshBody<ResB>>) -> Self {
        ResponseFuture {
            state: State::Local { res: Some(res) },
            decision: None,
            insert: false,
            respond: false,
            cors: None,
            timeout: None,
            deadline: None,
            again: None,
        }
    }

    /// Answers 504 `upstream request timeout` when the inner service takes longer than
    /// `timeout` (counted from when it is called, after any injected delay).
    #[inline(always)]
    pub(crate) fn with_timeout(mut self, timer: &T, timeout: Option<Duration>) -> Self {
        self.timeout = timeout.map(|d| (timer.clone(), d));
        self
    }

    /// Adds CORS headers to the inner service's response.
    #[inline(always)]
    pub(crate) fn with_cors(mut self, headers: Option<http::HeaderMap>) -> Self {
        self.cors = headers.map(Box::new);
        self
    }

    /// Retries the request as `again` says, and sends its late mirrors.
    #[inline(always)]
    pub(crate) fn with_again(mut self, again: Option<Box<Again<S, ReqB, T>>>) -> Self {
        self.again = again;
        self
    }

    /// Carries `decision` to the response: into its extensions when `insert`, and its
    /// response header operations onto the inner service's response.
    #[inline(always)]
    pub(crate) fn carry(mut self, decision: Decision, insert: bool) -> Self {
        self.respond = decision.has_message_changes();
        self.insert = insert;
        if insert || self.respond {
            self.decision = Some(decision);
        }
        self
    }
}

impl<S, ReqB, ResB, T> Future for ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    T: Timer,
{
    type Output = Result<Response<MeshBody<ResB>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            match this.state.project() {
                StateProj::Inner { fut } => {
                    let result = match fut.poll(cx) {
                        Poll::Ready(result) => result,
                        Poll::Pending => {
                            // Arm the route timeout only for calls that do not finish at once.
                            arm(this.timeout, this.deadline);
                            if expired(this.deadline, cx) {
                                return Poll::Ready(Ok(timed_out(this.decision, *this.insert)));
                            }
                            let Some(again) = this.again.as_mut() else {
                                return Poll::Pending;
                            };
                            if !again.poll_per_try(cx) {
                                return Poll::Pending;
                            }
                            // The try outlived its per-try timeout: drop it, maybe retry.
                            again.try_over();
                            let Some(req) = again.after_timeout() else {
                                return Poll::Ready(Ok(timed_out(this.decision, *this.insert)));
                            };
                            let sleep = again.backoff_sleep();
                            self.as_mut().project().state.set(State::Backoff {
                                sleep,
                                req: Some(req),
                            });
                            continue;
                        }
                    };
                    let mut this = self.as_mut().project();
                    if let Some(again) = this.again.as_mut() {
                        again.try_over();
                        if let Some(req) = again.after(&result) {
                            drop(result);
                            arm(this.timeout, this.deadline);
                            let sleep = again.backoff_sleep();
                            this.state.set(State::Backoff {
                                sleep,
                                req: Some(req),
                            });
                            continue;
                        }
                    }
                    let mut res = result?.map(MeshBody::new);
                    if let Some(cors) = this.cors.take() {
                        res.headers_mut().extend(*cors);
                    }
                    if let Some(d) = this.decision.take() {
                        if *this.respond {
                            d.apply_response(&mut res);
                        }
                        if *this.insert {
                            res.extensions_mut().insert(d);
                        }
                    }
                    return Poll::Ready(Ok(res));
                }
                StateProj::Ready { svc, req } => {
                    let Some(service) = svc.as_mut() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    match service.poll_ready(cx) {
                        Poll::Ready(ready) => ready?,
                        Poll::Pending => {
                            if expired(this.deadline, cx) {
                                return Poll::Ready(Ok(timed_out(this.decision, *this.insert)));
                            }
                            return Poll::Pending;
                        }
                    }
                    let (Some(mut service), Some(req)) = (svc.take(), req.take()) else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let fut = service.call(req);
                    self.as_mut().project().state.set(State::Inner { fut });
                }
                StateProj::Backoff { sleep, req } => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        if expired(this.deadline, cx) {
                            return Poll::Ready(Ok(timed_out(this.decision, *this.insert)));
                        }
                        return Poll::Pending;
                    }
                    let svc = this.again.as_ref().and_then(|a| a.svc.clone());
                    let req = req.take();
                    self.as_mut().project().state.set(State::Ready { svc, req });
                }
                StateProj::Delay { sleep, next } => {
                    ready!(sleep.as_mut().poll(cx));
                    match next.take().map(|n| *n) {
                        Some(Next::Call { svc, req }) => {
                            self.as_mut().project().state.set(State::Ready {
                                svc: Some(svc),
                                req: Some(req),
                            });
                        }
                        Some(Next::Reply(res)) => return Poll::Ready(Ok(res)),
                        None => panic!("ResponseFuture polled after completion"),
                    }
                }
                StateProj::Local { res } => match res.take() {
                    Some(res) => return Poll::Ready(Ok(res)),
                    None => panic!("ResponseFuture polled after completion"),
                },
            }
        }
    }
}

/// Arms the route timeout, once.
fn arm<T: Timer>(timeout: &mut Option<(T, Duration)>, deadline: &mut Option<Pin<Box<T::Sleep>>>) {
    if let Some((timer, d)) = timeout.take() {
        *deadline = Some(Box::pin(timer.sleep(d)));
    }
}

/// Whether the route timeout, if armed, has expired.
fn expired<F: Future<Output = ()>>(
    deadline: &mut Option<Pin<Box<F>>>,
    cx: &mut Context<'_>,
) -> bool {
    deadline
        .as_mut()
        .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
}

/// The 504 answer to a request that timed out, with the decision.
fn timed_out<B>(decision: &mut Option<Decision>, insert: bool) -> Response<MeshBody<B>> {
    let mut res = super::reply::upstream_timeout();
    if let Some(d) = decision.take().filter(|_| insert) {
        res.extensions_mut().insert(d);
    }
    res
}

impl<S, ReqB, ResB, T> std::fmt::Debug for ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}
