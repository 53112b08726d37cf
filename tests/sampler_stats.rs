//! The default sampler's statistics over 100,000 draws, each within five standard deviations:
//! weights, percentages, independence of delay and abort; and clones of the middleware that do
//! not repeat one another's draws.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::virtual_service;
use http::{Request, Response};
use http_body_util::Full;
use tower::{ServiceExt, service_fn};
use tower_mesh::{Context, Decision, MeshLayer, Outcome, RuleSet, ThreadSampler};

const N: usize = 100_000;

fn within_five_sigma(what: &str, count: usize, n: usize, p: f64) {
    let observed = count as f64 / n as f64;
    let sigma = (p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (observed - p).abs() <= 5.0 * sigma + 1.0 / n as f64,
        "{what}: observed {observed:.5}, expected {p} ± {:.5}",
        5.0 * sigma
    );
}

#[test]
fn weights_follow_their_shares() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "reviews",
        r#"
  - route:
    - {destination: {host: v1}, weight: 20}
    - {destination: {host: v2}, weight: 30}
    - {destination: {host: v3}, weight: 50}
"#,
    ))
    .unwrap();
    let ctx = Context::new().with_host("reviews");
    let req = Request::get("/").body(()).unwrap();
    let mut counts = [0usize; 3];
    for _ in 0..N {
        let d = rules.evaluate(&req, &ctx, &ThreadSampler);
        let host = d.destination().unwrap().host();
        counts[usize::from(host.as_bytes()[1] - b'1')] += 1;
    }
    within_five_sigma("v1", counts[0], N, 0.2);
    within_five_sigma("v2", counts[1], N, 0.3);
    within_five_sigma("v3", counts[2], N, 0.5);
}

#[test]
fn delay_and_abort_are_independent_draws() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "ratings",
        r#"
  - fault:
      delay: {fixedDelay: 1s, percentage: {value: 40}}
      abort: {httpStatus: 503, percentage: {value: 12.5}}
    route: [{destination: {host: ratings}}]
"#,
    ))
    .unwrap();
    let ctx = Context::new().with_host("ratings");
    let req = Request::get("/").body(()).unwrap();
    let (mut delayed, mut aborted, mut both) = (0, 0, 0);
    for _ in 0..N {
        let d = rules.evaluate(&req, &ctx, &ThreadSampler);
        let (dl, ab) = (d.delay().is_some(), d.outcome() == Outcome::Abort);
        delayed += usize::from(dl);
        aborted += usize::from(ab);
        both += usize::from(dl && ab);
    }
    within_five_sigma("delayed", delayed, N, 0.40);
    within_five_sigma("aborted", aborted, N, 0.125);
    within_five_sigma("delayed and aborted", both, N, 0.40 * 0.125);
}

#[test]
fn clones_of_the_middleware_do_not_repeat_each_other() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "coin",
        r#"
  - fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
    route: [{destination: {host: coin}}]
"#,
    ))
    .unwrap();
    let hello = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let svc = tower::Layer::layer(
        &MeshLayer::new(rules).response_decisions(true).host("coin"),
        hello,
    );
    let flips = |svc: tower_mesh::MeshService<_>| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        (0..512)
            .map(|_| {
                let res = rt
                    .block_on(svc.clone().oneshot(Request::new(Full::default())))
                    .unwrap();
                res.extensions().get::<Decision>().unwrap().outcome() == Outcome::Abort
            })
            .collect::<Vec<bool>>()
    };
    // Clones on two threads.
    let (a, b) = (svc.clone(), svc.clone());
    let ta = std::thread::spawn(move || flips(a));
    let tb = std::thread::spawn(move || flips(b));
    let (fa, fb) = (ta.join().unwrap(), tb.join().unwrap());
    assert_ne!(fa, fb, "two clones drew the same 512 coin flips");
    // Clones on one thread share the thread's generator: consecutive clones continue it.
    let (c, d) = (flips(svc.clone()), flips(svc));
    assert_ne!(c, d, "a fresh clone repeated the previous clone's sequence");
    within_five_sigma(
        "aborts across clones",
        fa.iter().chain(&fb).filter(|x| **x).count(),
        1024,
        0.5,
    );
}
