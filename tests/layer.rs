//! MeshLayer and MeshRouter as Tower services, without a network: decisions carried out,
//! readiness, delays on tokio's paused clock, local replies, reload.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::virtual_service;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt, service_fn};
use tower_mesh::layer::{Destinations, MeshLayer, Timer};
use tower_mesh::{Caller, Decision, NeverSampler, Outcome, RuleSet, ScriptedSampler};

const WALKTHROUGH: &str = concat!(
    include_str!("../examples/config/route-to-v2.yaml"),
    "---\n",
    include_str!("../examples/config/fault-503.yaml")
);

fn hello(
    name: &'static str,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
+ Sync {
    service_fn(move |_req: Request<Full<Bytes>>| async move {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "Hello World! ({name})"
        )))))
    })
}

/// An inner service that answers with the URI and the `x-route`, `x-destination` and `x-secret`
/// headers it was given, and puts `server` and `x-debug` on its answer: a test sees what the
/// request and response header operations did.
fn header_echo()
-> impl Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
+ Clone {
    service_fn(|req: Request<Full<Bytes>>| async move {
        let text = format!(
            "{} route={:?} destination={:?} secret={:?}",
            req.uri(),
            req.headers().get("x-route"),
            req.headers().get("x-destination"),
            req.headers().get("x-secret")
        );
        let mut res = Response::new(Full::new(Bytes::from(text)));
        for name in ["server", "x-debug"] {
            res.headers_mut()
                .insert(name, http::HeaderValue::from_static("echo"));
        }
        Ok::<_, Infallible>(res)
    })
}

async fn body<B: http_body::Body>(res: Response<B>) -> String
where
    B::Error: std::fmt::Debug,
{
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

fn request(ua: &str) -> Request<Full<Bytes>> {
    Request::get("/")
        .header("user-agent", ua)
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn the_walkthrough_around_one_service() {
    let layer = MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH).unwrap())
        .response_decisions(true)
        .host("helloworld-service");
    let svc = tower::Layer::layer(&layer, hello("v1"));
    let res = svc
        .clone()
        .oneshot(request("Mozilla/5.0 Chrome/70"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let decision = res.extensions().get::<Decision>().unwrap().clone();
    assert_eq!(decision.rule(), Some("helloworld-service"));
    assert_eq!(
        decision.destination().unwrap().labels().get("version"),
        Some("v2")
    );

    let res = svc.oneshot(request("curl/8.4.0")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(body(res).await, "fault filter abort");
}

#[tokio::test]
async fn the_handler_sees_the_decision() {
    let inner = service_fn(|req: Request<Full<Bytes>>| async move {
        let d = req
            .extensions()
            .get::<Decision>()
            .expect("the decision is in the request");
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(d.to_string()))))
    });
    let layer = MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH).unwrap())
        .response_decisions(true)
        .host("helloworld-service");
    let svc = tower::Layer::layer(&layer, inner);
    let res = svc.oneshot(request("Chrome")).await.unwrap();
    assert_eq!(
        body(res).await,
        "forward to helloworld-service {version=v2} (by RouteRule default/helloworld-service)"
    );
}

#[tokio::test]
async fn the_router_dispatches_to_labelled_destinations() {
    let router = MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH).unwrap())
        .response_decisions(true)
        .host("helloworld-service")
        .route_to(
            Destinations::new()
                .add(
                    "helloworld-service",
                    [("version", "v1")],
                    tower::util::BoxCloneSyncService::new(hello("v1")),
                )
                .add(
                    "helloworld-service",
                    [("version", "v2")],
                    tower::util::BoxCloneSyncService::new(hello("v2")),
                ),
        );
    let res = router.clone().oneshot(request("Chrome/120")).await.unwrap();
    assert_eq!(body(res).await, "Hello World! (v2)");
    let res = router.oneshot(request("curl")).await.unwrap();
    assert_eq!(res.status(), 503);
}

#[tokio::test]
async fn default_route_spreads_round_robin_and_unknown_labels_get_503() {
    let rules = RuleSet::from_yaml(
        r#"
apiVersion: config.istio.io/v1alpha2
kind: RouteRule
metadata: {name: reviews-v9}
spec:
  destination: {name: reviews}
  precedence: 1
  match:
    request:
      headers:
        end-user: {exact: jason}
  route:
  - labels: {version: v9}
"#,
    )
    .unwrap();
    let router = MeshLayer::new(rules)
        .response_decisions(true)
        .host("reviews")
        .route_to(
            Destinations::new()
                .add(
                    "reviews",
                    [("version", "v1")],
                    tower::util::BoxCloneSyncService::new(hello("v1")),
                )
                .add(
                    "reviews",
                    [("version", "v2")],
                    tower::util::BoxCloneSyncService::new(hello("v2")),
                ),
        );
    let mut seen = Vec::new();
    for _ in 0..4 {
        let res = router.clone().oneshot(request("curl")).await.unwrap();
        seen.push(body(res).await);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "Hello World! (v1)",
            "Hello World! (v1)",
            "Hello World! (v2)",
            "Hello World! (v2)"
        ]
    );
    let jason = Request::get("/")
        .header("end-user", "jason")
        .body(Full::default())
        .unwrap();
    let res = router.oneshot(jason).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        res.extensions().get::<Decision>().unwrap().rule(),
        Some("reviews-v9")
    );
    assert_eq!(body(res).await, "no healthy upstream");
}

/// A timer that counts the sleeps it creates and completes them at once.
#[derive(Clone, Default)]
struct CountingTimer(Arc<AtomicUsize>);

impl Timer for CountingTimer {
    type Sleep = std::future::Ready<()>;
    fn sleep(&self, _: Duration) -> Self::Sleep {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::ready(())
    }
}

/// A delay of seven seconds for half the requests to `ratings`.
fn delay_sometimes() -> String {
    virtual_service(
        "ratings",
        r#"
  - fault:
      delay: {fixedDelay: 7s, percentage: {value: 50}}
    route: [{destination: {host: ratings}}]
"#,
    )
}

#[tokio::test]
async fn no_sleep_is_created_when_no_delay_fires() {
    let timer = CountingTimer::default();
    let svc = tower::Layer::layer(
        &MeshLayer::new(RuleSet::from_yaml(&delay_sometimes()).unwrap())
            .response_decisions(true)
            .host("ratings")
            .sampler(ScriptedSampler::new([999_999, 999_999, 0]))
            .timer(timer.clone()),
        hello("v1"),
    );
    for _ in 0..2 {
        svc.clone().oneshot(request("x")).await.unwrap();
    }
    assert_eq!(
        timer.0.load(Ordering::SeqCst),
        0,
        "no delay fired, no sleep made"
    );
    let res = svc.oneshot(request("x")).await.unwrap();
    assert_eq!(timer.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        res.extensions().get::<Decision>().unwrap().delay(),
        Some(Duration::from_secs(7))
    );
}

#[cfg(feature = "tokio")] // the delay needs the `tokio` feature's timer
#[tokio::test(start_paused = true)]
async fn a_seven_second_delay_takes_seven_virtual_seconds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = service_fn(move |_req: Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"rated")))) }
    });
    let svc = tower::Layer::layer(
        &MeshLayer::new(RuleSet::from_yaml(&delay_sometimes()).unwrap())
            .response_decisions(true)
            .host("ratings")
            .sampler(ScriptedSampler::new([0])),
        inner,
    );
    let start = tokio::time::Instant::now();
    let handle = tokio::spawn(svc.oneshot(request("x")));
    // The inner service is not called during the delay.
    tokio::time::sleep(Duration::from_millis(6_999)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "called before the delay was over"
    );
    assert!(!handle.is_finished());
    let res = handle.await.unwrap().unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(7),
        "answered after {:?}",
        start.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(body(res).await, "rated");
}

#[cfg(feature = "tokio")] // the delay needs the `tokio` feature's timer
#[tokio::test(start_paused = true)]
async fn a_delayed_abort_answers_after_the_delay() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "ratings",
        r#"
  - fault:
      delay: {fixedDelay: 3s, percentage: {value: 100}}
      abort: {httpStatus: 500, percentage: {value: 100}}
    route: [{destination: {host: ratings}}]
"#,
    ))
    .unwrap();
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("ratings"),
        hello("v1"),
    );
    let start = tokio::time::Instant::now();
    let res = svc.oneshot(request("x")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(res.status(), 500);
}

/// A service that is never ready and counts its calls.
#[derive(Clone)]
struct NeverReady(Arc<AtomicUsize>);

impl Service<Request<Full<Bytes>>> for NeverReady {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;
    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Pending
    }
    fn call(&mut self, _: Request<Full<Bytes>>) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(Full::default())))
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_that_is_not_ready_is_never_called() {
    let calls = Arc::new(AtomicUsize::new(0));
    let rules = RuleSet::from_yaml(&delay_sometimes()).unwrap();
    // Around one service: readiness is the inner service's.
    let mut svc = tower::Layer::layer(
        &MeshLayer::new(rules.clone())
            .response_decisions(true)
            .host("ratings"),
        NeverReady(calls.clone()),
    );
    let ready = std::future::poll_fn(|cx| Poll::Ready(svc.poll_ready(cx))).await;
    assert!(
        ready.is_pending(),
        "MeshService is not ready while its inner service is not"
    );
    // Delayed requests drive a clone to readiness after the delay, and never call it unready.
    let delayed = tower::Layer::layer(
        &MeshLayer::new(rules.clone())
            .response_decisions(true)
            .host("ratings")
            .sampler(ScriptedSampler::new([0])),
        NeverReady(calls.clone()),
    );
    let pending =
        tokio::time::timeout(Duration::from_secs(60), delayed.oneshot(request("x"))).await;
    assert!(pending.is_err(), "the request waits for readiness");
    // The router is always ready and waits on the chosen destination only.
    let router = MeshLayer::new(rules)
        .response_decisions(true)
        .host("ratings")
        .route_to(Destinations::new().add(
            "ratings",
            [("version", "v1")],
            NeverReady(calls.clone()),
        ));
    let pending = tokio::time::timeout(Duration::from_secs(60), router.oneshot(request("x"))).await;
    assert!(pending.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "an unready service was called"
    );
}

#[tokio::test]
async fn grpc_requests_get_a_trailers_only_grpc_abort() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "greeter",
        r#"
  - fault:
      abort: {httpStatus: 503, percentage: {value: 100}}
    route: [{destination: {host: greeter}}]
"#,
    ))
    .unwrap();
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("greeter"),
        hello("v1"),
    );
    let req = Request::post("/helloworld.Greeter/SayHello")
        .header("content-type", "application/grpc")
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "14");
    assert_eq!(res.headers()["grpc-message"], "fault filter abort");
    assert_eq!(body(res).await, "");
}

#[tokio::test]
async fn not_found_redirect_and_direct_response_are_answered_locally() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "web",
        r#"
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new}
  - match: [{uri: {exact: /tea}}]
    directResponse: {status: 418, body: {string: "I'm a teapot"}}
"#,
    ))
    .unwrap();
    let svc = tower::Layer::layer(&MeshLayer::new(rules).response_decisions(true), hello("v1"));
    let get = |uri: &str| Request::get(uri).body(Full::default()).unwrap();
    let res = svc
        .clone()
        .oneshot(get("http://web/old?a=1"))
        .await
        .unwrap();
    assert_eq!(res.status(), 301);
    assert_eq!(res.headers()["location"], "http://web/new?a=1");
    let res = svc.clone().oneshot(get("http://web/tea")).await.unwrap();
    assert_eq!(res.status(), 418);
    assert_eq!(body(res).await, "I'm a teapot");
    let res = svc.clone().oneshot(get("http://web/other")).await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.extensions().get::<Decision>().unwrap().outcome(),
        Outcome::NotFound
    );
    let res = svc.oneshot(get("http://elsewhere/")).await.unwrap();
    assert_eq!(res.status(), 200, "a host no rule covers passes through");
    assert_eq!(body(res).await, "Hello World! (v1)");
}

#[tokio::test]
async fn the_caller_comes_from_a_request_extension() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "reviews",
        r#"
  - match: [{sourceLabels: {app: productpage}}]
    directResponse: {status: 200, body: {string: "from productpage"}}
  - directResponse: {status: 200, body: {string: "from anyone"}}
"#,
    ))
    .unwrap();
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("reviews"),
        hello("v1"),
    );
    let mut req = request("x");
    req.extensions_mut()
        .insert(Caller::new().with_labels([("app", "productpage")]));
    assert_eq!(
        body(svc.clone().oneshot(req).await.unwrap()).await,
        "from productpage"
    );
    assert_eq!(
        body(svc.oneshot(request("x")).await.unwrap()).await,
        "from anyone"
    );
}

#[tokio::test]
async fn a_reload_changes_the_rules_and_a_bad_one_changes_nothing() {
    let layer = MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH).unwrap())
        .response_decisions(true)
        .host("helloworld-service")
        .sampler(NeverSampler);
    let svc = tower::Layer::layer(&layer, hello("v1"));
    assert_eq!(
        svc.clone().oneshot(request("curl")).await.unwrap().status(),
        503
    );
    let handle = layer.rules();
    let err = handle.reload_yaml("apiVersion: config.istio.io/v1alpha2\nkind: RouteRule\nmetadata: {name: x}\nspec: {precedence: high}\n");
    assert!(err.is_err());
    assert_eq!(
        svc.clone().oneshot(request("curl")).await.unwrap().status(),
        503,
        "a failed reload keeps the rules"
    );
    handle.reload_yaml("").unwrap();
    assert_eq!(
        svc.oneshot(request("curl")).await.unwrap().status(),
        200,
        "no rules: pass through"
    );
}

#[tokio::test]
async fn works_in_an_axum_router() {
    use axum::{Extension, Router, routing::get};
    let app: Router = Router::new()
        .route(
            "/",
            get(|Extension(decision): Extension<Decision>| async move {
                format!(
                    "routed to {}",
                    decision
                        .destination()
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                )
            }),
        )
        .layer(
            MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH).unwrap())
                .response_decisions(true)
                .host("helloworld-service"),
        );
    let req = Request::get("/")
        .header("user-agent", "Chrome")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await, "routed to helloworld-service {version=v2}");
    let req = Request::get("/").body(axum::body::Body::empty()).unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 503);
}

#[tokio::test(start_paused = true)]
async fn an_axum_router_behind_replay_bodies_gets_its_retries() {
    use axum::{Router, routing::post};
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = tries.clone();
    let app: Router = Router::new()
        .route(
            "/ratings",
            post(move |body: String| {
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if n == 1 {
                        (StatusCode::SERVICE_UNAVAILABLE, String::from("busy"))
                    } else {
                        (StatusCode::OK, format!("try {n} stored {body}"))
                    }
                }
            }),
        )
        .layer(
            MeshLayer::new(
                RuleSet::from_yaml(&virtual_service(
                    "ratings",
                    r#"
  - route: [{destination: {host: ratings}}]
    retries: {attempts: 2, retryOn: 5xx}
"#,
                ))
                .unwrap(),
            )
            .response_decisions(true)
            .host("ratings")
            .replay_bodies(1024),
        );
    let req = Request::post("/ratings")
        .body(axum::body::Body::from("stars=5"))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await, "try 2 stored stars=5");
    assert_eq!(tries.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn rewrites_and_header_operations_are_carried_out() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "ratings",
        r#"
  - match: [{uri: {prefix: /ratings}}]
    rewrite: {uri: /v1/bookRatings}
    headers:
      request: {set: {x-route: ratings}, remove: [x-secret]}
      response: {set: {cache-control: no-store}, remove: [server]}
    route: [{destination: {host: ratings}}]
"#,
    ))
    .unwrap();
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("ratings"),
        header_echo(),
    );
    let req = Request::get("/ratings/7?x=1")
        .header("x-secret", "s3cr3t")
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers().get("server").is_none());
    assert_eq!(
        body(res).await,
        "/v1/bookRatings/7?x=1 route=Some(\"ratings\") destination=None secret=None"
    );
}

#[tokio::test]
async fn header_fields_removed_in_istio_1_5_are_read_as_header_operations() {
    let rules = RuleSet::from_yaml(
        r#"
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - appendRequestHeaders: {x-route: ratings}
    removeRequestHeaders: [x-secret]
    appendResponseHeaders: {x-served-by: mesh}
    removeResponseHeaders: [server]
    route:
    - destination: {host: ratings}
      appendRequestHeaders: {x-destination: ratings}
      removeResponseHeaders: [x-debug]
"#,
    )
    .unwrap();
    let warnings: Vec<(&str, &str)> = rules
        .warnings()
        .iter()
        .map(|w| (w.path().unwrap_or_default(), w.message()))
        .collect();
    for (path, read_as) in [
        ("spec.http[0].appendRequestHeaders", "headers.request.add"),
        (
            "spec.http[0].removeRequestHeaders",
            "headers.request.remove",
        ),
        ("spec.http[0].appendResponseHeaders", "headers.response.add"),
        (
            "spec.http[0].removeResponseHeaders",
            "headers.response.remove",
        ),
        (
            "spec.http[0].route[0].appendRequestHeaders",
            "headers.request.add",
        ),
        (
            "spec.http[0].route[0].removeResponseHeaders",
            "headers.response.remove",
        ),
    ] {
        assert!(
            warnings
                .iter()
                .any(|(p, m)| *p == path && m.ends_with(&format!("read as `{read_as}`"))),
            "no warning at {path} reading it as {read_as}: {warnings:?}"
        );
    }
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("ratings"),
        header_echo(),
    );
    let req = Request::get("/")
        .header("x-secret", "s3cr3t")
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.headers()["x-served-by"], "mesh");
    assert!(res.headers().get("server").is_none());
    assert!(res.headers().get("x-debug").is_none());
    assert_eq!(
        body(res).await,
        "/ route=Some(\"ratings\") destination=Some(\"ratings\") secret=None"
    );
}

#[cfg(feature = "tokio")] // the delay needs the `tokio` feature's timer
#[tokio::test(start_paused = true)]
async fn a_route_timeout_answers_504_and_does_not_count_the_injected_delay() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "ratings",
        r#"
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}
    timeout: 2s
    route: [{destination: {host: ratings}}]
  - timeout: 2s
    route: [{destination: {host: ratings}}]
"#,
    ))
    .unwrap();
    // The upstream takes as long as the `x-work` header says, in seconds.
    let slow = service_fn(|req: Request<Full<Bytes>>| async move {
        let secs: u64 = req
            .headers()
            .get("x-work")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
    });
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("ratings"),
        slow,
    );
    let call = |work: &str, user: &str| {
        Request::get("/")
            .header("x-work", work)
            .header("end-user", user)
            .body(Full::default())
            .unwrap()
    };

    let start = tokio::time::Instant::now();
    let res = svc.clone().oneshot(call("5", "ann")).await.unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(body(res).await, "upstream request timeout");

    let start = tokio::time::Instant::now();
    let res = svc.clone().oneshot(call("1", "ann")).await.unwrap();
    assert_eq!(
        (res.status(), start.elapsed()),
        (StatusCode::OK, Duration::from_secs(1))
    );

    // A 7 s injected delay, then 1 s of work: within the 2 s budget, which starts after the delay.
    let start = tokio::time::Instant::now();
    let res = svc.oneshot(call("1", "jason")).await.unwrap();
    assert_eq!(
        (res.status(), start.elapsed()),
        (StatusCode::OK, Duration::from_secs(8))
    );
}

#[tokio::test]
async fn cors_preflights_are_answered_after_the_fault_stage() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "api",
        r#"
  - match: [{uri: {prefix: /broken}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    corsPolicy: {allowOrigins: [{exact: "https://shop.example"}], allowMethods: [GET]}
    route: [{destination: {host: api}}]
  - corsPolicy:
      allowOrigins: [{exact: "https://shop.example"}, {regex: "https://.*\\.partner\\.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-token]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: IGNORE
    route: [{destination: {host: api}}]
"#,
    ))
    .unwrap();
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules).response_decisions(true).host("api"),
        hello("v1"),
    );
    let preflight = |origin: &str, path: &str| {
        Request::options(path)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Full::default())
            .unwrap()
    };

    let res = svc
        .clone()
        .oneshot(preflight("https://a.partner.example", "/items"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(
        h["access-control-allow-origin"],
        "https://a.partner.example"
    );
    assert_eq!(h["access-control-allow-methods"], "GET,POST");
    assert_eq!(h["access-control-allow-headers"], "x-token");
    assert_eq!(h["access-control-max-age"], "86400");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(
        body(res).await,
        "",
        "a preflight is answered by the middleware"
    );

    // An origin that is not allowed: IGNORE answers without CORS headers.
    let res = svc
        .clone()
        .oneshot(preflight("https://evil.example", "/items"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("access-control-allow-origin").is_none());

    // An actual request from an allowed origin is forwarded and its response gets the headers.
    let req = Request::get("/items")
        .header("origin", "https://shop.example")
        .body(Full::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(res.headers()["access-control-expose-headers"], "x-trace");
    assert_eq!(body(res).await, "Hello World! (v1)");

    // The fault stage comes first: a preflight on an aborting route is aborted.
    let res = svc
        .oneshot(preflight("https://shop.example", "/broken"))
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
}
