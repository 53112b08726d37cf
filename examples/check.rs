//! Checks Istio routing files the way tower-mesh reads them, and explains a request.
//!
//! ```text
//! cargo run --example check -- examples/config/route-to-v2.yaml examples/config/fault-503.yaml \
//!     --target helloworld-service -H 'user-agent: Mozilla/5.0 Chrome/70.0' GET /
//! ```
//!
//! Prints the load error (and exits 1), or the warnings and skipped documents; with a method
//! and URI, the explanation of that request.

use std::process::ExitCode;

use http::Request;
use tower_mesh::{Caller, Context, RuleSet, ThreadSampler};

fn main() -> ExitCode {
    let mut files = Vec::new();
    let mut headers = Vec::new();
    let mut ctx = Context::new();
    let mut request: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "-H" => headers.push(value("-H")),
            "--target" => ctx = ctx.with_host(value("--target")),
            "--gateway" => ctx = ctx.with_gateway(value("--gateway")),
            "--port" => ctx = ctx.with_port(value("--port").parse().unwrap_or(0)),
            "--source-label" => {
                let v = value("--source-label");
                let (k, val) = v.split_once('=').unwrap_or((&v, ""));
                let mut labels: Vec<(String, String)> = ctx
                    .caller()
                    .map(|c| {
                        c.labels()
                            .iter()
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                labels.push((k.to_string(), val.to_string()));
                ctx = ctx.with_caller(Caller::new().with_labels(labels));
            }
            a if a.ends_with(".yaml") || a.ends_with(".yml") || a.ends_with(".json") => {
                files.push(arg)
            }
            _ => request.push(arg),
        }
    }
    if files.is_empty() {
        eprintln!(
            "usage: check FILE... [--target HOST] [--gateway NAME] [--port N] [--source-label K=V] [-H 'name: value']... [METHOD URI]"
        );
        return ExitCode::from(2);
    }
    let rules = match RuleSet::from_files(&files) {
        Ok(r) => r,
        Err(e) => {
            println!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "loaded {} route(s) from {} file(s)",
        rules.table().route_count(),
        files.len()
    );
    for w in rules.warnings() {
        println!("warning: {w}");
    }
    for d in rules.skipped() {
        println!("skipped: {d}");
    }
    if let [method, uri] = request.as_slice() {
        let mut builder = Request::builder().method(method.as_str()).uri(uri.as_str());
        for h in &headers {
            let (name, value) = h.split_once(':').unwrap_or((h, ""));
            builder = builder.header(name.trim(), value.trim());
        }
        match builder.body(()) {
            Ok(req) => println!("{}", rules.explain(&req, &ctx, &ThreadSampler)),
            Err(e) => {
                eprintln!("bad request: {e}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}
