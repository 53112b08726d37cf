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
        carried: Carried<S, ReqB, T>,
        deadline: Option<Pin<Box<T::Sleep>>>,
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

/// What a response future carries besides its state: the decision for the response, the
/// route timeout, CORS headers, and the retry plan.
pub(crate) struct Carried<S, ReqB, T: Timer> {
    // The decision, when the response gets it in its extensions (`insert`) or its response
    // header operations apply to the inner response (`respond`).
    decision: Option<Decision>,
    insert: bool,
    respond: bool,
    // CORS headers for the inner response.
    cors: Option<Box<http::HeaderMap>>,
    // The route timeout, armed when the inner call first returns Pending.
    timeout: Option<(T, Duration)>,
    // What retries and late mirrors need.
    again: Option<Box<Again<S, ReqB, T>>>,
}

impl<S, ReqB, T: Timer> Carried<S, ReqB, T> {
    /// Carries `decision` to the response (into its extensions when `insert`, its response
    /// header operations onto the inner response), with the route's timeout on `timer`, CORS
    /// headers and a retry plan.
    #[inline]
    pub(crate) fn new(
        decision: Decision,
        insert: bool,
        timer: &T,
        cors: Option<http::HeaderMap>,
        again: Option<Box<Again<S, ReqB, T>>>,
    ) -> Self {
        let respond = decision.has_message_changes();
        let timeout = decision
            .route()
            .and_then(|r| r.policy().timeout())
            .map(|d| (timer.clone(), d));
        Carried {
            decision: (insert || respond).then_some(decision),
            insert,
            respond,
            cors: cors.map(Box::new),
            timeout,
            again,
        }
    }

    fn nothing() -> Self {
        Carried {
            decision: None,
            insert: false,
            respond: false,
            cors: None,
            timeout: None,
            again: None,
        }
    }
}

impl<S, ReqB, ResB, T> ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    /// The inner service was already called.
    #[inline]
    pub(crate) fn called(fut: S::Future, carried: Carried<S, ReqB, T>) -> Self {
        ResponseFuture {
            state: State::Inner { fut },
            carried,
            deadline: None,
        }
    }

    /// Drive `svc` to readiness, then call it.
    #[inline]
    pub(crate) fn oneshot(svc: S, req: Request<ReqB>, carried: Carried<S, ReqB, T>) -> Self {
        ResponseFuture {
            state: State::Ready {
                svc: Some(svc),
                req: Some(req),
            },
            carried,
            deadline: None,
        }
    }

    /// Sleep, then carry on with `next`.
    pub(crate) fn delayed(
        sleep: T::Sleep,
        next: Next<S, ReqB, ResB>,
        carried: Carried<S, ReqB, T>,
    ) -> Self {
        ResponseFuture {
            state: State::Delay {
                sleep: Box::pin(sleep),
                next: Some(Box::new(next)),
            },
            carried,
            deadline: None,
        }
    }

    /// Answer at once.
    pub(crate) fn local(res: Response<MeshBody<ResB>>) -> Self {
        ResponseFuture {
            state: State::Local { res: Some(res) },
            carried: Carried::nothing(),
            deadline: None,
        }
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
            let mut on = Around {
                carried: this.carried,
                deadline: this.deadline,
            };
            let step = match this.state.project() {
                StateProj::Inner { fut } => match fut.poll(cx) {
                    // Most answers are final: finish them in place.
                    Poll::Ready(result) if on.carried.again.is_none() => {
                        return Poll::Ready(result.map(|res| finish(on.carried, res)));
                    }
                    Poll::Ready(result) => on.answered(result),
                    Poll::Pending => on.call_pending(cx),
                },
                StateProj::Ready { svc, req } => on.call_when_ready(svc, req, cx),
                StateProj::Backoff { sleep, req } => match sleep.as_mut().poll(cx) {
                    Poll::Pending => on.waiting(cx),
                    Poll::Ready(()) => Step::Go(State::Ready {
                        svc: on.carried.again.as_ref().and_then(|a| a.svc.clone()),
                        req: req.take(),
                    }),
                },
                StateProj::Delay { sleep, next } => {
                    ready!(sleep.as_mut().poll(cx));
                    match next.take().map(|n| *n) {
                        Some(Next::Call { svc, req }) => Step::Go(State::Ready {
                            svc: Some(svc),
                            req: Some(req),
                        }),
                        Some(Next::Reply(res)) => Step::Answer(Ok(res)),
                        None => panic!("ResponseFuture polled after completion"),
                    }
                }
                StateProj::Local { res } => match res.take() {
                    Some(res) => Step::Answer(Ok(res)),
                    None => panic!("ResponseFuture polled after completion"),
                },
            };
            match step {
                Step::Go(state) => self.as_mut().project().state.set(state),
                Step::Answer(answer) => return Poll::Ready(answer),
                Step::Pending => return Poll::Pending,
            }
        }
    }
}

/// What one poll of the response future's state leads to.
enum Step<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    /// Go on in another state.
    Go(State<S, ReqB, ResB, T>),
    /// The answer.
    Answer(Result<Response<MeshBody<ResB>>, S::Error>),
    /// Not yet: the waker is registered.
    Pending,
}

/// What a step of the response future works with besides its state: what the decision
/// carries to the response (and the retry plan), and the route's deadline.
struct Around<'a, S, ReqB, T: Timer> {
    carried: &'a mut Carried<S, ReqB, T>,
    deadline: &'a mut Option<Pin<Box<T::Sleep>>>,
}

impl<S, ReqB, ResB, T> Around<'_, S, ReqB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    /// Waiting for something: 504 once the route timeout has passed.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Step<S, ReqB, ResB, T> {
        if expired(self.deadline, cx) {
            Step::Answer(Ok(timed_out(self.carried)))
        } else {
            Step::Pending
        }
    }

    /// Drives the chosen service to readiness, then calls it.
    fn call_when_ready(
        &mut self,
        svc: &mut Option<S>,
        req: &mut Option<Request<ReqB>>,
        cx: &mut Context<'_>,
    ) -> Step<S, ReqB, ResB, T> {
        let Some(service) = svc.as_mut() else {
            panic!("ResponseFuture polled after completion");
        };
        match service.poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Step::Answer(Err(e)),
            Poll::Pending => return self.waiting(cx),
        }
        let (Some(mut service), Some(req)) = (svc.take(), req.take()) else {
            panic!("ResponseFuture polled after completion");
        };
        Step::Go(State::Inner {
            fut: service.call(req),
        })
    }

    /// A call that has not answered yet: arms the route timeout (only calls that do not finish
    /// at once pay for it), and ends a try that outlived its per-try timeout (then maybe
    /// retries).
    fn call_pending(&mut self, cx: &mut Context<'_>) -> Step<S, ReqB, ResB, T> {
        arm(&mut self.carried.timeout, self.deadline);
        if expired(self.deadline, cx) {
            return Step::Answer(Ok(timed_out(self.carried)));
        }
        let Some(again) = self.carried.again.as_mut() else {
            return Step::Pending;
        };
        if !again.poll_per_try(cx) {
            return Step::Pending;
        }
        again.try_over();
        match again.after_timeout() {
            Some(req) => Step::Go(State::Backoff {
                sleep: again.backoff_sleep(),
                req: Some(req),
            }),
            None => Step::Answer(Ok(timed_out(self.carried))),
        }
    }

    /// The inner service answered: retry if the route's policy says so, else finish the
    /// response.
    fn answered(&mut self, result: Result<Response<ResB>, S::Error>) -> Step<S, ReqB, ResB, T> {
        if let Some(again) = self.carried.again.as_mut() {
            again.try_over();
            if let Some(req) = again.after(&result) {
                drop(result);
                arm(&mut self.carried.timeout, self.deadline);
                return Step::Go(State::Backoff {
                    sleep: again.backoff_sleep(),
                    req: Some(req),
                });
            }
        }
        Step::Answer(result.map(|res| finish(self.carried, res)))
    }
}

/// The inner service's response with what the decision adds: CORS headers, the route's
/// response header operations, and the decision in its extensions.
#[inline]
fn finish<S, ReqB, ResB, T: Timer>(
    carried: &mut Carried<S, ReqB, T>,
    res: Response<ResB>,
) -> Response<MeshBody<ResB>> {
    let mut res = res.map(MeshBody::new);
    if let Some(cors) = carried.cors.take() {
        res.headers_mut().extend(*cors);
    }
    if let Some(d) = carried.decision.take() {
        if carried.respond {
            d.apply_response(&mut res);
        }
        if carried.insert {
            res.extensions_mut().insert(d);
        }
    }
    res
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
fn timed_out<S, ReqB, T: Timer, B>(carried: &mut Carried<S, ReqB, T>) -> Response<MeshBody<B>> {
    let mut res = super::reply::upstream_timeout();
    if let Some(d) = carried.decision.take().filter(|_| carried.insert) {
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
            .field("decision", &self.carried.decision)
            .finish_non_exhaustive()
    }
}
