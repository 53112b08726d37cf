//! Retries as Tower services, without a network, on tokio's paused clock: which results are
//! tried again, how often, with which body, and how per-try and route timeouts bound them.
//! They need the `tokio` feature (its timer), a default one.
#![cfg(feature = "tokio")]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::virtual_service;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};
use tower_mesh::layer::{MeshLayer, ReplayBody};
use tower_mesh::{Decision, RuleSet, SeededSampler};

/// A VirtualService for `ratings` whose only route has the given extra YAML lines.
fn ratings(route_extra: &str) -> RuleSet {
    let routes = format!("  - route: [{{destination: {{host: ratings}}}}]\n{route_extra}");
    RuleSet::from_yaml(&virtual_service("ratings", &routes)).unwrap()
}

/// What the upstream saw: one entry per try, with the body it read.
type Seen = Arc<Mutex<Vec<String>>>;

/// An upstream that answers each try with the next of `script` (the last one repeats):
/// `Ok(status)`, or `Err(())` for a failure with no response. Each try reads the whole body.
fn upstream(
    script: Vec<Result<u16, ()>>,
    seen: Seen,
) -> impl tower::Service<
    Request<ReplayBody<Full<Bytes>>>,
    Response = Response<Full<Bytes>>,
    Error = &'static str,
    Future: Send,
> + Clone
+ Send {
    service_fn(move |req: Request<ReplayBody<Full<Bytes>>>| {
        let seen = seen.clone();
        let script = script.clone();
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(String::from_utf8(body.to_vec()).unwrap());
                seen.len()
            };
            match script[(n - 1).min(script.len() - 1)] {
                Ok(code) => {
                    let mut res = Response::new(Full::new(Bytes::from(format!("try {n}"))));
                    *res.status_mut() = StatusCode::from_u16(code).unwrap();
                    Ok(res)
                }
                Err(()) => Err("connection refused"),
            }
        }
    })
}

fn post(body: &'static str) -> Request<Full<Bytes>> {
    Request::post("/ratings/1")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn layer(rules: RuleSet) -> MeshLayer<tower_mesh::layer::TokioTimer, tower_mesh::layer::Replaying> {
    MeshLayer::new(rules)
        .response_decisions(true)
        .host("ratings")
        .sampler(SeededSampler::new(7))
        .replay_bodies(1024)
}

async fn text(res: Response<tower_mesh::MeshBody<Full<Bytes>>>) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_upstream_that_fails_twice_then_succeeds_is_answered_by_the_third_try() {
    let seen = Seen::default();
    let svc = layer(ratings("    retries: {attempts: 3, retryOn: 5xx}"))
        .layer(upstream(vec![Ok(503), Ok(500), Ok(200)], seen.clone()));
    let res = svc.oneshot(post("five stars")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.extensions().get::<Decision>().is_some());
    assert_eq!(text(res).await, "try 3");
    // Every try got the same body.
    assert_eq!(*seen.lock().unwrap(), vec!["five stars"; 3]);
}

#[tokio::test(start_paused = true)]
async fn when_the_retries_run_out_the_last_answer_stands() {
    let seen = Seen::default();
    let svc = layer(ratings(
        "    retries: {attempts: 2, retryOn: gateway-error}",
    ))
    .layer(upstream(vec![Ok(503)], seen.clone()));
    let res = svc.oneshot(post("x")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(text(res).await, "try 3");
    assert_eq!(seen.lock().unwrap().len(), 3, "one try and two retries");
}

#[tokio::test(start_paused = true)]
async fn only_the_listed_conditions_are_retried() {
    // gateway-error does not cover 500; a bare code lists it exactly.
    let seen = Seen::default();
    let svc = layer(ratings(
        "    retries: {attempts: 3, retryOn: gateway-error}",
    ))
    .layer(upstream(vec![Ok(500), Ok(200)], seen.clone()));
    assert_eq!(
        svc.oneshot(post("x")).await.unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(seen.lock().unwrap().len(), 1);

    let seen = Seen::default();
    let svc = layer(ratings("    retries: {attempts: 3, retryOn: \"409\"}"))
        .layer(upstream(vec![Ok(409), Ok(200)], seen.clone()));
    assert_eq!(
        svc.oneshot(post("x")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failure_without_a_response_is_retried_on_connect_failure() {
    let seen = Seen::default();
    let svc = layer(ratings(
        "    retries: {attempts: 1, retryOn: connect-failure}",
    ))
    .layer(upstream(vec![Err(()), Ok(200)], seen.clone()));
    assert_eq!(
        svc.oneshot(post("x")).await.unwrap().status(),
        StatusCode::OK
    );

    // Out of retries, the inner service's error comes back as it was.
    let svc = layer(ratings(
        "    retries: {attempts: 1, retryOn: connect-failure}",
    ))
    .layer(upstream(vec![Err(())], Seen::default()));
    assert_eq!(
        svc.oneshot(post("x")).await.unwrap_err(),
        "connection refused"
    );
}

#[tokio::test(start_paused = true)]
async fn a_route_without_retries_gets_istios_mesh_default() {
    // Two more tries on connect-failure, refused-stream, unavailable, cancelled; not on 503.
    let seen = Seen::default();
    let svc = layer(ratings("")).layer(upstream(vec![Err(()), Err(()), Ok(200)], seen.clone()));
    assert_eq!(
        svc.oneshot(post("x")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(seen.lock().unwrap().len(), 3);

    let seen = Seen::default();
    let svc = layer(ratings("")).layer(upstream(vec![Ok(503), Ok(200)], seen.clone()));
    assert_eq!(
        svc.oneshot(post("x")).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(seen.lock().unwrap().len(), 1);

    // `attempts: 0` turns retries off.
    let seen = Seen::default();
    let svc = layer(ratings("    retries: {attempts: 0}"))
        .layer(upstream(vec![Err(()), Ok(200)], seen.clone()));
    assert!(svc.oneshot(post("x")).await.is_err());
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_grpc_unavailable_answer_is_retried_by_the_mesh_default() {
    let tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = tries.clone();
    let grpc = service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let mut res = Response::new(Full::<Bytes>::default());
            res.headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
            let status = if n == 0 { "14" } else { "0" };
            res.headers_mut()
                .insert("grpc-status", status.parse().unwrap());
            Ok::<_, Infallible>(res)
        }
    });
    let res = layer(ratings(""))
        .layer(grpc)
        .oneshot(post(""))
        .await
        .unwrap();
    assert_eq!(res.headers()["grpc-status"], "0");
    assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_body_larger_than_the_limit_is_sent_once_and_not_retried() {
    let seen = Seen::default();
    let svc = MeshLayer::new(ratings("    retries: {attempts: 3, retryOn: 5xx}"))
        .response_decisions(true)
        .host("ratings")
        .replay_bodies(4)
        .layer(upstream(vec![Ok(503), Ok(200)], seen.clone()));
    let res = svc.oneshot(post("more than four bytes")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(*seen.lock().unwrap(), vec!["more than four bytes"]);
}

#[tokio::test(start_paused = true)]
async fn an_injected_abort_is_never_retried() {
    let seen = Seen::default();
    let svc = layer(ratings(
        "    retries: {attempts: 3, retryOn: 5xx}
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}",
    ))
    .layer(upstream(vec![Ok(200)], seen.clone()));
    let res = svc.oneshot(post("x")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(text(res).await, "fault filter abort");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the upstream is never called"
    );
}

/// An upstream whose first `slow` tries take 10 s; the others answer at once.
fn slow_then_fast(
    slow: usize,
    seen: Seen,
) -> impl tower::Service<
    Request<ReplayBody<Full<Bytes>>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send {
    service_fn(move |_req: Request<ReplayBody<Full<Bytes>>>| {
        let seen = seen.clone();
        async move {
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(String::new());
                seen.len()
            };
            if n <= slow {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            Ok(Response::new(Full::new(Bytes::from(format!("try {n}")))))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_try_past_its_per_try_timeout_is_dropped_and_retried() {
    let seen = Seen::default();
    let svc = layer(ratings(
        "    retries: {attempts: 2, perTryTimeout: 1s, retryOn: 5xx, backoff: 100ms}",
    ))
    .layer(slow_then_fast(1, seen.clone()));
    let start = tokio::time::Instant::now();
    let res = svc.oneshot(post("")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, "try 2");
    let waited = start.elapsed();
    // One second for the first try, at most one back-off (below 100 ms) before the second.
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1100),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn when_every_try_times_out_the_answer_is_504() {
    let seen = Seen::default();
    let svc = layer(ratings(
        "    retries: {attempts: 2, perTryTimeout: 1s, retryOn: gateway-error}",
    ))
    .layer(slow_then_fast(usize::MAX, seen.clone()));
    let res = svc.oneshot(post("")).await.unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(text(res).await, "upstream request timeout");
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_route_timeout_covers_every_try() {
    // Three tries of 1 s each would take 3 s; the route allows 2.5 s in all.
    let seen = Seen::default();
    let svc = layer(ratings(
        "    timeout: 2500ms
    retries: {attempts: 5, perTryTimeout: 1s, retryOn: 5xx}",
    ))
    .layer(slow_then_fast(usize::MAX, seen.clone()));
    let start = tokio::time::Instant::now();
    let res = svc.oneshot(post("")).await.unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(start.elapsed(), Duration::from_millis(2500));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_layer_does_not_retry() {
    // Without replay_bodies the inner service gets the body as it is and each request is
    // sent once.
    let tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = tries.clone();
    let inner = service_fn(move |_req: Request<Full<Bytes>>| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async {
            let mut res = Response::new(Full::<Bytes>::default());
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, Infallible>(res)
        }
    });
    let svc = MeshLayer::new(ratings("    retries: {attempts: 3, retryOn: 5xx}"))
        .response_decisions(true)
        .host("ratings")
        .layer(inner);
    let res = svc.oneshot(post("x")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_try_that_answered_without_reading_the_body_hands_it_to_the_retry() {
    // The first try reads one frame of three and answers 503; the retry reads the whole body.
    let seen = Seen::default();
    let upstream = recording(seen.clone(), true);
    let svc = MeshLayer::new(ratings("    retries: {attempts: 1, retryOn: 5xx}"))
        .response_decisions(true)
        .host("ratings")
        .replay_bodies(1024)
        .layer(upstream);
    let req = Request::post("/ratings/1")
        .body(StreamOf(["five", " ", "stars"].into_iter().collect()))
        .unwrap();
    assert_eq!(svc.oneshot(req).await.unwrap().status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), vec!["five", "five stars"]);
}

/// A body of several data frames of unknown total length.
struct StreamOf(std::collections::VecDeque<&'static str>);

impl http_body::Body for StreamOf {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(
            self.0
                .pop_front()
                .map(|s| Ok(http_body::Frame::data(Bytes::from_static(s.as_bytes())))),
        )
    }
}

/// A destination that records the bodies it reads; while `fail_first` holds, its first try
/// reads one frame only and answers 503.
fn recording(
    seen: Seen,
    fail_first: bool,
) -> impl tower::Service<
    Request<ReplayBody<StreamOf>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    service_fn(move |req: Request<ReplayBody<StreamOf>>| {
        let seen = seen.clone();
        async move {
            let first_try = seen.lock().unwrap().is_empty();
            let mut body = req.into_body();
            let partial = fail_first && first_try;
            let read = if partial {
                body.frame().await.unwrap().unwrap().into_data().unwrap()
            } else {
                body.collect().await.unwrap().to_bytes()
            };
            seen.lock()
                .unwrap()
                .push(String::from_utf8(read.to_vec()).unwrap());
            let mut res = Response::new(Full::<Bytes>::default());
            if partial {
                *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok(res)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_mirror_waits_until_a_retry_has_read_the_whole_body() {
    let rules = RuleSet::from_yaml(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings, subset: v1}}]
    retries: {attempts: 1, retryOn: 5xx}
    mirror: {host: ratings, subset: v2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
",
    )
    .unwrap();
    let (primary, shadow) = (Seen::default(), Seen::default());
    let router = MeshLayer::new(rules)
        .response_decisions(true)
        .host("ratings")
        .replay_bodies(1024)
        .route_to(
            tower_mesh::Destinations::new()
                .add(
                    "ratings",
                    [("version", "v1")],
                    recording(primary.clone(), true),
                )
                .add(
                    "ratings",
                    [("version", "v2")],
                    recording(shadow.clone(), false),
                ),
        );
    let req = Request::post("/ratings/1")
        .body(StreamOf(["five", " ", "stars"].into_iter().collect()))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The first try read "five" and failed; the retry read it all; only then did the copy go.
    assert_eq!(*primary.lock().unwrap(), vec!["five", "five stars"]);
    for _ in 0..100 {
        if !shadow.lock().unwrap().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(*shadow.lock().unwrap(), vec!["five stars"]);
    assert_eq!(router.mirror_stats().sent, 1);
    assert_eq!(router.mirror_stats().dropped, 0);
}

/// A request body whose client sends one frame and then goes away (its next read fails, as
/// hyper's body does when the connection closes).
struct ClientLeaves(u8);

impl http_body::Body for ClientLeaves {
    type Data = Bytes;
    type Error = &'static str;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, &'static str>>> {
        self.0 += 1;
        std::task::Poll::Ready(Some(match self.0 {
            1 => Ok(http_body::Frame::data(Bytes::from_static(b"five"))),
            _ => Err("connection closed before the message completed"),
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn no_try_starts_after_the_client_went_away() {
    // The upstream answers 503 at once, never reading the body: only the layer's read-ahead
    // between tries can notice that the client is gone.
    let tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = tries.clone();
    let inner = service_fn(move |_req: Request<ReplayBody<ClientLeaves>>| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async {
            let mut res = Response::new(Full::new(Bytes::from_static(b"busy")));
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, Infallible>(res)
        }
    });
    let svc = MeshLayer::new(ratings("    retries: {attempts: 5, retryOn: 5xx}"))
        .host("ratings")
        .sampler(SeededSampler::new(7))
        .replay_bodies(1024)
        .layer(inner);
    let req = Request::post("/ratings/1").body(ClientLeaves(0)).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the last answer stands"
    );
    let tries = tries.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        tries <= 2,
        "{tries} tries for a client that left during the first"
    );
}

/// Mirrors to a shadow that never answers: with `timeout` on the route, or Envoy's 15 s.
async fn shadows_that_never_answer(
    route_timeout: Option<&str>,
) -> Vec<tower_mesh::layer::MirrorStats> {
    let timeout = route_timeout.map_or(String::new(), |t| format!("    timeout: {t}\n"));
    let rules = RuleSet::from_yaml(&format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: ratings}}
spec:
  hosts: [ratings]
  http:
  - route: [{{destination: {{host: ratings}}}}]
    mirror: {{host: shadow}}
{timeout}"
    ))
    .unwrap();
    let hangs = service_fn(|_req: Request<ReplayBody<Full<Bytes>>>| {
        std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>()
    });
    let answers = service_fn(|req: Request<ReplayBody<Full<Bytes>>>| async {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        Ok::<_, Infallible>(Response::new(Full::new(body)))
    });
    type Svc = tower::util::BoxCloneSyncService<
        Request<ReplayBody<Full<Bytes>>>,
        Response<Full<Bytes>>,
        Infallible,
    >;
    let router = MeshLayer::new(rules)
        .host("ratings")
        .replay_bodies(1024)
        .mirror_limit(4)
        .route_to(
            tower_mesh::Destinations::new()
                .add("ratings", [("version", "v1")], Svc::new(answers))
                .add("shadow", [("version", "v1")], Svc::new(hangs)),
        );
    let mut seen = Vec::new();
    for _ in 0..2 {
        for _ in 0..4 {
            let res = router.clone().oneshot(post("x")).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
        tokio::task::yield_now().await;
        seen.push(router.mirror_stats());
        tokio::time::sleep(Duration::from_secs(16)).await;
        seen.push(router.mirror_stats());
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn a_shadow_that_never_answers_times_out_and_frees_its_slot() {
    for (timeout, given_up) in [(None, "15 s"), (Some("2s"), "2 s")] {
        let seen = shadows_that_never_answer(timeout).await;
        let s: Vec<(u64, u64, u64, usize)> = seen
            .iter()
            .map(|s| (s.sent, s.dropped, s.failed, s.in_flight))
            .collect();
        // 4 copies in flight fill the limit; after the timeout they are given up, so the next
        // 4 are sent too, none dropped.
        assert_eq!(
            s,
            vec![(4, 0, 0, 4), (4, 0, 4, 0), (8, 0, 4, 4), (8, 0, 8, 0)],
            "given up after {given_up}"
        );
    }
}
