//! Hostile configurations and requests: each test builds the shape an attacker would send and
//! checks that the crate refuses it with a clear error, or handles it, without aborting,
//! exhausting memory or letting a request skip its rules.

mod common;

use common::shapes::{alias_tower, delegation, http_routes};
use common::virtual_service;
use tower_mesh::{ErrorKind, LoadError, RuleSet};

/// Runs `f` on a thread with a 256 KiB stack, as small as any runtime's worker threads.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the load overflowed a 256 KiB stack")
}

#[test]
fn an_alias_tower_is_refused_on_a_small_stack() {
    let text = alias_tower(250, 60);
    assert!(text.len() < 40_000, "{} bytes", text.len());
    let err: LoadError = on_small_stack(move || RuleSet::from_yaml(&text).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(err.to_string().contains("Limits::max_depth"), "{err}");
    assert_eq!(
        err.line(),
        Some(11),
        "the second alias already nests too deep: {err}"
    );
}

/// One large string, anchored, then repeated by aliases: few values, but every alias copies
/// the string.
fn big_string_aliases(string_bytes: usize, aliases: usize) -> String {
    let uses = vec!["*big"; aliases].join(", ");
    format!(
        "{}status:\n  big: &big \"{}\"\n  uses: [{uses}]\n",
        virtual_service("svc", "  - route: [{destination: {host: svc}}]\n"),
        "x".repeat(string_bytes)
    )
}

#[test]
fn aliases_of_a_large_string_are_bounded_by_the_bytes_they_copy() {
    // 1 MB repeated 1,000 times would be a gigabyte of copies from a 1 MB text.
    let err = RuleSet::from_yaml(&big_string_aliases(1 << 20, 1_000)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(
        err.to_string().contains("aliases repeat more than"),
        "{err}"
    );
    // A few copies are fine.
    let rules = RuleSet::from_yaml(&big_string_aliases(1_000, 10)).unwrap();
    assert_eq!(rules.table().route_count(), 1);
}

#[test]
fn nesting_at_the_limit_loads_on_a_small_stack() {
    // `status` is read and ignored; the document's own mapping and `status` take two of the 64
    // levels, so the lists inside may nest 62 deep, through an alias as well as written out.
    let text = format!(
        "{}status:\n  a: &deep {}x{}\n  b: *deep\n",
        virtual_service("svc", "  - route: [{destination: {host: svc}}]\n"),
        "[".repeat(62),
        "]".repeat(62)
    );
    let loaded = on_small_stack(move || RuleSet::from_yaml(&text).map(|r| r.table().route_count()));
    assert_eq!(loaded.unwrap(), 1);

    let too_deep = format!(
        "{}status:\n  a: {}x{}\n",
        virtual_service("svc", "  - route: [{destination: {host: svc}}]\n"),
        "[".repeat(63),
        "]".repeat(63)
    );
    let err = on_small_stack(move || RuleSet::from_yaml(&too_deep).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
}

// --- Delegation, regexes, mappings, hosts, subsets: work bounded by the limits. ---

#[test]
fn delegation_is_counted_against_the_route_limit_before_it_is_built() {
    // 2,000 roots × 2,000 delegate routes would be 4 million routes.
    let err = RuleSet::from_yaml(&delegation(2_000, 2_000, 0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(err.to_string().contains("Limits::max_routes"), "{err}");
}

#[test]
fn merged_delegate_matches_are_counted_against_the_match_limit() {
    // One root route with 1,000 matches over delegate routes with 1,000 matches each: a
    // million merged match entries.
    let err = RuleSet::from_yaml(&delegation(1, 3, 1_000)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(err.to_string().contains("Limits::max_matches"), "{err}");
    // Within the limits, delegation still works.
    let rules = RuleSet::from_yaml(&delegation(2, 3, 2)).unwrap();
    assert_eq!(
        rules.table().route_count(),
        2 * 3 + 3,
        "merged routes and the delegate's own"
    );
}

#[test]
fn compiled_regexes_are_bounded_in_total() {
    // Each `\w{20}xN` compiles to about a megabyte, within the per-regex limit.
    let routes: String = (0..300)
        .map(|i| {
            format!(
                "  - match: [{{headers: {{x-id: {{regex: '\\w{{20}}x{i}'}}}}}}]\n    route: [{{destination: {{host: svc}}}}]\n"
            )
        })
        .collect();
    let err = RuleSet::from_yaml(&virtual_service("svc", &routes)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(err.to_string().contains("Limits::max_regex_total"), "{err}");
    assert!(
        err.path().unwrap().ends_with(".headers.x-id.regex"),
        "{err}"
    );
}

#[test]
fn a_mapping_with_too_many_keys_is_refused() {
    let keys: String = (0..10_001).map(|i| format!("  k{i}: v\n")).collect();
    let text = format!(
        "{}status:\n{keys}",
        virtual_service("svc", "  - route: [{destination: {host: svc}}]\n")
    );
    let err = RuleSet::from_yaml(&text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(
        err.to_string().contains("Limits::max_mapping_keys"),
        "{err}"
    );
    assert_eq!(err.line(), Some(9 + 10_000), "{err}");
}

#[test]
fn many_wildcard_hosts_load_and_each_finds_its_own() {
    let hosts: Vec<String> = (0..20_000).map(|i| format!("\"*.h{i}.com\"")).collect();
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: many}}\nspec:\n  hosts: [{}]\n  http:\n  - route: [{{destination: {{host: svc}}}}]\n---\n{}",
        hosts.join(", "),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: other}\nspec:\n  hosts: [\"*.com\"]\n  http:\n  - route: [{destination: {host: other}}]\n"
    );
    let rules = RuleSet::from_yaml(&text).unwrap();
    let ctx = tower_mesh::Context::new();
    let decide = |host: &str| {
        let req = http::Request::get(format!("http://{host}/"))
            .body(())
            .unwrap();
        rules.evaluate(&req, &ctx, &tower_mesh::NeverSampler)
    };
    assert_eq!(decide("a.h19999.com").destination().unwrap().host(), "svc");
    assert_eq!(decide("a.b.h7.com").destination().unwrap().host(), "svc");
    // The longest wildcard wins; a name that only the shorter one covers gets it.
    assert_eq!(decide("h7.com").destination().unwrap().host(), "other");
    assert_eq!(
        decide("x.h20000.com").destination().unwrap().host(),
        "other"
    );
}

#[test]
fn a_destination_rule_with_too_many_subsets_is_refused() {
    let subsets: String = (0..10_001)
        .map(|i| format!("  - {{name: s{i}, labels: {{version: v{i}}}}}\n"))
        .collect();
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  subsets:\n{subsets}"
    );
    let err = RuleSet::from_yaml(&text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(err.to_string().contains("Limits::max_subsets"), "{err}");
    assert_eq!(err.path(), Some("spec.subsets"));
}

#[test]
fn an_unknown_subset_error_lists_a_few_of_many_subsets() {
    let subsets: String = (0..5_000)
        .map(|i| format!("  - {{name: s{i}, labels: {{version: v{i}}}}}\n"))
        .collect();
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  subsets:\n{subsets}---\n{}",
        virtual_service(
            "svc",
            "  - route: [{destination: {host: svc, subset: nope}}]\n"
        )
    );
    let err = RuleSet::from_yaml(&text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownSubset);
    assert!(
        err.to_string().ends_with("s18, s19, and 4980 more"),
        "{err}"
    );
}

// --- Files: the size limit comes before the read. ---

#[test]
fn a_huge_file_is_refused_without_being_read() {
    let dir = std::env::temp_dir().join(format!("tower-mesh-hardening-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("huge.yaml");
    // A sparse 3 GiB file: reading it would take seconds and gigabytes.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(3 << 30).unwrap();
    let err = RuleSet::from_files([&path]).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(
        err.to_string()
            .contains("3221225472 bytes or more; at most 16777216"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn an_endless_device_is_refused_before_it_is_read() {
    let limits = tower_mesh::Limits {
        max_input_bytes: 1 << 16,
        ..tower_mesh::Limits::default()
    };
    let err = tower_mesh::Loader::new()
        .options(tower_mesh::LoadOptions::default().with_limits(limits))
        .file("/dev/zero")
        .load()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        err.to_string().contains("/dev/zero: not a regular file"),
        "{err}"
    );
}

/// `n` files of `values` list items each, in a folder of their own.
fn files_of_values(name: &str, n: usize, values: usize) -> Vec<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tower-mesh-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    (0..n)
        .map(|i| {
            let path = dir.join(format!("f{i}.yaml"));
            let items = vec!["x"; values].join(", ");
            std::fs::write(
                &path,
                format!(
                    "{}status: [{items}]\n",
                    virtual_service(&format!("s{i}"), "  - route: [{destination: {host: s}}]\n")
                ),
            )
            .unwrap();
            path
        })
        .collect()
}

fn load_with(
    limits: tower_mesh::Limits,
    files: &[std::path::PathBuf],
) -> Result<RuleSet, LoadError> {
    files
        .iter()
        .fold(
            tower_mesh::Loader::new()
                .options(tower_mesh::LoadOptions::default().with_limits(limits)),
            |l, f| l.file(f),
        )
        .load()
}

#[test]
fn the_values_and_bytes_of_all_files_of_a_load_are_bounded_together() {
    let files = files_of_values("totals", 5, 600);
    let limits = tower_mesh::Limits {
        max_nodes: 1_000,
        max_total_nodes: 2_000,
        ..tower_mesh::Limits::default()
    };
    // Each file is within the per-file limit; the fourth takes the total past 2,000.
    let err = load_with(limits.clone(), &files).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert_eq!(
        err.errors().count(),
        1,
        "the files after it are not read: {err}"
    );
    assert!(err.to_string().contains("f3.yaml"), "{err}");
    assert!(
        err.to_string()
            .contains("more than 2000 values together (Limits::max_total_nodes)"),
        "{err}"
    );
    assert!(load_with(limits.clone(), &files[..3]).is_ok());

    let bytes = std::fs::metadata(&files[0]).unwrap().len() as usize;
    let limits = tower_mesh::Limits {
        max_total_bytes: 2 * bytes + bytes / 2,
        ..limits
    };
    let err = load_with(limits.clone(), &files[..3]).unwrap_err();
    assert!(err.to_string().contains("f2.yaml"), "{err}");
    assert!(
        err.to_string().contains("(Limits::max_total_bytes)"),
        "{err}"
    );
    assert!(load_with(limits, &files[..2]).is_ok());
}

#[test]
fn gateway_api_entries_count_against_the_route_limit() {
    // 400 x 64 = 25,600 entries, past the 20,000 routes.
    let err = RuleSet::from_yaml(&http_routes(400, 64, 1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(err.to_string().contains("(Limits::max_routes)"), "{err}");
    assert!(
        err.to_string().contains("HTTPRoute shop/r312"),
        "names the route past it: {err}"
    );
    // Attached to 32 Services each, 700 routes of one match are 22,400 entries.
    let err = RuleSet::from_yaml(&http_routes(700, 1, 32)).unwrap_err();
    assert!(err.to_string().contains("(Limits::max_routes)"), "{err}");
    let rules = RuleSet::from_yaml(&http_routes(600, 1, 32)).unwrap();
    assert_eq!(rules.table().route_count(), 19_200);
}

// --- Values that overflow or hold what no name may hold. ---

#[test]
fn a_duration_that_overflows_is_an_error() {
    let text = virtual_service(
        "svc",
        "  - timeout: \"340282366920938463463374607431.769211456s\"\n    route: [{destination: {host: svc}}]\n",
    );
    let err = RuleSet::from_yaml(&text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
    assert_eq!(err.path(), Some("spec.http[0].timeout"));
    assert!(err.to_string().contains("duration too large"), "{err}");
}

#[test]
fn nul_characters_are_refused_and_printed_escaped() {
    let cases = [
        (
            "host",
            virtual_service("svc", "  - route: [{destination: {host: svc}}]\n")
                .replace("hosts: [svc]", "hosts: [\"svc\\0x\"]"),
            "spec.hosts[0]",
        ),
        (
            "redirect uri",
            virtual_service("svc", "  - redirect: {uri: \"/a\\0b\"}\n"),
            "spec.http[0].redirect.uri",
        ),
        (
            "rewrite authority",
            virtual_service(
                "svc",
                "  - rewrite: {authority: \"a\\0b\"}\n    route: [{destination: {host: svc}}]\n",
            ),
            "spec.http[0].rewrite.authority",
        ),
        (
            "destination",
            virtual_service("svc", "  - route: [{destination: {host: \"svc\\0\"}}]\n"),
            "spec.http[0].route[0].destination.host",
        ),
    ];
    for (what, text, path) in cases {
        let err = RuleSet::from_yaml(&text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{what}: {err}");
        assert_eq!(err.path(), Some(path), "{what}: {err}");
        assert!(err.to_string().contains("NUL character"), "{what}: {err}");
        assert!(!err.to_string().contains('\0'), "{what}: {err}");
    }
    for (key, metadata) in [
        ("name", r#"{name: "a\0\x1b[2J"}"#),
        ("namespace", r#"{name: svc, namespace: "a\0\x1b[2J"}"#),
    ] {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {metadata}\nspec:\n  hosts: [svc]\n"
        );
        let err = RuleSet::from_yaml(&text).unwrap_err();
        let printed = err.to_string();
        assert_eq!(
            err.path(),
            Some(format!("metadata.{key}").as_str()),
            "{printed}"
        );
        assert!(!printed.contains(['\0', '\x1b']), "{printed:?}");
    }
}

#[test]
fn value_errors_say_their_kind_once() {
    let text = virtual_service(
        "svc",
        "  - route: [{destination: {host: svc, port: {number: -1}}}]\n",
    );
    let err = RuleSet::from_yaml(&text).unwrap_err();
    let printed = err.to_string();
    assert_eq!(printed.matches("invalid value").count(), 1, "{printed}");
    assert!(
        printed.ends_with("invalid value: found the integer -1, expected a non-negative integer"),
        "{printed}"
    );
}

// --- Requests: a made-up host never reaches a configured service around its rules. ---

mod requests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use tower::{Layer, ServiceExt, service_fn};
    use tower_mesh::RuleSet;
    use tower_mesh::layer::{Destinations, MeshLayer};

    use super::common::virtual_service;

    type Svc =
        tower::util::BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

    fn answers(name: &'static str) -> Svc {
        Svc::new(service_fn(move |req: Request<Full<Bytes>>| async move {
            let text = format!("{name} {}", req.uri().path());
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
        }))
    }

    /// A router with a 100% abort for `svc`, and `svc` and `open` registered, each served by
    /// `service(name)`.
    fn router_of(service: fn(&'static str) -> Svc) -> tower_mesh::MeshRouter<Svc> {
        let rules = RuleSet::from_yaml(&virtual_service(
            "svc",
            "  - fault: {abort: {httpStatus: 503, percentage: {value: 100}}}\n    route: [{destination: {host: svc}}]\n",
        ))
        .unwrap();
        MeshLayer::new(rules).route_to(
            Destinations::new()
                .add("svc", [("version", "v1")], service("svc"))
                .add("open", [("version", "v1")], service("open")),
        )
    }

    fn router() -> tower_mesh::MeshRouter<Svc> {
        router_of(answers)
    }

    async fn send(req: Request<Full<Bytes>>) -> (StatusCode, String) {
        let res = router().oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn with_host(host: &str) -> Request<Full<Bytes>> {
        Request::get("/x")
            .header("host", host)
            .body(Full::default())
            .unwrap()
    }

    fn absolute(uri: &str) -> Request<Full<Bytes>> {
        Request::get(uri).body(Full::default()).unwrap()
    }

    #[tokio::test]
    async fn every_spelling_of_the_configured_host_gets_its_rules() {
        for host in ["svc", "SVC", "svc:80", "svc:", "svc.", "Svc.:8080"] {
            let (status, body) = send(with_host(host)).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "Host: {host}: {body}"
            );
            assert_eq!(body, "fault filter abort", "Host: {host}");
        }
        let (status, _) = send(absolute("http://svc:9080/x")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_longer_name_is_not_dispatched_to_a_configured_service() {
        for req in [
            with_host("svc.attacker.example"),
            with_host("svc.attacker.example:80"),
            absolute("http://svc.attacker.example/x"),
            absolute("http://svcx/x"),
        ] {
            let shown = format!("{:?} {:?}", req.uri(), req.headers().get("host"));
            let (status, body) = send(req).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{shown}: {body}");
            assert_eq!(body, "no healthy upstream", "{shown}");
        }
    }

    #[tokio::test]
    async fn an_uncovered_host_reaches_only_the_service_registered_for_it() {
        for host in ["open", "OPEN:8080", "open."] {
            let (status, body) = send(with_host(host)).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "open /x"),
                "Host: {host}"
            );
        }
        let (status, body) = send(absolute("http://open.other.example/x")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }

    // --- A rewrite that cannot be applied is answered, not skipped. ---

    fn rewriting(route: &str) -> tower_mesh::MeshRouter<Svc> {
        let rules = RuleSet::from_yaml(&virtual_service("svc", route)).unwrap();
        MeshLayer::new(rules)
            .host("svc")
            .route_to(Destinations::new().add("svc", [("version", "v1")], answers("svc")))
    }

    async fn send_to(router: tower_mesh::MeshRouter<Svc>, path: &str) -> (StatusCode, String) {
        let req = Request::get(path).body(Full::default()).unwrap();
        let res = router.oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_prefix_rewrite_past_the_uri_limit_is_answered_414() {
        let router = rewriting(
            "  - match: [{uri: {prefix: /pub}}]\n    rewrite: {uri: /sandbox/tenant-a/pub}\n    route: [{destination: {host: svc}}]\n",
        );
        let long = format!("/pub/{}", "a".repeat(65_520));
        assert_eq!(long.len(), 65_525);
        let (status, body) = send_to(router.clone(), &long).await;
        assert_eq!(status, StatusCode::URI_TOO_LONG);
        assert_eq!(body, "rewritten path too long");
        // A path that fits is rewritten as before.
        let (status, body) = send_to(router, "/pub/a").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "svc /sandbox/tenant-a/pub/a")
        );
    }

    #[tokio::test]
    async fn a_regex_rewrite_that_repeats_the_path_is_answered_414() {
        let template = r"\1".repeat(10_000);
        let router = rewriting(&format!(
            "  - rewrite: {{uriRegexRewrite: {{match: '^(.*)$', rewrite: '{template}'}}}}\n    route: [{{destination: {{host: svc}}}}]\n"
        ));
        let (status, body) = send_to(router, &format!("/{}", "a".repeat(65_000))).await;
        assert_eq!(status, StatusCode::URI_TOO_LONG);
        assert_eq!(body, "rewritten path too long");
    }

    // --- One authority per request (RFC 9112 §3.2, RFC 9113 §8.3.1). ---

    /// A service that answers its name and the `Host` it was sent.
    fn echoes_host(name: &'static str) -> Svc {
        Svc::new(service_fn(move |req: Request<Full<Bytes>>| async move {
            let host = req
                .headers()
                .get("host")
                .map(|h| h.to_str().unwrap().to_owned());
            let text = format!("{name} host={}", host.as_deref().unwrap_or("-"));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
        }))
    }

    fn echo_router() -> tower_mesh::MeshRouter<Svc> {
        router_of(echoes_host)
    }

    async fn answer(
        svc: impl tower::Service<
            Request<Full<Bytes>>,
            Response = Response<tower_mesh::layer::MeshBody<Full<Bytes>>>,
            Error = Infallible,
        >,
        req: Request<Full<Bytes>>,
    ) -> (StatusCode, String) {
        let res = svc.oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn two_hosts() -> Request<Full<Bytes>> {
        let mut req = with_host("open");
        req.headers_mut().append("host", "svc".parse().unwrap());
        req
    }

    #[tokio::test]
    async fn two_host_lines_are_answered_400() {
        let (status, body) = answer(echo_router(), two_hosts()).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_REQUEST, "more than one Host header")
        );
        let layered = MeshLayer::new(RuleSet::empty()).layer(echoes_host("inner"));
        let (status, body) = answer(layered, two_hosts()).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_REQUEST, "more than one Host header")
        );
        // One line still goes through.
        let (status, body) = answer(echo_router(), with_host("open")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "open host=open"));
    }

    #[tokio::test]
    async fn the_targets_authority_wins_over_the_host_header() {
        // HTTP/1.1 absolute form, and HTTP/2 `:authority` (which `http::Uri` carries).
        for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
            let req = Request::get("http://open/x")
                .version(version)
                .header("host", "svc")
                .body(Full::default())
                .unwrap();
            let (status, body) = answer(echo_router(), req).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "open host=open"),
                "{version:?}: decided for open, sent to open as open"
            );
            // The other way round: svc's rules run for the authority svc, whatever Host says.
            let req = Request::get("http://svc:9080/x")
                .version(version)
                .header("host", "open")
                .body(Full::default())
                .unwrap();
            let (status, body) = answer(echo_router(), req).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, "fault filter abort")
            );
        }
        // Around one service, the service is sent the authority that was decided.
        let layered = MeshLayer::new(RuleSet::empty()).layer(echoes_host("inner"));
        let req = Request::get("http://user@public:8080/x")
            .header("host", "svc")
            .body(Full::default())
            .unwrap();
        let (status, body) = answer(layered, req).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "inner host=public:8080")
        );
    }
}
