//! The cluster feed: one VirtualService changes in a set of 5,000 watched objects (2,500
//! VirtualServices, 2,500 DestinationRules), measured from the watch event the API server
//! sends to the new rules in force. The API server is the tests' stand-in on loopback. Run
//! with `cargo bench -p tower-mesh-benches --bench feed`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tower_mesh::{ClusterOptions, MeshRules, RuleSet};

#[path = "../integration/tests/apiserver/mod.rs"]
#[allow(dead_code)]
mod apiserver;

const SERVICES: usize = 2_500;

fn host(i: usize) -> String {
    format!("svc-{i}.shop.svc.cluster.local")
}

fn virtual_service(i: usize, weight: i64) -> Value {
    let host = host(i);
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": format!("svc-{i}"), "namespace": "shop"},
        "spec": {"hosts": [host], "http": [
            {"name": "jason", "match": [{"headers": {"end-user": {"exact": "jason"}}}],
             "route": [{"destination": {"host": host, "subset": "v2"}}]},
            {"name": "canary", "route": [
                {"destination": {"host": host, "subset": "v1"}, "weight": 100 - weight},
                {"destination": {"host": host, "subset": "v2"}, "weight": weight}]}]}
    })
}

fn destination_rule(i: usize) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": format!("svc-{i}"), "namespace": "shop"},
        "spec": {"host": host(i), "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}},
                 "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                             {"name": "v2", "labels": {"version": "v2"}}]}
    })
}

/// Waits until other rules than `before` are in force; false after 60 s. It looks every
/// 100 µs, asleep in between, so as not to take a core from the feed.
fn changed(rules: &MeshRules, before: &Arc<RuleSet>) -> bool {
    let start = Instant::now();
    while Arc::ptr_eq(&rules.current(), before) {
        if start.elapsed() > Duration::from_secs(60) {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    true
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, rules, _watch) = runtime.block_on(async {
        let server = apiserver::ApiServer::start().await;
        for i in 0..SERVICES {
            server.apply("destinationrules", destination_rule(i));
            server.apply("virtualservices", virtual_service(i, 10));
        }
        let rules = MeshRules::new(RuleSet::empty());
        let options = ClusterOptions::default().debounce(Duration::ZERO);
        let watch = rules
            .watch_cluster_with(server.client(), options)
            .expect("on a tokio runtime");
        let start = Instant::now();
        while rules.current().table().route_count() < 2 * SERVICES {
            assert!(start.elapsed() < Duration::from_secs(120), "never synced");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (server, rules, watch)
    });
    let mut weight = 10;
    let mut group = c.benchmark_group("feed");
    group.sample_size(20);
    group.bench_function("cluster/5000/one-change", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                weight = weight % 90 + 1;
                let before = rules.current();
                let start = Instant::now();
                server.apply("virtualservices", virtual_service(SERVICES / 2, weight));
                assert!(changed(&rules, &before), "the change never applied");
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
