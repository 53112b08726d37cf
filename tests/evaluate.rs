//! Evaluation as an application's own tests use it: load files, ask for decisions, read
//! explanations; deterministic with injected samplers. Uses only the fixtures in this crate.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::virtual_service;
use http::Request;
use tower_mesh::{
    AlwaysSampler, Context, ErrorKind, NeverSampler, Outcome, RuleSet, Sampler, ScriptedSampler,
    SeededSampler, ThreadSampler, Verdict,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.77 Safari/537.36";

fn get(ua: Option<&str>) -> Request<()> {
    let mut b = Request::get("/");
    if let Some(ua) = ua {
        b = b.header("user-agent", ua);
    }
    b.body(()).unwrap()
}

fn helloworld() -> Context {
    Context::new().with_host("helloworld-service")
}

#[test]
fn walkthrough_rules_from_files() {
    let rules =
        RuleSet::from_files([fixture("route-to-v2.yaml"), fixture("fault-503.yaml")]).unwrap();
    assert!(rules.warnings().is_empty(), "{:?}", rules.warnings());
    let chrome = rules.evaluate(&get(Some(CHROME)), &helloworld(), &ThreadSampler);
    assert_eq!(chrome.outcome(), Outcome::Forward);
    assert_eq!(
        chrome.destination().unwrap().labels().get("version"),
        Some("v2")
    );
    let curl = rules.evaluate(&get(Some("curl/8.4.0")), &helloworld(), &ThreadSampler);
    assert_eq!(curl.outcome(), Outcome::Abort);
    assert_eq!(curl.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(curl.rule(), Some("helloworld-service-503"));
    assert_eq!(rules.files().len(), 2);
}

#[test]
fn explain_the_chrome_request() {
    let rules =
        RuleSet::from_files([fixture("route-to-v2.yaml"), fixture("fault-503.yaml")]).unwrap();
    let explanation = rules.explain(&get(Some(CHROME)), &helloworld(), &NeverSampler);
    let text = explanation.to_string();
    println!("{text}");
    let lines = explanation.lines();
    let matched: Vec<&str> = lines
        .iter()
        .filter(|l| l.verdict == Verdict::Matched)
        .map(|l| l.text.as_str())
        .collect();
    assert!(
        matched
            .iter()
            .any(|t| t.starts_with("header user-agent regex \".*Chrome.*\" on \"Mozilla/5.0")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.verdict == Verdict::Skipped && l.text.contains("helloworld-service-503")),
        "the 503 rule is reported as not reached: {text}"
    );
    assert!(text.ends_with("decision: forward to helloworld-service {version=v2} (by RouteRule default/helloworld-service)"), "{text}");
    assert_eq!(explanation.decision().outcome(), Outcome::Forward);
}

#[test]
fn explain_says_why_a_condition_failed() {
    let rules =
        RuleSet::from_files([fixture("route-to-v2.yaml"), fixture("fault-503.yaml")]).unwrap();
    let text = rules
        .explain(&get(None), &helloworld(), &NeverSampler)
        .to_string();
    assert!(
        text.contains("[no match] header user-agent regex \".*Chrome.*\" on (absent)"),
        "{text}"
    );
    assert!(
        text.contains(
            "[match] RouteRule default/helloworld-service-503 (precedence 1): no conditions"
        ),
        "{text}"
    );
    assert!(
        text.contains("abort fault for 100% of requests: fires without a draw"),
        "{text}"
    );
}

#[test]
fn explain_shows_the_draws() {
    let rules = RuleSet::from_yaml(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - fault:
      delay: {fixedDelay: 2s, percentage: {value: 50}}
      abort: {httpStatus: 503, percentage: {value: 10}}
    route:
    - {destination: {host: reviews}, weight: 80}
    - {destination: {host: reviews-canary}, weight: 20}
"#,
    )
    .unwrap();
    // Draws in order: the delay (parts per million), the abort, then the weight.
    let sampler = ScriptedSampler::new([499_999, 100_000, 85]);
    let ctx = Context::new().with_host("reviews");
    let text = rules.explain(&get(None), &ctx, &sampler).to_string();
    assert!(
        text.contains(
            "delay (2s) fault for 50% of requests: drew 499999 of 1000000, below 500000: fires"
        ),
        "{text}"
    );
    assert!(
        text.contains("abort fault for 10% of requests: drew 100000 of 1000000, not below 100000: does not fire"),
        "{text}"
    );
    assert!(
        text.contains("weighted choice: drew 85 of 100; cumulative weights: reviews [0, 80), reviews-canary [80, 100); 85 falls in the range of reviews-canary"),
        "{text}"
    );
}

#[test]
fn shop_fixtures_route_delay_and_split() {
    let rules = RuleSet::from_files([
        fixture("shop-destination-rules.yaml"),
        fixture("shop-virtual-service.yaml"),
    ])
    .unwrap();
    let ctx = Context::new().with_host("cart.shop.svc.cluster.local");
    let beta = Request::get("/items")
        .header("x-beta", "yes")
        .body(())
        .unwrap();
    let d = rules.evaluate(&beta, &ctx, &ThreadSampler);
    assert_eq!(d.route_name(), Some("beta-testers"));
    assert_eq!(d.destination().unwrap().subset(), Some("canary"));
    assert_eq!(
        d.destination().unwrap().labels().get("track"),
        Some("canary")
    );

    let old = Request::get("/v1/items").body(()).unwrap();
    let d = rules.evaluate(&old, &ctx, &ThreadSampler);
    assert_eq!(d.delay(), Some(Duration::from_millis(250)));
    assert_eq!(d.destination().unwrap().subset(), Some("legacy"));

    // The 95/5 split, picked by a scripted sampler: a pick below 95 is stable.
    let plain = Request::get("/items").body(()).unwrap();
    let picks = ScriptedSampler::new([0, 94, 95, 99]);
    let subsets: Vec<_> = (0..4)
        .map(|_| {
            rules
                .evaluate(&plain, &ctx, &picks)
                .destination()
                .unwrap()
                .subset()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(subsets, ["stable", "stable", "canary", "canary"]);
}

#[test]
fn seeded_samplers_repeat_and_split_within_five_sigma() {
    let rules = RuleSet::from_files([
        fixture("shop-destination-rules.yaml"),
        fixture("shop-virtual-service.yaml"),
    ])
    .unwrap();
    let ctx = Context::new().with_host("cart.shop");
    let req = Request::get("/").body(()).unwrap();
    let run = |s: &dyn Sampler| -> Vec<bool> {
        (0..10_000)
            .map(|_| {
                rules
                    .evaluate(&req, &ctx, s)
                    .destination()
                    .unwrap()
                    .subset()
                    == Some("canary")
            })
            .collect()
    };
    let a = run(&SeededSampler::new(7));
    let b = run(&SeededSampler::new(7));
    assert_eq!(a, b, "the same seed gives the same decisions");
    let n = a.len() as f64;
    let share = a.iter().filter(|x| **x).count() as f64 / n;
    let sigma = (0.05 * 0.95 / n).sqrt();
    assert!((share - 0.05).abs() <= 5.0 * sigma, "canary share {share}");
}

#[test]
fn always_and_never_samplers() {
    let rules = RuleSet::from_yaml(&virtual_service(
        "ratings",
        r#"
  - fault:
      abort: {httpStatus: 503, percentage: {value: 1}}
      delay: {fixedDelay: 1s, percentage: {value: 100}}
    route: [{destination: {host: ratings}}]
"#,
    ))
    .unwrap();
    let ctx = Context::new().with_host("ratings");
    let req = Request::get("/").body(()).unwrap();
    let always = rules.evaluate(&req, &ctx, &AlwaysSampler);
    assert_eq!(always.outcome(), Outcome::Abort);
    let never = rules.evaluate(&req, &ctx, &NeverSampler);
    assert_eq!(never.outcome(), Outcome::Forward);
    assert_eq!(
        never.delay(),
        Some(Duration::from_secs(1)),
        "a 100% delay fires whatever the sampler"
    );
}

#[test]
fn a_malformed_file_names_file_document_line_path_and_value() {
    let dir = std::env::temp_dir().join(format!("tower-mesh-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - match:\n    - headers:\n        user-agent:\n          regex: \"(Chrome\"\n    route:\n    - destination: {host: reviews}\n",
    )
    .unwrap();
    let err = RuleSet::from_files([&file]).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(err.kind(), ErrorKind::InvalidValue);
    assert_eq!(
        err.path(),
        Some("spec.http[0].match[0].headers.user-agent.regex")
    );
    assert_eq!(err.value(), Some("(Chrome"));
    assert_eq!(err.line(), Some(15));
    let doc = err.document().unwrap();
    assert_eq!(
        (doc.index, doc.kind.as_deref(), doc.name.as_deref()),
        (2, Some("VirtualService"), Some("reviews"))
    );
    let text = err.to_string();
    println!("{text}");
    assert!(text.starts_with(&format!("{}: document 2 (VirtualService reviews), line 15, column 18: spec.http[0].match[0].headers.user-agent.regex: invalid value: `(Chrome` is not a valid regex", file.display())), "{text}");
}

#[test]
fn a_missing_file_is_an_io_error() {
    let err = RuleSet::from_files(["/nonexistent/rules.yaml"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("/nonexistent/rules.yaml"), "{err}");
}

#[test]
fn reload_reads_the_files_again() {
    let dir = std::env::temp_dir().join(format!("tower-mesh-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yaml");
    std::fs::copy(fixture("route-to-v2.yaml"), &file).unwrap();
    let rules = RuleSet::from_files([&file]).unwrap();
    let curl = get(Some("curl/8"));
    assert_eq!(
        rules
            .evaluate(&curl, &helloworld(), &NeverSampler)
            .outcome(),
        Outcome::Forward
    );
    std::fs::copy(fixture("fault-503.yaml"), &file).unwrap();
    let reloaded = rules.reload().unwrap();
    std::fs::write(&file, "kind: [").unwrap();
    let failed = reloaded.reload();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        reloaded
            .evaluate(&curl, &helloworld(), &NeverSampler)
            .outcome(),
        Outcome::Abort
    );
    assert_eq!(failed.unwrap_err().kind(), ErrorKind::Syntax);
}

#[test]
fn requests_never_make_evaluation_panic() {
    let rules = RuleSet::from_files([
        fixture("shop-destination-rules.yaml"),
        fixture("shop-virtual-service.yaml"),
    ])
    .unwrap();
    let mut req = Request::get("http://[::1]:99999/%ff%00?x=%zz&&=&")
        .body(())
        .unwrap();
    req.headers_mut().insert(
        "x-beta",
        http::HeaderValue::from_bytes(b"\xffyes\x80").unwrap(),
    );
    for _ in 0..3 {
        req.headers_mut()
            .append("x-beta", http::HeaderValue::from_static("yes"));
    }
    let d = rules.evaluate(&req, &Context::new(), &ThreadSampler);
    assert_eq!(d.outcome(), Outcome::PassThrough, "{d}");
    let d = rules.evaluate(&req, &Context::new().with_host("cart.shop"), &ThreadSampler);
    assert_eq!(d.outcome(), Outcome::Forward, "{d}");
    let _ = rules
        .explain(&req, &Context::new().with_host("cart.shop"), &ThreadSampler)
        .to_string();
}

/// A VirtualService for `apps` with one route per app, each matching the user agent with
/// `regex(i)`, and a last route without a match.
fn regex_routes(n: usize, regex: impl Fn(usize) -> String) -> RuleSet {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: apps}\nspec:\n  hosts: [apps]\n  http:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: r{i}\n    match: [{{headers: {{user-agent: {{regex: '{}'}}}}}}]\n    route: [{{destination: {{host: app-{i}}}}}]\n",
            regex(i)
        ));
    }
    yaml.push_str("  - name: rest\n    route: [{destination: {host: rest}}]\n");
    RuleSet::from_yaml(&yaml).unwrap()
}

/// Many routes whose regexes differ only inside (so that no prefix or suffix tells them
/// apart): with a literal inside each, and without (case-insensitive), every route still gets
/// its own requests, the first route that matches wins, and the rest get the last route.
#[test]
fn many_regex_routes_each_get_their_requests() {
    let ctx = Context::new().with_host("apps");
    // App `i` is named by two letters, so that the case-insensitive regexes hold no literal
    // longer than one byte.
    let app = |i: usize| {
        format!(
            "{}{}",
            (b'a' + (i / 26) as u8) as char,
            (b'a' + (i % 26) as u8) as char
        )
    };
    let with_literal = regex_routes(60, |i| {
        format!(r".*\[app-{}\].*(iOS|Android)/[0-9]+.*", app(i))
    });
    let without = regex_routes(60, |i| {
        format!(
            r"(?i).*\[APP-{}\].*(ios|android)/[0-9]+.*",
            app(i).to_uppercase()
        )
    });
    for rules in [&with_literal, &without] {
        for i in [0, 1, 7, 30, 59] {
            let ua = format!("Mozilla/5.0 [app-{}] Android/14 Mobile", app(i));
            let name = rules.evaluate(&get(Some(&ua)), &ctx, &NeverSampler);
            assert_eq!(name.route_name(), Some(format!("r{i}").as_str()), "{ua}");
        }
        // Two apps in one agent: the earlier route wins, whichever comes first in the value.
        let ua = format!("Mozilla/5.0 [app-{}] [app-{}] iOS/17", app(42), app(12));
        let name = rules.evaluate(&get(Some(&ua)), &ctx, &NeverSampler);
        assert_eq!(name.route_name(), Some("r12"));
        let other = format!("Mozilla/5.0 [app-{}] Windows", app(7));
        for ua in [Some(other.as_str()), Some("curl/8.4.0"), None] {
            let name = rules.evaluate(&get(ua), &ctx, &NeverSampler);
            assert_eq!(name.route_name(), Some("rest"), "{ua:?}");
        }
    }
}

#[test]
fn two_namespaces_gateways_of_one_name_do_not_hide_each_others_virtual_service() {
    // `a/gw` and `b/gw` are two gateways: both VirtualServices apply, each on its own gateway,
    // and no warning says one is ignored.
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: one, namespace: a}\nspec:\n  hosts: [shop.example.com]\n  gateways: [a/gw]\n  http: [{name: via-a, route: [{destination: {host: svc-a}}]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: two, namespace: b}\nspec:\n  hosts: [shop.example.com]\n  gateways: [b/gw]\n  http: [{name: via-b, route: [{destination: {host: svc-b}}]}]\n";
    let rules = tower_mesh::RuleSet::from_yaml(text).unwrap();
    assert!(
        rules
            .warnings()
            .iter()
            .all(|w| !w.to_string().contains("is ignored")),
        "{:?}",
        rules.warnings()
    );
    let req = http::Request::get("/").body(()).unwrap();
    for (gateway, route) in [("b/gw", "via-b"), ("a/gw", "via-a")] {
        let ctx = tower_mesh::Context::new()
            .with_host("shop.example.com")
            .with_gateway(gateway);
        let decision = rules.evaluate(&req, &ctx, &tower_mesh::NeverSampler);
        assert_eq!(decision.route_name(), Some(route), "{gateway}");
    }
}
