//! What a team sees when its rules do not load: every mistake at once, each where it is, in
//! the words of Istio's schema, with a suggestion when a name is close; and warnings that name
//! every document involved.

use std::path::PathBuf;

use tower_mesh::{ErrorKind, Limits, LoadOptions, Loader, RuleSet};

fn vs(name: &str, http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n  hosts: [{name}]\n  http:\n{http}"
    )
}

/// A directory of its own for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("tower-mesh-diag-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_mistake_of_a_load_is_reported_in_input_order() {
    let text = [
        vs(
            "reviews",
            "  - timeout: 5\n    route: [{destination: {host: reviews}}]\n  - route: [{destination: {host: reviews}, wieght: 10}]\n  - route: [{destination: {host: reviews}}]\n",
        ),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec: {hots: reviews}\n".to_string(),
        vs("ratings", "  - fault: {abort: {httpStatus: 700, percentage: {value: 1}}}\n    route: [{destination: {host: ratings}}]\n"),
    ]
    .join("---\n");
    let err = RuleSet::from_yaml(&text).unwrap_err();
    let found: Vec<(usize, Option<&str>, ErrorKind)> = err
        .errors()
        .map(|e| (e.document().unwrap().index, e.path(), e.kind()))
        .collect();
    assert_eq!(
        found,
        [
            (1, Some("spec.http[0].timeout"), ErrorKind::WrongType),
            (
                1,
                Some("spec.http[1].route[0].wieght"),
                ErrorKind::UnknownField
            ),
            (2, Some("spec.hots"), ErrorKind::UnknownField),
            (
                3,
                Some("spec.http[0].fault.abort.httpStatus"),
                ErrorKind::InvalidValue
            ),
        ],
        "{err}"
    );
    // The error itself describes the first; its text has a line for each.
    assert_eq!(err.path(), Some("spec.http[0].timeout"));
    let printed = err.to_string();
    assert_eq!(printed.lines().count(), 4, "{printed}");
    assert!(
        printed
            .lines()
            .nth(2)
            .unwrap()
            .contains("did you mean `host`?"),
        "{printed}"
    );
    assert!(!err.is_truncated());
}

#[test]
fn errors_stop_at_the_documented_limit() {
    let routes: String = (0..150)
        .map(|i| format!("  - route: [{{destination: {{host: reviews}}, weight: -{i}}}]\n"))
        .collect();
    let text = vs("reviews", &routes);
    let err = RuleSet::from_yaml(&text).unwrap_err();
    assert_eq!(Limits::default().max_errors, 100);
    assert_eq!(err.errors().count(), 100);
    assert!(err.is_truncated());
    assert!(
        err.to_string()
            .ends_with("(stopped after this many errors: Limits::max_errors)")
    );
    let options = LoadOptions::default().with_limits(Limits {
        max_errors: 3,
        ..Limits::default()
    });
    let err = Loader::new()
        .options(options)
        .text(text)
        .load()
        .unwrap_err();
    assert_eq!(err.errors().count(), 3);
}

#[test]
fn a_limit_ends_the_list() {
    let options = LoadOptions::default().with_limits(Limits {
        max_regex_len: 8,
        ..Limits::default()
    });
    let text = vs(
        "reviews",
        "  - match: [{uri: {regex: \"/aaaaaaaaaaaa\"}}]\n    route: [{destination: {host: reviews}}]\n  - route: [{destination: {host: reviews}, weight: -1}]\n",
    );
    let err = Loader::new()
        .options(options)
        .text(text)
        .load()
        .unwrap_err();
    let kinds: Vec<ErrorKind> = err.errors().map(|e| e.kind()).collect();
    assert_eq!(kinds, [ErrorKind::Limit]);
}

#[test]
fn a_broken_destination_rule_does_not_make_its_subsets_unknown() {
    let text = [
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reviews\n  subsets: [{name: v1, lables: {version: v1}}]\n".to_string(),
        vs("reviews", "  - route: [{destination: {host: reviews, subset: v1}}]\n"),
    ]
    .join("---\n");
    let err = RuleSet::from_yaml(&text).unwrap_err();
    let paths: Vec<_> = err.errors().map(|e| e.path()).collect();
    assert_eq!(paths, [Some("spec.subsets[0].lables")], "{err}");
    assert!(err.message().contains("did you mean `labels`?"), "{err}");
}

#[test]
fn each_file_reports_its_own_mistakes() {
    let dir = Dir::new("files");
    let a = dir.file(
        "a.yaml",
        &vs("a", "  - route: [{destination: {host: a}, weight: -1}]\n"),
    );
    let b = dir.file("b.yaml", "kind: [unclosed\n");
    let missing = dir.0.join("missing.yaml");
    let c = dir.file(
        "c.yaml",
        &vs("c", "  - route: [{destination: {host: \"*\"}}]\n"),
    );
    let err = Loader::new()
        .file(&a)
        .file(&b)
        .file(&missing)
        .file(&c)
        .load()
        .unwrap_err();
    let found: Vec<(PathBuf, ErrorKind)> = err
        .errors()
        .map(|e| (e.document().unwrap().file.clone().unwrap(), e.kind()))
        .collect();
    assert_eq!(
        found,
        [
            (a, ErrorKind::InvalidValue),
            (b, ErrorKind::Syntax),
            (missing, ErrorKind::Io),
            (c, ErrorKind::InvalidValue),
        ],
        "{err}"
    );
}

#[test]
fn two_destination_rules_for_one_host_are_both_named() {
    let dir = Dir::new("two-drs");
    let dr = |name: &str, subset: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  host: reviews\n  subsets: [{{name: {subset}, labels: {{version: {subset}}}}}]\n"
        )
    };
    let first = dir.file("first.yaml", &dr("reviews-a", "v1"));
    let second = dir.file(
        "second.yaml",
        &format!(
            "{}---\n{}",
            vs("x", "  - route: [{destination: {host: x}}]\n"),
            // Another exportTo: not merged with the first.
            dr("reviews-b", "v2")
                .replace("  host: reviews\n", "  host: reviews\n  exportTo: [.]\n")
        ),
    );
    let rules = Loader::new().file(&first).file(&second).load().unwrap();
    let warning = rules
        .warnings()
        .iter()
        .find(|w| w.message().contains("have different exportTo"))
        .expect("a warning about the two DestinationRules");
    let text = warning.to_string();
    assert!(
        text.contains(&format!(
            "({}: document 1 (DestinationRule shop/reviews-a) and {}: document 2 (DestinationRule shop/reviews-b)), so Istio does not merge them",
            first.display(),
            second.display()
        )),
        "{text}"
    );
    assert_eq!(warning.document().file.as_deref(), Some(second.as_path()));
}

#[test]
fn a_failed_load_keeps_the_warnings_it_found() {
    let text = [
        vs(
            "reviews",
            "  - route: [{destination: {host: reviews}}]\n    mirrorPercent: 50\n",
        ),
        vs(
            "ratings",
            "  - route: [{destination: {host: ratings}, weight: -1}]\n",
        ),
    ]
    .join("---\n");
    let err = RuleSet::from_yaml(&text).unwrap_err();
    assert_eq!(err.errors().count(), 1, "{err}");
    let warnings: Vec<&str> = err.warnings().iter().map(|w| w.message()).collect();
    assert_eq!(
        warnings,
        ["`mirrorPercent` is deprecated; use `mirrorPercentage`"]
    );
}

/// A VirtualService without hosts gets a scope note only when no root delegates to it.
#[test]
fn only_an_unused_delegate_gets_a_note() {
    let doc = |name: &str, body: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n{body}"
        )
    };
    let text = [
        doc(
            "root",
            "  hosts: [shop.example.com]\n  http:\n  - delegate: {name: cart}\n",
        ),
        doc(
            "cart",
            "  http:\n  - route: [{destination: {host: cart}}]\n",
        ),
        doc(
            "orphan",
            "  http:\n  - route: [{destination: {host: orphan}}]\n",
        ),
    ]
    .join("---\n");
    let rules = tower_mesh::RuleSet::from_yaml(&text).unwrap();
    assert!(rules.warnings().is_empty(), "{:#?}", rules.warnings());
    let notes: Vec<String> = rules.notes().iter().map(|w| w.to_string()).collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0].contains("default/orphan has no `hosts`"),
        "{notes:#?}"
    );
}

/// The messages of the IST0109 warnings of a load.
fn ist0109_messages(loader: Loader) -> Vec<String> {
    let rules = loader.load().unwrap();
    rules
        .warnings()
        .iter()
        .filter(|w| w.code() == Some("IST0109"))
        .map(|w| w.message().to_string())
        .collect()
}

/// IST0109 is for VirtualServices that apply to the mesh with HTTP routes: none for a
/// gateway-only or a TCP-only VirtualService beside a mesh one; one for two mesh ones, which
/// names both, whether or not gateway merge is on.
#[test]
fn ist0109_only_between_mesh_virtual_services_with_http_routes() {
    let doc = |name: &str, body: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n  hosts: [svc]\n{body}"
        )
    };
    let mesh = doc("mesh-a", "  http:\n  - route: [{destination: {host: a}}]\n");
    let edge = doc(
        "edge",
        "  gateways: [istio-system/edge]\n  http:\n  - route: [{destination: {host: b}}]\n",
    );
    let tcp = doc("tcp", "  tcp:\n  - route: [{destination: {host: c}}]\n");
    let mesh_b = doc(
        "mesh-b",
        "  gateways: [mesh, istio-system/edge]\n  http:\n  - route: [{destination: {host: d}}]\n",
    );
    let ist0109 = |text: String, merge: bool| {
        let options = tower_mesh::LoadOptions::default().with_gateway_merge(merge);
        ist0109_messages(Loader::new().options(options).text(text))
    };
    assert_eq!(
        ist0109([mesh.clone(), edge, tcp].join("---\n"), false),
        Vec::<String>::new()
    );
    for merge in [false, true] {
        let found = ist0109([mesh.clone(), mesh_b.clone()].join("---\n"), merge);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("The VirtualServices default/mesh-a,default/mesh-b associated with mesh gateway define the same host */svc.default.svc.cluster.local which can lead to undefined behavior."),
            "{found:#?}"
        );
    }
}

/// IST0109 only between VirtualServices that meet in one group of Istio's order: a consumer's
/// private override beside the owner's public VirtualService is none; two private ones of
/// one namespace are.
#[test]
fn ist0109_follows_export_groups() {
    let vs = |name: &str, ns: &str, export: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  hosts: [reviews.bookinfo.svc.cluster.local]\n{export}  http:\n  - route: [{{destination: {{host: a}}}}]\n"
        )
    };
    let codes = |docs: &[String]| ist0109_messages(Loader::new().text(docs.join("---\n")));
    let owner = vs("reviews", "bookinfo", "");
    let canary = vs("canary", "frontend", "  exportTo: [.]\n");
    let canary2 = vs("canary2", "frontend", "  exportTo: [frontend]\n");
    assert_eq!(
        codes(&[owner.clone(), canary.clone()]),
        Vec::<String>::new()
    );
    let found = codes(&[owner, canary, canary2]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("frontend/canary,frontend/canary2"),
        "{found:#?}"
    );
}

/// `exportTo` is checked as Istio's webhook checks it, with its messages.
#[test]
fn export_to_is_validated() {
    for (export, message) in [
        (
            "[\"~\"]",
            "exportTo ~ (none) is not allowed for Istio configuration objects",
        ),
        (
            "[Bad_NS]",
            "only .,*, or a valid DNS 1123 label is allowed as exportTo entry",
        ),
        ("[a, a]", "duplicate entries in exportTo for entry a"),
        (
            "[., shop]",
            "duplicate entries in exportTo: . and current namespace shop",
        ),
        (
            "[\"*\", a]",
            "cannot have both public (*) and non-public exportTo values for a resource",
        ),
    ] {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r, namespace: shop}}\nspec:\n  hosts: [r]\n  exportTo: {export}\n  http:\n  - route: [{{destination: {{host: r}}}}]\n"
        );
        let err = RuleSet::from_yaml(&text).unwrap_err();
        assert!(err.to_string().contains(message), "{export}: {err}");
        assert!(err.path().unwrap().starts_with("spec.exportTo["), "{err}");
    }
    let dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: shop}\nspec:\n  host: r\n  workloadSelector: {matchLabels: {app: a}}\n  exportTo: [other]\n";
    let err = RuleSet::from_yaml(dr).unwrap_err();
    assert!(
        err.to_string().contains(
            "destination rule with workload selector cannot have exportTo beyond current namespace"
        ),
        "{err}"
    );
}

/// `explain` names a VirtualService it passed over because it is not exported to the caller.
#[test]
fn explain_names_a_virtual_service_not_exported_to_the_caller() {
    let rules = RuleSet::from_yaml(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings, namespace: bookinfo}\nspec:\n  hosts: [ratings]\n  exportTo: [.]\n  http:\n  - route: [{destination: {host: ratings}}]\n",
    )
    .unwrap();
    let ctx = tower_mesh::Context::new()
        .with_host("ratings.bookinfo.svc.cluster.local")
        .with_caller(tower_mesh::Caller::new().with_namespace("shop"));
    let req = http::Request::get("/").body(()).unwrap();
    let explanation = rules.explain(&req, &ctx, &tower_mesh::NeverSampler);
    let text = explanation.to_string();
    assert!(
        text.contains(
            "VirtualService bookinfo/ratings: not exported to the caller's namespace (shop)"
        ),
        "{text}"
    );
    assert_eq!(
        explanation.decision().outcome(),
        tower_mesh::Outcome::PassThrough
    );
}
