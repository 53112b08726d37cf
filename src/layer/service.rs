//! [`MeshLayer`] and [`MeshService`]: the rules enforced around one service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::future::{Next, ResponseFuture};
use super::reply::{local_reply, preflight_reply};
use super::rules::MeshRules;
use super::timer::Timer;
use crate::config::RuleSet;
use crate::model::{Caller, Context, Cors, Decision, Outcome, Sampler, ThreadSampler};

#[cfg(feature = "tokio")]
use super::timer::TokioTimer;

/// What every service built from one layer shares.
pub(crate) struct Shared<T> {
    pub(crate) rules: MeshRules,
    /// Whether decisions go into request and response extensions.
    pub(crate) extensions: bool,
    pub(crate) context: Context,
    pub(crate) sampler: Arc<dyn Sampler>,
    pub(crate) timer: T,
}

impl<T> Shared<T> {
    /// Evaluates a request with the rules in force, puts the decision in its extensions, and
    /// logs it.
    pub(crate) fn decide<B>(&self, req: &mut Request<B>) -> Decision {
        let decision = {
            let rules = self.rules.swap_guard();
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

    /// The copy of the decision for the response's extensions, when they get one.
    pub(crate) fn for_response(&self, decision: &Decision) -> Option<Decision> {
        self.extensions.then(|| decision.clone())
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
pub struct MeshLayer<T = DefaultTimer> {
    shared: Arc<Shared<T>>,
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

impl<T> Clone for MeshLayer<T> {
    fn clone(&self) -> Self {
        MeshLayer {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for MeshLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshLayer")
            .field("rules", &self.shared.rules)
            .field("context", &self.shared.context)
            .finish_non_exhaustive()
    }
}

impl MeshLayer<DefaultTimer> {
    /// A layer enforcing `rules` (a [`RuleSet`], or a [`MeshRules`] handle to reload them).
    pub fn new(rules: impl Into<MeshRules>) -> Self {
        MeshLayer {
            shared: Arc::new(Shared {
                rules: rules.into(),
                extensions: true,
                context: Context::new(),
                sampler: Arc::new(ThreadSampler),
                timer: DefaultTimer::default(),
            }),
        }
    }
}

impl<T: Timer> MeshLayer<T> {
    fn with(self, f: impl FnOnce(&mut Shared<T>)) -> Self
    where
        T: Clone,
    {
        let mut shared = Shared {
            rules: self.shared.rules.clone(),
            extensions: self.shared.extensions,
            context: self.shared.context.clone(),
            sampler: self.shared.sampler.clone(),
            timer: self.shared.timer.clone(),
        };
        f(&mut shared);
        MeshLayer {
            shared: Arc::new(shared),
        }
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

    /// The timer delay faults sleep on.
    pub fn timer<U: Timer>(self, timer: U) -> MeshLayer<U> {
        MeshLayer {
            shared: Arc::new(Shared {
                rules: self.shared.rules.clone(),
                extensions: self.shared.extensions,
                context: self.shared.context.clone(),
                sampler: self.shared.sampler.clone(),
                timer,
            }),
        }
    }

    /// The handle on the rules, to reload them while the service runs.
    pub fn rules(&self) -> MeshRules {
        self.shared.rules.clone()
    }

    /// The rules in force now.
    pub fn current_rules(&self) -> Arc<RuleSet> {
        self.shared.rules.current()
    }

    pub(crate) fn shared(&self) -> Arc<Shared<T>> {
        self.shared.clone()
    }
}

impl<S, T: Timer> Layer<S> for MeshLayer<T> {
    type Service = MeshService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        MeshService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`MeshLayer`] builds around one inner service.
pub struct MeshService<S, T = DefaultTimer> {
    inner: S,
    shared: Arc<Shared<T>>,
}

impl<S: Clone, T> Clone for MeshService<S, T> {
    fn clone(&self) -> Self {
        MeshService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for MeshService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshService")
            .field("inner", &self.inner)
            .field("rules", &self.shared.rules)
            .finish_non_exhaustive()
    }
}

impl<S, T> MeshService<S, T> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqB, ResB, T> Service<Request<ReqB>> for MeshService<S, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    T: Timer,
{
    type Response = Response<super::MeshBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, ResB, T>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let decision = self.shared.decide(&mut req);
        let mut cors = None;
        let next = match local_reply(&decision) {
            Some(res) => Next::Reply(res),
            None => match decision.cors(&req) {
                Cors::Preflight(headers) => Next::Reply(preflight_reply(&decision, headers)),
                answer => {
                    if let Cors::Response(headers) = answer {
                        cors = Some(headers);
                    }
                    decision.apply_request(&mut req);
                    match decision.delay() {
                        None => {
                            let copy = self.shared.for_response(&decision);
                            let timeout = decision.route().and_then(|r| r.policy().timeout());
                            let respond = decision.has_message_changes().then_some(decision);
                            return ResponseFuture::called(self.inner.call(req), copy)
                                .respond_with(respond)
                                .with_timeout(&self.shared.timer, timeout)
                                .with_cors(cors);
                        }
                        Some(_) => Next::Call {
                            svc: self.inner.clone(),
                            req,
                        },
                    }
                }
            },
        };
        plan(&self.shared, decision, next).with_cors(cors)
    }
}

/// Sleeps first when a delay fired, then goes on with `next`.
pub(crate) fn plan<S, ReqB, ResB, T>(
    shared: &Shared<T>,
    decision: Decision,
    next: Next<S, ReqB, ResB>,
) -> ResponseFuture<S, ReqB, ResB, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: Timer,
{
    let copy = shared.for_response(&decision);
    let delay = decision.delay();
    let timeout = decision.route().and_then(|r| r.policy().timeout());
    let respond = decision.has_message_changes().then_some(decision);
    let fut = match (delay, next) {
        (Some(d), next) => ResponseFuture::delayed(shared.timer.sleep(d), next, copy),
        (None, Next::Reply(res)) => return ResponseFuture::local(res),
        (None, Next::Call { svc, req }) => ResponseFuture::oneshot(svc, req, copy),
    };
    fut.respond_with(respond)
        .with_timeout(&shared.timer, timeout)
}

/// Whether a decision sends the request on (to a destination or through).
pub(crate) fn forwards(decision: &Decision) -> bool {
    matches!(decision.outcome(), Outcome::Forward | Outcome::PassThrough)
}
