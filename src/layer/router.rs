//! [`MeshRouter`]: the rules as a dispatcher to labelled destination services.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::{Next, ResponseFuture};
use super::reply::{local_reply, no_healthy_upstream, preflight_reply};
use super::service::{DefaultTimer, MeshLayer, Shared, forwards, plan};
use super::timer::Timer;
use crate::model::{Cors, Decision, Labels};

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
        self.entries.push(Entry {
            host: normalize(host),
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

    /// One of the services for `host` whose labels include `labels`, taking turns.
    fn pick(&self, host: &str, labels: &Labels, turn: &AtomicUsize) -> Option<&S> {
        let host = strip_port(host);
        let fits = |e: &&Entry<S>| same_host(&e.host, host) && labels.is_subset_of(&e.labels);
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
}

fn strip_port(host: &str) -> &str {
    let host = if host.starts_with('[') {
        host.find(']').map_or(host, |i| &host[..=i])
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    host.trim_end_matches('.')
}

fn normalize(host: &str) -> String {
    strip_port(host).to_ascii_lowercase()
}

/// `reviews` and `reviews.default.svc.cluster.local` name the same service (ASCII case is
/// ignored).
fn same_host(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.len() >= short.len()
        && long.as_bytes()[..short.len()].eq_ignore_ascii_case(short.as_bytes())
        && (long.len() == short.len() || long.as_bytes()[short.len()] == b'.')
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
pub struct MeshRouter<S, T = DefaultTimer> {
    destinations: Arc<Destinations<S>>,
    shared: Arc<Shared<T>>,
    next: Arc<AtomicUsize>,
}

impl<S, T> Clone for MeshRouter<S, T> {
    fn clone(&self) -> Self {
        MeshRouter {
            destinations: self.destinations.clone(),
            shared: self.shared.clone(),
            next: self.next.clone(),
        }
    }
}

impl<S, T> fmt::Debug for MeshRouter<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshRouter")
            .field("destinations", &self.destinations)
            .field("rules", &self.shared.rules)
            .finish_non_exhaustive()
    }
}

impl<T: Timer> MeshLayer<T> {
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
    pub fn route_to<S>(&self, destinations: Destinations<S>) -> MeshRouter<S, T> {
        MeshRouter {
            destinations: Arc::new(destinations),
            shared: self.shared(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<S, T> MeshRouter<S, T> {
    fn choose(&self, decision: &Decision, host: Option<&str>) -> Option<&S> {
        static NONE: Labels = Labels::new();
        let (host, labels) = match decision.destination() {
            Some(d) => (d.host(), d.labels()),
            None => (host?, &NONE),
        };
        self.destinations.pick(host, labels, &self.next)
    }
}

impl<S, ReqB, ResB, T> Service<Request<ReqB>> for MeshRouter<S, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    T: Timer,
{
    type Response = Response<super::MeshBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, ResB, T>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let decision = self.shared.decide(&mut req);
        let mut cors = None;
        let next = if forwards(&decision) {
            let host = self.shared.context.target().or_else(|| {
                req.uri()
                    .authority()
                    .map(|a| a.as_str())
                    .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok())
            });
            match (self.choose(&decision, host).cloned(), decision.cors(&req)) {
                (_, Cors::Preflight(headers)) => Next::Reply(preflight_reply(&decision, headers)),
                (Some(svc), answer) => {
                    if let Cors::Response(headers) = answer {
                        cors = Some(headers);
                    }
                    decision.apply_request(&mut req);
                    Next::Call { svc, req }
                }
                (None, _) => Next::Reply(no_healthy_upstream(&decision)),
            }
        } else {
            match local_reply(&decision) {
                Some(res) => Next::Reply(res),
                None => Next::Reply(no_healthy_upstream(&decision)),
            }
        };
        plan(&self.shared, decision, next).with_cors(cors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(same_host("reviews", "reviews.default.svc.cluster.local"));
        assert!(same_host("reviews.default.svc.cluster.local", "reviews"));
        assert!(!same_host("reviews", "reviewsx"));
        assert!(same_host("reviews", "Reviews"));
        assert_eq!(normalize("Reviews:9080"), "reviews");
        assert_eq!(normalize("[::1]:80"), "[::1]");
    }
}
