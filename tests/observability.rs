//! What the middleware shows of each request: the response flags on the decision, the access
//! log, the crate's warnings as `tracing` events, and Istio's standard metrics.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt, service_fn};
use tower_mesh::layer::{Destinations, MeshLayer};
use tower_mesh::{Caller, Decision, ResponseFlags, RuleSet, ScriptedSampler};

mod common;
use common::Lines;

const RULES: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - name: aborted
    match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
  - name: delayed
    match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 2s, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v2}}]
  - name: slow
    match: [{uri: {prefix: /slow}}]
    timeout: 1s
    route: [{destination: {host: reviews, subset: v1}}]
  - name: flaky
    match: [{uri: {prefix: /flaky}}]
    retries: {attempts: 2, retryOn: "503"}
    route: [{destination: {host: reviews, subset: v1}}]
  - name: v3
    match: [{uri: {prefix: /v3}}]
    route: [{destination: {host: reviews, subset: v1}, weight: 0}, {destination: {host: other}, weight: 1}]
  - name: rest
    match: [{uri: {prefix: /api}}]
    route: [{destination: {host: reviews, subset: v2}}]
"#;

/// A service that answers `status` after `secs` seconds.
fn answering<B: Send + 'static>(
    status: u16,
    secs: u64,
) -> BoxCloneSyncService<Request<B>, Response<Full<Bytes>>, Infallible> {
    BoxCloneSyncService::new(service_fn(move |_req: Request<B>| async move {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
        *res.status_mut() = StatusCode::from_u16(status).unwrap();
        Ok::<_, Infallible>(res)
    }))
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::default()).unwrap()
}

fn flags_of(res: &Response<tower_mesh::MeshBody<Full<Bytes>>>) -> String {
    res.extensions()
        .get::<Decision>()
        .unwrap()
        .response_flags()
        .to_string()
}

#[tokio::test(start_paused = true)]
async fn the_decision_in_the_response_carries_envoys_flags() {
    let router = MeshLayer::new(RuleSet::from_yaml(RULES).unwrap())
        .response_decisions(true)
        .host("reviews.shop")
        .replay_bodies(1024)
        .route_to(
            Destinations::new()
                .add("reviews", [("version", "v1")], answering(503, 0))
                .add("reviews", [("version", "v2")], answering(200, 0)),
        );
    let res = router.clone().oneshot(get("/abort")).await.unwrap();
    assert_eq!(
        (res.status(), flags_of(&res)),
        (StatusCode::SERVICE_UNAVAILABLE, "FI".into())
    );
    let res = router.clone().oneshot(get("/delay")).await.unwrap();
    assert_eq!(
        (res.status(), flags_of(&res)),
        (StatusCode::OK, "DI".into())
    );
    let res = router.clone().oneshot(get("/nowhere")).await.unwrap();
    assert_eq!(
        (res.status(), flags_of(&res)),
        (StatusCode::NOT_FOUND, "NR".into())
    );
    let res = router.clone().oneshot(get("/v3")).await.unwrap();
    assert_eq!(
        (res.status(), flags_of(&res)),
        (StatusCode::SERVICE_UNAVAILABLE, "UH".into())
    );
    let res = router.clone().oneshot(get("/flaky")).await.unwrap();
    assert_eq!(
        (res.status(), flags_of(&res)),
        (StatusCode::SERVICE_UNAVAILABLE, "URX".into())
    );
    let res = router.clone().oneshot(get("/api")).await.unwrap();
    let decision = res.extensions().get::<Decision>().unwrap();
    assert_eq!(decision.response_flags(), ResponseFlags::NONE);
    assert!(!decision.fault_injected());

    let slow = MeshLayer::new(RuleSet::from_yaml(RULES).unwrap())
        .response_decisions(true)
        .host("reviews.shop")
        .layer(answering(200, 5));
    let res = slow.oneshot(get("/slow")).await.unwrap();
    assert_eq!(
        (res.status(), flags_of(&res)),
        (StatusCode::GATEWAY_TIMEOUT, "UT".into())
    );
}

#[cfg(feature = "tokio")] // the delay needs the `tokio` feature's timer
#[test]
fn the_access_log_has_a_line_per_request() {
    let lines = Lines::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    tracing::subscriber::with_default(lines.subscriber(tracing::Level::INFO), || {
        rt.block_on(async {
            let svc = MeshLayer::new(RuleSet::from_yaml(RULES).unwrap())
                .response_decisions(true)
                .host("reviews.shop")
                .access_log(true)
                .layer(answering(200, 0));
            for path in ["/abort/1", "/delay/2", "/api/3"] {
                svc.clone().oneshot(get(path)).await.unwrap();
            }
            // A path that would break the quoted request line or hide text in the log.
            let mut hostile = get("/api/x");
            *hostile.uri_mut() = http::Uri::from_maybe_shared(Bytes::from(
                "/api/a\"b\u{2028}c\u{202E}d".as_bytes().to_vec(),
            ))
            .unwrap();
            svc.clone().oneshot(hostile).await.unwrap();
        })
    });
    let text = lines.text();
    let access: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tower_mesh::access"))
        .collect();
    assert_eq!(access.len(), 4, "{text}");
    assert!(
        access[3].contains("\"GET /api/a%22b%E2%80%A8c%E2%80%AEd HTTP/1.1\" 200 - 0 2 0"),
        "{}",
        access[3]
    );
    assert!(
        !text.contains('\u{2028}') && !text.contains('\u{202E}'),
        "{text}"
    );
    assert!(
        access[0].contains("\"GET /abort/1 HTTP/1.1\" 503 FI 0 18 0"),
        "{}",
        access[0]
    );
    assert!(access[0].contains("route=\"aborted\""), "{}", access[0]);
    assert!(
        access[1].contains("\"GET /delay/2 HTTP/1.1\" 200 DI 0 2 2000"),
        "{}",
        access[1]
    );
    assert!(
        access[1].contains("destination_subset=\"v2\""),
        "{}",
        access[1]
    );
    assert!(
        access[2].contains("\"GET /api/3 HTTP/1.1\" 200 - 0 2 0"),
        "{}",
        access[2]
    );
    assert!(access.iter().all(|l| l.contains(" INFO ")), "{text}");
}

#[test]
fn warnings_are_tracing_events() {
    let lines = Lines::default();
    tracing::subscriber::with_default(lines.subscriber(tracing::Level::INFO), || {
        let rules = RuleSet::from_yaml(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n    mirrorPercent: 5\n",
        )
        .unwrap();
        let layer = MeshLayer::new(rules);
        // A layer without `.host(...)` whose requests name no configured host: one WARN.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let svc = layer.layer(answering(200, 0));
        for _ in 0..3 {
            rt.block_on(svc.clone().oneshot(get("http://elsewhere/")))
                .unwrap();
        }
        assert!(layer.rules().reload_yaml("kind: [broken").is_err());
    });
    let text = lines.text();
    let warns: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warns.len(), 3, "{text}");
    assert!(warns[0].contains("`mirrorPercent` is deprecated"), "{text}");
    assert!(
        warns[1].contains("this layer has no `.host(...)`"),
        "{text}"
    );
    assert!(warns[2].contains("rules not reloaded"), "{text}");
}

#[test]
fn istios_metrics_are_recorded_with_istios_labels() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let caller = Caller::new()
                .with_service("productpage")
                .with_namespace("shop")
                .with_labels([("app", "productpage"), ("version", "v1")]);
            let router = MeshLayer::new(RuleSet::from_yaml(RULES).unwrap())
                .response_decisions(true)
                .host("reviews.shop")
                .caller(caller)
                // Two draws a request at most; none fires below 100 %.
                .sampler(ScriptedSampler::new([0]))
                .route_to(
                    Destinations::new()
                        .add("reviews", [("version", "v1")], answering(200, 0))
                        .add("reviews", [("version", "v2")], answering(200, 0)),
                );
            for path in ["/abort", "/abort", "/api", "/api", "/api", "/nowhere"] {
                router.clone().oneshot(get(path)).await.unwrap();
            }
        })
    });
    let text = handle.render();
    let series = |needle: &[&str]| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("istio_requests_total{"))
            .filter(|l| needle.iter().all(|n| l.contains(n)))
            .map(str::to_string)
            .collect()
    };
    let aborted = series(&["response_code=\"503\"", "response_flags=\"FI\""]);
    assert_eq!(aborted.len(), 1, "{text}");
    assert!(aborted[0].ends_with(" 2"), "{}", aborted[0]);
    for label in [
        "reporter=\"source\"",
        "source_workload=\"productpage\"",
        "source_workload_namespace=\"shop\"",
        "source_app=\"productpage\"",
        "source_version=\"v1\"",
        "destination_service=\"reviews.shop.svc.cluster.local\"",
        "destination_service_name=\"reviews\"",
        "request_protocol=\"http\"",
        "connection_security_policy=\"unknown\"",
    ] {
        assert!(aborted[0].contains(label), "{label} in {}", aborted[0]);
    }
    let v2 = series(&[
        "destination_version=\"v2\"",
        "response_code=\"200\"",
        "response_flags=\"-\"",
    ]);
    assert!(v2.len() == 1 && v2[0].ends_with(" 3"), "{text}");
    let nr = series(&["response_code=\"404\"", "response_flags=\"NR\""]);
    assert!(nr.len() == 1 && nr[0].ends_with(" 1"), "{text}");
    assert!(
        text.contains("istio_request_duration_milliseconds"),
        "{text}"
    );
    assert!(text.contains("istio_request_bytes"), "{text}");
    assert!(text.contains("istio_response_bytes"), "{text}");
    assert!(
        text.contains("tower_mesh_rule_reloads_total{result=\"ok\"} 1"),
        "{text}"
    );
    assert!(text.contains("tower_mesh_routes 6"), "{text}");
}

/// A gRPC service whose answer's `grpc-status` is the number after `/` in the path, and whose
/// HTTP status is `status`.
fn grpc_status_echo(
    status: u16,
) -> BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible> {
    BoxCloneSyncService::new(service_fn(move |req: Request<Full<Bytes>>| async move {
        let code = req.uri().path().trim_start_matches('/').to_string();
        let mut res = Response::new(Full::default());
        *res.status_mut() = StatusCode::from_u16(status).unwrap();
        res.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        res.headers_mut()
            .insert("grpc-status", code.parse().unwrap());
        Ok::<_, Infallible>(res)
    }))
}

#[test]
fn upstream_answers_and_reloads_make_a_bounded_number_of_series() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let in_force = metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let layer = MeshLayer::new(RuleSet::empty()).host("reviews.shop");
            let rules = layer.rules();
            for status in [200, 503, 600, 799, 999] {
                let svc = layer.clone().layer(grpc_status_echo(status));
                for code in 0..300 {
                    let req = Request::post(format!("/{code}"))
                        .header("content-type", "application/grpc")
                        .body(Full::default())
                        .unwrap();
                    svc.clone().oneshot(req).await.unwrap();
                }
            }
            for i in 0..50 {
                let yaml = format!(
                    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [r]\n  http:\n  - route: [{{destination: {{host: r{i}}}}}]\n"
                );
                rules.replace(RuleSet::from_yaml(&yaml).unwrap());
            }
            rules.version()
        })
    });
    let text = handle.render();
    let requests: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .collect();
    // HTTP 200 and 503 with each of gRPC's 17 codes, and `unknown` (any status past 599) with
    // each: 3 x 17 series, whatever the 1,500 answers said.
    assert_eq!(requests.len(), 3 * 17, "{}", requests.join("\n"));
    let folded: Vec<&&str> = requests
        .iter()
        .filter(|l| {
            l.contains("response_code=\"unknown\"") && l.contains("grpc_response_status=\"2\"")
        })
        .collect();
    // 300 answers of each of 600, 799 and 999: code 2 and the 283 codes 17 to 299 count as
    // UNKNOWN.
    assert!(
        folded.len() == 1 && folded[0].ends_with(" 852"),
        "{folded:?}"
    );
    let versions: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tower_mesh_rules_version"))
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "one series for 51 versions: {versions:?}"
    );
    let shown: f64 = versions[0].rsplit(' ').next().unwrap().parse().unwrap();
    let number = u64::from_str_radix(&in_force[..12], 16).unwrap();
    assert_eq!(shown, number as f64);
}
