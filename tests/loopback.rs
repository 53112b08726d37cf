//! End to end over a real loopback server (hyper 1 via hyper-util) and a real HTTP client:
//! the walkthrough's routing and faults, a delay, an abort rate, and reloads under load.
//! Every loop is bounded in requests; everything listens on 127.0.0.1.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::serve;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use tower::service_fn;
use tower::util::BoxCloneSyncService;
use tower_mesh::MeshRules;
use tower_mesh::layer::{Destinations, MeshLayer};
use tower_mesh::{RuleSet, SeededSampler};

type Version = BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, Infallible>;

fn version(name: &'static str) -> Version {
    BoxCloneSyncService::new(service_fn(move |_req: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "Hello World! ({name})"
        )))))
    }))
}

fn destinations() -> Destinations<Version> {
    Destinations::new()
        .add("helloworld-service", [("version", "v1")], version("v1"))
        .add("helloworld-service", [("version", "v2")], version("v2"))
}

fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    ua: &str,
) -> (StatusCode, String) {
    let req = Request::get(format!("http://{addr}/"))
        .header("user-agent", ua)
        .body(Empty::new())
        .unwrap();
    let res = client.request(req).await.expect("no transport error");
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

const DEFAULT_V1: &str = include_str!("../examples/config/helloworld-default.yaml");

const CHROME_V2: &str = include_str!("../examples/config/route-to-v2.yaml");

const ABORT_503: &str = include_str!("../examples/config/fault-503.yaml");

fn rules(docs: &[&str]) -> RuleSet {
    RuleSet::from_yaml(&docs.join("\n---\n")).unwrap()
}

#[tokio::test]
async fn chrome_goes_to_v2_and_others_to_v1() {
    let router = MeshLayer::new(rules(&[DEFAULT_V1, CHROME_V2]))
        .host("helloworld-service")
        .route_to(destinations());
    let addr = serve(router).await;
    let client = client();
    let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.77 Safari/537.36";
    assert_eq!(
        get(&client, addr, chrome).await,
        (StatusCode::OK, "Hello World! (v2)".into())
    );
    assert_eq!(
        get(&client, addr, "curl/8.4.0").await,
        (StatusCode::OK, "Hello World! (v1)".into())
    );
}

#[tokio::test]
async fn the_503_rule_aborts_every_request() {
    let router = MeshLayer::new(rules(&[DEFAULT_V1, ABORT_503]))
        .host("helloworld-service")
        .route_to(destinations());
    let addr = serve(router).await;
    let client = client();
    for ua in ["Chrome", "curl/8.4.0", "Firefox"] {
        assert_eq!(
            get(&client, addr, ua).await,
            (StatusCode::SERVICE_UNAVAILABLE, "fault filter abort".into())
        );
    }
}

#[cfg(feature = "tokio")] // the delay needs the `tokio` feature's timer
#[tokio::test(start_paused = true)]
async fn a_delay_over_loopback_holds_the_response() {
    let delay = r#"
apiVersion: config.istio.io/v1alpha2
kind: RouteRule
metadata: {name: helloworld-delay}
spec:
  destination: {name: helloworld-service}
  precedence: 1
  route:
  - labels: {version: "v1"}
  httpFault:
    delay: {percent: 100, fixedDelay: 7s}
"#;
    let router = MeshLayer::new(rules(&[DEFAULT_V1, delay]))
        .host("helloworld-service")
        .route_to(destinations());
    let addr = serve(router).await;
    let client = client();
    let start = tokio::time::Instant::now();
    let (status, body) = get(&client, addr, "curl").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "Hello World! (v1)")
    );
    assert!(
        start.elapsed() >= Duration::from_secs(7),
        "answered after {:?} of virtual time",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_ten_percent_abort_rate_holds_within_five_sigma() {
    let ten_percent = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld}
spec:
  hosts: [helloworld-service]
  http:
  - fault:
      abort: {httpStatus: 503, percentage: {value: 10}}
    route:
    - destination: {host: helloworld-service}
"#;
    let router = MeshLayer::new(rules(&[ten_percent]))
        .host("helloworld-service")
        .route_to(destinations());
    let addr = serve(router).await;
    let client = client();
    const N: usize = 2_000;
    let mut aborted = 0;
    for _ in 0..N {
        let (status, body) = get(&client, addr, "curl").await;
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body, "fault filter abort");
                aborted += 1;
            }
            StatusCode::OK => assert!(body.starts_with("Hello World! (v")),
            other => panic!("unexpected status {other}"),
        }
    }
    let p = 0.10;
    let sigma = (p * (1.0 - p) / N as f64).sqrt();
    let observed = aborted as f64 / N as f64;
    assert!(
        (observed - p).abs() <= 5.0 * sigma,
        "aborted {aborted} of {N} ({observed})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_while_four_clients_send_requests() {
    let all_v1 = rules(&[DEFAULT_V1]);
    let all_v2 = RuleSet::from_yaml(&DEFAULT_V1.replace("\"v1\"", "\"v2\"")).unwrap();
    let handle = MeshRules::new(all_v1.clone());
    let router = MeshLayer::new(handle.clone())
        .host("helloworld-service")
        .sampler(SeededSampler::new(1))
        .route_to(destinations());
    let addr = serve(router).await;

    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(tokio::spawn(async move {
            let client = client();
            let mut seen = [0usize; 2];
            for _ in 0..400 {
                let (status, body) = get(&client, addr, "curl").await;
                assert_eq!(status, StatusCode::OK, "a request failed during a reload");
                match body.as_str() {
                    "Hello World! (v1)" => seen[0] += 1,
                    "Hello World! (v2)" => seen[1] += 1,
                    other => panic!("a response no rule set explains: {other:?}"),
                }
            }
            seen
        }));
    }
    let reloader = tokio::spawn(async move {
        let (mut accepted, mut rejected) = (0, 0);
        for i in 0..100 {
            if i % 5 == 4 {
                // An invalid configuration is reported and changes nothing.
                assert!(handle.reload_yaml("kind: RouteRule\nspec: [").is_err());
                rejected += 1;
            } else {
                handle.replace(if i % 2 == 0 {
                    all_v2.clone()
                } else {
                    all_v1.clone()
                });
                accepted += 1;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (accepted, rejected)
    });
    let mut total = [0usize; 2];
    for c in clients {
        let seen = c.await.unwrap();
        total[0] += seen[0];
        total[1] += seen[1];
    }
    let (accepted, rejected) = reloader.await.unwrap();
    assert_eq!(total[0] + total[1], 1_600);
    assert_eq!((accepted, rejected), (80, 20));
    println!(
        "v1 {} v2 {}; reloads accepted {accepted}, rejected {rejected}",
        total[0], total[1]
    );
}
