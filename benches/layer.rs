//! The middleware's cost per request, and the cost of loading rules. Run with
//! `cargo bench -p tower-mesh-benches --bench layer`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use tower::ServiceExt;
use tower_mesh::{MeshLayer, RuleSet};

mod common;
use common::{WALKTHROUGH_WITH_DEFAULT, layer_request};

fn bench(c: &mut Criterion) {
    let (rt, hello) = common::runtime_and_hello();

    c.bench_function("layer/bare", |b| {
        b.iter(|| {
            rt.block_on(hello.oneshot(black_box(layer_request())))
                .unwrap()
        })
    });

    // Istio's metrics go to a Prometheus recorder; only `layer/mesh/seed-metrics` records them.
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the Prometheus recorder installs");
    let seed = tower::Layer::layer(
        &MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH_WITH_DEFAULT).unwrap())
            .host("helloworld-service")
            .metrics(false),
        hello,
    );
    c.bench_function("layer/mesh/seed", |b| {
        b.iter(|| {
            rt.block_on(seed.clone().oneshot(black_box(layer_request())))
                .unwrap()
        })
    });
    let measured = tower::Layer::layer(
        &MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH_WITH_DEFAULT).unwrap())
            .host("helloworld-service"),
        hello,
    );
    c.bench_function("layer/mesh/seed-metrics", |b| {
        b.iter(|| {
            rt.block_on(measured.clone().oneshot(black_box(layer_request())))
                .unwrap()
        })
    });

    // The middleware's own cost: the decision is not copied into the messages' extensions.
    let lean = tower::Layer::layer(
        &MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH_WITH_DEFAULT).unwrap())
            .host("helloworld-service")
            .metrics(false)
            .decision_extensions(false),
        hello,
    );
    c.bench_function("layer/mesh/seed-lean", |b| {
        b.iter(|| {
            rt.block_on(lean.clone().oneshot(black_box(layer_request())))
                .unwrap()
        })
    });

    let thousand = RuleSet::from_yaml(&common::generated_rules(1000)).unwrap();
    let big = tower::Layer::layer(
        &MeshLayer::new(thousand).host("tenants").metrics(false),
        hello,
    );
    c.bench_function("layer/mesh/1000", |b| {
        b.iter(|| {
            rt.block_on(big.clone().oneshot(black_box(layer_request())))
                .unwrap()
        })
    });

    let text = common::generated_rules(1000);
    c.bench_function("load/rules/1000", |b| {
        b.iter(|| RuleSet::from_yaml(black_box(&text)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
