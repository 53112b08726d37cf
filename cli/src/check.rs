//! `tower-mesh check`: every error and warning of a rule set, with its place.

use std::process::ExitCode;

use tower_mesh::{DocumentRef, ErrorKind, LoadError, LoadOptions, Loader, Warning};

use crate::args::{Check, Format};
use crate::json::Object;

/// A stable name for each kind of error, for JSON readers.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Syntax => "syntax",
        ErrorKind::DuplicateKey => "duplicate_key",
        ErrorKind::Limit => "limit",
        ErrorKind::UnknownField => "unknown_field",
        ErrorKind::MissingField => "missing_field",
        ErrorKind::WrongType => "wrong_type",
        ErrorKind::InvalidValue => "invalid_value",
        ErrorKind::UnknownSubset => "unknown_subset",
        ErrorKind::Conflict => "conflict",
        ErrorKind::DuplicateResource => "duplicate_resource",
        ErrorKind::Io => "io",
        _ => "other",
    }
}

/// The document's fields of a JSON finding.
fn with_document(o: Object, doc: Option<&DocumentRef>) -> Object {
    let Some(doc) = doc else { return o };
    let file = doc.file.as_ref().map(|f| f.display().to_string());
    let resource = match (&doc.kind, &doc.name) {
        (Some(kind), Some(name)) => Some(match &doc.namespace {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        }),
        _ => None,
    };
    o.str("file", file.as_deref())
        .num("document", (doc.index > 0).then_some(doc.index))
        .str("resource", resource.as_deref())
}

fn error_json(e: &LoadError) -> String {
    let o = Object::new()
        .str("severity", Some("error"))
        .str("kind", Some(kind_name(e.kind())));
    with_document(o, e.document())
        .num("line", e.line())
        .num("column", e.column())
        .str("path", e.path())
        .str("code", e.code())
        .str("value", e.value())
        .str("message", Some(e.message()))
        .str("text", Some(&e.to_string()))
        .finish()
}

/// A warning (`severity` `warning`) or a note (`severity` `info`: kind `scope`, or `analysis`
/// for Istio's info-level findings), with its analyzer `code` when it has one.
fn warning_json(w: &Warning, note: bool) -> String {
    // An info finding with an analyzer code (IST0131) is Istio's analysis, not a scope note.
    let (severity, kind) = match (note, w.code()) {
        (true, None) => ("info", "scope"),
        (true, Some(_)) => ("info", "analysis"),
        (false, _) => ("warning", "warning"),
    };
    let o = Object::new()
        .str("severity", Some(severity))
        .str("kind", Some(kind));
    with_document(o, Some(w.document()))
        .num("line", w.line())
        .str("path", w.path())
        .str("code", w.code())
        .str("message", Some(w.message()))
        .str("text", Some(&w.to_string()))
        .finish()
}

/// What one load found.
struct Found {
    errors: Vec<LoadError>,
    warnings: Vec<Warning>,
    notes: Vec<Warning>,
    skipped: Vec<DocumentRef>,
}

/// Loads `c.files` as one rule set.
fn load(c: &Check) -> Found {
    let mut options = LoadOptions::default();
    if let Some(ns) = &c.namespace {
        options = options.with_default_namespace(ns);
    }
    let loader = c
        .files
        .iter()
        .fold(Loader::new().options(options), |l, f| l.file(f));
    match loader.load() {
        Ok(rules) => Found {
            errors: Vec::new(),
            warnings: rules.warnings().to_vec(),
            notes: rules.notes().to_vec(),
            skipped: rules.skipped().to_vec(),
        },
        Err(e) => Found {
            errors: e.errors().cloned().collect(),
            warnings: e.warnings().to_vec(),
            notes: e.notes().to_vec(),
            skipped: e.skipped().to_vec(),
        },
    }
}

/// A skipped document as a JSON finding: `severity` `info`, kind `skipped`.
fn skipped_json(doc: &DocumentRef) -> String {
    let o = Object::new()
        .str("severity", Some("info"))
        .str("kind", Some("skipped"));
    with_document(o, Some(doc))
        .num("line", Some(doc.line))
        .str("message", Some("not routing configuration"))
        .str("text", Some(&format!("{doc}: not routing configuration")))
        .finish()
}

/// Loads `c.files` as one rule set and prints what the load found: errors, warnings, scope
/// notes and skipped documents. Notes never fail the check.
pub(crate) fn run(c: &Check) -> ExitCode {
    let found = load(c);
    let json = c.format == Format::Json;
    for e in &found.errors {
        match json {
            false => match e.code() {
                Some(code) => println!("error: [{code}] {e}"),
                None => println!("error: {e}"),
            },
            true => println!("{}", error_json(e)),
        }
    }
    for (list, note) in [(&found.warnings, false), (&found.notes, true)] {
        for w in list {
            match (json, note) {
                (true, _) => println!("{}", warning_json(w, note)),
                (false, false) => println!("warning: {w}"),
                (false, true) => println!("info: {w}"),
            }
        }
    }
    for doc in &found.skipped {
        match json {
            false => println!("skipped: {doc}: not routing configuration"),
            true => println!("{}", skipped_json(doc)),
        }
    }
    if !json {
        println!("{}", summary(c.files.len(), &found));
    }
    let failed = !found.errors.is_empty() || (c.deny_warnings && !found.warnings.is_empty());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn summary(files: usize, found: &Found) -> String {
    let files = plural(files, "file");
    let warnings = plural(found.warnings.len(), "warning");
    let notes = plural(found.notes.len(), "note");
    let skipped = plural(found.skipped.len(), "document");
    if !found.errors.is_empty() {
        format!(
            "{files}: {}, {warnings}, {notes}, {skipped} skipped; the rules do not load",
            plural(found.errors.len(), "error")
        )
    } else {
        format!("{files}: the rules load; {warnings}, {notes}, {skipped} skipped")
    }
}
