//! Arbitrary requests (method, URI, headers, non-UTF-8 values included) against a fixed, rich
//! rule set: evaluation and explanation never panic.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tower_mesh::{Caller, Context, RuleSet, ScriptedSampler};

const RULES: &str = include_str!("../rich-rules.yaml");

#[derive(Arbitrary, Debug)]
struct Input {
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    target: Option<String>,
    gateway: Option<String>,
    port: Option<u32>,
    labels: Vec<(String, String)>,
    draws: Vec<u32>,
}

fuzz_target!(|input: Input| {
    static RULESET: OnceLock<RuleSet> = OnceLock::new();
    let rules = RULESET.get_or_init(|| RuleSet::from_yaml(RULES).expect("the fuzz rules load"));
    let mut builder = http::Request::builder().method(input.method.as_str()).uri(input.uri.as_str());
    for (name, value) in &input.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    let Ok(req) = builder.body(()) else { return };
    let mut ctx = Context::new();
    if let Some(t) = input.target {
        ctx = ctx.with_host(t);
    }
    if let Some(g) = input.gateway {
        ctx = ctx.with_gateway(g);
    }
    if let Some(p) = input.port {
        ctx = ctx.with_port(p);
    }
    ctx = ctx.with_caller(Caller::new().with_labels(input.labels));
    let sampler = ScriptedSampler::new(input.draws);
    let decision = rules.evaluate(&req, &ctx, &sampler);
    let explanation = rules.explain(&req, &ctx, &sampler);
    let _ = (decision.to_string(), explanation.to_string());
});
