//! The resident size of loaded rules: the heap a `RuleSet` of 1,000 and 10,000 routes holds
//! once loaded and used, counted by a global allocator. The goal is at most 2 KiB per route.
//! Run with `cargo test --release --test memory -- --nocapture` to see the figures.

// A counting global allocator needs `unsafe impl GlobalAlloc`; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use http::Request;
use tower_mesh::{Context, NeverSampler, RuleSet};

struct Counting;

/// Bytes allocated and not yet freed, by every thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A VirtualService for `host` with `n` routes; route `i` matches header `header` with
/// `matcher(i)` and goes to its own destination.
fn rules(host: &str, header: &str, n: usize, matcher: impl Fn(usize) -> String) -> String {
    let mut yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {host}}}\nspec:\n  hosts: [{host}]\n  http:\n"
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: r{i}\n    match: [{{headers: {{{header}: {}}}, uri: {{prefix: /api/}}}}]\n    route: [{{destination: {{host: {host}-{i}}}}}]\n",
            matcher(i)
        ));
    }
    yaml
}

/// The rule sets measured: exact values and anchored regexes (as `benches/evaluate.rs`'s
/// `evaluate/rules`), and user-agent regexes with `.*` between literals (`evaluate/regex`);
/// each with a request for its last route.
fn shapes(n: usize) -> [(&'static str, String, Request<()>, &'static str); 2] {
    let last = n - 1;
    let tenant = |i: usize| {
        if i.is_multiple_of(2) {
            format!("{{exact: tenant-{i}}}")
        } else {
            format!("{{regex: 'tenant-[0-9]+-{i}'}}")
        }
    };
    let agent = |i: usize| format!(r"{{regex: '.*\[app-{i}\].*(iOS|Android)/[0-9]+.*'}}");
    [
        (
            "exact and regex tenants",
            rules("tenants", "x-tenant", n, tenant),
            Request::get("/api/items")
                .header("x-tenant", format!("tenant-4242-{last}"))
                .body(())
                .unwrap(),
            "tenants",
        ),
        (
            "user-agent regexes",
            rules("apps", "user-agent", n, agent),
            Request::get("/api/items")
                .header("user-agent", format!("Mozilla/5.0 [app-{last}] Android/14"))
                .body(())
                .unwrap(),
            "apps",
        ),
    ]
}

/// Live heap bytes `load` leaves behind, with what it returns (and a request evaluated, so
/// that the caches a search fills are counted too).
fn resident(text: &str, req: &Request<()>, host: &str) -> (isize, RuleSet) {
    let before = LIVE.load(Ordering::Relaxed);
    let rules = RuleSet::from_yaml(text).unwrap();
    let ctx = Context::new().with_host(host);
    let decision = rules.evaluate(req, &ctx, &NeverSampler);
    assert!(decision.route_name().is_some());
    drop(decision);
    (LIVE.load(Ordering::Relaxed) - before, rules)
}

#[test]
fn a_route_costs_at_most_two_kib() {
    for n in [1_000usize, 10_000] {
        for (shape, text, req, host) in shapes(n) {
            let (bytes, rules) = resident(&text, &req, host);
            assert_eq!(rules.table().route_count(), n);
            let per_route = bytes as f64 / n as f64;
            println!(
                "memory: {n} routes, {shape}: {:.1} MiB, {per_route:.0} bytes per route",
                bytes as f64 / (1 << 20) as f64
            );
            assert!(
                per_route <= 2048.0,
                "{shape}: {per_route:.0} bytes per route"
            );
        }
    }
}
