//! Istio's own bookinfo samples (../shared/istio-samples, when present): every file loads, and
//! each gets at least one decision checked. Each VirtualService file is loaded with
//! `destination-rule-all.yaml`, each legacy file with `route-rule-all-v1.yaml`, as Istio's
//! tasks apply them.

use std::path::{Path, PathBuf};

use http::Request;
use tower_mesh::{Caller, Context, NeverSampler, Outcome, RuleSet, Sampler, ScriptedSampler};

/// The samples folder, when the team's shared folder sits beside the repository (CI has it);
/// otherwise `None`, after a `skipped:` line naming `test`. The line is written past the test
/// harness's capture, so that a skip shows in every run.
fn samples(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/istio-samples");
    if dir.is_dir() {
        return Some(dir);
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: ../shared/istio-samples is absent; the bundled fixtures in \
         tests/evaluate.rs still run"
    );
    None
}

struct Check {
    file: &'static str,
    target: &'static str,
    uri: &'static str,
    headers: &'static [(&'static str, &'static str)],
    ctx: fn(Context) -> Context,
    sampler: fn() -> Box<dyn Sampler>,
    outcome: Outcome,
    /// (host, version label, port) for a forward; status for a local reply.
    host: &'static str,
    version: Option<&'static str>,
    port: Option<u32>,
    status: Option<u16>,
}

fn same(c: Context) -> Context {
    c
}
fn never() -> Box<dyn Sampler> {
    Box::new(NeverSampler)
}
fn pick(n: u32) -> Box<dyn Sampler> {
    Box::new(ScriptedSampler::new([n]))
}

const BASE: Check = Check {
    file: "",
    target: "",
    uri: "/",
    headers: &[],
    ctx: same,
    sampler: never,
    outcome: Outcome::Forward,
    host: "",
    version: None,
    port: None,
    status: None,
};

fn checks() -> Vec<Check> {
    vec![
        Check {
            file: "bookinfo-gateway.yaml",
            target: "bookinfo.example.com",
            uri: "/productpage",
            ctx: |c| c.with_gateway("bookinfo-gateway"),
            host: "productpage",
            port: Some(9080),
            ..BASE
        },
        Check {
            file: "bookinfo-gateway.yaml",
            target: "bookinfo.example.com",
            uri: "/admin",
            ctx: |c| c.with_gateway("bookinfo-gateway"),
            outcome: Outcome::NotFound,
            status: Some(404),
            ..BASE
        },
        Check {
            file: "bookinfo-gateway.yaml",
            target: "productpage",
            uri: "/productpage",
            outcome: Outcome::PassThrough,
            ..BASE
        },
        Check {
            file: "certmanager-gateway.yaml",
            target: "example.com",
            uri: "/.well-known/acme-challenge/abc",
            ctx: |c| c.with_gateway("cert-manager-gateway"),
            host: "cert-manager-resolver",
            port: Some(8089),
            ..BASE
        },
        Check {
            file: "destination-rule-all.yaml",
            target: "reviews",
            outcome: Outcome::PassThrough,
            ..BASE
        },
        Check {
            file: "destination-rule-all-mtls.yaml",
            target: "reviews",
            outcome: Outcome::PassThrough,
            ..BASE
        },
        Check {
            file: "destination-rule-reviews.yaml",
            target: "reviews",
            outcome: Outcome::PassThrough,
            ..BASE
        },
        Check {
            file: "egress-rule-google-apis.yaml",
            target: "www.googleapis.com",
            ctx: |c| c.with_port(80),
            host: "www.googleapis.com",
            port: Some(443),
            ..BASE
        },
        Check {
            file: "egress-rule-google-apis.yaml",
            target: "www.googleapis.com",
            ctx: |c| c.with_port(443),
            outcome: Outcome::PassThrough,
            ..BASE
        },
        Check {
            file: "fault-injection-details-v1.yaml",
            target: "details",
            outcome: Outcome::Abort,
            status: Some(555),
            ..BASE
        },
        Check {
            file: "virtual-service-all-v1.yaml",
            target: "reviews",
            host: "reviews",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "virtual-service-all-v1.yaml",
            target: "productpage",
            host: "productpage",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "virtual-service-details-v2.yaml",
            target: "details",
            host: "details",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "virtual-service-ratings-db.yaml",
            target: "ratings",
            host: "ratings",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "virtual-service-ratings-db.yaml",
            target: "reviews",
            host: "reviews",
            version: Some("v3"),
            ..BASE
        },
        Check {
            file: "virtual-service-ratings-mysql-vm.yaml",
            target: "ratings",
            host: "ratings",
            version: Some("v2-mysql-vm"),
            ..BASE
        },
        Check {
            file: "virtual-service-ratings-mysql.yaml",
            target: "ratings",
            host: "ratings",
            version: Some("v2-mysql"),
            ..BASE
        },
        Check {
            file: "virtual-service-ratings-test-abort.yaml",
            target: "ratings",
            headers: &[("end-user", "jason")],
            outcome: Outcome::Abort,
            status: Some(500),
            ..BASE
        },
        Check {
            file: "virtual-service-ratings-test-abort.yaml",
            target: "ratings",
            headers: &[("end-user", "ann")],
            host: "ratings",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "virtual-service-ratings-test-delay.yaml",
            target: "ratings",
            headers: &[("end-user", "jason")],
            host: "ratings",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-50-v3.yaml",
            target: "reviews",
            sampler: || pick(49),
            host: "reviews",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-50-v3.yaml",
            target: "reviews",
            sampler: || pick(50),
            host: "reviews",
            version: Some("v3"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-80-20.yaml",
            target: "reviews",
            sampler: || pick(79),
            host: "reviews",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-80-20.yaml",
            target: "reviews",
            sampler: || pick(80),
            host: "reviews",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-90-10.yaml",
            target: "reviews",
            sampler: || pick(90),
            host: "reviews",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-jason-v2-v3.yaml",
            target: "reviews",
            headers: &[("end-user", "jason")],
            host: "reviews",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-jason-v2-v3.yaml",
            target: "reviews",
            host: "reviews",
            version: Some("v3"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-test-v2.yaml",
            target: "reviews",
            headers: &[("end-user", "jason")],
            host: "reviews",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-test-v2.yaml",
            target: "reviews",
            host: "reviews",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-v2-v3.yaml",
            target: "reviews",
            sampler: || pick(50),
            host: "reviews",
            version: Some("v3"),
            ..BASE
        },
        Check {
            file: "virtual-service-reviews-v3.yaml",
            target: "reviews",
            host: "reviews",
            version: Some("v3"),
            ..BASE
        },
        // Legacy RouteRules, each with route-rule-all-v1.yaml.
        Check {
            file: "legacy-v1alpha2/route-rule-all-v1.yaml",
            target: "reviews",
            host: "reviews",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-all-v1-mtls.yaml",
            target: "details",
            host: "details",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-details-v2.yaml",
            target: "details",
            host: "details",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-ratings-db.yaml",
            target: "ratings",
            host: "ratings",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-ratings-mysql-vm.yaml",
            target: "ratings",
            host: "ratings",
            version: Some("v2-mysql-vm"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-ratings-mysql.yaml",
            target: "ratings",
            host: "ratings",
            version: Some("v2-mysql"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-ratings-test-abort.yaml",
            target: "ratings",
            headers: &[("cookie", "session=1;user=jason")],
            outcome: Outcome::Abort,
            status: Some(500),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-ratings-test-abort.yaml",
            target: "ratings",
            headers: &[("cookie", "user=ann")],
            host: "ratings",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-ratings-test-delay.yaml",
            target: "ratings",
            headers: &[("cookie", "user=jason")],
            host: "ratings",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-reviews-50-v3.yaml",
            target: "reviews",
            sampler: || pick(50),
            host: "reviews",
            version: Some("v3"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-reviews-80-20.yaml",
            target: "reviews",
            sampler: || pick(80),
            host: "reviews",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-reviews-90-10.yaml",
            target: "reviews",
            sampler: || pick(89),
            host: "reviews",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-reviews-test-v2.yaml",
            target: "reviews",
            headers: &[("cookie", "user=jason")],
            host: "reviews",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-reviews-test-v2.yaml",
            target: "reviews",
            headers: &[("cookie", "user=jasonx")],
            host: "reviews",
            version: Some("v1"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-reviews-v2-v3.yaml",
            target: "reviews",
            sampler: || pick(10),
            host: "reviews",
            version: Some("v2"),
            ..BASE
        },
        Check {
            file: "legacy-v1alpha2/route-rule-reviews-v3.yaml",
            target: "reviews",
            host: "reviews",
            version: Some("v3"),
            ..BASE
        },
    ]
}

fn load(dir: &Path, file: &str) -> RuleSet {
    let base = if file.starts_with("legacy-v1alpha2/") {
        dir.join("legacy-v1alpha2/route-rule-all-v1.yaml")
    } else {
        dir.join("destination-rule-all.yaml")
    };
    // The file applied after the base, as `kubectl apply` would: where it defines resources of
    // the base's names, it takes the base's place (a resource may appear once in a load).
    let path = dir.join(file);
    let loaded = match base == path {
        true => RuleSet::from_files([&path]),
        false => RuleSet::from_files([&base, &path]),
    };
    match loaded {
        Err(e)
            if e.errors()
                .all(|e| e.kind() == tower_mesh::ErrorKind::DuplicateResource) =>
        {
            RuleSet::from_files([&path])
        }
        other => other,
    }
    .unwrap_or_else(|e| panic!("{file} does not load: {e}"))
}

#[test]
fn every_sample_loads_and_decides() {
    let Some(dir) = samples("every_sample_loads_and_decides") else {
        return;
    };
    let checks = checks();
    // Every file in the folder has a check.
    for sub in ["", "legacy-v1alpha2"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path
                    .strip_prefix(&dir)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                assert!(
                    checks.iter().any(|c| c.file == name),
                    "no decision is checked for {name}"
                );
            }
        }
    }
    for c in &checks {
        let rules = load(&dir, c.file);
        let mut req = Request::get(c.uri);
        for (k, v) in c.headers {
            req = req.header(*k, *v);
        }
        let req = req.body(()).unwrap();
        let ctx = (c.ctx)(
            Context::new()
                .with_host(c.target)
                .with_caller(Caller::new()),
        );
        let sampler = (c.sampler)();
        let d = rules.evaluate(&req, &ctx, &*sampler);
        let what = format!("{} for {} {}: {d}", c.file, c.target, c.uri);
        assert_eq!(d.outcome(), c.outcome, "{what}");
        assert_eq!(d.status().map(|s| s.as_u16()), c.status, "{what}");
        if c.outcome == Outcome::Forward {
            let dest = d.destination().expect("a forward has a destination");
            assert_eq!(dest.host(), c.host, "{what}");
            assert_eq!(dest.labels().get("version"), c.version, "{what}");
            assert_eq!(dest.port(), c.port, "{what}");
        }
    }
}

#[test]
fn the_delay_sample_delays_jason_by_seven_seconds() {
    let Some(dir) = samples("the_delay_sample_delays_jason_by_seven_seconds") else {
        return;
    };
    let rules = load(&dir, "virtual-service-ratings-test-delay.yaml");
    let ctx = Context::new().with_host("ratings");
    let jason = Request::get("/")
        .header("end-user", "jason")
        .body(())
        .unwrap();
    let other = Request::get("/").body(()).unwrap();
    assert_eq!(
        rules.evaluate(&jason, &ctx, &NeverSampler).delay(),
        Some(std::time::Duration::from_secs(7))
    );
    assert_eq!(rules.evaluate(&other, &ctx, &NeverSampler).delay(), None);
}
