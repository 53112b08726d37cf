//! Structured random configurations: VirtualServices, DestinationRules and RouteRules built
//! from `arbitrary` values and written as YAML. Loading never panics; what loads evaluates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_mesh::{Context, RuleSet, ThreadSampler};

#[path = "../structured.rs"]
mod structured;

fuzz_target!(|config: structured::Config| {
    let yaml = config.to_yaml();
    if let Ok(rules) = RuleSet::from_yaml(&yaml) {
        for host in ["svc", "reviews", "other"] {
            let req = http::Request::get("/api/v1?x=1").header("x-a", "foo").body(()).unwrap();
            let _ = rules.evaluate(&req, &Context::new().with_host(host), &ThreadSampler);
        }
    }
});
