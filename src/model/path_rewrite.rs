//! A route's rewrite of the path and authority, and `uriRegexRewrite`'s templates.

/// A `uriRegexRewrite`: every match of a regex in the path is replaced by a template whose
/// `\1` back-references stand for the match's groups (RE2's and Envoy's form).
#[derive(Clone, Debug)]
pub(crate) struct RegexRewrite {
    re: regex_automata::meta::Regex,
    pattern: Box<str>,
    /// The replacement as configured.
    template: Box<str>,
    pieces: Box<[Piece]>,
}

/// A part of a rewrite template: text, or the text of a group of the match (`\1`).
#[derive(Clone, Debug)]
enum Piece {
    Text(Box<str>),
    Group(usize),
}

/// A rewritten path would have been longer than the limit given (`limit`, in bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TooLong {
    pub(super) limit: usize,
}

impl RegexRewrite {
    /// Compiles `pattern` (unanchored: every match is replaced) with its compiled size bounded
    /// by `max_size`, and reads the template.
    pub(crate) fn new(
        pattern: &str,
        template: &str,
        max_size: usize,
    ) -> Result<Self, super::string_match::PatternError> {
        use regex_automata::meta;
        let config = meta::Config::new()
            .nfa_size_limit(Some(max_size))
            .hybrid_cache_capacity(max_size.saturating_mul(2));
        let re = meta::Builder::new()
            .configure(config)
            .build(pattern)
            .map_err(|e| super::string_match::PatternError {
                message: e.to_string(),
            })?;
        Ok(RegexRewrite {
            re,
            pattern: pattern.into(),
            template: template.into(),
            pieces: parse_template(template),
        })
    }

    /// The heap memory the compiled regex holds, in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.re.memory_usage()
    }

    /// `path` with every match replaced, or [`TooLong`] as soon as the result would pass
    /// `limit` bytes: however the template repeats a group, no more than `limit` bytes are
    /// ever written.
    pub(super) fn apply(&self, path: &str, limit: usize) -> Result<String, TooLong> {
        let too_long = TooLong { limit };
        let mut out = String::new();
        let push = |out: &mut String, text: &str| {
            if out.len() + text.len() > limit {
                return Err(too_long);
            }
            out.push_str(text);
            Ok(())
        };
        let mut last = 0;
        for caps in self.re.captures_iter(path) {
            let Some(whole) = caps.get_match() else {
                continue;
            };
            push(&mut out, &path[last..whole.start()])?;
            for piece in &self.pieces {
                match piece {
                    Piece::Text(t) => push(&mut out, t)?,
                    Piece::Group(i) => {
                        if let Some(span) = caps.get_group(*i) {
                            push(&mut out, &path[span.range()])?;
                        }
                    }
                }
            }
            last = whole.end();
        }
        push(&mut out, &path[last..])?;
        Ok(out)
    }
}

/// Splits a template into text and `\N` group references; a `\` not followed by a digit is text.
fn parse_template(template: &str) -> Box<[Piece]> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('\\') {
        let digits = rest[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits == 0 {
            text.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        }
        text.push_str(&rest[..at]);
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text).into()));
        }
        // A group number too large for any regex refers to no group: it expands to nothing.
        let n = rest[at + 1..at + 1 + digits].parse().unwrap_or(usize::MAX);
        pieces.push(Piece::Group(n));
        rest = &rest[at + 1 + digits..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text.into()));
    }
    pieces.into()
}

/// A path rewrite.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match:
///     - headers: {end-user: {exact: jason}}
///       sourceLabels: {app: productpage}
///     fault:
///       delay: {fixedDelay: 2s, percentage: {value: 50}}
///       abort: {httpStatus: 503, percentage: {value: 1}}
///     rewrite: {uri: /v2}
///     headers: {response: {set: {x-version: v2}}}
///     route:
///     - destination: {host: reviews}
///       weight: 90
///     - destination: {host: reviews-canary}
///       weight: 10
///       headers: {request: {add: {x-canary: "yes"}}}
///   - redirect: {uri: /login, port: 8443}
/// "#)?;
/// let jason = Request::get("/").header("end-user", "jason").body(())?;
/// let ctx = Context::new()
///     .with_host("reviews")
///     .with_caller(Caller::new().with_labels([("app", "productpage")]));
/// let decision = rules.evaluate(&jason, &ctx, &NeverSampler);
/// let route = decision.route().unwrap();
/// let rewrite = route.policy().rewrite().unwrap();
/// assert_eq!((rewrite.uri(), rewrite.authority(), rewrite.uri_regex()), (Some("/v2"), None, None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Rewrite {
    pub(super) uri: Option<Box<str>>,
    pub(super) authority: Option<Box<str>>,
    pub(super) uri_regex: Option<RegexRewrite>,
    /// `uri` replaces the whole path, whatever the match (the Gateway API's
    /// `ReplaceFullPath`).
    pub(super) full_path: bool,
}

impl Rewrite {
    /// A rewrite of the path (`uri`, or every match of `uri_regex`) and of the authority.
    pub(crate) fn new(
        uri: Option<Box<str>>,
        authority: Option<Box<str>>,
        uri_regex: Option<RegexRewrite>,
    ) -> Self {
        Rewrite {
            uri,
            authority,
            uri_regex,
            full_path: false,
        }
    }

    /// The same rewrite, with `uri` replacing the whole path whatever the match.
    pub(crate) fn replacing_full_path(mut self) -> Self {
        self.full_path = true;
        self
    }

    /// The prefix (or path) that replaces the matched part.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
    /// The authority that replaces the request's.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }
    /// The `uriRegexRewrite` pattern (as written) and its replacement.
    pub fn uri_regex(&self) -> Option<(&str, &str)> {
        self.uri_regex.as_ref().map(|r| (&*r.pattern, &*r.template))
    }
}

#[cfg(test)]
mod tests {
    use super::{RegexRewrite, TooLong};

    #[test]
    fn regex_rewrites_expand_back_references() {
        let r =
            RegexRewrite::new(r"^/service/([^/]+)(/.*)$", r"/customprefix/\2/\1", 1 << 20).unwrap();
        assert_eq!(
            r.apply("/service/a/b/c", 100).unwrap(),
            "/customprefix//b/c/a"
        );
        // Every match is replaced; `$` and a `\` without a digit are plain text.
        let r = RegexRewrite::new("o", r"$\x\1", 1 << 20).unwrap();
        assert_eq!(r.apply("/foo", 100).unwrap(), r"/f$\x$\x");
        // A group the regex does not have expands to nothing.
        let r = RegexRewrite::new("(o)", r"[\1\9]", 1 << 20).unwrap();
        assert_eq!(r.apply("/o", 100).unwrap(), "/[o]");
    }

    #[test]
    fn regex_rewrites_stop_at_the_limit() {
        let r = RegexRewrite::new("^(.*)$", &r"\1".repeat(1000), 1 << 20).unwrap();
        let path = format!("/{}", "a".repeat(65_000));
        assert_eq!(r.apply(&path, 65_534), Err(TooLong { limit: 65_534 }));
        assert_eq!(r.apply("/a", 2_000).unwrap().len(), 2_000);
    }
}
