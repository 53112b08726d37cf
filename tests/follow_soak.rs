//! Requests under rule swaps: 8 clients for 20 s while a ConfigMap-style folder is swapped
//! between two valid rule sets, and every fifth time an invalid one. Every answer must come from
//! one complete rule set, no request may fail, and every invalid swap must be reported and leave
//! the rules in force as they were. Also: how long a swap takes to be in force.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};
use tower_mesh::{Decision, FollowOptions, MeshLayer, MeshRules, RuleSet};

mod configmap;
use configmap::{INVALID, Volume, eventually};

/// A rule set that sets two request headers to `tag` and names its route `tag`: a request
/// evaluated against a torn mix of two sets would see two different tags.
fn rules(tag: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - name: {tag}\n    headers: {{request: {{set: {{x-one: {tag}, x-two: {tag}}}}}}}\n    route: [{{destination: {{host: reviews}}}}]\n"
    )
}

fn options() -> FollowOptions {
    FollowOptions::default().debounce(Duration::from_millis(10))
}

#[test]
fn requests_see_whole_rule_sets_while_the_folder_is_swapped() {
    let mut volume = Volume::new("soak", &[("rules.yaml", &rules("a"))]);
    let layer = MeshLayer::new(RuleSet::from_files([volume.path("rules.yaml")]).unwrap())
        .response_decisions(true)
        .host("reviews")
        .metrics(false);
    let mesh: MeshRules = layer.rules();
    let follower = mesh.follow_with([&volume.dir.0], options()).unwrap();
    let echo = service_fn(|req: Request<Full<Bytes>>| async move {
        let h = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "{} {}",
            h("x-one"),
            h("x-two")
        )))))
    });
    let svc = layer.layer(echo);

    let stop = Arc::new(AtomicBool::new(false));
    let (requests, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (svc, stop, requests, errors) =
                (svc.clone(), stop.clone(), requests.clone(), errors.clone());
            rt.spawn(async move {
                // Bounded in time by `stop`, and in requests.
                for _ in 0..5_000_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let req = Request::get("/").body(Full::default()).unwrap();
                    let whole = match svc.clone().oneshot(req).await {
                        Ok(res) => {
                            let tag = res
                                .extensions()
                                .get::<Decision>()
                                .and_then(|d| d.route_name())
                                .map(str::to_string);
                            let body = res.into_body().collect().await.map(|b| b.to_bytes());
                            match (tag, body) {
                                (Some(tag), Ok(body)) => body == format!("{tag} {tag}"),
                                _ => false,
                            }
                        }
                        Err(_) => false,
                    };
                    requests.fetch_add(1, Ordering::Relaxed);
                    if !whole {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    // Swap every 50 ms for 20 s; every fifth swap is invalid. Each swap is seen (applied or
    // rejected) before the next, so that every invalid one meets the follower.
    let start = Instant::now();
    let (mut swaps, mut valid, mut invalid) = (0u64, 0u64, 0u64);
    while start.elapsed() < Duration::from_secs(20) {
        let next_tick = Instant::now() + Duration::from_millis(50);
        let seen_before = follower.stats().applied + follower.stats().rejected;
        if swaps % 5 == 4 {
            let before = mesh.version();
            volume.update(&[("rules.yaml", INVALID)]);
            invalid += 1;
            assert!(
                eventually(|| follower.stats().rejected == invalid),
                "invalid swap {swaps} reported: {:?}, {valid} valid and {invalid} invalid swaps so far",
                follower.stats()
            );
            assert_eq!(
                mesh.version(),
                before,
                "an invalid swap leaves the rules in force"
            );
        } else {
            valid += 1;
            volume.update(&[("rules.yaml", &rules(if valid % 2 == 1 { "b" } else { "a" }))]);
            assert!(eventually(|| follower.stats().applied
                + follower.stats().rejected
                > seen_before));
        }
        swaps += 1;
        std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        rt.block_on(c).unwrap();
    }
    let stats = follower.stats();
    let (n, e) = (
        requests.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "swaps: {swaps}, reloads applied: {}, rejected: {}, requests: {n}, errors: {e}",
        stats.applied,
        stats.rejected
    );
    assert_eq!(
        e, 0,
        "every answer comes from one whole rule set, and none failed"
    );
    assert_eq!((stats.applied, stats.rejected), (valid, invalid));
    assert!(n > 0);
}

#[test]
fn time_from_a_swap_to_the_rules_in_force() {
    let mut volume = Volume::new("timing", &[("rules.yaml", &rules("a"))]);
    let mesh = MeshRules::new(RuleSet::from_files([volume.path("rules.yaml")]).unwrap());
    let _follower = mesh.follow_with([&volume.dir.0], options()).unwrap();
    let mut times = Vec::new();
    for i in 0..100 {
        let before = mesh.version();
        let started = Instant::now();
        volume.update(&[("rules.yaml", &rules(if i % 2 == 0 { "b" } else { "a" }))]);
        assert!(eventually(|| mesh.version() != before), "swap {i}");
        times.push(started.elapsed());
    }
    times.sort();
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "swap to rules in force over 100 swaps (debounce 10 ms): median {:?}, worst {:?}",
        times[50],
        times[99]
    );
}
