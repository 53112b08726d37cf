//! Requests through the layer in a loop, for counting instructions per request with
//! callgrind, which this shared VM's timing noise does not blur:
//!
//! ```sh
//! cargo build --release -p tower-mesh-benches --example per_request
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/per_request lean 10000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/per_request lean 60000
//! ```
//!
//! The difference of the two totals over 50,000 is the cost of one request, set-up excluded.
//! `MODE` is `bare` (the service alone), `lean` (behind `MeshLayer` without the decision
//! copies), `default`, or `metrics` (the default with Istio's metrics, a Prometheus recorder
//! installed); the request is the layer bench's, which the walkthrough's default
//! rule takes.
use std::hint::black_box;

use tower::ServiceExt;
use tower_mesh::{MeshLayer, RuleSet};

#[path = "common/mod.rs"]
mod common;
use common::{WALKTHROUGH_WITH_DEFAULT, layer_request};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap();
    let n: usize = args.next().unwrap().parse().unwrap();
    let (rt, hello) = common::runtime_and_hello();
    let layer = MeshLayer::new(RuleSet::from_yaml(WALKTHROUGH_WITH_DEFAULT).unwrap())
        .host("helloworld-service");
    let layer = match mode.as_str() {
        "lean" => layer.metrics(false).decision_extensions(false),
        "metrics" => {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("the Prometheus recorder installs");
            layer
        }
        _ => layer.metrics(false),
    };
    let svc = tower::Layer::layer(&layer, hello);
    for _ in 0..n {
        if mode == "bare" {
            black_box(
                rt.block_on(hello.oneshot(black_box(layer_request())))
                    .unwrap(),
            );
        } else {
            black_box(
                rt.block_on(svc.clone().oneshot(black_box(layer_request())))
                    .unwrap(),
            );
        }
    }
}
