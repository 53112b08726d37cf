//! Gateway API routes carried out by the middleware: a backend is a Service, reached through
//! `MeshRouter` by its name; 404s, 500s and redirects are answered by the layer.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{ServiceExt, service_fn};
use tower_mesh::layer::{Destinations, MeshLayer};
use tower_mesh::{Context, Decision, NeverSampler, Outcome, RuleSet};

const ROUTES: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - name: v2
    matches: [{path: {type: PathPrefix, value: /v2}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-route, value: v2}]}}]
    backendRefs: [{name: echo-v2, port: 8080}]
  - name: moved
    matches: [{path: {type: PathPrefix, value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]
  - name: broken
    matches: [{path: {type: Exact, value: /broken}}]
  - name: rest
    matches: [{path: {type: PathPrefix, value: /}, method: GET}]
    backendRefs: [{name: echo-v1, port: 8080}]
"#;

/// A service that answers its name and the `x-route` header it got.
fn named(
    name: &'static str,
) -> BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible> {
    BoxCloneSyncService::new(service_fn(move |req: Request<Full<Bytes>>| async move {
        let route = req
            .headers()
            .get("x-route")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "{name} {} {route}",
            req.uri().path()
        )))))
    }))
}

fn get(method: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Full::default())
        .unwrap()
}

async fn text(res: Response<tower_mesh::layer::MeshBody<Full<Bytes>>>) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn the_router_sends_each_rule_to_its_service() {
    let router = MeshLayer::new(RuleSet::from_yaml(ROUTES).unwrap())
        .response_decisions(true)
        .host("echo.shop")
        .route_to(
            Destinations::new()
                .add("echo-v1", Vec::<(String, String)>::new(), named("echo-v1"))
                .add("echo-v2", Vec::<(String, String)>::new(), named("echo-v2")),
        );
    let res = router
        .clone()
        .oneshot(get("GET", "/v2/items"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, "echo-v2 /v2/items v2");
    let res = router.clone().oneshot(get("GET", "/items")).await.unwrap();
    assert_eq!(text(res).await, "echo-v1 /items -");

    let res = router.clone().oneshot(get("POST", "/items")).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "no rule takes a POST to /items"
    );
    let decision = res.extensions().get::<Decision>().unwrap();
    assert_eq!(
        (decision.outcome(), decision.rule()),
        (Outcome::NotFound, None)
    );

    let res = router.clone().oneshot(get("GET", "/broken")).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        res.extensions().get::<Decision>().unwrap().route_name(),
        Some("broken")
    );

    let res = router.oneshot(get("GET", "/old/page?x=1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()["location"], "http://echo.shop/new/page?x=1");
}

#[tokio::test]
async fn a_layer_around_one_service_shows_the_decision_to_the_handler() {
    let inner = service_fn(|req: Request<Full<Bytes>>| async move {
        let d = req.extensions().get::<Decision>().unwrap();
        let line = format!("{} {:?}", d.destination().unwrap().host(), d.route_name());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(line))))
    });
    let layer = MeshLayer::new(RuleSet::from_yaml(ROUTES).unwrap())
        .response_decisions(true)
        .host("echo.shop");
    let svc = tower::Layer::layer(&layer, inner);
    let res = svc.oneshot(get("GET", "/v2")).await.unwrap();
    assert_eq!(text(res).await, "echo-v2 Some(\"v2\")");
}

#[test]
fn explain_names_the_precedence_that_decided() {
    let rules = RuleSet::from_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: api}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: short, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: api}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: all, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /api/v2}}]
    backendRefs: [{name: long, port: 80}]
"#,
    )
    .unwrap();
    let ctx = Context::new().with_host("api.shop");
    let req = Request::get("/api/v2/x").body(()).unwrap();
    let text = rules.explain(&req, &ctx, &NeverSampler).to_string();
    assert!(
        text.starts_with("GET /api/v2/x to api.shop (gateway mesh)\n"),
        "the header line comes first: {text}"
    );
    assert!(
        text.contains("rule 1 of route shop/b wins over rule 0 of route shop/a, which also matches: longer path"),
        "{text}"
    );
    let req = Request::get("/api/x").body(()).unwrap();
    let text = rules.explain(&req, &ctx, &NeverSampler).to_string();
    assert!(
        text.contains("rule 0 of route shop/a wins over rule 0 of route shop/b, which also matches: longer path"),
        "{text}"
    );
}

#[tokio::test]
async fn a_grpc_route_with_nothing_to_send_answers_unavailable_in_grpc_form() {
    let rules = RuleSet::from_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{method: {service: echo.Echo, method: Broken}}]
"#,
    )
    .unwrap();
    let inner = service_fn(|_req: Request<Full<Bytes>>| async move {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"reached"))))
    });
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("echo.shop"),
        inner,
    );
    let grpc = Request::post("/echo.Echo/Broken")
        .header("content-type", "application/grpc")
        .body(Full::default())
        .unwrap();
    let res = svc.clone().oneshot(grpc).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "14");
    assert_eq!(res.headers()["content-type"], "application/grpc");
    let plain = Request::post("/echo.Echo/Broken")
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(plain).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Ported from the Gateway API conformance tests HTTPRouteTimeoutRequest and
/// HTTPRouteTimeoutBackendRequest: `timeouts.request` bounds the whole call (504 when it runs
/// out); a call that finishes in time is answered.
/// (The timeout needs the `tokio` feature's timer.)
#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_rule_timeout_answers_504() {
    let rules = RuleSet::from_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: timeouts, namespace: infra}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - timeouts: {request: 500ms}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
"#,
    )
    .unwrap();
    let slow = service_fn(|req: Request<Full<Bytes>>| async move {
        let ms: u64 = req
            .headers()
            .get("x-work-ms")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
    });
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("echo.infra"),
        slow,
    );
    let call = |ms: &str| {
        Request::get("/")
            .header("x-work-ms", ms)
            .body(Full::default())
            .unwrap()
    };
    let start = tokio::time::Instant::now();
    let res = svc.clone().oneshot(call("1000")).await.unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(start.elapsed(), std::time::Duration::from_millis(500));
    let res = svc.oneshot(call("100")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Ported from the Gateway API conformance test HTTPRouteResponseHeaderModifier: response
/// header operations of the rule, then of the chosen backend.
#[tokio::test]
async fn response_headers_are_modified() {
    let rules = RuleSet::from_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: response-headers, namespace: infra}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: add-appends-values}]
        remove: [X-Header-Remove]
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      filters:
      - type: ResponseHeaderModifier
        responseHeaderModifier: {set: [{name: X-Backend, value: v1}]}
"#,
    )
    .unwrap();
    let inner = service_fn(|_req: Request<Full<Bytes>>| async move {
        let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
        let h = res.headers_mut();
        h.insert("x-header-set", "original".parse().unwrap());
        h.insert("x-header-add", "original".parse().unwrap());
        h.insert("x-header-remove", "gone".parse().unwrap());
        Ok::<_, Infallible>(res)
    });
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules)
            .response_decisions(true)
            .host("echo.infra"),
        inner,
    );
    let res = svc.oneshot(get("GET", "/")).await.unwrap();
    let h = res.headers();
    assert_eq!(h["x-header-set"], "set-overwrites-values");
    let added: Vec<_> = h.get_all("x-header-add").iter().collect();
    assert_eq!(added, ["original", "add-appends-values"]);
    assert!(h.get("x-header-remove").is_none());
    assert_eq!(h["x-backend"], "v1");
}

/// An HTTPRoute (or GRPCRoute) on Service `api` whose rules have these numbers of match
/// entries.
fn route_with_matches(kind: &str, per_rule: &[usize]) -> String {
    let mut text = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\nmetadata: {{name: r, namespace: shop}}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: api, port: 80}}]\n  rules:\n"
    );
    for &n in per_rule {
        text.push_str(&format!("  - matches: [{}]\n", vec!["{}"; n].join(", ")));
    }
    text
}

#[test]
fn the_crds_limits_on_rules_and_matches_are_kept() {
    for kind in ["HTTPRoute", "GRPCRoute"] {
        let load = |per_rule: &[usize]| RuleSet::from_yaml(&route_with_matches(kind, per_rule));
        let at_the_limits = load(&[64, 64]).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(at_the_limits.table().route_count(), 128, "{kind}");
        assert!(load(&[1; 16]).is_ok(), "{kind}: 16 rules");

        let error = |per_rule: &[usize]| match load(per_rule) {
            Ok(_) => panic!("{kind} with {per_rule:?} matches loaded"),
            Err(e) => e.to_string(),
        };
        let err = error(&[1; 17]);
        assert!(
            err.contains("spec.rules") && err.contains("17"),
            "{kind}: {err}"
        );
        let err = error(&[2, 65]);
        assert!(
            err.contains("spec.rules[1].matches")
                && err.contains("65")
                && err.contains("at most 64 matches in a rule"),
            "{kind}: {err}"
        );
        let err = error(&[43, 43, 43]);
        assert!(
            err.contains("129") && err.contains("less than 128"),
            "{kind}: {err}"
        );
    }
}
