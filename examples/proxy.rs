//! An in-process gateway: it starts three reviews upstream servers (v1, v2, v3) on loopback and
//! routes to them with a bookinfo-style VirtualService and DestinationRule
//! (`examples/config/bookinfo-reviews.yaml`): jason to v2, everyone else 80/20 to v1 and v3.
//!
//! ```text
//! cargo run --example proxy
//! curl -H 'end-user: jason' http://127.0.0.1:8000/reviews/1
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt, service_fn};
use tower_mesh::{Decision, Destinations, MeshLayer, RuleSet};

type Body = BoxBody<Bytes, hyper::Error>;
type Upstream = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

fn full(text: String) -> Body {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}

/// Serves `svc` on a free loopback port.
async fn serve<S>(addr: SocketAddr, svc: S) -> std::io::Result<SocketAddr>
where
    S: Service<
            Request<Incoming>,
            Response = Response<tower_mesh::MeshBody<Body>>,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A reviews server of one version, on its own loopback port.
async fn start_upstream(version: &'static str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = service_fn(move |req: Request<Incoming>| async move {
                let text = format!(
                    "reviews {version} answered {} {}\n",
                    req.method(),
                    req.uri()
                );
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A destination: forwards to `upstream` with a hyper client; a transport error is a 502.
fn upstream(client: Client<HttpConnector, Incoming>, upstream: SocketAddr) -> Upstream {
    BoxCloneSyncService::new(service_fn(move |mut req: Request<Incoming>| {
        let client = client.clone();
        async move {
            let path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            *req.uri_mut() =
                Uri::try_from(format!("http://{upstream}{path}")).expect("a valid upstream URI");
            Ok::<_, Infallible>(match client.request(req).await {
                Ok(res) => res.map(BodyExt::boxed),
                Err(e) => {
                    let mut res = Response::new(full(format!("upstream {upstream}: {e}\n")));
                    *res.status_mut() = StatusCode::BAD_GATEWAY;
                    res
                }
            })
        }
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = RuleSet::from_files([concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/config/bookinfo-reviews.yaml"
    )])?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut destinations = Destinations::new();
    for version in ["v1", "v2", "v3"] {
        let addr = start_upstream(version).await?;
        println!("reviews {version} upstream on http://{addr}");
        destinations = destinations.add(
            "reviews",
            [("version", version)],
            upstream(client.clone(), addr),
        );
    }
    let router = MeshLayer::new(rules).host("reviews").route_to(destinations);
    let gateway = service_fn(move |req: Request<Incoming>| {
        let router = router.clone();
        async move {
            let user = req
                .headers()
                .get("end-user")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string();
            let res = router.oneshot(req).await?;
            if let Some(d) = res.extensions().get::<Decision>() {
                println!("{} end-user={user}: {d}", res.status().as_u16());
            }
            Ok::<_, Infallible>(res)
        }
    });
    let addr = serve(SocketAddr::from(([127, 0, 0, 1], 8000)), gateway).await?;
    println!("gateway for reviews listening on http://{addr}");
    println!("try:");
    println!("  curl -H 'end-user: jason' http://{addr}/reviews/1");
    println!("  for i in $(seq 20); do curl -s http://{addr}/reviews/1; done | sort | uniq -c");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
