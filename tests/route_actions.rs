//! Route actions end to end, as a proxy would run them: a front server on 127.0.0.1 with a
//! `MeshRouter` whose destinations are hyper clients to upstream servers, also on 127.0.0.1.
//! Retries against an upstream that fails twice, a route timeout on the paused clock, mirrored
//! copies to a shadow server, and CORS preflights. Every loop is bounded.
//! They need the `tokio` feature (its timer), a default one.
#![cfg(feature = "tokio")]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{BoxError, serve, virtual_service};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tower::{Service, service_fn};
use tower_mesh::layer::{Destinations, MeshLayer, MeshRouter, ReplayBody, Replaying, TokioTimer};
use tower_mesh::{MeshBody, RuleSet};

/// An upstream server whose handler gets the request's host header and body.
async fn upstream<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(String, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    serve(service_fn(move |req: Request<Incoming>| {
        let handler = handler.clone();
        async move {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = req.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(handler(host, body).await)
        }
    }))
    .await
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = StatusCode::from_u16(status).unwrap();
    res
}

type Front = MeshRouter<Upstream, TokioTimer, Replaying>;

/// A destination: requests go over a hyper client to the upstream at `addr`, keeping their
/// path and `Host` header.
#[derive(Clone)]
struct Upstream {
    client: Client<HttpConnector, ReplayBody<Incoming>>,
    addr: SocketAddr,
}

impl Service<Request<ReplayBody<Incoming>>> for Upstream {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response<Incoming>, BoxError>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<ReplayBody<Incoming>>) -> Self::Future {
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() = format!("http://{}{pq}", self.addr).parse().unwrap();
        let client = self.client.clone();
        Box::pin(async move { Ok(client.request(req).await?) })
    }
}

fn to(addr: SocketAddr) -> Upstream {
    Upstream {
        client: Client::builder(TokioExecutor::new()).build_http(),
        addr,
    }
}

/// The proxy in front: `rules` routing over `destinations`, bodies kept up to 64 KiB.
fn front(rules: &str, destinations: Destinations<Upstream>) -> Front {
    MeshLayer::new(RuleSet::from_yaml(rules).unwrap())
        .replay_bodies(64 * 1024)
        .route_to(destinations)
}

/// Serves a front server whose only destination, `host` v1, is the upstream at `upstream`.
async fn serve_front_to(rules: &str, host: &str, upstream: SocketAddr) -> SocketAddr {
    serve(front(
        rules,
        Destinations::new().add(host, [("version", "v1")], to(upstream)),
    ))
    .await
}

/// Sends one request through the front server; returns the status, the headers and the body.
async fn send(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let (mut parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{addr}{pq}").parse().unwrap();
    let res = client
        .request(Request::from_parts(parts, body))
        .await
        .expect("no transport error");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn post(host: &str, path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", host)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

const REVIEWS_SUBSETS: &str = "
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
";

#[tokio::test]
async fn loopback_retries_an_upstream_that_fails_twice_then_succeeds() {
    let tries = Arc::new(AtomicUsize::new(0));
    let (bodies, mut seen) = mpsc::unbounded_channel();
    let counted = tries.clone();
    let ratings = upstream(move |_host, body| {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        bodies.send(body).unwrap();
        async move {
            if n <= 2 {
                reply(503, "overloaded")
            } else {
                reply(200, format!("stored after {n} tries"))
            }
        }
    })
    .await;
    let rules = virtual_service(
        "ratings",
        "
  - route: [{destination: {host: ratings}}]
    retries: {attempts: 3, retryOn: 5xx}
",
    );
    let addr = serve_front_to(&rules, "ratings", ratings).await;

    let (status, _, body) = send(addr, post("ratings", "/ratings/1", "stars=5")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "stored after 3 tries")
    );
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    for _ in 0..3 {
        assert_eq!(
            seen.recv().await.unwrap(),
            "stars=5",
            "every try carries the body"
        );
    }

    // With one retry only, the second 503 is the answer.
    tries.store(0, Ordering::SeqCst);
    let one = rules.replace("attempts: 3", "attempts: 1");
    let addr = serve_front_to(&one, "ratings", ratings).await;
    let (status, _, body) = send(addr, post("ratings", "/ratings/1", "stars=4")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
    );
    assert_eq!(tries.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn loopback_route_timeout_answers_504_on_the_paused_clock() {
    let slow = upstream(|_host, _body| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        reply(200, "too late")
    })
    .await;
    let rules = virtual_service(
        "ratings",
        "
  - route: [{destination: {host: ratings}}]
    timeout: 2s
",
    );
    let addr = serve_front_to(&rules, "ratings", slow).await;
    let start = tokio::time::Instant::now();
    let (status, _, body) = send(addr, post("ratings", "/ratings/1", "")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(30),
        "{waited:?}"
    );
}

#[tokio::test]
async fn loopback_mirror_sends_a_copy_with_the_shadow_host() {
    let v1 = upstream(|_host, _body| async { reply(200, "reviews v1") }).await;
    let (copies, mut shadow_saw) = mpsc::unbounded_channel();
    let shadow = upstream(move |host, body| {
        copies.send((host, body)).unwrap();
        async { reply(500, "the shadow's answer is ignored") }
    })
    .await;
    let rules = format!(
        "{REVIEWS_SUBSETS}---\n{}",
        virtual_service(
            "reviews",
            "
  - route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 100}
"
        )
    );
    let router = front(
        &rules,
        Destinations::new()
            .add("reviews", [("version", "v1")], to(v1))
            .add("reviews", [("version", "v2")], to(shadow)),
    );
    let stats = router.clone();
    let addr = serve(router).await;

    let (status, _, body) = send(addr, post("reviews:9080", "/reviews/1", "a copy")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "reviews v1"));
    let (host, body) = tokio::time::timeout(Duration::from_secs(10), shadow_saw.recv())
        .await
        .expect("the shadow server gets the copy")
        .unwrap();
    assert_eq!(host, "reviews-shadow:9080");
    assert_eq!(body, "a copy");
    assert_eq!(stats.mirror_stats().sent, 1);
}

#[tokio::test]
async fn loopback_a_slow_or_failing_shadow_changes_nothing_for_the_caller() {
    let v1 = upstream(|_host, _body| async { reply(200, "reviews v1") }).await;
    let (arrived, mut hanging) = mpsc::unbounded_channel();
    // v2 never answers; v3 is a port nobody listens on.
    let stuck = upstream(move |_host, _body| {
        arrived.send(()).unwrap();
        std::future::pending()
    })
    .await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let rules = format!(
        "{REVIEWS_SUBSETS}---\n{}",
        virtual_service(
            "reviews",
            "
  - route: [{destination: {host: reviews, subset: v1}}]
    mirrors:
    - destination: {host: reviews, subset: v2}
    - destination: {host: reviews, subset: v3}
"
        )
    );
    let router = front(
        &rules,
        Destinations::new()
            .add("reviews", [("version", "v1")], to(v1))
            .add("reviews", [("version", "v2")], to(stuck))
            .add("reviews", [("version", "v3")], to(closed)),
    );
    let stats = router.clone();
    let addr = serve(router).await;

    let (status, _, body) = send(addr, post("reviews", "/reviews/1", "x")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "reviews v1"));
    tokio::time::timeout(Duration::from_secs(10), hanging.recv())
        .await
        .expect("the stuck shadow gets its copy")
        .unwrap();
    // Bounded wait for the refused copy to be counted (the caller has its answer already).
    for _ in 0..500 {
        if stats.mirror_stats().failed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = stats.mirror_stats();
    assert_eq!((s.sent, s.failed, s.in_flight, s.dropped), (2, 1, 1, 0));
}

#[tokio::test]
async fn loopback_shadow_copies_past_the_limit_are_dropped_and_counted() {
    let v1 = upstream(|_host, _body| async { reply(200, "reviews v1") }).await;
    let stuck = upstream(|_host, _body| std::future::pending()).await;
    let rules = format!(
        "{REVIEWS_SUBSETS}---\n{}",
        virtual_service(
            "reviews",
            "
  - route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: reviews, subset: v2}
"
        )
    );
    let router = MeshLayer::new(RuleSet::from_yaml(&rules).unwrap())
        .replay_bodies(1024)
        .mirror_limit(1)
        .route_to(
            Destinations::new()
                .add("reviews", [("version", "v1")], to(v1))
                .add("reviews", [("version", "v2")], to(stuck)),
        );
    let stats = router.clone();
    let addr = serve(router).await;
    for _ in 0..3 {
        let (status, _, body) = send(addr, post("reviews", "/reviews/1", "")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "reviews v1"));
    }
    let s = stats.mirror_stats();
    assert_eq!((s.sent, s.dropped, s.in_flight), (1, 2, 1));
}

#[tokio::test]
async fn loopback_cors_preflight_is_answered_without_the_upstream() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let api = upstream(move |_host, _body| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { reply(200, "from the upstream") }
    })
    .await;
    let rules = virtual_service(
        "api",
        "
  - route: [{destination: {host: api}}]
    corsPolicy:
      allowOrigins: [{exact: 'https://shop.example'}]
      allowMethods: [GET, POST]
      exposeHeaders: [x-request-id]
      maxAge: 24h
",
    );
    let addr = serve_front_to(&rules, "api", api).await;

    let preflight = Request::options("/cart")
        .header("host", "api")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .body(Full::default())
        .unwrap();
    let (status, headers, _) = send(addr, preflight).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(headers["access-control-allow-methods"], "GET,POST");
    assert_eq!(headers["access-control-max-age"], "86400");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the preflight never reaches the upstream"
    );

    // The actual request goes through and gets the CORS response headers.
    let get = Request::get("/cart")
        .header("host", "api")
        .header("origin", "https://shop.example")
        .body(Full::default())
        .unwrap();
    let (status, headers, body) = send(addr, get).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "from the upstream")
    );
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(headers["access-control-expose-headers"], "x-request-id");

    // A preflight from another origin is forwarded (unmatchedPreflights: FORWARD).
    let other = Request::options("/cart")
        .header("host", "api")
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "POST")
        .body(Full::default())
        .unwrap();
    let (status, headers, _) = send(addr, other).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("access-control-allow-origin"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// The front server's response type, for the compiler's sake.
#[allow(dead_code)]
fn _types(f: Front) -> impl Service<Request<Incoming>, Response = Response<MeshBody<Incoming>>> {
    f
}

#[allow(dead_code)]
fn _unused(_: Infallible) {}
