//! Hosts: a request's host in the one normal form the whole crate uses, and the lookup of a
//! host's table in Envoy's domain order.

use std::borrow::Cow;

use super::hash::FxHashMap;

/// Host name lookup with Envoy's domain order: exact, then `*.suffix`, then `prefix.*`, then
/// `*`; among wildcards the longest wins; case-insensitive; any port ignored.
#[derive(Debug, Default)]
pub(super) struct HostIndex {
    exact: FxHashMap<Box<str>, usize>,
    /// `*.example.com` under `.example.com`.
    suffix: Affixes,
    /// `api.*` under `api.`.
    prefix: Affixes,
    any: Option<usize>,
}

/// Wildcard names by the literal part, with that part's distinct lengths, longest first: a
/// lookup tries one hash probe per length, so neither inserting nor looking up scans the names.
#[derive(Debug, Default)]
struct Affixes {
    lens: Vec<usize>,
    map: FxHashMap<Box<str>, usize>,
}

impl Affixes {
    fn insert(&mut self, literal: &str, table: usize) -> bool {
        if self.map.contains_key(literal) {
            return false;
        }
        if let Err(at) = self.lens.binary_search_by(|l| literal.len().cmp(l)) {
            self.lens.insert(at, literal.len());
        }
        self.map.insert(literal.into(), table);
        true
    }

    /// The table of the longest literal that `part` cuts from `host` (`part` gives the piece of
    /// that length, if the length falls on a character boundary); the wildcard stands for at
    /// least one character, so the literal is shorter than the host.
    fn lookup<'h>(&self, host: &'h str, part: impl Fn(usize) -> Option<&'h str>) -> Option<usize> {
        self.lens
            .iter()
            .filter(|&&len| len < host.len())
            .find_map(|&len| self.map.get(part(len)?).copied())
    }
}

impl HostIndex {
    /// Adds a name (already lower-case). Returns false when the name was taken.
    pub(super) fn insert(&mut self, name: &str, table: usize) -> bool {
        if name == "*" {
            if self.any.is_some() {
                return false;
            }
            self.any = Some(table);
            return true;
        }
        if let Some(sfx) = name.strip_prefix('*') {
            return self.suffix.insert(sfx, table);
        }
        if let Some(pfx) = name.strip_suffix('*') {
            return self.prefix.insert(pfx, table);
        }
        if self.exact.contains_key(name) {
            return false;
        }
        self.exact.insert(name.into(), table);
        true
    }

    pub(super) fn lookup(&self, host: &str) -> Option<usize> {
        if let Some(&t) = self.exact.get(host) {
            return Some(t);
        }
        let tail = |len| host.get(host.len() - len..);
        let head = |len| host.get(..len);
        self.suffix
            .lookup(host, tail)
            .or_else(|| self.prefix.lookup(host, head))
            .or(self.any)
    }
}

/// A host as sent (`Reviews.default:9080.`) in the form the index holds (`reviews.default`).
pub(crate) fn normalize_host(raw: &[u8]) -> Option<Cow<'_, str>> {
    let s = std::str::from_utf8(raw).ok()?;
    let s = if let Some(rest) = s.strip_prefix('[') {
        // [v6]:port
        &s[..rest.find(']').map_or(s.len(), |i| i + 2)]
    } else {
        match s.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => s,
        }
    };
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(s.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(normalize_host(b"Reviews:9080").as_deref(), Some("reviews"));
        assert_eq!(normalize_host(b"reviews.").as_deref(), Some("reviews"));
        assert_eq!(normalize_host(b"[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host(b""), None);
    }

    #[test]
    fn domain_order() {
        let mut idx = HostIndex::default();
        assert!(idx.insert("*", 0));
        assert!(idx.insert("*.foo.com", 1));
        assert!(idx.insert("*.bar.foo.com", 2));
        assert!(idx.insert("api.*", 3));
        assert!(idx.insert("exact.foo.com", 4));
        assert!(!idx.insert("exact.foo.com", 5));
        assert_eq!(idx.lookup("exact.foo.com"), Some(4));
        assert_eq!(idx.lookup("a.bar.foo.com"), Some(2));
        assert_eq!(idx.lookup("a.foo.com"), Some(1));
        assert_eq!(idx.lookup("foo.com"), Some(0));
        assert_eq!(
            idx.lookup("api.foo.com"),
            Some(1),
            "suffix wildcards come before prefix ones"
        );
        assert_eq!(idx.lookup("api.example"), Some(3));
    }
}
