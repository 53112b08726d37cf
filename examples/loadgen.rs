//! Throughput and latency of a hyper hello server, bare and behind MeshLayer, on loopback.
//!
//! Starts three servers on 127.0.0.1 (bare; MeshLayer with the walkthrough's rules; MeshLayer
//! with 1,000 generated VirtualService routes), then drives them in turn, several rounds,
//! with a bounded number of requests over keep-alive connections (the first target turns with
//! each round), and prints requests per second, p50 and p99 for each, and two ratios to bare:
//! over all rounds, and the median of each round's ratio to the bare server of that round.
//!
//! ```text
//! cargo run --release --example loadgen -- [--requests 20000] [--connections 16] [--rounds 3]
//!     [--no-decision-extensions]
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, service_fn};
use tower_mesh::{MeshLayer, RuleSet};

#[path = "../benches/common/mod.rs"]
mod common;

const WALKTHROUGH: &str = concat!(
    include_str!("../examples/config/route-to-v2.yaml"),
    "---\n",
    include_str!("../examples/config/helloworld-default.yaml")
);

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.77 Safari/537.36";

async fn serve<S, B>(svc: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind on loopback");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Header lines sent with every request.
type Headers = &'static [(&'static str, &'static str)];

struct Run {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Sends `requests` requests over `connections` keep-alive connections.
async fn drive(
    addr: SocketAddr,
    requests: usize,
    connections: usize,
    headers: &'static [(&'static str, &'static str)],
) -> Run {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let share = requests / connections + usize::from(c < requests % connections);
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let mut latencies = Vec::with_capacity(share);
            for _ in 0..share {
                let mut req = Request::get("/api/items").header("host", "helloworld-service");
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let req = req.body(Empty::<Bytes>::new()).expect("a valid request");
                let t = Instant::now();
                let res = sender.send_request(req).await.expect("no transport error");
                assert!(res.status().is_success(), "status {}", res.status());
                res.into_body().collect().await.expect("a body");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for t in tasks {
        latencies.extend(t.await.expect("a client task"));
    }
    Run {
        requests,
        elapsed: start.elapsed(),
        latencies,
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let requests = arg("--requests", 20_000);
    let connections = arg("--connections", 16).max(1);
    let rounds = arg("--rounds", 3).max(1);
    // With `--no-decision-extensions`, the layer does not put the decision in the request's and
    // response's extensions (which costs `http::Extensions` three allocations each).
    let extensions = !std::env::args().any(|a| a == "--no-decision-extensions");

    let hello = service_fn(|_req: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            b"Hello World!",
        ))))
    });
    let bare = serve(hello).await;
    let seed = serve(tower::Layer::layer(
        &MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH).expect("rules"))
            .host("helloworld-service")
            .decision_extensions(extensions),
        hello,
    ))
    .await;
    let thousand = serve(tower::Layer::layer(
        &MeshLayer::new(RuleSet::from_yaml(&common::generated_rules(1000)).expect("rules"))
            .host("tenants")
            .decision_extensions(extensions),
        hello,
    ))
    .await;

    const SEED_HEADERS: &[(&str, &str)] = &[("user-agent", CHROME)];
    const TENANT_HEADERS: &[(&str, &str)] =
        &[("user-agent", CHROME), ("x-tenant", "tenant-4242-999")];
    let targets: [(&str, SocketAddr, Headers); 3] = [
        ("bare", bare, SEED_HEADERS),
        ("MeshLayer, walkthrough rules", seed, SEED_HEADERS),
        ("MeshLayer, 1,000 rules", thousand, TENANT_HEADERS),
    ];
    println!(
        "{rounds} rounds of {requests} requests per target over {connections} keep-alive connections, targets in turn; decision in extensions: {}",
        if extensions { "yes" } else { "no" }
    );
    // Warm-up.
    for (_, addr, headers) in &targets {
        drive(*addr, 2_000.min(requests), connections, headers).await;
    }
    let mut totals: Vec<(usize, Duration, Vec<Duration>)> =
        vec![(0, Duration::ZERO, Vec::new()); 3];
    // Each round's rate per target, to compare each target with the bare server of the same
    // round: the machine's speed drifts between rounds more than within one.
    let mut per_round: Vec<Vec<f64>> = (0..3).map(|_| Vec::with_capacity(rounds)).collect();
    for round in 0..rounds {
        // The starting target turns with the round, so that none always runs first.
        for k in 0..targets.len() {
            let i = (round + k) % targets.len();
            let (_, addr, headers) = targets[i];
            let run = drive(addr, requests, connections, headers).await;
            per_round[i].push(run.requests as f64 / run.elapsed.as_secs_f64());
            totals[i].0 += run.requests;
            totals[i].1 += run.elapsed;
            totals[i].2.extend(run.latencies);
        }
    }
    println!(
        "{:<30} {:>9} {:>10} {:>9} {:>9} {:>12} {:>12}",
        "target", "requests", "req/s", "p50", "p99", "req/s / bare", "round median"
    );
    let mut bare_rps = 0.0;
    for (i, (name, _, _)) in targets.iter().enumerate() {
        let (n, elapsed, lat) = &mut totals[i];
        lat.sort_unstable();
        let rps = *n as f64 / elapsed.as_secs_f64();
        if i == 0 {
            bare_rps = rps;
        }
        let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
        let mut ratios: Vec<f64> = per_round[i]
            .iter()
            .zip(&per_round[0])
            .map(|(own, bare)| own / bare)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let median = match ratios.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => ratios[n / 2],
            n => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
        };
        println!(
            "{:<30} {:>9} {:>10.0} {:>9.1?} {:>9.1?} {:>12.3} {:>12.3}",
            name,
            n,
            rps,
            p(0.50),
            p(0.99),
            rps / bare_rps,
            median
        );
    }
}
