//! Runs conformance case files (`tests/conformance/FORMAT.md`): every `*.yaml` below
//! `tests/conformance/` and below each folder in `TOWER_MESH_CONFORMANCE_DIR` (`:`-separated).
//!
//! Strict: an unknown key fails its case; every request is evaluated; the run ends with
//! `conformance: C cases, R requests, P passed, F failed` and fails if anything failed or a
//! folder holds no case.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use tower_mesh::{
    Caller, Context, Decision, LoadOptions, Loader, Outcome, RuleSet, SeededSampler, ThreadSampler,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[allow(dead_code)]
    about: Option<String>,
    config: Option<String>,
    config_files: Option<Vec<String>>,
    options: Option<CaseOptions>,
    load_error: Option<String>,
    warnings: Option<Vec<String>>,
    /// Substrings each of which a scope note must contain.
    notes: Option<Vec<String>>,
    requests: Option<Vec<CaseRequest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseOptions {
    gateway_merge: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseRequest {
    name: Option<String>,
    method: Option<String>,
    uri: Option<String>,
    headers: Option<BTreeMap<String, OneOrMany>>,
    target: Option<String>,
    gateway: Option<String>,
    source_labels: Option<BTreeMap<String, String>>,
    source_namespace: Option<String>,
    port: Option<u32>,
    samples: Option<u32>,
    expect: Expect,
}

/// `Some(None)` is an explicit `null`; `None` is a key left out.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    outcome: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    rule: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    route: Option<Option<String>>,
    destination: Option<ExpectDestination>,
    #[serde(default, deserialize_with = "nullable")]
    status: Option<Option<u16>>,
    grpc_status: Option<u32>,
    delay_ms: Option<u64>,
    location: Option<String>,
    request_headers: Option<BTreeMap<String, Option<String>>>,
    uri_after: Option<String>,
    fractions: Option<BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectDestination {
    host: Option<String>,
    subset: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    port: Option<u32>,
}

#[derive(Default)]
struct Tally {
    cases: usize,
    requests: usize,
    passed: usize,
    failed: usize,
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

fn main() {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")];
    if let Ok(extra) = std::env::var("TOWER_MESH_CONFORMANCE_DIR") {
        dirs.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    let mut tally = Tally::default();
    // The cases ported from the Gateway API's own conformance suite, counted apart as well.
    let mut gateway_api = Tally::default();
    let mut empty_dirs = Vec::new();
    for dir in &dirs {
        let mut files = Vec::new();
        collect(dir, &mut files);
        if files.is_empty() {
            empty_dirs.push(dir.clone());
        }
        for file in files {
            let before = (tally.cases, tally.requests, tally.passed, tally.failed);
            run_file(&file, &mut tally);
            if file.components().any(|c| c.as_os_str() == "gateway-api") {
                gateway_api.cases += tally.cases - before.0;
                gateway_api.requests += tally.requests - before.1;
                gateway_api.passed += tally.passed - before.2;
                gateway_api.failed += tally.failed - before.3;
            }
        }
    }
    for d in &empty_dirs {
        println!("FAIL {}: the folder holds no case file", d.display());
    }
    println!(
        "conformance: {} cases, {} requests, {} passed, {} failed",
        tally.cases, tally.requests, tally.passed, tally.failed
    );
    println!(
        "of which ported from the Gateway API suite: {} cases, {} requests, {} passed, {} failed",
        gateway_api.cases, gateway_api.requests, gateway_api.passed, gateway_api.failed
    );
    if tally.failed > 0 || !empty_dirs.is_empty() {
        std::process::exit(1);
    }
}

fn run_file(file: &Path, tally: &mut Tally) {
    let fail_case = |tally: &mut Tally, why: String| {
        println!("FAIL {}: {why}", file.display());
        tally.failed += 1;
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail_case(tally, format!("cannot read: {e}")),
    };
    let cases: Vec<Case> = match tower_mesh::config::read_yaml(&text) {
        Ok(c) => c,
        Err(e) => {
            tally.cases += 1;
            return fail_case(tally, format!("malformed case file: {e}"));
        }
    };
    for case in cases {
        tally.cases += 1;
        if let Err(why) = run_case(file, &case, tally) {
            fail_case(tally, format!("case {}: {why}", case.name));
        }
    }
}

fn run_case(file: &Path, case: &Case, tally: &mut Tally) -> Result<(), String> {
    let options = LoadOptions::default().with_gateway_merge(
        case.options
            .as_ref()
            .and_then(|o| o.gateway_merge)
            .unwrap_or(false),
    );
    let mut loader = Loader::new().options(options);
    match (&case.config, &case.config_files) {
        (Some(c), None) => loader = loader.text(c.clone()),
        (None, Some(files)) => {
            let base = file.parent().unwrap_or(Path::new("."));
            for f in files {
                loader = loader.file(base.join(f));
            }
        }
        _ => return Err("exactly one of `config` and `config_files` is required".into()),
    }
    let loaded = loader.load();
    if let Some(want) = &case.load_error {
        if case.requests.is_some() {
            return Err("a case with `load_error` has no `requests`".into());
        }
        return match loaded {
            Ok(_) => Err(format!(
                "expected a load error containing {want:?}, but the configuration loaded"
            )),
            Err(e) if e.to_string().to_lowercase().contains(&want.to_lowercase()) => Ok(()),
            Err(e) => Err(format!(
                "expected a load error containing {want:?}, got: {e}"
            )),
        };
    }
    let rules = loaded.map_err(|e| format!("the configuration does not load: {e}"))?;
    for (wanted, found, what) in [
        (&case.warnings, rules.warnings(), "warning"),
        (&case.notes, rules.notes(), "note"),
    ] {
        for want in wanted.iter().flatten() {
            let hit = found
                .iter()
                .any(|w| w.to_string().to_lowercase().contains(&want.to_lowercase()));
            if !hit {
                let all: Vec<String> = found.iter().map(|w| w.to_string()).collect();
                return Err(format!("no {what} contains {want:?}; {what}s: {all:#?}"));
            }
        }
    }
    let Some(requests) = &case.requests else {
        return Err("`requests` is required unless `load_error` is given".into());
    };
    for (i, r) in requests.iter().enumerate() {
        tally.requests += 1;
        let label = r.name.clone().unwrap_or_else(|| i.to_string());
        match run_request(&rules, r) {
            Ok(()) => tally.passed += 1,
            Err(why) => {
                tally.failed += 1;
                println!(
                    "FAIL {} case {} request {i} ({label}):\n{why}",
                    file.display(),
                    case.name
                );
            }
        }
    }
    Ok(())
}

fn build_request(r: &CaseRequest) -> Result<(http::Request<()>, Context), String> {
    let mut builder = http::Request::builder()
        .method(r.method.as_deref().unwrap_or("GET"))
        .uri(r.uri.as_deref().unwrap_or("/"));
    for (name, values) in r.headers.iter().flatten() {
        match values {
            OneOrMany::One(v) => builder = builder.header(name, v),
            OneOrMany::Many(vs) => {
                for v in vs {
                    builder = builder.header(name, v);
                }
            }
        }
    }
    let req = builder.body(()).map_err(|e| format!("bad request: {e}"))?;
    let mut ctx = Context::new();
    if let Some(t) = &r.target {
        ctx = ctx.with_host(t.as_str());
    }
    if let Some(g) = &r.gateway {
        ctx = ctx.with_gateway(g.as_str());
    }
    if let Some(p) = r.port {
        ctx = ctx.with_port(p);
    }
    if r.source_labels.is_some() || r.source_namespace.is_some() {
        let mut caller = Caller::new().with_labels(r.source_labels.clone().unwrap_or_default());
        if let Some(ns) = &r.source_namespace {
            caller = caller.with_namespace(ns.clone());
        }
        ctx = ctx.with_caller(caller);
    }
    Ok((req, ctx))
}

fn run_request(rules: &RuleSet, r: &CaseRequest) -> Result<(), String> {
    let (req, ctx) = build_request(r)?;
    let samples = r.samples.unwrap_or(1);
    let e = &r.expect;
    if samples > 1 {
        let single = e.outcome.is_some()
            || e.rule.is_some()
            || e.route.is_some()
            || e.destination.is_some()
            || e.status.is_some()
            || e.grpc_status.is_some()
            || e.delay_ms.is_some()
            || e.location.is_some()
            || e.request_headers.is_some()
            || e.uri_after.is_some();
        if single {
            return Err("with `samples` above 1 only `fractions` may be expected".into());
        }
        let Some(fractions) = &e.fractions else {
            return Err("with `samples` above 1, `fractions` is required".into());
        };
        let sampler = SeededSampler::new(0x7e57_ca5e);
        let decisions: Vec<Decision> = (0..samples)
            .map(|_| rules.evaluate(&req, &ctx, &sampler))
            .collect();
        let mut errors = Vec::new();
        for (key, &p) in fractions {
            let count = decisions
                .iter()
                .map(|d| counts(key, d))
                .collect::<Result<Vec<bool>, String>>()?
                .into_iter()
                .filter(|x| *x)
                .count();
            let n = f64::from(samples);
            let observed = count as f64 / n;
            let bound = 5.0 * (p * (1.0 - p) / n).sqrt() + 1.0 / n;
            if (observed - p).abs() > bound {
                errors.push(format!("  {key}: expected {p} ± {bound:.4}, observed {observed:.4} ({count} of {samples})"));
            }
        }
        return if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        };
    }
    if e.fractions.is_some() {
        return Err("`fractions` needs `samples` above 1".into());
    }
    let d = rules.evaluate(&req, &ctx, &ThreadSampler);
    let mut errors = Vec::new();
    let mut check = |what: &str, want: String, got: String| {
        if want != got {
            errors.push(format!("  {what}: expected {want}, got {got}"));
        }
    };
    if let Some(o) = &e.outcome {
        check("outcome", o.clone(), d.outcome().as_str().to_string());
    }
    if let Some(rule) = &e.rule {
        check(
            "rule",
            format!("{rule:?}"),
            format!("{:?}", d.rule().map(str::to_string)),
        );
    }
    if let Some(route) = &e.route {
        check(
            "route",
            format!("{route:?}"),
            format!("{:?}", d.route_name().map(str::to_string)),
        );
    }
    if let Some(want) = &e.destination {
        match d.destination().filter(|_| d.outcome() == Outcome::Forward) {
            None => check(
                "destination",
                "a destination".into(),
                format!("none ({})", d.outcome()),
            ),
            Some(got) => {
                if let Some(h) = &want.host {
                    check("destination.host", h.clone(), got.host().to_string());
                }
                if let Some(s) = &want.subset {
                    check(
                        "destination.subset",
                        format!("{:?}", Some(s)),
                        format!("{:?}", got.subset()),
                    );
                }
                if let Some(l) = &want.labels {
                    let got_labels: BTreeMap<String, String> = got
                        .labels()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    check(
                        "destination.labels",
                        format!("{l:?}"),
                        format!("{got_labels:?}"),
                    );
                }
                if let Some(p) = want.port {
                    check(
                        "destination.port",
                        format!("{:?}", Some(p)),
                        format!("{:?}", got.port()),
                    );
                }
            }
        }
    }
    if let Some(status) = &e.status {
        check(
            "status",
            format!("{status:?}"),
            format!("{:?}", d.status().map(|s| s.as_u16())),
        );
    }
    if let Some(g) = e.grpc_status {
        check(
            "grpc_status",
            format!("{:?}", Some(g)),
            format!("{:?}", d.grpc_status()),
        );
    }
    if let Some(ms) = e.delay_ms {
        let got = d.delay().map_or(0, |d| d.as_millis() as u64);
        check("delay_ms", ms.to_string(), got.to_string());
    }
    if let Some(l) = &e.location {
        check(
            "location",
            format!("{:?}", Some(l)),
            format!("{:?}", d.location()),
        );
    }
    if e.uri_after.is_some() || e.request_headers.is_some() {
        // Carry the decision out on a copy of the request, as the middleware would.
        let mut after = http::Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .body(())
            .map_err(|e| e.to_string())?;
        *after.headers_mut() = req.headers().clone();
        d.apply_request(&mut after)
            .map_err(|e| format!("the decision could not be carried out: {e}"))?;
        if let Some(want) = &e.uri_after {
            check("uri_after", want.clone(), after.uri().to_string());
        }
        for (name, want) in e.request_headers.iter().flatten() {
            let values: Vec<String> = after
                .headers()
                .get_all(name.as_str())
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            let got = (!values.is_empty()).then(|| values.join(","));
            check(
                &format!("request_headers.{name}"),
                format!("{want:?}"),
                format!("{got:?}"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n  decision: {d}", errors.join("\n")))
    }
}

/// Whether one decision counts for a `fractions` key.
fn counts(key: &str, d: &Decision) -> Result<bool, String> {
    let forward = d.outcome() == Outcome::Forward;
    if key == "delayed" {
        return Ok(d.delay().is_some());
    }
    let Some((kind, value)) = key.split_once(':') else {
        return Err(format!("unknown fractions key {key:?}"));
    };
    Ok(match kind {
        "outcome" => d.outcome().as_str() == value,
        "status" => d.status().is_some_and(|s| s.as_u16().to_string() == value),
        "subset" => forward && d.destination().and_then(|x| x.subset()) == Some(value),
        "host" => forward && d.destination().map(|x| x.host()) == Some(value),
        "labels" => {
            let Some((k, v)) = value.split_once('=') else {
                return Err(format!(
                    "`labels:` keys look like labels:KEY=VALUE, not {key:?}"
                ));
            };
            forward && d.destination().and_then(|x| x.labels().get(k)) == Some(v)
        }
        _ => return Err(format!("unknown fractions key {key:?}")),
    })
}
