//! `StringMatch`, compiled: exact, prefix, full-match regex, or presence.

use std::fmt;

use memchr::memmem;

use super::simple_regex::{Simple, strip_anchors};
use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;

/// A compiled Istio `StringMatch`.
///
/// Regexes are full matches (`^(?:…)$`), as Envoy's `RE2::FullMatch`. Regexes that are a
/// literal with `.*` around it (the walkthrough's `.*Chrome.*`) are answered by a substring
/// search with the same result, without running a regex engine.
///
/// ```
/// use tower_mesh::model::StringMatch;
///
/// let chrome = StringMatch::regex(".*Chrome.*", 1 << 20)?;
/// assert!(chrome.matches(b"Mozilla/5.0 Chrome/70.0"));
/// assert!(!chrome.matches(b"curl/8.4.0"));
/// assert!(StringMatch::prefix("/api").matches(b"/api/v1"));
/// assert!(!StringMatch::exact("v1").matches(b"V1"), "values keep their case");
/// assert_eq!(chrome.describe(), r#"regex ".*Chrome.*""#);
/// # Ok::<(), tower_mesh::model::PatternError>(())
/// ```
#[derive(Clone)]
pub struct StringMatch {
    kind: Kind,
    /// The value as configured, for explanations.
    source: Box<str>,
    /// Whether it was configured as a regex.
    regex: bool,
}

#[derive(Clone)]
enum Kind {
    Exact {
        value: Box<[u8]>,
        ignore_case: bool,
    },
    Prefix {
        value: Box<[u8]>,
        ignore_case: bool,
    },
    /// The Gateway API's `PathPrefix`: the path is `value` or continues it after a `/`
    /// (`value` without its trailing `/`; empty for `/`, which every path matches).
    Segments {
        value: Box<[u8]>,
    },
    /// `.*`: any valid UTF-8 value without a line feed (the regex's `.` is any scalar value
    /// but `\n`, in its Unicode default).
    Any,
    /// A regex equivalent to `<lit>.*` (`suffix` false) or `.*<lit>` (`suffix` true).
    LiteralEdge {
        lit: Box<[u8]>,
        suffix: bool,
    },
    /// A regex equivalent to `.*<lit>.*`.
    Contains(Box<memmem::Finder<'static>>),
    /// A regex of ASCII literals and classes, matched greedily without a regex engine (see
    /// [`Simple`]), with the literals every match starts and ends with (for indexing).
    Simple {
        pattern: Simple,
        prefix: Option<Box<[u8]>>,
        suffix: Option<Box<[u8]>>,
    },
    /// A regex, with literals every match must start and end with (for indexing). It is
    /// compiled when loaded (to check it), then again when first used: a rule set of many
    /// regexes that the route index rarely needs to run holds little memory.
    Regex {
        re: Box<LazyRegex>,
        prefix: Option<Box<[u8]>>,
        suffix: Option<Box<[u8]>>,
    },
    Present,
}

/// A full-match regex compiled on first use; the pattern compiled once already, so compiling it
/// again gives the same regex.
#[derive(Clone)]
struct LazyRegex {
    anchored: Box<str>,
    max_size: usize,
    /// The compiled size when it was checked, for the loader's limits.
    heap_bytes: usize,
    re: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    fn is_match(&self, value: &[u8]) -> bool {
        // `None` cannot happen (the same pattern compiled when loaded); it would match nothing.
        self.re
            .get_or_init(|| compile(&self.anchored, self.max_size).ok())
            .as_ref()
            .is_some_and(|re| re.is_match(value))
    }
}

/// Compiles `pattern` as the `regex` crate's `bytes::Regex` does (leftmost-first, Unicode on,
/// not limited to UTF-8 input), with the compiled program and the lazy DFA's cache bounded by
/// `max_size`. The `regex_automata` engine is used directly for its memory usage figure.
fn compile(pattern: &str, max_size: usize) -> Result<Regex, PatternError> {
    let config = meta::Config::new()
        .match_kind(regex_automata::MatchKind::LeftmostFirst)
        .utf8_empty(false)
        .nfa_size_limit(Some(max_size))
        .hybrid_cache_capacity(max_size.saturating_mul(2));
    meta::Builder::new()
        .configure(config)
        .syntax(syntax::Config::new().utf8(false))
        .build(pattern)
        .map_err(|e| PatternError {
            message: match e.size_limit() {
                Some(limit) => format!("the regex compiles to more than {limit} bytes"),
                None => match e.syntax_error() {
                    Some(syntax) => first_error_line(&syntax.to_string()),
                    None => e.to_string(),
                },
            },
        })
}

/// The first line of a syntax error that says what is wrong, without the pattern drawn above it.
fn first_error_line(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map_or_else(|| text.to_string(), str::to_string)
}

/// Why a pattern could not be compiled.
///
/// ```
/// use tower_mesh::model::StringMatch;
///
/// let err = StringMatch::regex("(Chrome", 1 << 20).unwrap_err();
/// assert!(err.message.contains("unclosed"), "{}", err.message);
/// let err = StringMatch::regex(r"\w{500}", 1_000).unwrap_err();
/// assert!(err.message.contains("more than 1000 bytes"), "{}", err.message);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// What is wrong, in words.
    pub message: String,
}

impl StringMatch {
    /// A byte-exact comparison.
    pub fn exact(value: &str) -> Self {
        Self::exact_with_case(value, false)
    }

    /// An exact comparison, ASCII-case-insensitive when `ignore_case` (Istio's `ignoreUriCase`).
    pub fn exact_with_case(value: &str, ignore_case: bool) -> Self {
        StringMatch {
            kind: Kind::Exact {
                value: value.as_bytes().into(),
                ignore_case,
            },
            source: value.into(),
            regex: false,
        }
    }

    /// A starts-with comparison.
    pub fn prefix(value: &str) -> Self {
        Self::prefix_with_case(value, false)
    }

    /// A starts-with comparison, ASCII-case-insensitive when `ignore_case`.
    pub fn prefix_with_case(value: &str, ignore_case: bool) -> Self {
        StringMatch {
            kind: Kind::Prefix {
                value: value.as_bytes().into(),
                ignore_case,
            },
            source: value.into(),
            regex: false,
        }
    }

    /// The Gateway API's `PathPrefix` match: whole path segments, so `/abc` matches `/abc`,
    /// `/abc/` and `/abc/def` but not `/abcd`; a trailing `/` in `value` changes nothing.
    pub(crate) fn path_segments(value: &str) -> Self {
        let trimmed = value.strip_suffix('/').unwrap_or(value);
        StringMatch {
            kind: Kind::Segments {
                value: trimmed.as_bytes().into(),
            },
            source: value.into(),
            regex: false,
        }
    }

    /// Presence: matches any value, including the empty one.
    pub fn present() -> Self {
        StringMatch {
            kind: Kind::Present,
            source: "".into(),
            regex: false,
        }
    }

    /// A regular expression that must match the whole value (RE2 syntax, as the `regex` crate
    /// reads it). `max_size` bounds the compiled program, in bytes.
    pub fn regex(pattern: &str, max_size: usize) -> Result<Self, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError {
                message: "a regex must not be empty".into(),
            });
        }
        // A literal with `.*` around it needs no regex engine (and cannot fail to compile).
        if let Some(kind) = literal_form(pattern) {
            return Ok(StringMatch {
                kind,
                source: pattern.into(),
                regex: true,
            });
        }
        if let Some(simple) = Simple::parse(pattern) {
            let (prefix, suffix) = required_literals(pattern);
            return Ok(StringMatch {
                kind: Kind::Simple {
                    pattern: simple,
                    prefix,
                    suffix,
                },
                source: pattern.into(),
                regex: true,
            });
        }
        let anchored = format!("^(?:{pattern})$");
        let heap_bytes = compile(&anchored, max_size)?.memory_usage();
        let (prefix, suffix) = required_literals(pattern);
        let kind = Kind::Regex {
            re: Box::new(LazyRegex {
                anchored: anchored.into(),
                max_size,
                heap_bytes,
                re: std::sync::OnceLock::new(),
            }),
            prefix,
            suffix,
        };
        Ok(StringMatch {
            kind,
            source: pattern.into(),
            regex: true,
        })
    }

    /// The heap memory the compiled regex holds, in bytes (0 for a match that needs no regex
    /// engine); the loader counts it against `Limits::max_regex_total`.
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.kind {
            Kind::Regex { re, .. } => re.heap_bytes,
            _ => 0,
        }
    }

    /// The configured value (the regex as written, the exact or prefix text).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether this came from a `regex` (one answered by a literal comparison included).
    pub(crate) fn is_regex(&self) -> bool {
        self.regex
    }

    /// Whether this is a presence match.
    pub fn is_presence(&self) -> bool {
        matches!(self.kind, Kind::Present)
    }

    /// How a path rewrite treats the part of the path this matcher matched: an exact match
    /// swaps the whole path, a prefix match the prefix (`Some(len)`), a regex the whole path.
    pub(crate) fn rewrite_prefix_len(&self) -> Option<usize> {
        match &self.kind {
            Kind::Prefix { value, .. } | Kind::Segments { value } => Some(value.len()),
            _ => None,
        }
    }

    /// Whether every request path matches (`prefix: "/"`, `prefix: ""` or `regex: ".*"`).
    pub(super) fn matches_every_path(&self) -> bool {
        match &self.kind {
            Kind::Prefix { value, .. } => value.is_empty() || &**value == b"/",
            Kind::Segments { value } => value.is_empty(),
            Kind::Any | Kind::Present => true,
            _ => false,
        }
    }

    /// Literals a matching value must equal, start with or end with, for indexing.
    pub(super) fn index_keys(&self) -> Vec<(KeyKind, &[u8])> {
        match &self.kind {
            Kind::Exact {
                value,
                ignore_case: false,
            } => vec![(KeyKind::Exact, value)],
            Kind::Prefix {
                value,
                ignore_case: false,
            } if !value.is_empty() => vec![(KeyKind::Prefix, value)],
            Kind::Segments { value } if !value.is_empty() => vec![(KeyKind::Prefix, value)],
            Kind::LiteralEdge { lit, suffix: false } => vec![(KeyKind::Prefix, lit)],
            Kind::LiteralEdge { lit, suffix: true } => vec![(KeyKind::Suffix, lit)],
            Kind::Regex { prefix, suffix, .. } | Kind::Simple { prefix, suffix, .. } => prefix
                .iter()
                .map(|p| (KeyKind::Prefix, &**p))
                .chain(suffix.iter().map(|s| (KeyKind::Suffix, &**s)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The full-match pattern of a regex that a multi-pattern search can stand in for (the
    /// route index runs one search for many routes' regexes on one field); `None` for the
    /// other kinds and for `.*`, which every value matches.
    pub(super) fn set_pattern(&self) -> Option<String> {
        match &self.kind {
            Kind::Regex { .. }
            | Kind::Simple { .. }
            | Kind::Contains(_)
            | Kind::LiteralEdge { .. } => Some(format!("^(?:{})$", self.source)),
            _ => None,
        }
    }

    /// A literal of at least two bytes that every value this regex matches contains (the
    /// longest one found), so that a search for the literals of many routes' regexes can pick
    /// the few worth running; `None` for other kinds, or when no such literal is known.
    pub(super) fn inner_literal(&self) -> Option<Vec<u8>> {
        self.set_pattern()?;
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(&self.source)
            .ok()?;
        required_inner(&hir).filter(|lit| lit.len() >= 2)
    }

    /// A multi-pattern regex over `patterns` (from [`set_pattern`](Self::set_pattern)),
    /// compiled as each pattern alone is, reporting every pattern that matches; `None` when it
    /// would be larger than `max_size`.
    pub(super) fn compile_set(patterns: &[String], max_size: usize) -> Option<Regex> {
        let config = meta::Config::new()
            .match_kind(regex_automata::MatchKind::All)
            .utf8_empty(false)
            .nfa_size_limit(Some(max_size))
            .hybrid_cache_capacity(max_size);
        meta::Builder::new()
            .configure(config)
            .syntax(syntax::Config::new().utf8(false))
            .build_many(patterns)
            .ok()
    }

    /// Whether a value matches.
    #[inline]
    pub fn matches(&self, value: &[u8]) -> bool {
        self.matches_impl::<false>(value)
    }

    /// [`matches`](Self::matches) for a value taken from an `http` type (header value, path,
    /// query, method, authority), which can never contain a line feed.
    #[inline]
    pub(super) fn matches_http(&self, value: &[u8]) -> bool {
        debug_assert!(!value.contains(&b'\n'));
        self.matches_impl::<true>(value)
    }

    #[inline]
    fn matches_impl<const NO_LF: bool>(&self, value: &[u8]) -> bool {
        let dot_star = |v: &[u8]| {
            (NO_LF || memchr::memchr(b'\n', v).is_none())
                && (all_ascii(v) || std::str::from_utf8(v).is_ok())
        };
        match &self.kind {
            Kind::Exact {
                value: v,
                ignore_case: false,
            } => value == &**v,
            Kind::Exact {
                value: v,
                ignore_case: true,
            } => value.eq_ignore_ascii_case(v),
            Kind::Prefix {
                value: v,
                ignore_case: false,
            } => value.starts_with(v),
            Kind::Prefix {
                value: v,
                ignore_case: true,
            } => value.len() >= v.len() && value[..v.len()].eq_ignore_ascii_case(v),
            Kind::Segments { value: v } => {
                value.starts_with(v) && (value.len() == v.len() || value[v.len()] == b'/')
            }
            Kind::Present => true,
            Kind::Any => dot_star(value),
            Kind::LiteralEdge { lit, suffix: false } => {
                value.starts_with(lit) && dot_star(&value[lit.len()..])
            }
            Kind::LiteralEdge { lit, suffix: true } => {
                value.ends_with(lit) && dot_star(&value[..value.len() - lit.len()])
            }
            Kind::Contains(finder) => contains(finder, value) && dot_star(value),
            Kind::Simple { pattern, .. } => pattern.matches(value),
            Kind::Regex { re, .. } => re.is_match(value),
        }
    }

    /// The form a user wrote, for explanations: `exact "v1"`, `regex ".*Chrome.*"`, ...
    pub fn describe(&self) -> String {
        if self.regex {
            return format!("regex {:?}", &*self.source);
        }
        match &self.kind {
            Kind::Exact {
                ignore_case: true, ..
            } => format!("exact {:?} (ignoring case)", &*self.source),
            Kind::Exact { .. } => format!("exact {:?}", &*self.source),
            Kind::Prefix {
                ignore_case: true, ..
            } => format!("prefix {:?} (ignoring case)", &*self.source),
            Kind::Prefix { .. } => format!("prefix {:?}", &*self.source),
            Kind::Segments { .. } => format!("path prefix {:?} (whole segments)", &*self.source),
            Kind::Present => "present".to_string(),
            _ => format!("regex {:?}", &*self.source),
        }
    }
}

/// Whether `value` contains the finder's needle. A short value (a `curl/8.4.0` user agent, say)
/// is scanned directly, which costs less than setting up the vectorised search.
#[inline]
fn contains(finder: &memmem::Finder<'_>, value: &[u8]) -> bool {
    const SHORT: usize = 32;
    let needle = finder.needle();
    if value.len() >= SHORT || needle.is_empty() {
        return finder.find(value).is_some();
    }
    let Some(last_start) = value.len().checked_sub(needle.len()) else {
        return false;
    };
    let first = needle[0];
    (0..=last_start).any(|i| value[i] == first && &value[i..i + needle.len()] == needle)
}

impl fmt::Debug for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Whether every byte is ASCII, eight at a time (header values are short; the standard
/// library's check goes byte by byte on them). The last eight bytes are read as one word, which
/// may overlap the whole words before them.
#[inline]
fn all_ascii(v: &[u8]) -> bool {
    let Some(last) = v.last_chunk::<8>() else {
        return v.iter().all(u8::is_ascii);
    };
    let (words, _) = v.as_chunks::<8>();
    let high = words.iter().fold(u64::from_ne_bytes(*last), |acc, w| {
        acc | u64::from_ne_bytes(*w)
    });
    high & 0x8080_8080_8080_8080 == 0
}

/// How an index key constrains a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum KeyKind {
    Exact,
    Prefix,
    Suffix,
}

/// A literal a match needs, if one was found.
type Literal = Option<Box<[u8]>>;

const META: &[u8] = b"\\.+*?()|[]{}^$";

/// Literals every full match of `pattern` starts and ends with, found conservatively: none for
/// patterns with alternation or flags; a literal that a quantifier could make optional is cut.
/// The longest literal that every match of `hir` contains, when one is evident: a literal, a
/// literal inside a group or a repetition taken at least once, or the longest of those among
/// the parts of a concatenation. Alternations and classes give none.
fn required_inner(hir: &regex_syntax::hir::Hir) -> Option<Vec<u8>> {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Literal(lit) => Some(lit.0.to_vec()),
        HirKind::Capture(group) => required_inner(&group.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => required_inner(&rep.sub),
        HirKind::Concat(parts) => parts.iter().filter_map(required_inner).max_by_key(Vec::len),
        _ => None,
    }
}

fn required_literals(pattern: &str) -> (Literal, Literal) {
    if pattern.contains('|') || pattern.contains("(?") {
        return (None, None);
    }
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    let p = match p.strip_suffix('$') {
        Some(rest) if !rest.ends_with('\\') => rest,
        _ => p,
    };
    let is_meta = |c: char| c.is_ascii() && META.contains(&(c as u8));
    let chars: Vec<char> = p.chars().collect();
    let mut head: Vec<char> = chars.iter().copied().take_while(|c| !is_meta(*c)).collect();
    if let Some(next) = chars.get(head.len())
        && matches!(next, '*' | '?' | '{')
    {
        head.pop();
    }
    let mut tail: Vec<char> = chars
        .iter()
        .rev()
        .copied()
        .take_while(|c| !is_meta(*c))
        .collect();
    tail.reverse();
    if tail.len() < chars.len() && chars[chars.len() - tail.len() - 1] == '\\' && !tail.is_empty() {
        tail.remove(0);
    }
    let pack = |v: Vec<char>| {
        (!v.is_empty()).then(|| {
            v.into_iter()
                .collect::<String>()
                .into_bytes()
                .into_boxed_slice()
        })
    };
    if head.len() == chars.len() {
        // No metacharacter at all: literal_form handles it.
        return (None, None);
    }
    (pack(head), pack(tail))
}

fn is_literal(s: &str) -> bool {
    !s.bytes().any(|b| META.contains(&b))
}

/// Recognises regexes that a literal comparison answers exactly.
fn literal_form(pattern: &str) -> Option<Kind> {
    let p = strip_anchors(pattern)?;
    if p == ".*" {
        return Some(Kind::Any);
    }
    let (lead, rest) = match p.strip_prefix(".*") {
        Some(r) => (true, r),
        None => (false, p),
    };
    let (lit, trail) = match rest.strip_suffix(".*") {
        Some(l) => (l, true),
        None => (rest, false),
    };
    if lit.is_empty() || !is_literal(lit) {
        return None;
    }
    let bytes: Box<[u8]> = lit.as_bytes().into();
    Some(match (lead, trail) {
        (false, false) => Kind::Exact {
            value: bytes,
            ignore_case: false,
        },
        (false, true) => Kind::LiteralEdge {
            lit: bytes,
            suffix: false,
        },
        (true, false) => Kind::LiteralEdge {
            lit: bytes,
            suffix: true,
        },
        (true, true) => Kind::Contains(Box::new(memmem::Finder::new(lit.as_bytes()).into_owned())),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_short_value_scan_agrees_with_the_vectorised_search() {
        let needles: [&[u8]; 4] = [
            b"C",
            b"Chrome",
            b"aab",
            b"0123456789abcdef0123456789abcdef0",
        ];
        let values: Vec<Vec<u8>> = (0..70)
            .flat_map(|len| {
                [
                    vec![b'a'; len],
                    (0..len).map(|i| b"aabChrome"[i % 9]).collect(),
                    [vec![b'x'; len], b"Chrome".to_vec()].concat(),
                    [b"Chrom".to_vec(), vec![b'e'; len]].concat(),
                ]
            })
            .collect();
        for needle in needles {
            let finder = memmem::Finder::new(needle);
            for v in &values {
                let expected = v.windows(needle.len()).any(|w| w == needle);
                assert_eq!(
                    super::contains(&finder, v),
                    expected,
                    "{:?} in {:?}",
                    needle,
                    v
                );
            }
        }
    }

    use super::*;

    fn re(p: &str) -> StringMatch {
        StringMatch::regex(p, 1 << 20).unwrap()
    }

    #[test]
    fn regex_is_a_full_match() {
        assert!(!re("abc").matches(b"xabcx"));
        assert!(re("abc").matches(b"abc"));
        assert!(re(".*abc.*").matches(b"xabcx"));
        assert!(re(r"\d{3}").matches(b"123"));
        assert!(!re(r"\d{3}").matches(b"1234"));
    }

    #[test]
    fn literal_forms_agree_with_the_regex_engine() {
        let values: &[&[u8]] = &[
            b"",
            b"Chrome",
            b"Mozilla Chrome/70",
            b"a\nChrome",
            b"Chrom",
            b"\xffChrome",
            b"xChrome",
            b"Chromex",
        ];
        for p in [
            ".*Chrome.*",
            "Chrome.*",
            ".*Chrome",
            "Chrome",
            ".*",
            "^Chrome$",
            "^.*Chrome.*$",
        ] {
            let fast = re(p);
            let slow = Regex::new(&format!("^(?:{p})$")).unwrap();
            for v in values {
                assert_eq!(fast.matches(v), slow.is_match(v), "{p} on {v:?}");
            }
        }
    }

    #[test]
    fn ascii_check() {
        assert!(all_ascii(b""));
        assert!(all_ascii(b"Mozilla/5.0 (X11; Linux x86_64) Chrome/70"));
        assert!(!all_ascii(
            b"Mozilla/5.0 \xff (X11; Linux x86_64) Chrome/70"
        ));
        assert!(!all_ascii(b"abcdefgh\x80"));
        assert!(!all_ascii(b"\x80abcdefgh"));
        // Every length around the word size, with the one non-ASCII byte at every place.
        for len in 1..=24 {
            let mut v = vec![b'a'; len];
            assert!(all_ascii(&v), "{len} ASCII bytes");
            for i in 0..len {
                v[i] = 0xc3;
                assert!(!all_ascii(&v), "non-ASCII byte at {i} of {len}");
                v[i] = b'a';
            }
        }
    }

    #[test]
    fn required_literals_are_conservative() {
        let lit = |p: &str| {
            let (a, b) = required_literals(p);
            (
                a.map(|x| String::from_utf8(x.into_vec()).unwrap()),
                b.map(|x| String::from_utf8(x.into_vec()).unwrap()),
            )
        };
        assert_eq!(
            lit("tenant-[0-9]+-7"),
            (Some("tenant-".into()), Some("-7".into()))
        );
        assert_eq!(lit("abc?d.*"), (Some("ab".into()), None));
        assert_eq!(lit(r"x\d7"), (Some("x".into()), Some("7".into())));
        assert_eq!(lit("a|b.*"), (None, None));
        assert_eq!(lit("(?i)abc.*"), (None, None));
        assert_eq!(lit("^(.*?;)?(user=jason)(;.*)?$"), (None, None));
    }

    #[test]
    fn inner_literals_are_ones_every_match_contains() {
        let inner = |p: &str| {
            StringMatch::regex(p, 1 << 20)
                .unwrap()
                .inner_literal()
                .map(|l| String::from_utf8(l).unwrap())
        };
        assert_eq!(
            inner(r".*\[app-7\].*(iOS|Android)/[0-9]+.*").as_deref(),
            Some("[app-7]")
        );
        assert_eq!(
            inner("^(.*?;)?(user=jason)(;.*)?$").as_deref(),
            Some("user=jason")
        );
        assert_eq!(inner("x(abc)+y[0-9]").as_deref(), Some("abc"));
        assert_eq!(
            inner(".*(abcdef)?x.*[0-9]"),
            None,
            "an optional group gives none"
        );
        assert_eq!(
            inner("(?i).*chrome.*[0-9]"),
            None,
            "nor does a case-insensitive one"
        );
        assert_eq!(inner("(ab|cd)[0-9]"), None);
        assert_eq!(inner("prefix"), None, "an exact value is not a regex kind");
        // Whatever the literal, every value the regex matches contains it.
        for (p, v) in [
            (r".*\[app-7\].*(iOS|Android)/[0-9]+.*", "M [app-7] iOS/1"),
            ("^(.*?;)?(user=jason)(;.*)?$", "a=1;user=jason"),
        ] {
            let m = StringMatch::regex(p, 1 << 20).unwrap();
            assert!(m.matches(v.as_bytes()));
            let lit = m.inner_literal().unwrap();
            assert!(memchr::memmem::find(v.as_bytes(), &lit).is_some());
        }
    }

    #[test]
    fn bad_regexes_are_errors() {
        assert!(StringMatch::regex("(", 1 << 20).is_err());
        assert!(StringMatch::regex("*", 1 << 20).is_err());
        assert!(
            StringMatch::regex("(?=a)", 1 << 20).is_err(),
            "lookahead is not RE2"
        );
        assert!(
            StringMatch::regex(r"(a)\1", 1 << 20).is_err(),
            "backreferences are not RE2"
        );
        assert!(StringMatch::regex("", 1 << 20).is_err());
        let err = StringMatch::regex("a{1000}{1000}", 1 << 20).unwrap_err();
        assert!(err.message.contains("more than"), "{}", err.message);
    }

    #[test]
    fn ignore_case_applies_to_exact_and_prefix() {
        assert!(StringMatch::exact_with_case("/Productpage", true).matches(b"/productPAGE"));
        assert!(StringMatch::prefix_with_case("/API", true).matches(b"/api/v1"));
        assert!(!StringMatch::prefix("/API").matches(b"/api/v1"));
    }
}
