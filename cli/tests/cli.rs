//! The `tower-mesh` command as a user runs it: its output and exit status.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    path.display().to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tower-mesh"))
        .args(args)
        .output()
        .expect("the tower-mesh binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn check_reports_all_three_mistakes_and_exits_1() {
    let out = run(&["check", &fixture("three-mistakes.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 3, "{text}");
    assert!(
        errors[0].contains("line 9, column 38: spec.http[0].fault.abort.precentage: unknown field"),
        "{text}"
    );
    assert!(errors[0].contains("(did you mean `percentage`?)"), "{text}");
    assert!(errors[1].contains("line 11, column 14: spec.http[1].timeout: wrong type: expected a duration such as \"7s\""), "{text}");
    assert!(
        errors[2].contains("document 2 (DestinationRules), line 15"),
        "{text}"
    );
    assert!(
        errors[2].contains("(did you mean `DestinationRule`?)"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "1 file: 3 errors, 0 warnings, 0 notes, 0 documents skipped; the rules do not load\n"
        ),
        "{text}"
    );
}

#[test]
fn check_json_prints_one_object_per_finding() {
    let out = run(&["check", "--format", "json", &fixture("three-mistakes.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for line in &lines {
        assert!(
            line.starts_with("{\"severity\":\"error\",") && line.ends_with('}'),
            "{line}"
        );
    }
    assert!(
        lines[0].contains(r#""kind":"unknown_field""#),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(r#""line":9,"column":38,"path":"spec.http[0].fault.abort.precentage""#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#""resource":"VirtualService shop/reviews""#),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(r#""value":"5""#), "{}", lines[1]);
    assert!(
        lines[2].contains(r#""path":"kind","value":"DestinationRules""#),
        "{}",
        lines[2]
    );
}

#[test]
fn warnings_fail_the_check_only_when_denied() {
    let file = fixture("warns.yaml");
    let out = run(&["check", &file]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("warning: ") && text.contains("`mirrorPercent` is deprecated"),
        "{text}"
    );
    assert!(
        text.ends_with("1 file: the rules load; 1 warning, 0 notes, 0 documents skipped\n"),
        "{text}"
    );
    assert_eq!(
        run(&["check", "--deny-warnings", &file]).status.code(),
        Some(1)
    );
    let json = run(&["check", "--format=json", "--deny-warnings", &file]);
    assert_eq!(json.status.code(), Some(1));
    assert!(stdout(&json).starts_with(r#"{"severity":"warning","kind":"warning","file":"#));
    assert_eq!(
        run(&["check", &fixture("reviews-80-20.yaml")])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn explain_shows_the_weighted_draw_and_repeats_with_a_seed() {
    let args = [
        "explain",
        &fixture("reviews-80-20.yaml"),
        "--target",
        "reviews",
        "--seed",
        "7",
        "GET",
        "/reviews/0",
    ];
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains("[match] VirtualService default/reviews spec.http[0]"),
        "{text}"
    );
    let draw = text
        .lines()
        .find(|l| l.contains("weighted choice: drew "))
        .unwrap_or_else(|| panic!("no draw line: {text}"));
    assert!(
        draw.contains("of 100; cumulative weights: reviews subset v1 {version=v1} [0, 80), reviews subset v2 {version=v2} [80, 100)"),
        "{draw}"
    );
    // The drawn number decides the subset, and the decision says the same.
    let drawn: u32 = draw["  weighted choice: drew ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let subset = if drawn < 80 { "v1" } else { "v2" };
    assert!(
        text.contains(&format!("decision: forward to reviews subset {subset}")),
        "{text}"
    );
    assert_eq!(
        stdout(&run(&args)),
        text,
        "the same seed gives the same explanation"
    );
    assert!(text.ends_with("draws: seeded with 7\n"), "{text}");
}

#[test]
fn explain_uses_headers_and_the_target() {
    let out = run(&[
        "explain",
        &fixture("three-mistakes.yaml"),
        "--target",
        "reviews",
        "GET",
        "/",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rules that do not load are not explained"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the rules do not load"));
    let out = run(&[
        "explain",
        &fixture("warns.yaml"),
        "--target",
        "ratings",
        "-H",
        "x-a: b",
        "POST",
        "/rate",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("POST /rate to ratings"), "{text}");
    assert!(
        text.contains("draws: random; pass --seed N to repeat them"),
        "{text}"
    );
}

#[test]
fn help_and_usage_errors() {
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["explain", "-h"],
        &[],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage"), "{args:?}");
    }
    for (args, says) in [
        (&["lint"][..], "unknown command `lint`"),
        (&["check"], "check needs at least one FILE"),
        (
            &["check", "--format", "xml", "a.yaml"],
            "--format is `text` or `json`",
        ),
        (
            &["explain", "a.yaml", "GET", "/"],
            "explain needs --target HOST",
        ),
        (
            &[
                "explain", "a.yaml", "--target", "r", "--seed", "x", "GET", "/",
            ],
            "--seed takes a whole number",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[cfg(unix)]
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_tower-mesh"))
        .arg("check")
        .arg(std::ffi::OsStr::from_bytes(b"rules-\xff.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not valid UTF-8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_file_name_cannot_start_a_line_of_its_own() {
    let dir = std::env::temp_dir().join(format!("tower-mesh-cli-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = dir.join("x\n::error::injected\u{202E}.yaml");
    std::fs::write(&name, "kind: VirtualService\nspec: [\n").unwrap();
    let out = run(&["check", name.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.lines().all(|l| !l.starts_with("::")), "{text}");
    assert!(
        text.contains("x\\n::error::injected\\u{202e}.yaml"),
        "{text}"
    );
}

/// A file written for `kubectl apply -n bookinfo` (no namespace in it): its DestinationRule
/// names the full host in `bookinfo`, so it loads only when `-n bookinfo` says where it goes.
#[test]
fn namespace_option_places_documents_without_one() {
    let file = fixture("fault-no-namespace.yaml");
    let out = run(&["check", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("subset `v1` is not defined"),
        "{}",
        stdout(&out)
    );
    for flag in [
        &["-n", "bookinfo"][..],
        &["--namespace", "bookinfo"],
        &["--namespace=bookinfo"],
    ] {
        let args: Vec<&str> = ["check"]
            .iter()
            .chain(flag)
            .copied()
            .chain([file.as_str()])
            .collect();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("the rules load; 0 warnings"),
            "{}",
            stdout(&out)
        );
    }
    let out = run(&["check", "-n", "Not_A_Namespace", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("is not a namespace name"),
        "{}",
        stdout(&out)
    );
    let out = run(&["check", "-n"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A VirtualService's `tcp` section is a scope note, not a warning: `--deny-warnings` passes,
/// the note is printed (`info:`, JSON `severity: info`), and the skipped Service is listed in
/// text and JSON.
#[test]
fn scope_notes_never_fail_deny_warnings() {
    let file = fixture("tcp-section.yaml");
    let out = run(&["check", "--deny-warnings", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("info: ") && text.contains("spec.tcp: `tcp` routes are not HTTP"),
        "{text}"
    );
    assert!(
        text.contains("skipped: ") && text.contains("(Service db): not routing configuration"),
        "{text}"
    );
    assert!(
        text.ends_with("1 file: the rules load; 0 warnings, 1 note, 1 document skipped\n"),
        "{text}"
    );
    let out = run(&["check", "--deny-warnings", "--format", "json", &file]);
    let json = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{json}");
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert!(
        lines[0].starts_with(r#"{"severity":"info","kind":"scope""#),
        "{json}"
    );
    assert!(
        lines[1].starts_with(r#"{"severity":"info","kind":"skipped""#),
        "{json}"
    );
}

/// Istio's analyzer codes appear in the text (`[IST0130]`) and as `code` in JSON; IST0130 is a
/// warning (it fails `--deny-warnings`), IST0131 information (kind `analysis`).
#[test]
fn analyzer_codes_in_text_and_json() {
    let file = fixture("unused-rules.yaml");
    let out = run(&["check", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(r#"warning: [IST0130] "#)
            && text.contains(r#"spec.http[1]: VirtualService rule "shadowed" not used (all matches used by prior rules)."#),
        "{text}"
    );
    assert!(
        text.contains(r#"info: [IST0131] "#) && text.contains("of prefix /api/beta is not used"),
        "{text}"
    );
    assert_eq!(
        run(&["check", "--deny-warnings", &file]).status.code(),
        Some(1)
    );
    let json = stdout(&run(&["check", "--format", "json", &file]));
    let codes: Vec<&str> = json
        .lines()
        .map(|l| {
            let at = l.find(r#""code":""#).map_or(0, |i| i + 8);
            &l[at..at + 7]
        })
        .collect();
    assert_eq!(
        codes,
        ["IST0130", "IST0130", "IST0131", "IST0131"],
        "{json}"
    );
    assert!(
        json.lines()
            .nth(2)
            .unwrap()
            .starts_with(r#"{"severity":"info","kind":"analysis""#),
        "{json}"
    );
}

/// A set that does not load still lists its notes and skipped documents.
#[test]
fn notes_and_skipped_documents_are_listed_when_the_rules_do_not_load() {
    let out = run(&[
        "check",
        &fixture("three-mistakes.yaml"),
        &fixture("tcp-section.yaml"),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("info: ") && text.contains("spec.tcp"),
        "{text}"
    );
    assert!(
        text.contains("(Service db): not routing configuration"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "2 files: 3 errors, 0 warnings, 1 note, 1 document skipped; the rules do not load\n"
        ),
        "{text}"
    );
}
