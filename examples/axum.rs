//! A small axum application behind MeshLayer. The rules (a VirtualService) inject a delay for
//! beta users, answer `/old/...` with a redirect, and abort 10% of `/flaky` requests; the
//! handlers read the routing decision.
//!
//! ```text
//! cargo run --example axum
//! curl -i http://127.0.0.1:3000/books/7
//! curl -i -H 'x-beta: yes' http://127.0.0.1:3000/books/7
//! ```

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::{Extension, Json, Router};
use tower_mesh::{Decision, MeshLayer, RuleSet};

const RULES: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookstore
spec:
  hosts:
  - bookstore
  http:
  - name: beta
    match:
    - headers:
        x-beta:
          exact: "yes"
    fault:
      delay:
        fixedDelay: 500ms
        percentage:
          value: 100
    route:
    - destination:
        host: bookstore
  - name: moved
    match:
    - uri:
        prefix: /old/
    redirect:
      uri: /books/1
  - name: flaky
    match:
    - uri:
        prefix: /flaky
    fault:
      abort:
        httpStatus: 503
        percentage:
          value: 10
    route:
    - destination:
        host: bookstore
  - name: default
    route:
    - destination:
        host: bookstore
"#;

/// A book, and how the request for it was routed.
#[derive(serde::Serialize)]
struct Book {
    id: u32,
    title: String,
    route: String,
    delayed_ms: u64,
}

/// A handler that reports how the request was routed.
async fn book(Path(id): Path<u32>, Extension(decision): Extension<Decision>) -> Json<Book> {
    Json(Book {
        id,
        title: format!("Book #{id}"),
        route: decision.route_name().unwrap_or("-").to_string(),
        delayed_ms: decision.delay().map_or(0, |d| d.as_millis() as u64),
    })
}

async fn flaky() -> &'static str {
    "this time it worked\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = RuleSet::from_yaml(RULES)?;
    let app = Router::new()
        .route("/books/{id}", get(book))
        .route("/flaky", get(flaky))
        .layer(MeshLayer::new(rules).host("bookstore"));

    let addr = SocketAddr::from(([127, 0, 0, 1], 3000));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bookstore listening on http://{addr}");
    println!("try:");
    println!("  curl -i http://{addr}/books/7");
    println!("  curl -i -H 'x-beta: yes' http://{addr}/books/7     # delayed 500 ms");
    println!("  curl -i http://{addr}/old/anything                  # 301 to /books/1");
    println!(
        "  for i in $(seq 20); do curl -s -o /dev/null -w '%{{http_code}}\\n' http://{addr}/flaky; done | sort | uniq -c"
    );
    axum::serve(listener, app).await?;
    Ok(())
}
