//! Arbitrary bytes as YAML and as JSON configuration: the loader returns rules or an error, and
//! never panics, hangs or exhausts memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_mesh::{Limits, LoadOptions, Loader, RuleSet};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = RuleSet::from_yaml(&text);
    let _ = RuleSet::from_json(&text);
    // Tight limits exercise every limit's error path.
    let tight = Limits {
        max_input_bytes: 4096,
        max_depth: 8,
        max_nodes: 500,
        max_regex_len: 16,
        max_regex_size: 10_000,
        max_routes: 3,
        ..Limits::default()
    };
    let _ = Loader::new()
        .options(LoadOptions::default().with_limits(tight).with_gateway_merge(true))
        .text(text.into_owned())
        .load();
});
