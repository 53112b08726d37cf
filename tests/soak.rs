//! Faults and reloads under load, over loopback and bounded: 8 clients send 20,000 requests
//! each through the helloworld stack with a 10% abort rule while the rules are reloaded every
//! 10 ms, valid and invalid in turn. And an inner service that fails or panics.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::serve;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::util::BoxCloneSyncService;
use tower::{ServiceExt, service_fn};
use tower_mesh::{Destinations, MeshLayer, MeshRules, RuleSet};

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 20_000;

fn rules_to(version: &str) -> String {
    format!(
        r#"
apiVersion: config.istio.io/v1alpha2
kind: RouteRule
metadata: {{name: helloworld-service-abort}}
spec:
  destination: {{name: helloworld-service}}
  route:
  - labels: {{version: "{version}"}}
  httpFault:
    abort: {{percent: 10, httpStatus: 503}}
"#
    )
}

type Version = BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, Infallible>;

fn version(name: &'static str) -> Version {
    BoxCloneSyncService::new(service_fn(move |_req: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "Hello World! ({name})"
        )))))
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_reloads_under_load() {
    let handle = MeshRules::new(RuleSet::from_yaml(&rules_to("v1")).unwrap());
    let router = MeshLayer::new(handle.clone())
        .host("helloworld-service")
        .route_to(
            Destinations::new()
                .add("helloworld-service", [("version", "v1")], version("v1"))
                .add("helloworld-service", [("version", "v2")], version("v2")),
        );
    let addr: SocketAddr = serve(router).await;

    let done = Arc::new(AtomicUsize::new(0));
    let reloader = {
        let (handle, done) = (handle.clone(), done.clone());
        tokio::spawn(async move {
            let (mut accepted, mut rejected) = (0usize, 0usize);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut i = 0usize;
            while done.load(Ordering::SeqCst) < CLIENTS {
                tick.tick().await;
                if i % 2 == 1 {
                    let before = handle.current();
                    let bad = rules_to("v1").replace("httpStatus: 503", "httpStatus: 700");
                    let err = handle
                        .reload_yaml(&bad)
                        .expect_err("an invalid configuration is reported");
                    assert!(err.to_string().contains("between 200 and 599"), "{err}");
                    assert!(
                        Arc::ptr_eq(&before, &handle.current()),
                        "a failed reload changed the rules"
                    );
                    rejected += 1;
                } else {
                    handle
                        .reload_yaml(&rules_to(if i.is_multiple_of(4) { "v2" } else { "v1" }))
                        .expect("a valid configuration loads");
                    accepted += 1;
                }
                i += 1;
            }
            (accepted, rejected)
        })
    };

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let done = done.clone();
        clients.push(tokio::spawn(async move {
            let client: Client<_, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let mut counts = [0usize; 3]; // v1, v2, aborted
            for _ in 0..PER_CLIENT {
                let req = Request::get(format!("http://{addr}/"))
                    .body(Empty::new())
                    .unwrap();
                let res = client.request(req).await.expect("no transport error");
                let status = res.status();
                let body = res
                    .into_body()
                    .collect()
                    .await
                    .expect("a whole body")
                    .to_bytes();
                match (status, &body[..]) {
                    (StatusCode::OK, b"Hello World! (v1)") => counts[0] += 1,
                    (StatusCode::OK, b"Hello World! (v2)") => counts[1] += 1,
                    (StatusCode::SERVICE_UNAVAILABLE, b"fault filter abort") => counts[2] += 1,
                    (s, b) => panic!(
                        "a response no rule set explains: {s} {:?}",
                        String::from_utf8_lossy(b)
                    ),
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
            counts
        }));
    }
    let mut counts = [0usize; 3];
    for c in clients {
        let got = c.await.unwrap();
        for i in 0..3 {
            counts[i] += got[i];
        }
    }
    let (accepted, rejected) = reloader.await.unwrap();
    let n = CLIENTS * PER_CLIENT;
    let aborted = counts[2] as f64 / n as f64;
    let sigma = (0.1 * 0.9 / n as f64).sqrt();
    println!(
        "requests {n}: 200 v1 {}, 200 v2 {}, 503 aborted {} ({:.4}); transport errors 0; reloads accepted {accepted}, rejected {rejected}",
        counts[0], counts[1], counts[2], aborted
    );
    assert_eq!(counts.iter().sum::<usize>(), n);
    assert!(
        (aborted - 0.1).abs() <= 5.0 * sigma,
        "aborted fraction {aborted}"
    );
    assert!(
        accepted >= 2 && rejected >= 2,
        "too few reloads: {accepted} accepted, {rejected} rejected"
    );
}

#[tokio::test]
async fn inner_errors_pass_through_once_and_panics_are_not_caught() {
    let rules = RuleSet::from_yaml(&rules_to("v1").replace("percent: 10", "percent: 0")).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let failing = service_fn(move |_req: Request<Empty<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<Response<Empty<Bytes>>, _>(std::io::Error::other("upstream is down")) }
    });
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules.clone()).host("helloworld-service"),
        failing,
    );
    let err = svc.oneshot(Request::new(Empty::new())).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "upstream is down",
        "the inner error comes back unchanged"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "called exactly once: no retry, no hiding"
    );

    let panicking = service_fn(|_req: Request<Empty<Bytes>>| async {
        panic!("handler bug");
        #[allow(unreachable_code)]
        Ok::<Response<Empty<Bytes>>, Infallible>(Response::new(Empty::new()))
    });
    let svc = tower::Layer::layer(&MeshLayer::new(rules).host("helloworld-service"), panicking);
    let joined = tokio::spawn(svc.oneshot(Request::new(Empty::new()))).await;
    assert!(
        joined.unwrap_err().is_panic(),
        "the panic propagates to the caller"
    );
}
