//! Hostile configuration shapes, generated: the hardening tests check how each is refused,
//! and the load-cost test measures what loading each costs at the limits.

use super::virtual_service;

/// 250 anchors, each a value nested `depth` flow lists deep around an alias of the one before:
/// about 34 KB of text that never nests past `depth`, but whose tree would be 250 × `depth`
/// levels tall if aliases were copied in.
pub(crate) fn alias_tower(anchors: usize, depth: usize) -> String {
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

/// A root VirtualService whose `roots` routes each delegate to one delegate VirtualService of
/// `routes` routes; every route of both has `matches` header matches.
pub(crate) fn delegation(roots: usize, routes: usize, matches: usize) -> String {
    let entries = |name: &str| {
        (0..matches)
            .map(|m| format!("{{headers: {{x-{name}: {{exact: \"v{m}\"}}}}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: root}\nspec:\n  hosts: [svc]\n  http:\n",
    );
    for _ in 0..roots {
        text.push_str(&format!(
            "  - match: [{}]\n    delegate: {{name: leaf}}\n",
            entries("root")
        ));
    }
    text.push_str("---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: leaf}\nspec:\n  http:\n");
    for r in 0..routes {
        text.push_str(&format!(
            "  - name: r{r}\n    match: [{}]\n    route: [{{destination: {{host: svc}}}}]\n",
            entries("leaf")
        ));
    }
    text
}

/// `routes` HTTPRoutes of one rule with `matches` path matches, each attached to `parents`
/// Services of its own.
pub(crate) fn http_routes(routes: usize, matches: usize, parents: usize) -> String {
    (0..routes)
        .map(|r| {
            let refs: Vec<String> = (0..parents)
                .map(|p| format!("{{group: \"\", kind: Service, name: s{r}x{p}}}"))
                .collect();
            let m: Vec<String> = (0..matches)
                .map(|m| format!("{{path: {{type: Exact, value: /p{m}}}}}"))
                .collect();
            format!(
                "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{r}, namespace: shop}}\nspec:\n  parentRefs: [{}]\n  rules:\n  - matches: [{}]\n    backendRefs: [{{name: s, port: 80}}]\n",
                refs.join(", "),
                m.join(", ")
            )
        })
        .collect()
}
