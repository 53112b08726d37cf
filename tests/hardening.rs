//! Hostile configurations and requests: each test builds the shape an attacker would send and
//! checks that the crate refuses it with a clear error, or handles it, without aborting,
//! exhausting memory or letting a request skip its rules.

mod common;

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

/// 250 anchors, each a value nested `depth` flow lists deep around an alias of the one before:
/// about 34 KB of text that never nests past `depth`, but whose tree would be 250 × `depth`
/// levels tall if aliases were copied in.
fn alias_tower(anchors: usize, depth: usize) -> String {
    let mut status = String::from("status:\n  a0: &a0 x\n");
    for i in 1..anchors {
        status.push_str(&format!(
            "  a{i}: &a{i} {}*a{}{}\n",
            "[".repeat(depth),
            i - 1,
            "]".repeat(depth)
        ));
    }
    format!(
        "{}{status}",
        virtual_service("svc", "  - route: [{destination: {host: svc}}]\n")
    )
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
