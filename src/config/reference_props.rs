//! The property test behind the reference evaluator: generated VirtualServices, loaded as a
//! user loads them, decide every generated request exactly as the reference evaluator in
//! `model::reference` (a plain scan with the regex engine) does.

use proptest::prelude::*;

use crate::config::RuleSet;
use crate::model::reference::{decided, reference_route};
use crate::model::{Context, Sampler};
use http::Request;

/// Draws the same numbers, whoever asks.
struct Replay(std::sync::atomic::AtomicU32);

impl Sampler for Replay {
    fn roll_ppm(&self) -> u32 {
        self.0.fetch_add(7919, std::sync::atomic::Ordering::Relaxed) % crate::model::PPM
    }
    fn pick(&self, total: u32) -> u32 {
        self.0
            .fetch_add(104_729, std::sync::atomic::Ordering::Relaxed)
            % total.max(1)
    }
}

const HEADER_NAMES: [&str; 3] = ["x-a", "x-b", "x-c"];
const VALUES: [&str; 8] = [
    "foo",
    "foobar",
    "barfoo",
    "tenant-12-3",
    "tenant-3",
    "FOO",
    "",
    "x,y",
];
const PATTERNS: [&str; 12] = [
    ".*foo.*",
    "foo.*",
    ".*foo",
    "f[o]+",
    "tenant-[0-9]+-3",
    "tenant-.*",
    "(?i)foo",
    "x,y",
    ".*",
    ".*(foo|bar)",
    "[a-z]+-[0-9]+-3",
    "(.*,)?y",
];
const PATHS: [&str; 5] = ["/", "/api", "/api/v1", "/API/v1", "/other"];
const QUERY_NAMES: [&str; 2] = ["q", "r"];
const QUERIES: [&str; 7] = [
    "",
    "?q=foo",
    "?q=foo&q=bar",
    "?r=1&q=tenant-3",
    "?q",
    "?r=foobar&x",
    "?q=&r=FOO",
];

fn string_match() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..VALUES.len()).prop_map(|i| format!("{{exact: \"{}\"}}", VALUES[i])),
        (0..VALUES.len() - 2)
            .prop_map(|i| format!("{{prefix: \"{}\"}}", &VALUES[i][..VALUES[i].len().min(3)])),
        (0..PATTERNS.len()).prop_map(|i| format!("{{regex: \"{}\"}}", PATTERNS[i])),
        Just("{}".to_string()),
    ]
}

fn match_entry() -> impl Strategy<Value = String> {
    (
        prop::collection::btree_map(0..HEADER_NAMES.len(), string_match(), 0..3),
        prop::option::of((0..PATHS.len(), any::<bool>(), any::<bool>())),
        prop::option::of((0..HEADER_NAMES.len(), 0..VALUES.len())),
        prop::option::of(any::<bool>()),
        prop::collection::btree_map(0..QUERY_NAMES.len(), string_match(), 0..2),
    )
        .prop_map(|(headers, uri, without, source, query)| {
            let mut parts = Vec::new();
            if !headers.is_empty() {
                let h: Vec<String> = headers
                    .iter()
                    .map(|(n, m)| format!("{}: {m}", HEADER_NAMES[*n]))
                    .collect();
                parts.push(format!("headers: {{{}}}", h.join(", ")));
            }
            if let Some((p, exact, ignore)) = uri {
                let kind = if exact { "exact" } else { "prefix" };
                parts.push(format!(
                    "uri: {{{kind}: \"{}\"}}, ignoreUriCase: {ignore}",
                    PATHS[p]
                ));
            }
            if let Some((n, v)) = without {
                parts.push(format!(
                    "withoutHeaders: {{{}: {{exact: \"{}\"}}}}",
                    HEADER_NAMES[n], VALUES[v]
                ));
            }
            if !query.is_empty() {
                let q: Vec<String> = query
                    .iter()
                    .map(|(n, m)| format!("{}: {m}", QUERY_NAMES[*n]))
                    .collect();
                parts.push(format!("queryParams: {{{}}}", q.join(", ")));
            }
            if let Some(labelled) = source {
                let app = if labelled { "productpage" } else { "other" };
                parts.push(format!("sourceLabels: {{app: {app}}}"));
            }
            format!("{{{}}}", parts.join(", "))
        })
}

fn virtual_service() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::collection::vec(match_entry(), 0..3), 1..24).prop_map(|routes| {
        let mut yaml = String::from(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc}\nspec:\n  hosts: [svc]\n  http:\n",
        );
        for (i, entries) in routes.iter().enumerate() {
            yaml.push_str(&format!("  - name: r{i}\n"));
            if !entries.is_empty() {
                yaml.push_str(&format!("    match: [{}]\n", entries.join(", ")));
            }
            yaml.push_str(&format!(
                "    route:\n    - {{destination: {{host: a{i}}}, weight: 1}}\n    - {{destination: {{host: b{i}}}, weight: 3}}\n"
            ));
            if i % 3 == 0 {
                yaml.push_str("    fault: {abort: {httpStatus: 503, percentage: {value: 50}}, delay: {fixedDelay: 1s, percentage: {value: 25}}}\n");
            }
        }
        yaml
    })
}

fn request() -> impl Strategy<Value = (Request<()>, Context)> {
    (
        prop::collection::vec((0..HEADER_NAMES.len(), 0..VALUES.len()), 0..4),
        0..PATHS.len(),
        0..QUERIES.len(),
        any::<bool>(),
    )
        .prop_map(|(headers, path, query, productpage)| {
            let mut b = Request::get(format!("{}{}", PATHS[path], QUERIES[query]));
            for (n, v) in headers {
                b = b.header(HEADER_NAMES[n], VALUES[v]);
            }
            let mut ctx = Context::new().with_host("svc");
            if productpage {
                ctx = ctx
                    .with_caller(crate::model::Caller::new().with_labels([("app", "productpage")]));
            }
            (b.body(()).expect("a valid request"), ctx)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    /// The real evaluator (index, literal shortcuts) decides exactly as the reference does,
    /// every decision field equal under the same sampler.
    #[test]
    fn the_evaluator_agrees_with_the_reference(yaml in virtual_service(), reqs in prop::collection::vec(request(), 1..4)) {
        let rules = RuleSet::from_yaml(&yaml).expect("generated rules load");
        for (req, ctx) in &reqs {
            let seed = (req.headers().len() * 31 + req.uri().path().len()) as u32;
            let decision = rules.evaluate(req, ctx, &Replay(seed.into()));
            let expected = reference_route(rules.table(), req, ctx);
            prop_assert_eq!(decided(&decision), expected, "{}\n{:?}", yaml, req);
            // With the same route, the same draws give the same decision in every field.
            let again = rules.explain(req, ctx, &Replay(seed.into()));
            prop_assert_eq!(decision.to_string(), again.decision().to_string());
            prop_assert_eq!(decision.status(), again.decision().status());
            prop_assert_eq!(decision.delay(), again.decision().delay());
            prop_assert_eq!(decision.destination(), again.decision().destination());
        }
    }
}
