//! Syntax checks on names and values that Istio's validating webhook applies: host names,
//! gateway references, destination hosts and header values. Each returns what is wrong, for the
//! caller to place at its field.

/// Longest host name Istio accepts.
const MAX_HOST: usize = 255;
/// Longest DNS label.
const MAX_LABEL: usize = 63;

/// A DNS label: letters, digits and `-`, not starting or ending with `-`, at most 63 long.
fn is_label(label: &str, lower_only: bool) -> bool {
    let b = label.as_bytes();
    let ok = |c: &u8| {
        c.is_ascii_digit() || c.is_ascii_lowercase() || (!lower_only && c.is_ascii_uppercase())
    };
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.iter().all(|c| ok(c) || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS name: labels joined by dots, an optional final dot, a top-level label not all digits.
fn dns_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_HOST {
        return Err(format!(
            "a host is at most {MAX_HOST} characters; this one has {}",
            name.len()
        ));
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = trimmed.split('.').collect();
    if let Some(bad) = labels.iter().find(|l| !is_label(l, false)) {
        return Err(if bad.is_empty() {
            "a host must not have an empty label (two dots in a row, or a leading dot)".into()
        } else {
            format!(
                "label `{bad}` is not a DNS label (at most {MAX_LABEL} letters, digits and `-`, not starting or ending with `-`)"
            )
        });
    }
    if labels.len() > 1
        && labels
            .last()
            .is_some_and(|l| l.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err("the last label of a host name cannot be all digits".into());
    }
    Ok(())
}

/// A VirtualService host: `*`, an IP address, or a name whose first label may start with a
/// wildcard (Istio's `ValidateWildcardDomain`).
pub(crate) fn virtual_service_host(host: &str) -> Result<(), String> {
    if host == "*" || host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    wildcard_domain(host)
}

/// A name whose first label is `*`, a DNS label, or a DNS label after `*` or `*-` (`*foo`,
/// `*-foo`), and whose other labels are DNS labels without any `*`.
fn wildcard_domain(host: &str) -> Result<(), String> {
    const WHERE: &str = "a wildcard is allowed only at the start of the first label (`*.example.com`, `*foo.example.com`, `*-foo.example.com`) or as the host `*`";
    let (first, rest) = match host.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (host, None),
    };
    let label = first
        .strip_prefix("*-")
        .or_else(|| first.strip_prefix('*'))
        .unwrap_or(first);
    let first_ok = first == "*" || (first.len() <= MAX_LABEL && is_label(label, false));
    if !first_ok || rest.is_some_and(|r| r.contains('*')) {
        if host.contains('*') {
            return Err(WHERE.into());
        }
        return dns_name(host);
    }
    if host.len() > MAX_HOST {
        return dns_name(host);
    }
    match rest {
        // The rest, as a DNS name (checked with a stand-in first label).
        Some(rest) => dns_name(&format!("x.{rest}")),
        None => Ok(()),
    }
}

/// A destination host (of a route, a mirror): a DNS name, short or fully qualified, whose
/// first label may start with a wildcard, as Istio accepts it (the name is taken literally,
/// never as a pattern); `*` alone and `namespace/name` are not destination hosts.
pub(crate) fn destination_host(host: &str) -> Result<(), String> {
    if host == "*" {
        return Err("`*` is not a destination host: a destination is one service".into());
    }
    if host.contains('/') {
        return Err("a destination host is a DNS name (`reviews` or `reviews.shop.svc.cluster.local`), not `namespace/name`".into());
    }
    wildcard_domain(host)
}

/// The first pair of VirtualService hosts (as written) that overlap as Istio's validation
/// compares them (`host.Name.Matches`): equal names, a wildcard and a name it covers (the
/// empty prefix counts: `*foo.com` covers `foo.com`), or two wildcards one of which covers the
/// other. `(i, j)` with `i < j`, the smallest `j` first. Sorted by reversed name, so a long
/// list costs `n log n`, not a comparison of every pair.
pub(crate) fn overlapping_hosts(hosts: &[String]) -> Option<(usize, usize)> {
    let core = |h: &str| {
        h.strip_prefix('*')
            .unwrap_or(h)
            .chars()
            .rev()
            .collect::<String>()
    };
    let mut by_suffix: Vec<(String, usize)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (core(h), i))
        .collect();
    by_suffix.sort();
    let mut best: Option<(usize, usize)> = None;
    let mut consider = |a: usize, b: usize| {
        let pair = (a.min(b), a.max(b));
        if best.is_none_or(|(bi, bj)| (pair.1, pair.0) < (bj, bi)) {
            best = Some(pair);
        }
    };
    for (i, h) in hosts.iter().enumerate() {
        let reversed = core(h);
        let from = by_suffix.partition_point(|(r, _)| r.as_str() < reversed.as_str());
        // A wildcard covers every name or wildcard whose text ends with its own; a name
        // overlaps another name only when they are equal (wildcards that cover it are found
        // from their side). Either way the candidates start at `from`, and the first other one
        // decides.
        let wildcard = h.starts_with('*');
        let found = by_suffix[from..]
            .iter()
            .take_while(|(r, _)| match wildcard {
                true => r.starts_with(reversed.as_str()),
                false => *r == reversed,
            })
            .find(|(_, j)| *j != i && (wildcard || hosts[*j] == *h));
        if let Some(&(_, j)) = found {
            consider(i, j);
        }
    }
    best
}

/// A gateway reference: `mesh`, `namespace/name` with DNS labels on both sides, or (the older
/// form) a gateway's fully qualified name.
pub(crate) fn gateway(reference: &str) -> Result<(), String> {
    if reference == "mesh" {
        return Ok(());
    }
    const WANT: &str = "a gateway is `mesh`, `namespace/name` (DNS labels: letters, digits and `-`), or a fully qualified gateway name";
    match reference.split_once('/') {
        Some((ns, name)) => {
            if !is_label(ns, false) {
                return Err(format!("namespace `{ns}` is not valid: {WANT}"));
            }
            if !is_label(name, false) {
                return Err(format!("name `{name}` is not valid: {WANT}"));
            }
            Ok(())
        }
        None => dns_name(reference).map_err(|problem| format!("{problem}: {WANT}")),
    }
}

/// A Kubernetes namespace name: a DNS label of lower-case letters, digits and `-`.
pub(crate) fn namespace(ns: &str) -> Result<(), String> {
    if is_label(ns, true) {
        Ok(())
    } else {
        Err(format!(
            "not a namespace name (at most {MAX_LABEL} lower-case letters, digits and `-`, not starting or ending with `-`)"
        ))
    }
}

/// A resource's `exportTo` (Istio's `validateExportTo`), for a resource of namespace `ns`:
/// entries `.`, `*` or namespace names, none twice (`.` counts as `ns`), and `*` alone. On a
/// problem, the index of the entry at fault and what is wrong.
pub(crate) fn export_to(list: &[String], ns: &str) -> Result<(), (usize, String)> {
    for (i, e) in list.iter().enumerate() {
        if e == "~" {
            return Err((
                i,
                "exportTo ~ (none) is not allowed for Istio configuration objects".into(),
            ));
        }
        if e != "." && e != "*" && !is_label(e, true) {
            return Err((
                i,
                "only .,*, or a valid DNS 1123 label is allowed as exportTo entry".into(),
            ));
        }
        if list[..i].contains(e) {
            return Err((i, format!("duplicate entries in exportTo for entry {e}")));
        }
        let same = |a: &str, b: &str| a == "." && b == ns;
        if list[..i].iter().any(|b| same(e, b) || same(b, e)) {
            return Err((
                i,
                format!("duplicate entries in exportTo: . and current namespace {ns}"),
            ));
        }
    }
    if list.len() > 1
        && let Some(i) = list.iter().position(|e| e == "*")
    {
        return Err((
            i,
            "cannot have both public (*) and non-public exportTo values for a resource".into(),
        ));
    }
    Ok(())
}

/// A header value as Istio's `validateHeaderValue` reads it: no control characters but tab,
/// and every `%` either doubled or opening a `%NAME%` / `%NAME(args)%` variable that a later
/// `%` closes.
pub(crate) fn header_value(value: &str) -> Result<(), String> {
    if let Some(c) = value
        .chars()
        .find(|&c| c != '\t' && (c < ' ' || c == '\x7f'))
    {
        return Err(format!(
            "control character {} is not allowed in a header value",
            c.escape_debug()
        ));
    }
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        let after = &rest[at + 1..];
        if let Some(next) = after.strip_prefix('%') {
            rest = next;
            continue;
        }
        let end = match after.find(['(', '%']) {
            Some(i) if after.as_bytes()[i] == b'(' => after[i..]
                .find(')')
                .and_then(|close| after[i + close..].find('%').map(|p| i + close + p)),
            found => found,
        };
        match end {
            Some(close) => rest = &after[close + 1..],
            None => {
                return Err(format!(
                    "`%` at byte {} opens a variable that no `%` closes; write `%%` for a literal `%`",
                    value.len() - rest.len() + at
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_service_hosts() {
        for ok in [
            "*",
            "reviews",
            "*.example.com",
            "*foo.bar.com",
            "*-foo.bar.com",
            "*foo",
            "*9",
            "foo.com.",
            "a-b.example.com.",
            "10.0.0.1",
            "::1",
            "Reviews",
        ] {
            assert_eq!(virtual_service_host(ok), Ok(()), "{ok}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let long_host = vec!["abc"; 70].join(".");
        for bad in [
            "foo.*.com",
            "foo*.bar.com",
            "*.*.com",
            "foo.bar.*",
            "**",
            "*-",
            "*_x",
            "*foo-.com",
            "foo.com:80",
            "ns/foo",
            "-a.com",
            "a-.com",
            "a..b",
            "a_b",
            "a.123",
            &long_label,
            &long_host,
        ] {
            assert!(virtual_service_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_hosts_as_istio_compares_them() {
        let pair = |hosts: &[&str]| {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            overlapping_hosts(&hosts)
        };
        assert_eq!(pair(&["*.foo.bar", "*.bar"]), Some((0, 1)));
        assert_eq!(pair(&["*foo.com", "foo.com"]), Some((0, 1)));
        assert_eq!(pair(&["foo.com", "*foo.com"]), Some((0, 1)));
        assert_eq!(pair(&["*", "foo.com"]), Some((0, 1)));
        assert_eq!(pair(&["*-foo.bar.com", "*foo.bar.com"]), Some((0, 1)));
        assert_eq!(pair(&["a.com", "b.com", "a.com"]), Some((0, 2)));
        assert_eq!(pair(&["*.foo.com", "foo.com"]), None);
        assert_eq!(
            pair(&["reviews", "reviews.default.svc.cluster.local"]),
            None
        );
        assert_eq!(pair(&["Foo.com", "foo.com"]), None);
        assert_eq!(pair(&["a.com", "b.com", "*.c.com"]), None);
    }

    #[test]
    fn destination_hosts() {
        for ok in [
            "reviews.shop.svc.cluster.local",
            "*.foo",
            "*foo.baz",
            "*-foo.baz",
            "*foo",
        ] {
            assert_eq!(destination_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "*",
            "foo.*",
            "foo*.bar",
            "shop/reviews",
            "reviews:9080",
            "10.0.0.1",
        ] {
            assert!(destination_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gateway_references() {
        for ok in [
            "mesh",
            "gw",
            "Gw",
            "istio-system/gw",
            "gw.istio-system.svc.cluster.local",
        ] {
            assert_eq!(gateway(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ns1/*",
            "*/gw",
            "b@dgateway",
            "ns/",
            "/gw",
            "ns/gw.example.com",
            "*",
        ] {
            assert!(gateway(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_values() {
        for ok in [
            "100%%",
            "%HOSTNAME%",
            "a %REQ(x-id)% b",
            "%REQ(a%b)%",
            "plain",
            "tab\there",
            "",
        ] {
            assert_eq!(header_value(ok), Ok(()), "{ok}");
        }
        for bad in [
            "abc%123",
            "%START_TIME%%",
            "abcd%oijasodifj",
            "%",
            "a\nb",
            "nul\0",
            "del\x7f",
        ] {
            assert!(header_value(bad).is_err(), "{bad}");
        }
    }
}
