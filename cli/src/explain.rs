//! `tower-mesh explain`: one request evaluated, rule by rule.

use std::process::ExitCode;

use http::Request;
use tower_mesh::{Caller, Context, Loader, Sampler, SeededSampler, ThreadSampler};

use crate::args::Explain;

/// The context the request is evaluated in: the target service, the gateway, the port and the
/// caller.
fn context(e: &Explain) -> Context {
    let mut ctx = Context::new().with_host(e.target.as_str());
    if let Some(g) = &e.gateway {
        ctx = ctx.with_gateway(g.as_str());
    }
    if let Some(p) = e.port {
        ctx = ctx.with_port(p);
    }
    if !e.source_labels.is_empty() || e.source_namespace.is_some() {
        let mut caller = Caller::new().with_labels(e.source_labels.iter().cloned());
        if let Some(ns) = &e.source_namespace {
            caller = caller.with_namespace(ns.as_str());
        }
        ctx = ctx.with_caller(caller);
    }
    ctx
}

fn request(e: &Explain) -> Result<Request<()>, String> {
    let mut b = Request::builder()
        .method(e.method.as_str())
        .uri(e.uri.as_str());
    for (name, value) in &e.headers {
        b = b.header(name.as_str(), value.as_str());
    }
    b.body(())
        .map_err(|err| format!("the request `{} {}` is not valid: {err}", e.method, e.uri))
}

/// Loads `e.files`, evaluates the request and prints the explanation.
pub(crate) fn run(e: &Explain) -> ExitCode {
    let req = match request(e) {
        Ok(r) => r,
        Err(problem) => {
            eprintln!("tower-mesh: {problem}");
            return ExitCode::from(2);
        }
    };
    let rules = match e.files.iter().fold(Loader::new(), |l, f| l.file(f)).load() {
        Ok(rules) => rules,
        Err(err) => {
            for one in err.errors() {
                eprintln!("error: {one}");
            }
            eprintln!("the rules do not load; run `tower-mesh check` on them for the warnings too");
            return ExitCode::FAILURE;
        }
    };
    let sampler: Box<dyn Sampler> = match e.seed {
        Some(seed) => Box::new(SeededSampler::new(seed)),
        None => Box::new(ThreadSampler),
    };
    let text = rules
        .explain(&req, &context(e), sampler.as_ref())
        .to_string();
    println!("{}", text.trim_end());
    match e.seed {
        Some(seed) => println!("draws: seeded with {seed}"),
        None => println!("draws: random; pass --seed N to repeat them"),
    }
    ExitCode::SUCCESS
}
