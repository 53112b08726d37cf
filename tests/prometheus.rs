//! A real Prometheus server scrapes a tower-mesh service on loopback while a bounded client
//! sends a known mix of requests under a 10% abort rule and a 50/50 split; Prometheus's HTTP
//! API must then count exactly what the client saw, and the queries of Istio's service
//! dashboard must answer for the service.
//!
//! The server is Debian's `prometheus` package, which `.ci/run` installs. Without the binary the
//! test prints `skipped: ...` and passes; `.ci/run` fails if it was skipped there.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::net::TcpListener;
use tower::service_fn;
use tower::util::BoxCloneSyncService;
use tower_mesh::layer::{Destinations, MeshLayer};
use tower_mesh::{RuleSet, SeededSampler};

/// The requests the client sends, in this many batches.
const REQUESTS: usize = 400;
const BATCHES: usize = 4;

const RULES: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld-service}
spec:
  host: helloworld-service
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld-service}
spec:
  hosts: [helloworld-service]
  http:
  - fault: {abort: {httpStatus: 503, percentage: {value: 10}}}
    route:
    - {destination: {host: helloworld-service, subset: v1}, weight: 50}
    - {destination: {host: helloworld-service, subset: v2}, weight: 50}
"#;

type Version = BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, Infallible>;

fn version(name: &'static str) -> Version {
    BoxCloneSyncService::new(service_fn(move |_req: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "Hello World! ({name})"
        )))))
    }))
}

/// What a query's samples must show.
type Check = Box<dyn Fn(&[(String, f64)]) -> bool>;

/// A line written past the test harness's capture, so that every run shows it.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves the walkthrough's service on `listener`, as the helloworld example does.
async fn serve(listener: TcpListener) {
    let router = MeshLayer::new(RuleSet::from_yaml(RULES).unwrap())
        .host("helloworld-service")
        .sampler(SeededSampler::new(16))
        .route_to(
            Destinations::new()
                .add("helloworld-service", [("version", "v1")], version("v1"))
                .add("helloworld-service", [("version", "v2")], version("v2")),
        );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let svc = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Prometheus, scraping `target` every second, with its API on `api`; killed when dropped.
struct Prometheus(Child, std::path::PathBuf);

impl Prometheus {
    fn start(binary: &str, target: SocketAddr, api: SocketAddr) -> Prometheus {
        let dir =
            std::env::temp_dir().join(format!("tower-mesh-prometheus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: tower-mesh\n  static_configs:\n  - targets: ['{target}']\n"),
        )
        .unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={api}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("prometheus starts");
        Prometheus(child, dir)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn get(client: &HttpClient, uri: String) -> Option<(u16, String)> {
    let req = Request::get(uri).body(Full::default()).ok()?;
    let res = client.request(req).await.ok()?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The samples of an instant query: each series' labels (as JSON text) and value.
async fn query(client: &HttpClient, api: SocketAddr, promql: &str) -> Vec<(String, f64)> {
    let q: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let Some((200, body)) = get(client, format!("http://{api}/api/v1/query?query={q}")).await
    else {
        return Vec::new();
    };
    let sample =
        regex::Regex::new(r#"\{"metric":(\{[^}]*\}),"value":\[[^,]+,"([^"]+)"\]\}"#).unwrap();
    sample
        .captures_iter(&body)
        .filter_map(|c| Some((c[1].to_string(), c[2].parse().ok()?)))
        .collect()
}

/// Polls `check` once a second, up to `tries` times, until it holds.
async fn eventually<F: AsyncFnMut() -> bool>(tries: usize, mut check: F) -> bool {
    for _ in 0..tries {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counts_what_the_client_saw() {
    let Some(binary) = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        say(format_args!(
            "skipped: prometheus_counts_what_the_client_saw: no prometheus binary (apt-get install prometheus)"
        ));
        return;
    };
    let metrics_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    PrometheusBuilder::new()
        .with_http_listener(metrics_addr)
        .set_buckets_for_metric(
            Matcher::Full("istio_request_duration_milliseconds".into()),
            &[0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
        )
        .unwrap()
        .install()
        .expect("the recorder installs");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    tokio::spawn(serve(listener));
    let api: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let _prometheus = Prometheus::start(binary, metrics_addr, api);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let ready = eventually(60, async || {
        matches!(
            get(&client, format!("http://{api}/-/ready")).await,
            Some((200, _))
        )
    })
    .await;
    assert!(ready, "prometheus did not become ready");

    // The client's own tally of what it saw. The requests go in batches, each scraped before
    // the next is sent, so that rate() over the series sees them increase.
    let (mut v1, mut v2, mut aborted) = (0.0, 0.0, 0.0);
    for batch in 1..=BATCHES {
        for _ in 0..REQUESTS / BATCHES {
            match get(&client, format!("http://{app}/")).await {
                Some((200, body)) if body.ends_with("(v1)") => v1 += 1.0,
                Some((200, body)) if body.ends_with("(v2)") => v2 += 1.0,
                Some((503, body)) if body == "fault filter abort" => aborted += 1.0,
                other => panic!("unexpected answer: {other:?}"),
            }
        }
        let sent = (batch * REQUESTS / BATCHES) as f64;
        let scraped = eventually(60, async || {
            query(&client, api, "sum(istio_requests_total)")
                .await
                .first()
                .map(|s| s.1)
                == Some(sent)
        })
        .await;
        assert!(scraped, "prometheus never counted {sent} requests");
    }
    say(format_args!(
        "client saw: v1 {v1}, v2 {v2}, aborted {aborted}"
    ));

    let service = r#"destination_service_name="helloworld-service""#;
    let checks: Vec<(String, Check)> = vec![
        (
            format!(
                "sum by (destination_version) (istio_requests_total{{{service},response_code=\"200\"}})"
            ),
            Box::new(move |r| {
                let of = |v: &str| {
                    r.iter()
                        .find(|(m, _)| m.contains(&format!("\"destination_version\":\"{v}\"")))
                        .map(|s| s.1)
                };
                of("v1") == Some(v1) && of("v2") == Some(v2)
            }),
        ),
        (
            format!(
                "sum(istio_requests_total{{{service},response_flags=\"FI\",response_code=\"503\"}})"
            ),
            Box::new(move |r| r.first().map(|s| s.1) == Some(aborted)),
        ),
        (
            format!(
                "sum by (response_code) (rate(istio_requests_total{{reporter=\"source\",{service}}}[1m]))"
            ),
            Box::new(|r| {
                ["200", "503"].iter().all(|c| {
                    r.iter()
                        .any(|(m, v)| m.contains(&format!("\"response_code\":\"{c}\"")) && *v > 0.0)
                })
            }),
        ),
        (
            format!(
                "sum(rate(istio_requests_total{{{service},response_code!~\"5.*\"}}[1m])) / sum(rate(istio_requests_total{{{service}}}[1m]))"
            ),
            Box::new(|r| r.first().is_some_and(|s| s.1 > 0.0 && s.1 < 1.0)),
        ),
    ];
    let quantiles: Vec<(String, Check)> = [0.5, 0.9, 0.99]
        .into_iter()
        .map(|q| {
            let promql = format!("histogram_quantile({q}, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{service}}}[1m])))");
            let ok: Check = Box::new(|r| r.first().is_some_and(|s| s.1.is_finite() && s.1 >= 0.0));
            (promql, ok)
        })
        .collect();
    let mut matched = 0;
    let all: Vec<_> = checks.into_iter().chain(quantiles).collect();
    for (promql, ok) in &all {
        // rate() needs two scrapes of the series in its window: give it a few seconds.
        let hit = eventually(15, async || ok(&query(&client, api, promql).await)).await;
        say(format_args!(
            "{} {promql}",
            if hit { "matched" } else { "FAILED " }
        ));
        matched += usize::from(hit);
    }
    say(format_args!(
        "prometheus: {} queries, {matched} matched",
        all.len()
    ));
    assert_eq!(matched, all.len());
}
