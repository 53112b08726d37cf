//! What one request costs to evaluate, whatever the rules: each hostile shape is generated just
//! under the default `Limits`, loaded, and evaluated for a request of about 64 KB built to hurt
//! it. The figures printed are the time and the bytes the evaluation took apart to read the
//! request (one per field read by a condition or by the route index, plus the bytes split when
//! the query string is taken into parameters or joined when a header's lines are; feature
//! `cost-counters`). The assertion is on that count, never on time: at most twice the request's
//! size plus a few per match entry, so that no condition takes a request field apart again.
//!
//! `cargo test --release --test eval_cost -- --nocapture` prints the figures for this machine.

mod common;

use std::time::{Duration, Instant};

use common::virtual_service;
use http::Request;
use tower_mesh::model::take_bytes_parsed;
use tower_mesh::{Context, Limits, NeverSampler, RuleSet};

/// A request of about 64 KB, and the bytes it carries.
struct Hostile {
    req: Request<()>,
    bytes: usize,
}

impl Hostile {
    fn new(req: Request<()>) -> Self {
        let bytes = req.uri().to_string().len()
            + req
                .headers()
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len())
                .sum::<usize>();
        Hostile { req, bytes }
    }
}

/// `?a&a&...`: 32,000 parameters named `a`, none with a value.
fn many_empty_params() -> Hostile {
    Hostile::new(
        Request::get(format!("/?{}", vec!["a"; 32_000].join("&")))
            .body(())
            .unwrap(),
    )
}

/// One header of 64 KB with no literal any route looks for.
fn long_header(name: &str) -> Hostile {
    Hostile::new(
        Request::get("/")
            .header(name, "7".repeat(64 << 10))
            .body(())
            .unwrap(),
    )
}

/// 1,000 header lines of 64 bytes: every `x-hN` name a route tests is absent, or sent.
fn many_headers() -> Hostile {
    let mut b = Request::get("/");
    for i in 0..1_000 {
        b = b.header(format!("x-h{i}"), format!("{:0>60}", i));
    }
    Hostile::new(b.body(()).unwrap())
}

fn routes(n: usize, each: impl Fn(usize) -> String) -> String {
    (0..n).map(each).collect()
}

fn shapes() -> Vec<(&'static str, String, Hostile)> {
    let max_routes = Limits::default().max_routes;
    let dest = "route: [{destination: {host: svc}}]";
    // `n` HTTPRoutes of one rule each, for Service `svc`.
    let http_routes = |n: usize, rule: &dyn Fn(usize) -> String| {
        routes(n, |r| {
            format!(
                "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{r}, namespace: shop}}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: svc}}]\n  rules:\n{}",
                rule(r)
            )
        })
    };
    vec![
        (
            "20,000 routes x 2 query entries",
            virtual_service(
                "svc",
                &routes(max_routes, |i| {
                    format!(
                        "  - match: [{{queryParams: {{k{i}: {{exact: v}}}}}}, {{queryParams: {{j{i}: {{prefix: v}}}}}}]\n    {dest}\n"
                    )
                }),
            ),
            many_empty_params(),
        ),
        (
            "16,000 routes x 3 query conditions",
            virtual_service(
                "svc",
                &routes(16_000, |i| {
                    format!(
                        "  - match: [{{queryParams: {{a: {{exact: \"\"}}, b: {{exact: x}}, c{i}: {{regex: \"[0-9]+\"}}}}}}]\n    {dest}\n"
                    )
                }),
            ),
            many_empty_params(),
        ),
        (
            "20,000 routes, a header each",
            virtual_service(
                "svc",
                &routes(max_routes, |i| {
                    format!("  - match: [{{headers: {{x-h{i}: {{exact: v}}}}}}]\n    {dest}\n")
                }),
            ),
            many_headers(),
        ),
        (
            "1,000 regexes without a literal",
            virtual_service(
                "svc",
                &routes(1_000, |i| {
                    format!(
                        "  - match: [{{headers: {{x-id: {{regex: \"[0-9a-f]{{{}}}[g-z]\"}}}}}}]\n    {dest}\n",
                        i + 1
                    )
                }),
            ),
            long_header("x-id"),
        ),
        (
            "1,000 query regexes without a literal",
            virtual_service(
                "svc",
                &routes(1_000, |i| {
                    format!(
                        "  - match: [{{queryParams: {{id: {{regex: \".*[0-9]{{{}}}[g-z]\"}}}}}}]\n    {dest}\n",
                        i + 1
                    )
                }),
            ),
            Hostile::new(
                Request::get(format!("/?id={}", "7".repeat(64_000)))
                    .body(())
                    .unwrap(),
            ),
        ),
        (
            "312 HTTPRoutes x 64 query matches",
            http_routes(312, &|r| {
                let matches = routes(64, |m| {
                    format!(
                        "{{queryParams: [{{name: q{r}x{m}, value: v}}, {{name: a, value: x}}]}}, "
                    )
                });
                format!("  - matches: [{matches}]\n    backendRefs: [{{name: svc, port: 80}}]\n")
            }),
            many_empty_params(),
        ),
        (
            "16 HTTPRoutes x 64 header regexes",
            http_routes(16, &|r| {
                let matches = routes(64, |m| {
                    format!(
                        "{{headers: [{{type: RegularExpression, name: x-id, value: \".*[0-9]{{{}}}[g-z]\"}}]}}, ",
                        r * 64 + m + 1
                    )
                });
                format!("  - matches: [{matches}]\n    backendRefs: [{{name: svc, port: 80}}]\n")
            }),
            long_header("x-id"),
        ),
    ]
}

#[test]
fn no_request_is_taken_apart_more_than_once() {
    println!(
        "{:<40} {:>8} {:>10} {:>12} {:>8}",
        "shape", "entries", "request", "parsed", "time"
    );
    let mut worst = (Duration::ZERO, "");
    for (name, text, hostile) in shapes() {
        let rules = RuleSet::from_yaml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let entries = rules.table().route_count();
        let host = if text.contains("HTTPRoute") {
            "svc.shop"
        } else {
            "svc"
        };
        let ctx = Context::new().with_host(host);
        // The same evaluation twice: the first compiles what is compiled on first use.
        let first = rules.evaluate(&hostile.req, &ctx, &NeverSampler);
        take_bytes_parsed();
        let start = Instant::now();
        let again = rules.evaluate(&hostile.req, &ctx, &NeverSampler);
        let elapsed = start.elapsed();
        let read = take_bytes_parsed();
        assert_eq!(first.to_string(), again.to_string(), "{name}");
        println!(
            "{name:<40} {entries:>8} {:>7} KB {:>9} KB {elapsed:>8.1?}",
            hostile.bytes / 1000,
            read / 1000
        );
        if elapsed > worst.0 {
            worst = (elapsed, name);
        }
        let bound = 2 * hostile.bytes as u64 + 4 * Limits::default().max_matches as u64;
        assert!(
            read <= bound,
            "{name}: one evaluation took apart {read} bytes of a {} byte request (at most {bound})",
            hostile.bytes
        );
    }
    println!("worst evaluation: {:?} ({})", worst.0, worst.1);
}
