//! The bad-input catalogue: malformed configurations, each with the error's kind and where it
//! points; and malformed requests, which never panic and get the documented decision.

use http::{HeaderValue, Request};
use tower_mesh::{
    Context, ErrorKind, Limits, LoadOptions, Loader, Outcome, RuleSet, ThreadSampler,
};

const VS_HEAD: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc}\nspec:\n  hosts: [svc]\n  http:\n";
const RR_HEAD: &str = "apiVersion: config.istio.io/v1alpha2\nkind: RouteRule\nmetadata: {name: rr}\nspec:\n  destination: {name: svc}\n";

struct Bad {
    name: &'static str,
    text: String,
    kind: ErrorKind,
    /// The field path the error names (`None`: no path, e.g. a syntax error).
    path: Option<&'static str>,
    /// The line it points at, when the input can tell it.
    line: Option<usize>,
}

fn vs(routes: &str) -> String {
    format!("{VS_HEAD}{routes}")
}

fn rr(rest: &str) -> String {
    format!("{RR_HEAD}{rest}")
}

fn catalogue() -> Vec<Bad> {
    use ErrorKind::*;
    let b = |name, text: String, kind, path, line| Bad {
        name,
        text,
        kind,
        path,
        line,
    };
    vec![
        // Syntax.
        b("unclosed flow mapping", "kind: {a: 1\n".into(), Syntax, None, Some(2)),
        b("tab indentation", "kind: VirtualService\nspec:\n\thosts: []\n".into(), Syntax, None, Some(3)),
        b("unterminated string", "kind: \"VirtualService\n".into(), Syntax, None, Some(1)),
        b("bad JSON", "{\"kind\": \"VirtualService\" \"spec\": {}}".into(), Syntax, None, Some(1)),
        b("missing apiVersion", "{\"kind\": \"VirtualService\", \"metadata\": {\"name\": \"x\"}}".into(), MissingField, Some("apiVersion"), Some(1)),
        b("alias to an unknown anchor", "kind: *nope\n".into(), Syntax, None, Some(1)),
        b("duplicate key", vs("  - route: [{destination: {host: a}}]\n    route: [{destination: {host: b}}]\n"), DuplicateKey, None, Some(8)),
        b("duplicate key in JSON", "{\"kind\": \"A\", \"kind\": \"B\"}".into(), DuplicateKey, None, Some(1)),
        // Limits.
        b("alias bomb", {
            let mut t = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
            for i in 1..10 {
                t.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
            }
            t
        }, Limit, None, None),
        b("deep nesting", format!("kind: {}{}\n", "[".repeat(500), "]".repeat(500)), Limit, None, Some(1)),
        b("nesting over 64 levels", format!("kind: {}{}\n", "[".repeat(70), "]".repeat(70)), Limit, None, Some(1)),
        b("a 17 MB document", format!("kind: VirtualService\nx: \"{}\"\n", "a".repeat(17 << 20)), Limit, None, None),
        b("regex longer than 1024", vs(&format!("  - match: [{{uri: {{regex: \"{}\"}}}}]\n    route: [{{destination: {{host: a}}}}]\n", "a".repeat(1025))), Limit, Some("spec.http[0].match[0].uri.regex"), Some(7)),
        b("regex that compiles too big", vs("  - match: [{uri: {regex: \"\\\\w{1000}{1000}\"}}]\n    route: [{destination: {host: a}}]\n"), Limit, Some("spec.http[0].match[0].uri.regex"), Some(7)),
        // Envelope.
        b("document not a mapping", "- a\n- b\n".into(), WrongType, None, Some(1)),
        b("missing kind", "apiVersion: networking.istio.io/v1\nmetadata: {name: x}\n".into(), MissingField, Some("kind"), Some(1)),
        b("missing name", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {}\nspec: {}\n".into(), MissingField, Some("metadata.name"), Some(3)),
        b("missing spec", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\n".into(), MissingField, Some("spec"), Some(1)),
        b("unknown top-level field", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspecs: {}\n".into(), UnknownField, Some("specs"), Some(4)),
        b("unsupported apiVersion", "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: x}\nspec: {}\n".into(), InvalidValue, Some("apiVersion"), Some(1)),
        b("RouteRule with a networking apiVersion", "apiVersion: networking.istio.io/v1\nkind: RouteRule\nmetadata: {name: x}\nspec: {}\n".into(), InvalidValue, Some("apiVersion"), Some(1)),
        // Unknown fields at each level.
        b("unknown field in spec", format!("{VS_HEAD}  htpp: []\n").replace("  http:\n  htpp", "  htpp"), UnknownField, Some("spec.htpp"), Some(6)),
        b("unknown field in a route", vs("  - rout: []\n"), UnknownField, Some("spec.http[0].rout"), Some(7)),
        b("unknown field in a match", vs("  - match: [{url: {exact: /}}]\n    route: [{destination: {host: a}}]\n"), UnknownField, Some("spec.http[0].match[0].url"), Some(7)),
        b("unknown field in a string match", vs("  - match: [{uri: {exactly: /}}]\n    route: [{destination: {host: a}}]\n"), UnknownField, Some("spec.http[0].match[0].uri.exactly"), Some(7)),
        b("unknown field in a destination", vs("  - route: [{destination: {hots: a}}]\n"), UnknownField, Some("spec.http[0].route[0].destination.hots"), Some(7)),
        b("unknown field in a fault", vs("  - fault: {abort: {httpStatus: 500, precentage: {value: 1}}}\n    route: [{destination: {host: a}}]\n"), UnknownField, Some("spec.http[0].fault.abort.precentage"), Some(7)),
        b("unknown field in a RouteRule", rr("  precedance: 1\n"), UnknownField, Some("spec.precedance"), Some(6)),
        b("unknown field in a DestinationRule subset", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: a\n  subsets: [{name: v1, lables: {}}]\n".into(), UnknownField, Some("spec.subsets[0].lables"), Some(6)),
        // Wrong types.
        b("hosts as a string", VS_HEAD.replace("hosts: [svc]", "hosts: svc"), WrongType, Some("spec.hosts"), Some(5)),
        b("weight as text", vs("  - route: [{destination: {host: a}, weight: heavy}]\n"), WrongType, Some("spec.http[0].route[0].weight"), Some(7)),
        b("percentage value as text", vs("  - fault: {abort: {httpStatus: 500, percentage: {value: half}}}\n    route: [{destination: {host: a}}]\n"), WrongType, Some("spec.http[0].fault.abort.percentage.value"), Some(7)),
        b("label value as a number", vs("  - match: [{sourceLabels: {version: 1}}]\n    route: [{destination: {host: a}}]\n"), WrongType, Some("spec.http[0].match[0].sourceLabels.version"), Some(7)),
        b("port as a negative number", vs("  - route: [{destination: {host: a, port: {number: -1}}}]\n"), InvalidValue, Some("spec.http[0].route[0].destination.port.number"), Some(7)),
        b("route as a mapping", vs("  - route: {destination: {host: a}}\n"), WrongType, Some("spec.http[0].route"), Some(7)),
        b("http entry as a number", vs("  - 5\n"), WrongType, Some("spec.http[0]"), Some(7)),
        b("timeout as a number", vs("  - timeout: 5\n    route: [{destination: {host: a}}]\n"), WrongType, Some("spec.http[0].timeout"), Some(7)),
        b("ignoreUriCase as text", vs("  - match: [{ignoreUriCase: yes}]\n    route: [{destination: {host: a}}]\n"), WrongType, Some("spec.http[0].match[0].ignoreUriCase"), Some(7)),
        b("precedence out of i32 range", rr("  precedence: 99999999999\n"), InvalidValue, Some("spec.precedence"), Some(6)),
        // Out-of-range and invalid values.
        b("percentage above 100", vs("  - fault: {abort: {httpStatus: 500, percentage: {value: 100.5}}}\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].fault.abort.percentage.value"), Some(7)),
        b("negative percentage", vs("  - fault: {delay: {fixedDelay: 1s, percentage: {value: -1}}}\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].fault.delay.percentage.value"), Some(7)),
        b("abort status 199", vs("  - fault: {abort: {httpStatus: 199, percentage: {value: 1}}}\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].fault.abort.httpStatus"), Some(7)),
        b("abort status 600 in a RouteRule", rr("  httpFault: {abort: {percent: 1, httpStatus: 600}}\n"), InvalidValue, Some("spec.httpFault.abort.httpStatus"), Some(6)),
        b("legacy weights adding to 90", rr("  route: [{labels: {v: a}, weight: 40}, {labels: {v: b}, weight: 50}]\n"), InvalidValue, Some("spec.route"), Some(6)),
        b("legacy weight above 100", rr("  route: [{labels: {v: a}, weight: 101}]\n"), InvalidValue, Some("spec.route[0].weight"), Some(6)),
        b("bad regex", vs("  - match: [{headers: {user-agent: {regex: \"(Chrome\"}}}]\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].match[0].headers.user-agent.regex"), Some(7)),
        b("ECMAScript lookbehind", rr("  match: {request: {headers: {cookie: {regex: \"(?<=user=)jason\"}}}}\n"), InvalidValue, Some("spec.match.request.headers.cookie.regex"), Some(6)),
        b("regex * under headers", vs("  - match: [{headers: {x: {regex: \"*\"}}}]\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].match[0].headers.x.regex"), Some(7)),
        b("duration without a unit", vs("  - timeout: \"10\"\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].timeout"), Some(7)),
        b("duration below 1ms", rr("  httpFault: {delay: {percent: 1, fixedDelay: 0.5ms}}\n"), InvalidValue, Some("spec.httpFault.delay.fixedDelay"), Some(6)),
        b("invalid header name", vs("  - match: [{headers: {\"bad header\": {exact: x}}}]\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].match[0].headers.bad header"), Some(7)),
        b("invalid label key", vs("  - match: [{sourceLabels: {\"a b\": x}}]\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].match[0].sourceLabels.a b"), Some(7)),
        b("unknown gRPC status", vs("  - fault: {abort: {grpcStatus: SOMETIMES, percentage: {value: 1}}}\n    route: [{destination: {host: a}}]\n"), InvalidValue, Some("spec.http[0].fault.abort.grpcStatus"), Some(7)),
        // Missing and conflicting fields.
        b("route without destination", vs("  - route: [{weight: 1}]\n"), MissingField, Some("spec.http[0].route[0].destination"), Some(7)),
        b("RouteRule without destination", "apiVersion: config.istio.io/v1alpha2\nkind: RouteRule\nmetadata: {name: rr}\nspec: {precedence: 1}\n".into(), MissingField, Some("spec.destination"), Some(4)),
        b("empty fault", vs("  - fault: {}\n    route: [{destination: {host: a}}]\n"), MissingField, Some("spec.http[0].fault"), Some(7)),
        b("redirect and route", vs("  - redirect: {uri: /x}\n    route: [{destination: {host: a}}]\n"), Conflict, Some("spec.http[0]"), Some(7)),
        b("mirror and mirrors", vs("  - mirror: {host: b}\n    mirrors: [{destination: {host: c}}]\n    route: [{destination: {host: a}}]\n"), Conflict, Some("spec.http[0]"), Some(7)),
        b("name and service", "apiVersion: config.istio.io/v1alpha2\nkind: RouteRule\nmetadata: {name: rr}\nspec:\n  destination: {name: a, service: a.default.svc.cluster.local}\n".into(), Conflict, Some("spec.destination"), Some(5)),
        b("unknown subset", vs("  - route: [{destination: {host: a, subset: v9}}]\n"), UnknownSubset, Some("spec.http[0].route[0].destination.subset"), Some(7)),
        // Gateway API metadata and references.
        b("parentRef namespace with a path", http_route("default", "default/../x"), InvalidValue, Some("spec.parentRefs[0].namespace"), Some(5)),
        b("creationTimestamp offset +99:99", http_route("2024-03-01T10:00:00+99:99", "shop"), InvalidValue, Some("metadata.creationTimestamp"), None),
        b("creationTimestamp on February 31", http_route("2024-02-31T10:00:00Z", "shop"), InvalidValue, Some("metadata.creationTimestamp"), None),
        b("creationTimestamp offset +-1:00", http_route("2024-03-01T10:00:00+-1:00", "shop"), InvalidValue, Some("metadata.creationTimestamp"), None),
    ]
}

/// An HTTPRoute created at `created` (`default`: no timestamp) whose parentRef names
/// namespace `parent_ns`.
fn http_route(created: &str, parent_ns: &str) -> String {
    let created = if created == "default" {
        String::new()
    } else {
        format!(", creationTimestamp: \"{created}\"")
    };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: shop{created}}}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: svc, namespace: \"{parent_ns}\"}}]\n  rules: [{{backendRefs: [{{name: svc, port: 80}}]}}]\n"
    )
}

#[test]
fn every_malformed_configuration_is_reported_where_it_is() {
    let cases = catalogue();
    assert!(cases.len() >= 40, "the catalogue has {} cases", cases.len());
    for case in &cases {
        let err = match RuleSet::from_yaml(&case.text) {
            Ok(_) => panic!("{}: loaded", case.name),
            Err(e) => e,
        };
        assert_eq!(err.kind(), case.kind, "{}: {err}", case.name);
        assert_eq!(err.path(), case.path, "{}: {err}", case.name);
        if case.line.is_some() {
            assert_eq!(err.line(), case.line, "{}: {err}", case.name);
        }
        let text = err.to_string();
        assert!(
            !text.is_empty() && !err.message().is_empty(),
            "{}",
            case.name
        );
        // Messages speak Istio's schema, not Rust's types.
        if case.kind != ErrorKind::Syntax {
            for rust in [
                "i32",
                "u32",
                "i64",
                "u64",
                "f64",
                "struct ",
                "sequence",
                "unit value",
            ] {
                assert!(!text.contains(rust), "{}: says `{rust}`: {text}", case.name);
            }
        }
        if case.path.is_some() {
            assert!(
                text.contains("document 1"),
                "{}: names the document: {text}",
                case.name
            );
        }
    }
    println!(
        "{} malformed configurations rejected with their kind and location",
        cases.len()
    );
}

#[test]
fn non_utf8_files_and_empty_input() {
    let dir = std::env::temp_dir().join(format!("tower-mesh-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("latin1.yaml");
    std::fs::write(&file, b"kind: VirtualService\nmetadata: {name: caf\xe9}\n").unwrap();
    let err = RuleSet::from_files([&file]).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(err.kind(), ErrorKind::Syntax);
    assert!(
        err.to_string()
            .contains("not UTF-8 (invalid byte at offset 41)"),
        "{err}"
    );

    // Empty documents are skipped: an empty input is an empty rule set.
    for text in ["", "---\n", "---\n---\n", "# only a comment\n"] {
        let rules = RuleSet::from_yaml(text).unwrap();
        assert_eq!(rules.table().route_count(), 0, "{text:?}");
    }
}

#[test]
fn the_route_limit_is_enforced() {
    let text = format!(
        "{VS_HEAD}{}",
        "  - route: [{destination: {host: a}}]\n".repeat(11)
    );
    let err = Loader::new()
        .options(LoadOptions::default().with_limits(Limits {
            max_routes: 10,
            ..Limits::default()
        }))
        .text(text)
        .load()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit);
    assert!(err.to_string().contains("more than 10 routes"), "{err}");
}

const RULES: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc}
spec:
  hosts: [svc]
  http:
  - name: tagged
    match:
    - headers: {x-tag: {regex: ".*gold.*"}}
    route: [{destination: {host: svc-gold}}]
  - name: path
    match:
    - uri: {prefix: /caf}
    route: [{destination: {host: svc-cafe}}]
"#;

#[test]
fn malformed_requests_never_panic_and_get_the_documented_decision() {
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let ctx = Context::new().with_host("svc");
    let decide = |req: &Request<()>| rules.evaluate(req, &ctx, &ThreadSampler);

    // A non-UTF-8 header value: `.*` needs valid UTF-8, so `.*gold.*` does not match it.
    let mut req = Request::get("/").body(()).unwrap();
    req.headers_mut()
        .insert("x-tag", HeaderValue::from_bytes(b"\xffgold").unwrap());
    assert_eq!(decide(&req).outcome(), Outcome::NotFound);
    // A 64 KB header value.
    let big = format!("{}gold", "x".repeat(64 * 1024));
    let req = Request::get("/").header("x-tag", big).body(()).unwrap();
    assert_eq!(decide(&req).route_name(), Some("tagged"));
    // 10,000 header lines: joined with `,`.
    let mut req = Request::get("/").body(()).unwrap();
    for i in 0..10_000 {
        req.headers_mut()
            .append("x-tag", HeaderValue::from_str(&format!("v{i}")).unwrap());
    }
    req.headers_mut()
        .append("x-tag", HeaderValue::from_static("gold"));
    assert_eq!(decide(&req).route_name(), Some("tagged"));
    // No authority and no target: nothing covers the request.
    let req = Request::get("/caf").body(()).unwrap();
    assert_eq!(
        rules
            .evaluate(&req, &Context::new(), &ThreadSampler)
            .outcome(),
        Outcome::PassThrough
    );
    // Absolute-form URI: its authority is the host.
    let req = Request::get("http://SVC:8080/caf?x=1").body(()).unwrap();
    assert_eq!(
        rules
            .evaluate(&req, &Context::new(), &ThreadSampler)
            .route_name(),
        Some("path")
    );
    // Percent-encoded paths are matched raw (no decoding), as Envoy matches them.
    let req = Request::get("/c%61f").body(()).unwrap();
    assert_eq!(decide(&req).outcome(), Outcome::NotFound);
    // An asterisk-form request and CONNECT with an authority.
    let req = Request::options("*").body(()).unwrap();
    assert_eq!(decide(&req).outcome(), Outcome::NotFound);
    let req = Request::connect("svc:443").body(()).unwrap();
    assert_eq!(
        rules
            .evaluate(&req, &Context::new(), &ThreadSampler)
            .outcome(),
        Outcome::NotFound
    );
    // Explanations of all of them are printable.
    let _ = rules.explain(&req, &ctx, &ThreadSampler).to_string();
}

/// Two resources of one kind, namespace and name: an error naming both, in whichever order
/// they come, and the mistakes of each are reported too (neither hides the other's).
#[test]
fn a_resource_defined_twice_hides_neither_ones_mistakes() {
    let broken = vs("  - route: [{destination: {host: svc}, weight: -1}]\n");
    let fine = vs("  - route: [{destination: {host: svc}}]\n");
    for (first, second, broken_doc) in [(&broken, &fine, 1), (&fine, &broken, 2)] {
        let err = RuleSet::from_yaml(&format!("{first}---\n{second}")).unwrap_err();
        let errors: Vec<_> = err.errors().collect();
        assert_eq!(errors.len(), 2, "{err}");
        let duplicate = errors
            .iter()
            .find(|e| e.kind() == ErrorKind::DuplicateResource)
            .unwrap_or_else(|| panic!("no duplicate error: {err}"));
        assert_eq!(duplicate.document().unwrap().index, 2, "{err}");
        assert!(
            duplicate
                .message()
                .contains("VirtualService default/svc is defined again: first in document 1"),
            "{err}"
        );
        let weight = errors
            .iter()
            .find(|e| e.kind() == ErrorKind::InvalidValue)
            .unwrap_or_else(|| panic!("the broken document's error is missing: {err}"));
        assert_eq!(weight.document().unwrap().index, broken_doc, "{err}");
    }
}
