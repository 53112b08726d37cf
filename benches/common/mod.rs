//! Rule sets shared by the benches.

#![allow(dead_code)]

/// A VirtualService with `n` routes; route `i` matches `x-tenant` (exact `tenant-i` for even
/// `i`, regex `tenant-[0-9]+-i` for odd `i`) and the uri prefix `/api/`.
pub(crate) fn generated_rules(n: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: tenants}\nspec:\n  hosts: [tenants]\n  http:\n",
    );
    for i in 0..n {
        let header = if i % 2 == 0 {
            format!("{{exact: \"tenant-{i}\"}}")
        } else {
            format!("{{regex: \"tenant-[0-9]+-{i}\"}}")
        };
        yaml.push_str(&format!(
            "  - name: r{i}\n    match:\n    - headers: {{x-tenant: {header}}}\n      uri: {{prefix: /api/}}\n    route:\n    - destination: {{host: tenant-{i}}}\n"
        ));
    }
    yaml
}

/// A header value only route `i` matches.
pub(crate) fn tenant_value(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("tenant-{i}")
    } else {
        format!("tenant-4242-{i}")
    }
}
