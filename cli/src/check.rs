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
        .str("value", e.value())
        .str("message", Some(e.message()))
        .str("text", Some(&e.to_string()))
        .finish()
}

fn warning_json(w: &Warning) -> String {
    let o = Object::new()
        .str("severity", Some("warning"))
        .str("kind", Some("warning"));
    with_document(o, Some(w.document()))
        .num("line", w.line())
        .str("path", w.path())
        .str("message", Some(w.message()))
        .str("text", Some(&w.to_string()))
        .finish()
}

/// Loads `c.files` as one rule set and prints what the load found.
pub(crate) fn run(c: &Check) -> ExitCode {
    let mut options = LoadOptions::default();
    if let Some(ns) = &c.namespace {
        options = options.with_default_namespace(ns);
    }
    let loader = c
        .files
        .iter()
        .fold(Loader::new().options(options), |l, f| l.file(f));
    let (warnings, errors, skipped): (Vec<Warning>, Vec<LoadError>, Vec<DocumentRef>) =
        match loader.load() {
            Ok(rules) => (
                rules.warnings().to_vec(),
                Vec::new(),
                rules.skipped().to_vec(),
            ),
            Err(e) => (
                e.warnings().to_vec(),
                e.errors().cloned().collect(),
                Vec::new(),
            ),
        };
    for e in &errors {
        match c.format {
            Format::Text => println!("error: {e}"),
            Format::Json => println!("{}", error_json(e)),
        }
    }
    for w in &warnings {
        match c.format {
            Format::Text => println!("warning: {w}"),
            Format::Json => println!("{}", warning_json(w)),
        }
    }
    if c.format == Format::Text {
        for doc in &skipped {
            println!("skipped: {doc}: not routing configuration");
        }
        println!(
            "{}",
            summary(c.files.len(), errors.len(), warnings.len(), skipped.len())
        );
    }
    let failed = !errors.is_empty() || (c.deny_warnings && !warnings.is_empty());
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

fn summary(files: usize, errors: usize, warnings: usize, skipped: usize) -> String {
    let files = plural(files, "file");
    let warnings = plural(warnings, "warning");
    if errors > 0 {
        format!(
            "{files}: {}, {warnings}; the rules do not load",
            plural(errors, "error")
        )
    } else {
        format!(
            "{files}: the rules load; {warnings}, {} skipped",
            plural(skipped, "document")
        )
    }
}
