//! An in-process gateway: it starts upstream servers on loopback (reviews v1, v2 and v3,
//! ratings v1 and a ratings v2 shadow) and routes to them with bookinfo-style rules:
//!
//! - `examples/config/bookinfo-reviews.yaml`: jason to reviews v2, everyone else 80/20 to v1
//!   and v3;
//! - `examples/config/bookinfo-ratings.yaml`: ratings v1 with three retries on 5xx, a 1 s
//!   per-try and a 2 s route timeout, every request mirrored to ratings v2.
//!
//! ratings v1 fails two requests out of three, so most ratings requests are retried; a path
//! ending in `/slow` takes 5 s and times out.
//!
//! ```text
//! cargo run --example proxy
//! curl -H 'end-user: jason' http://127.0.0.1:8000/reviews/1
//! curl http://127.0.0.1:8000/ratings/1
//! curl http://127.0.0.1:8000/ratings/slow
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
use tower_mesh::layer::ReplayBody;
use tower_mesh::{Decision, Destinations, MeshLayer, RuleSet};

type Body = BoxBody<Bytes, hyper::Error>;
/// The request body destinations get: kept for retries and mirrors.
type Forwarded = ReplayBody<Incoming>;
type Upstream = BoxCloneSyncService<Request<Forwarded>, Response<Body>, Infallible>;

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

/// An upstream server on its own loopback port; `answer` makes each response.
async fn start_upstream<F>(answer: F) -> std::io::Result<SocketAddr>
where
    F: Fn(
            Request<Incoming>,
        ) -> std::pin::Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            let svc = service_fn(move |req: Request<Incoming>| {
                let reply = answer(req);
                async move { Ok::<_, Infallible>(reply.await) }
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

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res
}

/// A reviews server of one version.
async fn start_reviews(version: &'static str) -> std::io::Result<SocketAddr> {
    start_upstream(move |req: Request<Incoming>| {
        let line = format!(
            "reviews {version} answered {} {}\n",
            req.method(),
            req.uri()
        );
        Box::pin(async move { text(StatusCode::OK, line) })
    })
    .await
}

/// ratings v1: fails two requests out of three with 503; `/slow` takes 5 s.
async fn start_ratings() -> std::io::Result<SocketAddr> {
    let count = Arc::new(AtomicUsize::new(0));
    start_upstream(move |req: Request<Incoming>| {
        let n = count.fetch_add(1, Ordering::Relaxed) + 1;
        Box::pin(async move {
            if req.uri().path().ends_with("/slow") {
                println!("  ratings v1: {} {} (taking 5 s)", req.method(), req.uri());
                tokio::time::sleep(Duration::from_secs(5)).await;
                return text(StatusCode::OK, "ratings v1: slow answer\n".into());
            }
            if !n.is_multiple_of(3) {
                println!(
                    "  ratings v1: {} {} -> 503 (request {n})",
                    req.method(),
                    req.uri()
                );
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ratings v1 overloaded\n".into(),
                );
            }
            println!(
                "  ratings v1: {} {} -> 200 (request {n})",
                req.method(),
                req.uri()
            );
            text(
                StatusCode::OK,
                format!("ratings v1 answered {} {}\n", req.method(), req.uri()),
            )
        })
    })
    .await
}

/// ratings v2, the shadow: logs what it gets; its answers are ignored.
async fn start_shadow() -> std::io::Result<SocketAddr> {
    start_upstream(|req: Request<Incoming>| {
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("-")
            .to_string();
        println!(
            "  ratings v2 (shadow): {} {} host={host}",
            req.method(),
            req.uri()
        );
        Box::pin(async { text(StatusCode::OK, "ignored\n".into()) })
    })
    .await
}

/// A destination: forwards to `upstream` with a hyper client; a transport error is a 502.
fn upstream(client: Client<HttpConnector, Forwarded>, upstream: SocketAddr) -> Upstream {
    BoxCloneSyncService::new(service_fn(move |mut req: Request<Forwarded>| {
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
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config");
    let rules = RuleSet::from_files([
        format!("{config}/bookinfo-reviews.yaml"),
        format!("{config}/bookinfo-ratings.yaml"),
    ])?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut destinations = Destinations::new();
    for version in ["v1", "v2", "v3"] {
        let addr = start_reviews(version).await?;
        println!("reviews {version} upstream on http://{addr}");
        destinations = destinations.add(
            "reviews",
            [("version", version)],
            upstream(client.clone(), addr),
        );
    }
    let ratings = start_ratings().await?;
    let shadow = start_shadow().await?;
    println!("ratings v1 upstream on http://{ratings}, ratings v2 (shadow) on http://{shadow}");
    destinations = destinations
        .add(
            "ratings",
            [("version", "v1")],
            upstream(client.clone(), ratings),
        )
        .add(
            "ratings",
            [("version", "v2")],
            upstream(client.clone(), shadow),
        );

    // Keep request bodies up to 64 KiB so that retries and mirrors can send them again.
    let router = MeshLayer::new(rules)
        // The log line reads the decision from the response.
        .response_decisions(true)
        .replay_bodies(64 * 1024)
        .route_to(destinations);
    let gateway = service_fn(move |mut req: Request<Incoming>| {
        let router = router.clone();
        async move {
            // The gateway's own rule: /ratings/... is the ratings service, the rest reviews.
            let host = if req.uri().path().starts_with("/ratings") {
                "ratings"
            } else {
                "reviews"
            };
            req.headers_mut()
                .insert(http::header::HOST, http::HeaderValue::from_static(host));
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
    println!("gateway for reviews and ratings listening on http://{addr}");
    println!("try:");
    println!("  curl -H 'end-user: jason' http://{addr}/reviews/1");
    println!("  for i in $(seq 20); do curl -s http://{addr}/reviews/1; done | sort | uniq -c");
    println!("  curl http://{addr}/ratings/1        (retried, and mirrored to ratings v2)");
    println!("  curl http://{addr}/ratings/slow     (504 after the 2 s route timeout)");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
