//! Short proptest versions of the cargo-fuzz targets in `fuzz/`: the same properties (no
//! panic, no hang) on a few hundred inputs each, in every `cargo test`.

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use tower_mesh::{
    Caller, Context, Limits, LoadOptions, Loader, RuleSet, ScriptedSampler, ThreadSampler,
};

#[path = "../../fuzz/structured.rs"]
mod structured;

const RICH: &str = include_str!("../../fuzz/rich-rules.yaml");

fn tight() -> LoadOptions {
    LoadOptions::default().with_limits(Limits {
        max_input_bytes: 4096,
        max_depth: 8,
        max_nodes: 500,
        max_regex_len: 16,
        max_regex_size: 10_000,
        max_routes: 3,
        ..Limits::default()
    })
}

proptest! {
    /// `load_config`: arbitrary bytes, and valid configuration with bytes changed, load or fail
    /// with an error.
    #[test]
    fn load_config(bytes in prop::collection::vec(any::<u8>(), 0..2048), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = RuleSet::from_yaml(&text);
        let mut rich = RICH.as_bytes().to_vec();
        for (at, byte) in edits {
            let i = at.index(rich.len());
            rich[i] = byte;
        }
        let rich = String::from_utf8_lossy(&rich).into_owned();
        let _ = RuleSet::from_yaml(&rich);
        let _ = Loader::new().options(tight()).text(rich).load();
    }

    /// `evaluate_request`: arbitrary methods, URIs and header bytes against a rich rule set.
    #[test]
    fn evaluate_request(
        method in "[A-Z]{1,8}",
        uri in "(https?://[a-zA-Z0-9.:\\[\\]-]{0,20})?/[ -~]{0,40}",
        headers in prop::collection::vec(("[a-z-]{1,12}", prop::collection::vec(any::<u8>(), 0..40)), 0..8),
        target in prop::option::of("[a-zA-Z0-9.*:-]{0,20}"),
        draws in prop::collection::vec(any::<u32>(), 0..4),
    ) {
        let rules = RuleSet::from_yaml(RICH).unwrap();
        let mut b = http::Request::builder().method(method.as_str()).uri(uri.as_str());
        for (name, value) in &headers {
            b = b.header(name.as_str(), value.as_slice());
        }
        if let Ok(req) = b.body(()) {
            let mut ctx = Context::new().with_caller(Caller::new().with_labels([("app", "productpage")]));
            if let Some(t) = target {
                ctx = ctx.with_host(t);
            }
            let sampler = ScriptedSampler::new(draws);
            let _ = rules.evaluate(&req, &ctx, &sampler).to_string();
            let _ = rules.explain(&req, &ctx, &sampler).to_string();
        }
    }

    /// `load_structured`: random Istio resources written as YAML.
    #[test]
    fn load_structured(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut u = Unstructured::new(&bytes);
        if let Ok(config) = structured::Config::arbitrary(&mut u) {
            let yaml = config.to_yaml();
            if let Ok(rules) = RuleSet::from_yaml(&yaml) {
                let req = http::Request::get("/api/v1?x=1").header("x-a", "foo").body(()).unwrap();
                for host in ["svc", "reviews", "other"] {
                    let _ = rules.evaluate(&req, &Context::new().with_host(host), &ThreadSampler);
                }
            }
        }
    }
}
