//! Load errors and warnings, each naming where in the input it comes from.

use std::fmt;
use std::path::PathBuf;

/// Which document of the input an error or warning is about.
///
/// ```
/// let text = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: shop}\n";
/// let rules = tower_mesh::RuleSet::from_yaml(text)?;
/// let skipped = &rules.skipped()[0];
/// assert_eq!((skipped.index, skipped.line), (1, 1));
/// assert_eq!(skipped.kind.as_deref(), Some("Service"));
/// assert_eq!(skipped.to_string(), "document 1 (Service shop/reviews)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocumentRef {
    /// The file the document came from, when it was loaded from a file.
    pub file: Option<PathBuf>,
    /// 1-based position of the document in its text (`---` separates documents); 0 when the
    /// problem is with the file as a whole.
    pub index: usize,
    /// The document's `kind`, once known.
    pub kind: Option<String>,
    /// The document's `metadata.namespace`, when given.
    pub namespace: Option<String>,
    /// The document's `metadata.name`, once known.
    pub name: Option<String>,
    /// 1-based line where the document starts.
    pub line: usize,
}

/// Writes `text` with its control characters escaped (`\0`, `\n`, `\u{1b}`), so that an error
/// or warning about a hostile value prints on one line and cannot drive a terminal.
fn escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if !text.chars().any(hidden) {
        return f.write_str(text);
    }
    for c in text.chars() {
        if hidden(c) {
            write!(f, "{}", c.escape_debug())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

/// Characters that would break a line or disguise the text around them: control characters,
/// line and paragraph separators, and the bidirectional controls.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A text as [`escaped`] writes it.
struct Escaped<'a>(&'a str);

/// A path as messages write it: escaped as [`escaped`] does, so that a file name holding a
/// newline cannot start a line of its own (a CI system's workflow command, say).
pub(crate) struct ShownPath<'a>(pub(crate) &'a std::path::Path);

impl fmt::Display for ShownPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escaped(f, &self.0.to_string_lossy())
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escaped(f, self.0)
    }
}

impl fmt::Display for DocumentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index == 0 {
            // The file as a whole (it could not be read, or is not text).
            return match &self.file {
                Some(file) => write!(f, "{}", ShownPath(file)),
                None => f.write_str("the input"),
            };
        }
        if let Some(file) = &self.file {
            write!(f, "{}: ", ShownPath(file))?;
        }
        write!(f, "document {}", self.index)?;
        fn esc(s: &Option<String>) -> Option<Escaped<'_>> {
            s.as_deref().map(Escaped)
        }
        match (esc(&self.kind), esc(&self.name)) {
            (Some(kind), Some(name)) => match esc(&self.namespace) {
                Some(ns) => write!(f, " ({kind} {ns}/{name})"),
                None => write!(f, " ({kind} {name})"),
            },
            (Some(kind), None) => write!(f, " ({kind})"),
            _ => Ok(()),
        }
    }
}

/// What kind of problem a [`LoadError`] reports.
///
/// ```
/// use tower_mesh::{ErrorKind, RuleSet};
///
/// let kind = |text: &str| RuleSet::from_yaml(text).unwrap_err().kind();
/// assert_eq!(kind("kind: [unclosed"), ErrorKind::Syntax);
/// assert_eq!(kind("{a: 1, a: 2}"), ErrorKind::DuplicateKey);
/// assert_eq!(
///     kind("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hots: []}\n"),
///     ErrorKind::UnknownField
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not valid YAML or JSON.
    Syntax,
    /// A mapping has the same key twice.
    DuplicateKey,
    /// A bound of [`Limits`](crate::Limits) was exceeded.
    Limit,
    /// A field that the resource's schema does not have.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong type (a list where a string belongs, ...).
    WrongType,
    /// A value of the right type that is not allowed (a bad regex, a percentage above 100, ...).
    InvalidValue,
    /// A route names a subset that no DestinationRule defines.
    UnknownSubset,
    /// Fields that cannot be used together.
    Conflict,
    /// Two resources of one kind, namespace and name in one load.
    DuplicateResource,
    /// A file could not be read.
    Io,
}

impl ErrorKind {
    fn label(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::DuplicateKey => "duplicate key",
            ErrorKind::Limit => "limit exceeded",
            ErrorKind::UnknownField => "unknown field",
            ErrorKind::MissingField => "missing field",
            ErrorKind::WrongType => "wrong type",
            ErrorKind::InvalidValue => "invalid value",
            ErrorKind::UnknownSubset => "unknown subset",
            ErrorKind::Conflict => "conflicting fields",
            ErrorKind::DuplicateResource => "duplicate resource",
            ErrorKind::Io => "cannot read",
        }
    }
}

/// Why a configuration could not be loaded, and where.
///
/// Its `Display` names the document (file, index, kind and name), the line and column when the
/// format can tell them, the field path (`spec.http[0].match[1].headers.user-agent.regex`), the
/// bad value and what is allowed:
///
/// ```
/// let err = tower_mesh::RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - match:
///     - headers:
///         user-agent: {regex: "(Chrome"}
///     route:
///     - destination: {host: reviews}
/// "#).unwrap_err();
/// assert_eq!(err.kind(), tower_mesh::ErrorKind::InvalidValue);
/// assert_eq!(err.path(), Some("spec.http[0].match[0].headers.user-agent.regex"));
/// assert_eq!(err.line(), Some(10));
/// assert!(err.to_string().starts_with("document 1 (VirtualService reviews), line 10"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError(Box<Inner>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    document: Option<DocumentRef>,
    path: Option<String>,
    value: Option<String>,
    message: String,
    line: Option<usize>,
    column: Option<usize>,
    /// When the load found several errors: each of them, the first included, alone.
    all: Vec<LoadError>,
    /// Whether the load stopped at `Limits::max_errors` with more to find.
    truncated: bool,
    /// The warnings the load had produced when it failed.
    warnings: Vec<Warning>,
    /// The scope notes and the skipped documents of the load, likewise.
    notes: Vec<Warning>,
    skipped: Vec<DocumentRef>,
    /// For an error of kind `Limit` on the whole rule set, the limit's field in [`Limits`]
    /// (`"max_routes"`), so that callers tell them apart without reading the message.
    ///
    /// [`Limits`]: crate::Limits
    set_limit: Option<&'static str>,
}

impl LoadError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        LoadError(Box::new(Inner {
            kind,
            document: None,
            path: None,
            value: None,
            message: message.into(),
            line: None,
            column: None,
            all: Vec::new(),
            truncated: false,
            warnings: Vec::new(),
            notes: Vec::new(),
            skipped: Vec::new(),
            set_limit: None,
        }))
    }

    /// One error standing for all of `errors` (at least one): its accessors describe the
    /// first, [`errors`](LoadError::errors) lists them all. `truncated`: the load stopped at
    /// `Limits::max_errors`.
    pub(crate) fn several(mut errors: Vec<LoadError>, truncated: bool) -> Self {
        if errors.len() == 1 && !truncated {
            return errors.remove(0);
        }
        let mut head = errors[0].clone();
        head.0.all = errors;
        head.0.truncated = truncated;
        head
    }

    /// Marks the error as the whole rule set passing `limit` (a field of `Limits`).
    pub(crate) fn over_set_limit(mut self, limit: &'static str) -> Self {
        self.0.kind = ErrorKind::Limit;
        self.0.set_limit = Some(limit);
        self
    }

    /// The limit on the whole rule set this error is about (`"max_routes"`, `"max_matches"`,
    /// `"max_regex_total"`, `"max_total_bytes"`, `"max_total_nodes"`), if any.
    pub(crate) fn set_limit(&self) -> Option<&'static str> {
        self.0.set_limit
    }

    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.0.kind = kind;
        self
    }

    pub(crate) fn with_document(mut self, document: DocumentRef) -> Self {
        self.0.document = Some(document);
        self
    }

    pub(crate) fn with_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.0.path = (!path.is_empty()).then_some(path);
        self
    }

    pub(crate) fn with_value(mut self, value: impl Into<String>) -> Self {
        self.0.value = Some(value.into());
        self
    }

    pub(crate) fn at(mut self, line: usize, column: usize) -> Self {
        self.0.line = Some(line);
        self.0.column = Some(column);
        self
    }

    pub(crate) fn is_located(&self) -> bool {
        self.0.path.is_some() || self.0.line.is_some()
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Istio's analyzer code for the same problem, when `istioctl analyze` has one: `IST0101`
    /// (referenced resource not found) for a subset no DestinationRule defines.
    pub fn code(&self) -> Option<&'static str> {
        match self.0.kind {
            ErrorKind::UnknownSubset => Some("IST0101"),
            _ => None,
        }
    }

    /// The document the problem is in, when it is in one.
    pub fn document(&self) -> Option<&DocumentRef> {
        self.0.document.as_ref()
    }

    /// The field path inside the document, e.g. `spec.http[0].route[1].weight`.
    pub fn path(&self) -> Option<&str> {
        self.0.path.as_deref()
    }

    /// The offending value, as written.
    pub fn value(&self) -> Option<&str> {
        self.0.value.as_deref()
    }

    /// What is wrong and what is allowed, without the location.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// 1-based line in the input, when the format can tell it.
    pub fn line(&self) -> Option<usize> {
        self.0.line
    }

    /// 1-based column in the input, when the format can tell it.
    pub fn column(&self) -> Option<usize> {
        self.0.column
    }

    /// Every error the load found, in input order, each with its own location; the first is
    /// the one this error's accessors describe. A load goes on past an error to the next
    /// document, and within a VirtualService to the next HTTP route, so that one run reports
    /// every mistake, up to [`Limits::max_errors`](crate::Limits::max_errors). Errors that stop
    /// reading (syntax, limits) end the list.
    ///
    /// `Display` prints each of them on its own line.
    ///
    /// ```
    /// let err = tower_mesh::RuleSet::from_yaml(r#"
    /// apiVersion: networking.istio.io/v1
    /// kind: VirtualService
    /// metadata: {name: reviews}
    /// spec:
    ///   hosts: [reviews]
    ///   http:
    ///   - timeout: 5
    ///     route: [{destination: {host: reviews}}]
    ///   - route: [{destination: {host: reviews}, wieght: 10}]
    /// "#).unwrap_err();
    /// let paths: Vec<_> = err.errors().map(|e| e.path().unwrap()).collect();
    /// assert_eq!(paths, ["spec.http[0].timeout", "spec.http[1].route[0].wieght"]);
    /// assert!(err.errors().nth(1).unwrap().message().contains("did you mean `weight`?"));
    /// assert_eq!(err.to_string().lines().count(), 2);
    /// ```
    pub fn errors(&self) -> impl Iterator<Item = &LoadError> + '_ {
        let single = self.0.all.is_empty().then_some(self);
        single.into_iter().chain(self.0.all.iter())
    }

    /// Whether the load stopped at [`Limits::max_errors`](crate::Limits::max_errors) with
    /// input left unchecked.
    pub fn is_truncated(&self) -> bool {
        self.0.truncated
    }

    /// The warnings about the documents that were read before the load failed (the same
    /// [`RuleSet::warnings`](crate::RuleSet::warnings) would have listed), so that a checker
    /// can show them along with the errors.
    pub fn warnings(&self) -> &[Warning] {
        &self.0.warnings
    }

    /// The scope notes of the documents read before the load failed (as
    /// [`RuleSet::notes`](crate::RuleSet::notes)).
    pub fn notes(&self) -> &[Warning] {
        &self.0.notes
    }

    /// The documents the load skipped, not being routing configuration (as
    /// [`RuleSet::skipped`](crate::RuleSet::skipped)).
    pub fn skipped(&self) -> &[DocumentRef] {
        &self.0.skipped
    }

    pub(crate) fn with_warnings(mut self, warnings: Vec<Warning>) -> Self {
        self.0.warnings = warnings;
        self
    }

    pub(crate) fn with_notes(mut self, notes: Vec<Warning>, skipped: Vec<DocumentRef>) -> Self {
        self.0.notes = notes;
        self.0.skipped = skipped;
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for e in self.errors() {
            f.write_str(sep)?;
            e.fmt_one(f)?;
            sep = "\n";
        }
        if self.0.truncated {
            f.write_str("\n(stopped after this many errors: Limits::max_errors)")?;
        }
        Ok(())
    }
}

impl LoadError {
    /// Writes this one error (without the others of [`errors`](LoadError::errors)).
    fn fmt_one(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        let mut sep = "";
        if let Some(doc) = &e.document {
            write!(f, "{doc}")?;
            sep = ", ";
        }
        if let Some(line) = e.line {
            write!(f, "{sep}line {line}")?;
            if let Some(col) = e.column {
                write!(f, ", column {col}")?;
            }
            sep = ", ";
        }
        if !sep.is_empty() {
            f.write_str(": ")?;
        }
        if let Some(path) = &e.path {
            write!(f, "{}: ", Escaped(path))?;
        }
        write!(f, "{}: {}", e.kind.label(), Escaped(&e.message))
    }
}

impl std::error::Error for LoadError {}

/// The errors of one load, gathered so that a load reports every mistake it finds, up to
/// `Limits::max_errors`.
#[derive(Default)]
pub(crate) struct Collector {
    errors: Vec<LoadError>,
    max: usize,
    truncated: bool,
    /// A limit was exceeded: the load stops, whatever is left.
    stopped: bool,
}

impl Collector {
    pub(crate) fn new(max: usize) -> Self {
        Collector {
            errors: Vec::new(),
            max: max.max(1),
            truncated: false,
            stopped: false,
        }
    }

    /// Records `err` (every one of its [`LoadError::errors`]); returns whether the load must
    /// stop: a limit was exceeded, or `max` errors were reached.
    pub(crate) fn push(&mut self, err: LoadError) -> bool {
        for e in err.errors() {
            if self.errors.len() >= self.max {
                self.truncated = true;
                break;
            }
            let mut one = e.clone();
            one.0.all = Vec::new();
            self.stopped |= one.kind() == ErrorKind::Limit;
            self.errors.push(one);
        }
        self.truncated |= err.is_truncated() || self.errors.len() >= self.max;
        self.must_stop()
    }

    /// Whether a limit was exceeded or `max` errors were reached.
    pub(crate) fn must_stop(&self) -> bool {
        self.stopped || self.truncated
    }

    /// Puts the errors in input order: by `source` (the position of the document's file among
    /// the inputs), then document, then line.
    pub(crate) fn sort_by_source(&mut self, source: impl Fn(Option<&std::path::Path>) -> usize) {
        self.errors.sort_by_cached_key(|e| {
            let doc = e.document();
            (
                source(doc.and_then(|d| d.file.as_deref())),
                doc.map_or(0, |d| d.index),
                e.line().unwrap_or(0),
            )
        });
    }

    /// The errors recorded, one by one.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    pub(crate) fn into_vec(self) -> Vec<LoadError> {
        self.errors
    }

    /// `Err` with every error recorded, if there is one.
    pub(crate) fn finish(&mut self) -> Result<(), LoadError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let errors = std::mem::take(&mut self.errors);
        Err(LoadError::several(errors, self.truncated && !self.stopped))
    }
}

/// Something in a configuration that loads, but probably does not do what its author meant,
/// or that tower-mesh maps or ignores (a deprecated field, a rule no request can reach, ...).
///
/// ```
/// let rules = tower_mesh::RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - route: [{destination: {host: reviews}}]
///   - name: never
///     route: [{destination: {host: reviews}}]
/// "#)?;
/// let warning = &rules.warnings()[0];
/// assert_eq!(warning.path(), Some("spec.http[1]"));
/// assert_eq!(warning.line(), Some(9));
/// assert!(warning.message().contains("unreachable"), "{warning}");
/// assert_eq!(warning.document().name.as_deref(), Some("reviews"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub(crate) document: DocumentRef,
    pub(crate) path: Option<String>,
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
    pub(crate) code: Option<&'static str>,
}

impl Warning {
    /// Istio's analyzer code for this finding (`IST0109`, `IST0130`, `IST0131`, ...), when
    /// `istioctl analyze` reports the same thing under a code.
    pub fn code(&self) -> Option<&'static str> {
        self.code
    }

    /// The document (resource) the warning is about.
    pub fn document(&self) -> &DocumentRef {
        &self.document
    }

    /// The field path inside the document, when the warning is about one field.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// 1-based line in the input, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What the warning says, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.code {
            write!(f, "[{code}] ")?;
        }
        write!(f, "{}", self.document)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        f.write_str(": ")?;
        if let Some(path) = &self.path {
            write!(f, "{}: ", Escaped(path))?;
        }
        escaped(f, &self.message)
    }
}
