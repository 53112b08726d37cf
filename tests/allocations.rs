//! Heap allocations per request, counted by a global allocator: evaluation allocates nothing
//! for forward, abort and not-found decisions, and the middleware adds only what
//! `http::Extensions` needs to carry the decision.

// A counting global allocator needs `unsafe impl GlobalAlloc`; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{ServiceExt, service_fn};
use tower_mesh::{Context, MeshLayer, NeverSampler, Outcome, RuleSet};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread by `f`.
fn count<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

const RULES: &str = r#"
apiVersion: config.istio.io/v1alpha2
kind: RouteRule
metadata: {name: helloworld-service}
spec:
  destination: {name: helloworld-service}
  precedence: 2
  match:
    request:
      headers:
        user-agent: {regex: ".*Chrome.*"}
  route:
  - labels: {version: "v2"}
---
apiVersion: config.istio.io/v1alpha2
kind: RouteRule
metadata: {name: helloworld-503}
spec:
  destination: {name: helloworld-service}
  precedence: 1
  match:
    request:
      headers:
        user-agent: {prefix: curl}
  httpFault:
    abort: {percent: 100, httpStatus: 503}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    route:
    - destination: {host: reviews}
"#;

#[test]
fn evaluation_allocates_nothing() {
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let hello = Context::new().with_host("helloworld-service");
    let reviews = Context::new().with_host("reviews");
    let chrome = Request::get("/")
        .header("user-agent", "Mozilla/5.0 Chrome/70")
        .body(())
        .unwrap();
    let curl = Request::get("/")
        .header("user-agent", "curl/8.4.0")
        .body(())
        .unwrap();
    let ann = Request::get("/")
        .header("end-user", "ann")
        .body(())
        .unwrap();
    for (req, ctx, outcome) in [
        (&chrome, &hello, Outcome::Forward),
        (&curl, &hello, Outcome::Abort),
        (&ann, &reviews, Outcome::NotFound),
    ] {
        // Warm up lazily initialised state (regex caches) first.
        rules.evaluate(req, ctx, &NeverSampler);
        let (n, decision) = count(|| rules.evaluate(req, ctx, &NeverSampler));
        assert_eq!(decision.outcome(), outcome);
        assert_eq!(n, 0, "{outcome} allocated {n} times");
        drop(decision);
    }
}

/// A request with repeated header lines is joined once per evaluation, whatever the number of
/// conditions that read the header: the allocations do not grow with the routes.
#[test]
fn repeated_header_lines_are_joined_once_per_evaluation() {
    let rules_with = |n: usize| {
        let routes: String = (0..n)
            .map(|i| format!("  - match: [{{headers: {{cookie: {{regex: \"^(.*?; )?(user=u{i})(;.*)?$\"}}}}}}]\n    route: [{{destination: {{host: svc}}}}]\n"))
            .collect();
        RuleSet::from_yaml(&format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc}}\nspec:\n  hosts: [svc]\n  http:\n{routes}"
        ))
        .unwrap()
    };
    let mut req = Request::get("/").body(()).unwrap();
    for i in 0..1_000 {
        req.headers_mut()
            .append("cookie", format!("c{i}=v").parse().unwrap());
    }
    let ctx = Context::new().with_host("svc");
    let allocations = |n: usize| {
        let rules = rules_with(n);
        rules.evaluate(&req, &ctx, &NeverSampler);
        let (allocations, decision) = count(|| rules.evaluate(&req, &ctx, &NeverSampler));
        assert_eq!(decision.outcome(), Outcome::NotFound);
        allocations
    };
    let (one, many) = (allocations(1), allocations(200));
    assert!(one > 0, "the joined cookie is built once");
    assert_eq!(one, many, "200 cookie conditions allocate as much as one");
}

#[test]
fn the_layer_adds_only_the_decision_extensions() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hello = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            b"Hello World!",
        ))))
    });
    let request = || {
        Request::get("/")
            .header("user-agent", "Mozilla/5.0 Chrome/70")
            .body(Full::default())
            .unwrap()
    };
    let per_request = |svc: &dyn Fn(Request<Full<Bytes>>) -> usize| {
        svc(request());
        let (n, _) = count(|| svc(request()));
        n
    };
    let bare = per_request(&|req| {
        let (n, res) = count(|| rt.block_on(hello.oneshot(req)).unwrap());
        drop(res);
        n
    });

    let rules = RuleSet::from_yaml(RULES).unwrap();
    let lean = tower::Layer::layer(
        &MeshLayer::new(rules.clone())
            .host("helloworld-service")
            .metrics(false)
            .decision_extensions(false),
        hello,
    );
    let lean_n = per_request(&|req| {
        let (n, res) = count(|| rt.block_on(lean.clone().oneshot(req)).unwrap());
        drop(res);
        n
    });
    // A layer that keeps bodies for retries allocates nothing more for a route without them.
    let hello_replayed = service_fn(
        |_req: Request<tower_mesh::layer::ReplayBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                b"Hello World!",
            ))))
        },
    );
    let replaying = tower::Layer::layer(
        &MeshLayer::new(rules.clone())
            .host("helloworld-service")
            .metrics(false)
            .decision_extensions(false)
            .replay_bodies(64 * 1024),
        hello_replayed,
    );
    let replaying_n = per_request(&|req| {
        let (n, res) = count(|| rt.block_on(replaying.clone().oneshot(req)).unwrap());
        drop(res);
        n
    });
    let full = tower::Layer::layer(
        &MeshLayer::new(rules.clone())
            .host("helloworld-service")
            .response_decisions(true)
            .metrics(false),
        hello,
    );
    let full_n = per_request(&|req| {
        let (n, res) = count(|| rt.block_on(full.clone().oneshot(req)).unwrap());
        drop(res);
        n
    });
    // Istio's metrics (no recorder installed here): one allocation, the request's record.
    let measured = tower::Layer::layer(
        &MeshLayer::new(rules)
            .host("helloworld-service")
            .decision_extensions(false),
        hello,
    );
    let measured_n = per_request(&|req| {
        let (n, res) = count(|| rt.block_on(measured.clone().oneshot(req)).unwrap());
        drop(res);
        n
    });
    println!(
        "allocations per request: bare {bare}, MeshLayer without extensions {lean_n}, the same keeping bodies for retries {replaying_n}, with the decision in request and response extensions {full_n}, without extensions but with metrics {measured_n}"
    );
    assert_eq!(measured_n, lean_n + 1, "the metrics' record of a request");
    assert_eq!(
        replaying_n, lean_n,
        "replay_bodies on a route without retries"
    );
    assert!(
        lean_n <= bare + 2,
        "the layer itself allocated {} times",
        lean_n - bare
    );
    // http::Extensions: a boxed map, its table and the boxed value, for each of the two messages.
    assert!(
        full_n <= bare + 6,
        "with extensions the layer allocated {} times",
        full_n - bare
    );
}
