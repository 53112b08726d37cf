//! A hyper hello server on loopback for side-by-side measurements
//! (`scripts/side_by_side.sh`): bare, or the walkthrough's routing in-process.
//!
//! ```text
//! cargo run --release --example hello_server -- --port 18080 --mode bare [--answer v2]
//! cargo run --release --example hello_server -- --port 18081 --mode mesh
//! cargo run --release --example hello_server -- --port 18082 --mode mesh-lean
//! ```
//!
//! - `bare`: every request gets `Hello World! (v1)` (or the version `--answer` names), as the
//!   walkthrough's handlers answer;
//! - `mesh`: a `MeshRouter` with the walkthrough's rules (Chrome to v2, everyone else to v1)
//!   in front of the two handlers, with the crate's defaults (the decision copied into the
//!   request); the router answers for `Host: helloworld-service`;
//! - `mesh-lean`: the same with `decision_extensions(false)`.
//!
//! One thread (a current-thread runtime), so that the CPU a request costs is the server's own.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::service_fn;
use tower::util::BoxCloneSyncService;
use tower_mesh::{Destinations, MeshLayer, RuleSet};

const WALKTHROUGH: &str = concat!(
    include_str!("../examples/config/route-to-v2.yaml"),
    "---\n",
    include_str!("../examples/config/helloworld-default.yaml")
);

type Handler = BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, Infallible>;

/// The walkthrough's handler for one version.
fn version(name: String) -> Handler {
    let body = Bytes::from(format!("Hello World! ({name})\n"));
    BoxCloneSyncService::new(service_fn(move |_req: Request<Incoming>| {
        let body = body.clone();
        async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
    }))
}

/// The value after `--name`, if given.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn serve<S, B>(listener: TcpListener, svc: S)
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(18080);
    let mode = arg("--mode").unwrap_or_else(|| "bare".into());
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    let rules = RuleSet::from_yaml(WALKTHROUGH).expect("the walkthrough's rules load");
    let layer = MeshLayer::new(rules).host("helloworld-service");
    let router = |layer: MeshLayer| {
        layer.route_to(
            Destinations::new()
                .add(
                    "helloworld-service",
                    [("version", "v1")],
                    version("v1".into()),
                )
                .add(
                    "helloworld-service",
                    [("version", "v2")],
                    version("v2".into()),
                ),
        )
    };
    println!("{mode} server on http://127.0.0.1:{port}");
    match mode.as_str() {
        "bare" => {
            let answer = version(arg("--answer").unwrap_or_else(|| "v1".into()));
            serve(listener, answer).await
        }
        "mesh" => serve(listener, router(layer)).await,
        "mesh-lean" => serve(listener, router(layer.decision_extensions(false))).await,
        other => {
            eprintln!("unknown --mode {other}: bare, mesh or mesh-lean");
            std::process::exit(2);
        }
    }
}
