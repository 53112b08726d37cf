//! [`MeshRouter`]: the rules as a dispatcher to labelled destination services.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use tower_service::Service;

use super::future::ResponseFuture;
use super::pipeline::{Chosen, Dispatch, carry_out};
use super::replay::{BodyCopy, ReplayBody};
use super::retry_state::{Deferred, Mirrored};
use super::service::{DefaultTimer, MeshLayer};
use super::shared::{BodyMode, MirrorCounters, MirrorStats, Replaying, Shared, Streaming};
use super::timer::Timer;
use crate::model::{Decision, Labels, normalize_host};

/// A registry of destination services, each keyed by a host and its workload labels.
///
/// A destination chosen by the rules (a host and labels, e.g. `reviews` with
/// `version: v2`) is served by every registered service of that host whose labels include
/// those labels; several are used in turn (round robin).
///
/// ```
/// use tower_mesh::layer::Destinations;
///
/// let destinations = Destinations::new()
///     .add("helloworld-service", [("version", "v1")], "v1 handler")
///     .add("helloworld-service", [("version", "v2")], "v2 handler");
/// assert_eq!(destinations.len(), 2);
/// ```
pub struct Destinations<S> {
    entries: Vec<Entry<S>>,
}

struct Entry<S> {
    host: String,
    labels: Labels,
    service: S,
}

impl<S> Default for Destinations<S> {
    fn default() -> Self {
        Destinations {
            entries: Vec::new(),
        }
    }
}

impl<S> fmt::Debug for Destinations<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|e| format!("{} {}", e.host, e.labels)),
            )
            .finish()
    }
}

impl<S> Destinations<S> {
    /// An empty registry.
    pub fn new() -> Self {
        Destinations::default()
    }

    /// Registers `service` for `host` with workload `labels`.
    pub fn add<K: Into<String>, V: Into<String>>(
        mut self,
        host: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        service: S,
    ) -> Self {
        let host = normalize_host(host.as_bytes()).map_or_else(String::new, |h| h.into_owned());
        self.entries.push(Entry {
            host,
            labels: Labels::from_iter(labels),
            service,
        });
        self
    }

    /// How many services are registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One of the services whose host fits (`fits_host`) and whose labels include `labels`,
    /// taking turns.
    fn pick(
        &self,
        fits_host: impl Fn(&str) -> bool,
        labels: &Labels,
        turn: &AtomicUsize,
    ) -> Option<&S> {
        let fits = |e: &&Entry<S>| fits_host(&e.host) && labels.is_subset_of(&e.labels);
        let count = self.entries.iter().filter(fits).count();
        if count == 0 {
            return None;
        }
        let i = if count == 1 {
            0
        } else {
            turn.fetch_add(1, Ordering::Relaxed) % count
        };
        self.entries.iter().filter(fits).nth(i).map(|e| &e.service)
    }

    /// A service for the destination the rules chose: a registered host that is the
    /// destination's host, or its short or long form (`reviews` and
    /// `reviews.default.svc.cluster.local` name one service), with the destination's labels.
    fn for_destination(&self, host: &str, labels: &Labels, turn: &AtomicUsize) -> Option<&S> {
        let host = normalize_host(host.as_bytes())?;
        self.pick(|registered| same_service(registered, &host), labels, turn)
    }

    /// A service for a request that no configuration covers: only one registered under
    /// exactly the request's host (normalised: no port, no trailing dot, lower case). A longer
    /// or shorter name never stands for it, so a made-up host cannot reach a configured service
    /// around its rules.
    fn for_uncovered(&self, host: &str, turn: &AtomicUsize) -> Option<&S> {
        static ANY: Labels = Labels::new();
        let host = normalize_host(host.as_bytes())?;
        self.pick(|registered| registered == host, &ANY, turn)
    }
}

/// `reviews` and `reviews.default.svc.cluster.local` name the same service: one is the other
/// followed by more DNS labels. Both are normalised (lower case).
fn same_service(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.starts_with(short) && (long.len() == short.len() || long.as_bytes()[short.len()] == b'.')
}

/// Routes each request to the destination service the rules choose.
///
/// Built by [`MeshLayer::route_to`]. Always ready: it calls a clone of the chosen destination,
/// driving it to readiness first (as axum's router does), so one destination that is not ready
/// holds back only the requests routed to it. Wrap a destination in `tower::buffer::Buffer`
/// when it needs backpressure of its own.
///
/// A request routed to labels that no registered service carries gets 503
/// `no healthy upstream`, as Envoy answers for an empty subset. A request no configuration
/// covers goes to the services registered for its host, in turn.
///
/// # Mirrors
///
/// Built from a layer with [`MeshLayer::replay_bodies`], the router carries out routes'
/// retries and mirrors. A mirrored copy goes to a registered destination of the mirror's host
/// and labels, with `-shadow` appended to its host (`reviews` becomes `reviews-shadow`), on a
/// task of its own (`tokio::spawn`, feature `tokio`): the caller never waits for it, and its
/// answer or failure is ignored. A copy of a request with a body goes once a try has read the
/// whole body, and is dropped if none does. [`MeshRouter::mirror_stats`] counts the copies.
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
/// use tower_mesh::layer::Destinations;
/// type Svc = tower::util::BoxCloneSyncService<Request<String>, Response<String>, Infallible>;
/// let answer = |text: &'static str| Svc::new(service_fn(move |_req: Request<String>| async move {
///     Ok::<_, Infallible>(Response::new(text.to_string()))
/// }));
/// let router = MeshLayer::new(rules).route_to(
///     Destinations::new()
///         .add("hello", [("version", "v1")], answer("hello v1"))
///         .add("other", [("version", "v1")], answer("other v1")),
/// );
/// let res = router.clone().oneshot(Request::get("http://hello/").body(String::new())?).await?;
/// assert_eq!(res.into_body().collect().await?.to_bytes(), "hello v1");
/// // No rule covers `other`: it goes to the service registered for exactly that host.
/// let res = router.clone().oneshot(Request::get("http://other/").body(String::new())?).await?;
/// assert_eq!(res.into_body().collect().await?.to_bytes(), "other v1");
/// // A host nobody registered gets 503, as Envoy answers a cluster with no endpoints.
/// let res = router.oneshot(Request::get("http://hello.evil.example/").body(String::new())?).await?;
/// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
/// # Ok(()) }
/// ```
pub struct MeshRouter<S, T = DefaultTimer, M = Streaming> {
    destinations: Arc<Destinations<S>>,
    shared: Arc<Shared<T>>,
    next: Arc<AtomicUsize>,
    mode: std::marker::PhantomData<fn() -> M>,
}

impl<S, T, M> Clone for MeshRouter<S, T, M> {
    fn clone(&self) -> Self {
        MeshRouter {
            destinations: self.destinations.clone(),
            shared: self.shared.clone(),
            next: self.next.clone(),
            mode: std::marker::PhantomData,
        }
    }
}

impl<S, T, M> fmt::Debug for MeshRouter<S, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshRouter")
            .field("destinations", &self.destinations)
            .field("rules", &self.shared.rules)
            .finish_non_exhaustive()
    }
}

impl<T: Timer, M> MeshLayer<T, M> {
    /// A router that sends each request to the registered destination the rules choose.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{ServiceExt, service_fn, util::BoxCloneSyncService};
    /// use tower_mesh::{RuleSet, layer::{Destinations, MeshLayer}};
    ///
    /// type Svc = BoxCloneSyncService<Request<String>, Response<String>, Infallible>;
    /// fn version(v: &'static str) -> Svc {
    ///     BoxCloneSyncService::new(service_fn(move |_req: Request<String>| async move {
    ///         Ok::<_, Infallible>(Response::new(format!("Hello World! ({v})")))
    ///     }))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rules = RuleSet::from_yaml(r#"
    /// apiVersion: config.istio.io/v1alpha2
    /// kind: RouteRule
    /// metadata: {name: helloworld-service}
    /// spec:
    ///   destination: {name: helloworld-service}
    ///   match:
    ///     request:
    ///       headers:
    ///         user-agent: {regex: ".*Chrome.*"}
    ///   route:
    ///   - labels: {version: v2}
    /// "#)?;
    /// let router = MeshLayer::new(rules).host("helloworld-service").route_to(
    ///     Destinations::new()
    ///         .add("helloworld-service", [("version", "v1")], version("v1"))
    ///         .add("helloworld-service", [("version", "v2")], version("v2")),
    /// );
    /// let req = Request::get("/").header("user-agent", "Chrome/70").body(String::new())?;
    /// let res = router.oneshot(req).await?;
    /// use http_body_util::BodyExt;
    /// assert_eq!(res.into_body().collect().await?.to_bytes(), "Hello World! (v2)");
    /// # Ok(()) }
    /// ```
    pub fn route_to<S>(&self, destinations: Destinations<S>) -> MeshRouter<S, T, M> {
        MeshRouter {
            destinations: Arc::new(destinations),
            shared: self.shared(),
            next: Arc::new(AtomicUsize::new(0)),
            mode: std::marker::PhantomData,
        }
    }
}

impl<S, T, M> MeshRouter<S, T, M> {
    /// What happened to mirrored copies so far.
    pub fn mirror_stats(&self) -> MirrorStats {
        self.shared.mirrors.snapshot()
    }
}

impl<S: Clone, T: Timer, M> MeshRouter<S, T, M> {
    /// Decides, then routes the request to the chosen destination. `mirror` turns the mirrors
    /// that fired into the sending of their copies.
    fn dispatch<ReqB, ResB>(
        &self,
        req: Request<ReqB>,
        mirror: impl FnOnce(&Self, Mirrored) -> Option<(Deferred, BodyCopy)>,
    ) -> ResponseFuture<S, M::Body, ResB, T>
    where
        M: BodyMode<ReqB>,
        S: Service<Request<M::Body>, Response = Response<ResB>>,
    {
        let mut picker = Picker {
            destinations: &self.destinations,
            next: &self.next,
            target: self.shared.context.host(),
        };
        carry_out::<_, M, _, _, _>(&self.shared, req, &mut picker, |m| mirror(self, m))
    }
}

/// The router sends a forwarded request to the registered service the decision names, or, for
/// a request no configuration covers, to the one registered for exactly its host.
struct Picker<'a, S> {
    destinations: &'a Destinations<S>,
    next: &'a AtomicUsize,
    /// The host the layer serves, when it names one.
    target: Option<&'a str>,
}

impl<S: Clone> Dispatch for Picker<'_, S> {
    type Svc = S;
    const MIRRORS: bool = true;
    const REPORTER: &'static str = "source";

    #[inline]
    fn choose<B>(&mut self, decision: &Decision, req: &Request<B>) -> Option<Chosen<'_, S>> {
        let d = self.destinations;
        let svc = match decision.destination() {
            Some(dest) => d.for_destination(dest.host(), dest.labels(), self.next),
            None => {
                let host = self.target.or_else(|| {
                    req.uri()
                        .authority()
                        .map(|a| a.as_str())
                        .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok())
                })?;
                d.for_uncovered(host, self.next)
            }
        };
        svc.cloned().map(Chosen::Picked)
    }
}

impl<S, ReqB, ResB, T> Service<Request<ReqB>> for MeshRouter<S, T, Streaming>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ResB: http_body::Body,
    T: Timer,
{
    type Response = Response<super::MeshBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, ResB, T>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        self.dispatch(req, |_, _| None)
    }
}

impl<S, ReqB, ResB, T> Service<Request<ReqB>> for MeshRouter<S, T, Replaying>
where
    ReqB: http_body::Body<Data = Bytes> + Send + 'static,
    S: Service<Request<ReplayBody<ReqB>>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResB: http_body::Body + Send + 'static,
    T: Timer,
{
    type Response = Response<super::MeshBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReplayBody<ReqB>, ResB, T>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        self.dispatch(req, |router, mirrored| {
            let counters = router.shared.mirrors.clone();
            let limit = router.shared.mirror_limit;
            let mut targets = Vec::with_capacity(mirrored.fired.len());
            for dest in &mirrored.fired {
                match router
                    .destinations
                    .for_destination(dest.host(), dest.labels(), &router.next)
                {
                    Some(svc) => targets.push((svc.clone(), dest.host().to_owned())),
                    None => counters.drop_one("no registered destination serves the mirror"),
                }
            }
            if targets.is_empty() {
                return None;
            }
            let head = mirrored.head;
            let timeout = mirrored.timeout;
            let send: Deferred = Box::new(move |keeper: &BodyCopy| {
                for (svc, host) in targets {
                    let Some(body) = keeper.replay_whole::<ReqB>() else {
                        counters.drop_one("the request body was not kept whole");
                        continue;
                    };
                    let mut head = head.clone();
                    shadow_host(&mut head, &host);
                    let req = Request::from_parts(head, body);
                    spawn_shadow(&counters, limit, timeout, svc, req);
                }
            });
            Some((send, mirrored.keeper))
        })
    }
}

/// Marks one shadow request in flight until dropped.
struct InFlight(Arc<MirrorCounters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight_change(false, usize::MAX);
    }
}

/// Sends a shadow request on a task of its own, within the limit on those in flight; a copy
/// still running after `timeout` is given up (counted as failed).
fn spawn_shadow<S, B, ResB>(
    counters: &Arc<MirrorCounters>,
    limit: usize,
    timeout: std::time::Duration,
    #[cfg_attr(not(feature = "tokio"), allow(unused_mut))] mut svc: S,
    req: Request<B>,
) where
    S: Service<Request<B>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResB: Send + 'static,
{
    if !counters.in_flight_change(true, limit) {
        counters.drop_one("too many shadow requests in flight");
        return;
    }
    let guard = InFlight(counters.clone());
    #[cfg(feature = "tokio")]
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let task = async move {
            let call = async {
                std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
                svc.call(req).await
            };
            let answered = tokio::time::timeout(timeout, call).await;
            if !matches!(answered, Ok(Ok(_))) {
                guard.0.failed_one();
            }
            drop(guard);
        };
        counters.sent_one();
        runtime.spawn(task);
        return;
    }
    let _ = (timeout, svc, req, guard);
    counters.drop_one("no Tokio runtime to send the copy on");
}

/// Appends `-shadow` to the request's host, as Envoy does for a mirrored copy: in the URI's
/// authority and the `Host` header, keeping any port. A request with neither gets
/// `Host: <mirror host>-shadow`.
fn shadow_host(head: &mut http::request::Parts, mirror_host: &str) {
    fn shadowed(host: &str) -> String {
        let (name, port) = match host.rsplit_once(':') {
            Some((h, p))
                if !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') =>
            {
                (h, Some(p))
            }
            _ => (host, None),
        };
        match port {
            Some(p) => format!("{name}-shadow:{p}"),
            None => format!("{name}-shadow"),
        }
    }
    let mut done = false;
    if let Some(authority) = head.uri.authority() {
        let mut parts = head.uri.clone().into_parts();
        if let Ok(a) = shadowed(authority.as_str()).parse() {
            parts.authority = Some(a);
            if let Ok(uri) = Uri::from_parts(parts) {
                head.uri = uri;
                done = true;
            }
        }
    }
    let host = head.headers.get(http::header::HOST);
    if let Some(v) = host
        .and_then(|h| h.to_str().ok())
        .and_then(|h| HeaderValue::from_str(&shadowed(h)).ok())
    {
        head.headers.insert(http::header::HOST, v);
        done = true;
    }
    if !done && let Ok(v) = HeaderValue::from_str(&shadowed(mirror_host)) {
        head.headers.insert(http::header::HOST, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_service_names() {
        assert!(same_service("reviews", "reviews.default.svc.cluster.local"));
        assert!(same_service("reviews.default.svc.cluster.local", "reviews"));
        assert!(!same_service("reviews", "reviewsx"));
    }

    #[test]
    fn shadow_hosts_keep_the_port() {
        let shadow = |uri: &str, host: Option<&str>| {
            let mut req = Request::get(uri);
            if let Some(h) = host {
                req = req.header("host", h);
            }
            let (mut head, ()) = req.body(()).unwrap().into_parts();
            shadow_host(&mut head, "reviews");
            (
                head.uri.to_string(),
                head.headers
                    .get("host")
                    .map(|h| h.to_str().unwrap().to_owned()),
            )
        };
        assert_eq!(
            shadow("/r", Some("reviews:9080")),
            ("/r".into(), Some("reviews-shadow:9080".into()))
        );
        assert_eq!(
            shadow("http://ratings/r", None),
            ("http://ratings-shadow/r".into(), None)
        );
        assert_eq!(
            shadow("/r", None),
            ("/r".into(), Some("reviews-shadow".into()))
        );
    }
}
