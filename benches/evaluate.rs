//! Evaluation cost: the walkthrough's rules, generated rule sets from 1 to 10,000 routes,
//! generated Gateway API routes competing for one Service, and bookinfo's reviews rules. Run with `cargo bench -p tower-mesh-benches --bench evaluate`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower_mesh::{Context, NeverSampler, RuleSet};

mod common;
use common::{generated_rules, tenant_value};

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.77 Safari/537.36";

const WALKTHROUGH: &str = concat!(
    include_str!("../examples/config/route-to-v2.yaml"),
    "---\n",
    include_str!("../examples/config/fault-503.yaml")
);

const BOOKINFO_REVIEWS: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
"#;

fn bench(c: &mut Criterion) {
    let seed = RuleSet::from_yaml(WALKTHROUGH).unwrap();
    let ctx = Context::new().with_host("helloworld-service");
    for (id, ua) in [("chrome", CHROME), ("curl", "curl/8.4.0")] {
        let req = Request::get("/").header("user-agent", ua).body(()).unwrap();
        c.bench_function(&format!("evaluate/seed/{id}"), |b| {
            b.iter(|| black_box(seed.evaluate(black_box(&req), &ctx, &NeverSampler)))
        });
    }

    let ctx = Context::new().with_host("tenants");
    for n in [1usize, 10, 100, 1000, 10_000] {
        let rules = RuleSet::from_yaml(&generated_rules(n)).unwrap();
        bench_cases(c, "rules", n, &rules, &ctx, tenant_cases(n));
    }

    gateway_routes(c);
    regex_routes(c);

    let bookinfo = RuleSet::from_yaml(BOOKINFO_REVIEWS).unwrap();
    let ctx = Context::new().with_host("reviews");
    let req = Request::get("/reviews/0")
        .header("end-user", "jason")
        .body(())
        .unwrap();
    c.bench_function("evaluate/bookinfo/jason", |b| {
        b.iter(|| black_box(bookinfo.evaluate(black_box(&req), &ctx, &NeverSampler)))
    });
}

/// `n` HTTPRoutes attached to one Service, one rule each (a path prefix and a header), named so
/// that the Gateway API's precedence tries them in number order.
fn generated_gateway_routes(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{i:05}}}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: tenants}}]\n  rules:\n  - name: r{i}\n    matches: [{{path: {{type: PathPrefix, value: /api}}, headers: [{{name: x-tenant, value: \"{}\"}}]}}]\n    backendRefs: [{{name: t{i}, port: 80}}]\n",
                tenant_value(i)
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// `evaluate/gateway/{n}/{first,last,none}`: the entry first and last in precedence order, and
/// a request no entry takes (a 404).
fn gateway_routes(c: &mut Criterion) {
    let ctx = Context::new().with_host("tenants");
    for n in [1usize, 100, 1000] {
        let rules = RuleSet::from_yaml(&generated_gateway_routes(n)).unwrap();
        bench_cases(c, "gateway", n, &rules, &ctx, tenant_cases(n));
    }
}

/// A request with an `x-tenant` header, and the route it must get.
type Case = (&'static str, Request<()>, Option<String>);

/// The tenants' cases: the first and the last tenant of `n`, and one no route takes.
fn tenant_cases(n: usize) -> Vec<Case> {
    let req = |value: String| {
        Request::get("/api/items")
            .header("x-tenant", value)
            .body(())
            .unwrap()
    };
    vec![
        ("first", req(tenant_value(0)), Some("r0".to_string())),
        (
            "last",
            req(tenant_value(n - 1)),
            Some(format!("r{}", n - 1)),
        ),
        ("none", req("nobody".to_string()), None),
    ]
}

/// Benches `evaluate/{group}/{n}/{case}` for each case, once its request is seen to get the
/// route the case names.
fn bench_cases(
    c: &mut Criterion,
    group: &str,
    n: usize,
    rules: &RuleSet,
    ctx: &Context,
    cases: Vec<Case>,
) {
    for (case, req, expected) in cases {
        let decision = rules.evaluate(&req, ctx, &NeverSampler);
        assert_eq!(
            decision.route_name().map(str::to_string),
            expected,
            "{group}/{n}/{case}"
        );
        c.bench_function(&format!("evaluate/{group}/{n}/{case}"), |b| {
            b.iter(|| black_box(rules.evaluate(black_box(&req), ctx, &NeverSampler)))
        });
    }
}

/// A VirtualService with `n` routes, each matching `user-agent` with a regex that no literal
/// comparison can decide: `.*` between literals, a character class and an alternation.
fn generated_regex_rules(n: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: apps}\nspec:\n  hosts: [apps]\n  http:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: r{i}\n    match:\n    - headers: {{user-agent: {{regex: '.*\\[app-{i}\\].*(iOS|Android)/[0-9]+(\\.[0-9]+)*.*'}}}}\n    route:\n    - destination: {{host: app-{i}}}\n"
        ));
    }
    yaml
}

/// `evaluate/regex/{n}/{first,last,none}`: the first and the last route's user agent, and one
/// that no route takes.
fn regex_routes(c: &mut Criterion) {
    let ctx = Context::new().with_host("apps");
    let req = |app: &str| {
        Request::get("/")
            .header(
                "user-agent",
                format!("Mozilla/5.0 (Linux; U) [app-{app}] Android/14.1 Mobile Safari/537.36"),
            )
            .body(())
            .unwrap()
    };
    for n in [10usize, 100, 1000] {
        let rules = RuleSet::from_yaml(&generated_regex_rules(n)).unwrap();
        let last = (n - 1).to_string();
        let cases = vec![
            ("first", req("0"), Some("r0".to_string())),
            ("last", req(&last), Some(format!("r{last}"))),
            ("none", req("none"), None),
        ];
        bench_cases(c, "regex", n, &rules, &ctx, cases);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
