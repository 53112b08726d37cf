//! What loading costs at the limits, whatever the shape of the text: each hostile shape is
//! generated at (or past) the default `Limits`, loaded, and its time and peak heap printed.
//! The assertions are on peak memory (at most 512 MiB) and on what the load did (the limit it
//! stopped at, or the routes it built), never on wall time.
//!
//! `cargo test --release --test load_cost -- --nocapture` prints the figures for this machine.

// A counting global allocator needs `unsafe impl GlobalAlloc`; nothing else here is unsafe.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::shapes::{alias_tower, delegation, http_routes};
use common::virtual_service;
use tower_mesh::{ErrorKind, Limits, RuleSet};

/// Counts the heap in use and its peak, for the whole process.
struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

const MAX_PEAK: usize = 512 << 20;

/// What a shape's load must end in.
enum Expect {
    /// A `Limit` error naming this limit.
    Limit(&'static str),
    /// A rule set with this many routes.
    Routes(usize),
}

fn routes(n: usize, each: impl Fn(usize) -> String) -> String {
    (0..n).map(each).collect()
}

fn shapes() -> Vec<(&'static str, String, Expect)> {
    let one_route = "  - route: [{destination: {host: svc}}]\n";
    let with_status =
        |status: String| format!("{}status:\n{status}", virtual_service("svc", one_route));
    let mut alias_bomb = String::from("status:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        alias_bomb.push_str(&format!(
            "  a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    let wildcard_hosts: Vec<String> = (0..100_000).map(|i| format!("\"*.h{i}.com\"")).collect();
    let subsets = routes(Limits::default().max_subsets, |i| {
        format!("  - {{name: s{i}, labels: {{version: v{i}}}}}\n")
    });
    vec![
        (
            "alias tower, 250 x 60",
            alias_tower(250, 60),
            Expect::Limit("max_depth"),
        ),
        (
            "alias bomb, 10^8 values",
            format!("{}{alias_bomb}", virtual_service("svc", one_route)),
            Expect::Limit("max_nodes"),
        ),
        (
            "1 MB string, 1,000 aliases",
            with_status(format!(
                "  big: &big \"{}\"\n  uses: [{}]\n",
                "x".repeat(1 << 20),
                vec!["*big"; 1_000].join(", ")
            )),
            Expect::Limit("max_input_bytes"),
        ),
        (
            "delegation, 2,000 x 2,000 routes",
            delegation(2_000, 2_000, 0),
            Expect::Limit("max_routes"),
        ),
        (
            "delegation, 1,000 x 1,000 matches",
            delegation(1, 3, 1_000),
            Expect::Limit("max_matches"),
        ),
        (
            "3,000 regexes of 1 MB each",
            virtual_service(
                "svc",
                &routes(3_000, |i| {
                    format!(
                        "  - match: [{{headers: {{x-id: {{regex: '\\w{{20}}x{i}'}}}}}}]\n    route: [{{destination: {{host: svc}}}}]\n"
                    )
                }),
            ),
            Expect::Limit("max_regex_total"),
        ),
        (
            "mapping of 10,000 keys",
            with_status(routes(10_000, |i| format!("  k{i}: v\n"))),
            Expect::Routes(1),
        ),
        (
            "mapping of 80,000 keys",
            with_status(routes(80_000, |i| format!("  k{i}: v\n"))),
            Expect::Limit("max_mapping_keys"),
        ),
        (
            "100,000 wildcard hosts",
            format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: many}}\nspec:\n  hosts: [{}]\n  http:\n{one_route}",
                wildcard_hosts.join(", ")
            ),
            Expect::Routes(1),
        ),
        (
            "DestinationRule of 10,000 subsets",
            format!(
                "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  subsets:\n{subsets}"
            ),
            Expect::Routes(0),
        ),
        (
            "400 routes of 600 header matches",
            virtual_service(
                "svc",
                &routes(400, |i| {
                    let headers = routes(600, |h| format!("x-h{h}: {{exact: v{i}}}, "));
                    format!(
                        "  - match: [{{headers: {{{headers}}}}}]\n    route: [{{destination: {{host: svc}}}}]\n"
                    )
                }),
            ),
            Expect::Routes(400),
        ),
        (
            "2,000 HTTPRoutes x 32 Services",
            http_routes(2_000, 1, 32),
            Expect::Limit("max_routes"),
        ),
        (
            "600 HTTPRoutes x 32 Services",
            http_routes(600, 1, 32),
            Expect::Routes(19_200),
        ),
        (
            "1,600 HTTPRoutes x 64 matches",
            http_routes(800, 64, 1) + &http_routes(800, 64, 1).replace("name: r", "name: q"),
            Expect::Limit("max_routes"),
        ),
        (
            "20,000 routes",
            virtual_service(
                "svc",
                &routes(Limits::default().max_routes, |i| {
                    format!(
                        "  - match: [{{uri: {{exact: /p{i}}}}}]\n    route: [{{destination: {{host: svc}}}}]\n"
                    )
                }),
            ),
            Expect::Routes(Limits::default().max_routes),
        ),
    ]
}

#[test]
fn loading_any_shape_at_the_limits_stays_within_512_mib() {
    println!(
        "{:<36} {:>9} {:>10} {:>11}  result",
        "shape", "text", "time", "peak heap"
    );
    for (name, text, expect) in shapes() {
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        let loaded = RuleSet::from_yaml(&text).map(|r| r.table().route_count());
        let elapsed = start.elapsed();
        let peak = PEAK.load(Ordering::Relaxed) - before;
        let result = match &loaded {
            Ok(n) => format!("{n} routes"),
            Err(e) => format!("{:?}: {}", e.kind(), e.message()),
        };
        println!(
            "{name:<36} {:>7} KB {:>8.0?} {:>7.1} MiB  {result:.100}",
            text.len() / 1000,
            elapsed,
            peak as f64 / f64::from(1 << 20)
        );
        assert!(
            peak <= MAX_PEAK,
            "{name}: the load's heap peaked at {peak} bytes"
        );
        match (expect, loaded) {
            (Expect::Limit(limit), Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::Limit, "{name}: {e}");
                assert!(e.message().contains(limit), "{name}: {e}");
            }
            (Expect::Routes(n), Ok(got)) => assert_eq!(got, n, "{name}"),
            (_, other) => panic!("{name}: unexpected {:?}", other.map_err(|e| e.to_string())),
        }
    }
}
