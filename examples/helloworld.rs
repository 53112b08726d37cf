//! The "Istio Getting Started" walkthrough in one binary: helloworld-service versions v1 and
//! v2, behind the walkthrough's RouteRules, on 127.0.0.1.
//!
//! ```text
//! cargo run --example helloworld                                   # Chrome to v2
//! cargo run --example helloworld -- --rules examples/config/fault-503.yaml
//! cargo run --example helloworld -- --listen 127.0.0.1:9090 --rules A.yaml --rules B.yaml
//! cargo run --example helloworld -- --gateway-api                  # the same, as an HTTPRoute
//! cargo run --example helloworld -- --only examples/config/virtualservice-fault-503.yaml
//! ```
//!
//! `examples/config/helloworld-default.yaml` (everything else to v1) is always loaded first,
//! as bookinfo's `route-rule-all-v1.yaml` is; the `--rules` files come after it. `--gateway-api`
//! loads `examples/config/httproute-chrome-to-v2.yaml` instead, whose backends are the Services
//! `helloworld-service-v1` and `helloworld-service-v2`; `--only FILE` loads just that file.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::util::BoxCloneSyncService;
use tower::{ServiceExt, service_fn};
use tower_mesh::{Decision, Destinations, MeshLayer, RuleSet};

/// A destination registered without labels: a whole Service.
const NO_LABELS: [(&str, &str); 0] = [];

type Version = BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, Infallible>;

/// One version of helloworld-service: it answers `Hello World! (vN)`.
fn version(name: &'static str) -> Version {
    BoxCloneSyncService::new(service_fn(move |_req: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "Hello World! ({name})\n"
        )))))
    }))
}

struct Args {
    listen: SocketAddr,
    rules: Vec<PathBuf>,
    /// Where to serve `/metrics` in Prometheus's text format.
    metrics: Option<SocketAddr>,
    /// Print the access log (and the crate's warnings) on standard error.
    access_log: bool,
    /// Follow the rule files and reload them when they change.
    watch: bool,
}

const USAGE: &str = "usage: helloworld [--listen 127.0.0.1:8080] [--rules FILE]... [--gateway-api] [--only FILE] [--metrics 127.0.0.1:9091] [--access-log] [--watch]";

fn parse_args() -> Result<Args, String> {
    // Name the bundled files relative to the working directory when run from the crate.
    let config = if std::path::Path::new("examples/config/helloworld-default.yaml").is_file() {
        PathBuf::from("examples/config")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/config")
    };
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        rules: Vec::new(),
        metrics: None,
        access_log: false,
        watch: false,
    };
    let mut it = std::env::args().skip(1);
    let mut only = false;
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => {
                let v = it
                    .next()
                    .ok_or("--listen needs an address, e.g. 127.0.0.1:8080")?;
                args.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
                if !args.listen.ip().is_loopback() {
                    return Err(format!(
                        "--listen {v}: this example listens on loopback only"
                    ));
                }
            }
            "--rules" => args
                .rules
                .push(PathBuf::from(it.next().ok_or("--rules needs a file")?)),
            "--metrics" => {
                let v = it
                    .next()
                    .ok_or("--metrics needs an address, e.g. 127.0.0.1:9091")?;
                let addr: SocketAddr = v.parse().map_err(|e| format!("--metrics {v}: {e}"))?;
                if !addr.ip().is_loopback() {
                    return Err(format!(
                        "--metrics {v}: this example listens on loopback only"
                    ));
                }
                args.metrics = Some(addr);
            }
            "--access-log" => args.access_log = true,
            "--watch" => args.watch = true,
            "--gateway-api" => {
                only = true;
                args.rules.push(config.join("httproute-chrome-to-v2.yaml"));
            }
            "--only" => {
                only = true;
                args.rules
                    .push(PathBuf::from(it.next().ok_or("--only needs a file")?));
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    if only {
        return Ok(args);
    }
    if args.rules.is_empty() {
        args.rules.push(config.join("route-to-v2.yaml"));
    }
    args.rules.insert(0, config.join("helloworld-default.yaml"));
    Ok(args)
}

/// Istio's histogram buckets for durations (milliseconds) and sizes (bytes).
const DURATION_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
const SIZE_BUCKETS: [f64; 8] = [
    1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0, 10000000.0,
];

/// Installs the Prometheus recorder, serving `/metrics` on `addr`, with histograms (not
/// summaries) so that dashboards can compute quantiles across instances.
fn serve_metrics(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("istio_request_duration_milliseconds".into()),
            &DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(Matcher::Suffix("_bytes".into()), &SIZE_BUCKETS)?
        .install()?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rules = match RuleSet::from_files(&args.rules) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot load the rules: {e}");
            std::process::exit(1);
        }
    };
    // With --access-log the layer reports the warnings itself, as WARN events.
    if !args.access_log {
        for w in rules.warnings() {
            eprintln!("warning: {w}");
        }
    }

    if args.access_log {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .init();
    }
    if let Some(addr) = args.metrics {
        if let Err(e) = serve_metrics(addr) {
            eprintln!("cannot serve metrics on {addr}: {e}");
            std::process::exit(1);
        }
        println!("metrics on http://{addr}/metrics");
    }
    let layer = MeshLayer::new(rules)
        .host("helloworld-service")
        // The log line below reads the decision from the response.
        .response_decisions(true)
        .access_log(args.access_log);
    // With --watch, the rule files are followed: an edit is in force within moments.
    let _follower = match args.watch {
        false => None,
        true => match layer.rules().follow(args.rules.clone()) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
    };
    let router = layer.route_to(
        Destinations::new()
            .add("helloworld-service", [("version", "v1")], version("v1"))
            .add("helloworld-service", [("version", "v2")], version("v2"))
            // The same versions as Services of their own, as Gateway API backends name them.
            .add("helloworld-service-v1", NO_LABELS, version("v1"))
            .add("helloworld-service-v2", NO_LABELS, version("v2")),
    );
    // Log each request's decision, then answer.
    let app = service_fn(move |req: Request<Incoming>| {
        let router = router.clone();
        async move {
            let agent = req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string();
            let res = router.oneshot(req).await?;
            if let Some(d) = res.extensions().get::<Decision>() {
                println!("{} user-agent={agent:?}: {d}", res.status().as_u16());
            }
            Ok::<_, Infallible>(res)
        }
    });

    let listener = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    println!("helloworld-service (v1 and v2) listening on http://{addr}");
    println!("rules:");
    for f in &args.rules {
        println!("  {}", f.display());
    }
    println!("try:");
    println!("  curl -A Chrome http://{addr}/");
    println!("  curl http://{addr}/");

    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let svc = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
