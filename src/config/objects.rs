//! A rule set from objects handed over one at a time, as the cluster feed has them: each
//! object (a JSON value, no text) is read and lowered on its own and kept as a
//! [`LoweredObject`]; a rule set is assembled from the kept objects. When one object changes,
//! only that object is read and lowered again.

use std::path::PathBuf;
use std::sync::Arc;

use super::LoadOptions;
use super::assemble::{Lowered, assemble, lower_all};
use super::error::{Collector, DocumentRef, ErrorKind, LoadError};
use super::limits::Limits;
use super::node::{Node, Value};
use super::reader::{FNV_OFFSET, Gathered, fnv1a};
use super::rule_set::RuleSet;

/// One object, read and lowered on its own: what it holds, its errors, and what it counts
/// against the limits on the whole set.
pub(crate) struct LoweredObject {
    /// Its digest (of its JSON text, which is never made).
    digest: u64,
    bytes: usize,
    values: usize,
    lowered: Lowered,
    errors: Vec<LoadError>,
    skipped: Vec<DocumentRef>,
}

impl LoweredObject {
    /// Reads and lowers `object`, whose errors name `name` as their file.
    pub(crate) fn new(
        name: impl Into<PathBuf>,
        object: &serde_json::Value,
        options: &LoadOptions,
    ) -> Self {
        let doc = DocumentRef {
            file: Some(name.into()),
            index: 1,
            line: 1,
            ..DocumentRef::default()
        };
        let mut digest = Digest {
            state: FNV_OFFSET,
            bytes: 0,
        };
        // Writing into the digest cannot fail.
        let _ = serde_json::to_writer(&mut digest, object);
        let mut gathered = Gathered {
            errors: Collector::new(options.limits.max_errors),
            ..Gathered::default()
        };
        let mut values = 0;
        let limits = &options.limits;
        if digest.bytes > limits.max_input_bytes {
            gathered.errors.push(doc_error(
                &doc,
                format!(
                    "the object is {} bytes; at most {} bytes are accepted (Limits::max_input_bytes)",
                    digest.bytes, limits.max_input_bytes
                ),
            ));
        } else {
            match to_node(object, limits, &mut values, 1) {
                Ok(root) => {
                    gathered.read_root(doc, root, options);
                }
                Err(message) => {
                    gathered.errors.push(doc_error(&doc, message));
                }
            }
        }
        let entries = std::mem::take(&mut gathered.entries);
        let lowered = lower_all(entries, options, &mut gathered);
        LoweredObject {
            digest: digest.state,
            bytes: digest.bytes,
            values,
            lowered,
            skipped: std::mem::take(&mut gathered.skipped),
            errors: gathered.errors.into_vec(),
        }
    }
}

fn doc_error(doc: &DocumentRef, message: String) -> LoadError {
    LoadError::new(ErrorKind::Limit, message).with_document(doc.clone())
}

/// FNV-1a over what is written, and how many bytes.
struct Digest {
    state: u64,
    bytes: usize,
}

impl std::io::Write for Digest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.state = fnv1a(self.state, buf);
        self.bytes += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The tree the loader reads, from a JSON value: strings are quoted scalars, numbers, booleans
/// and null plain ones, as in the value's JSON text. Within `Limits::max_depth` levels,
/// `Limits::max_nodes` values and `Limits::max_mapping_keys` keys a mapping; positions are
/// the object's first line (an object has no text to point into).
fn to_node(
    value: &serde_json::Value,
    limits: &Limits,
    values: &mut usize,
    depth: usize,
) -> Result<Node, String> {
    use serde_json::Value as Json;
    *values += 1;
    if *values > limits.max_nodes {
        return Err(format!(
            "the object holds more than {} values (Limits::max_nodes)",
            limits.max_nodes
        ));
    }
    if depth > limits.max_depth {
        return Err(format!(
            "nesting is deeper than {} levels (Limits::max_depth)",
            limits.max_depth
        ));
    }
    let scalar = |text: String, plain: bool| Value::Scalar { text, plain };
    let value = match value {
        Json::Null => scalar("null".to_string(), true),
        Json::Bool(b) => scalar(b.to_string(), true),
        Json::Number(n) => scalar(n.to_string(), true),
        Json::String(s) => scalar(s.clone(), false),
        Json::Array(items) => Value::Seq(
            items
                .iter()
                .map(|v| to_node(v, limits, values, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => {
            if map.len() > limits.max_mapping_keys {
                return Err(format!(
                    "a mapping has more than {} keys (Limits::max_mapping_keys)",
                    limits.max_mapping_keys
                ));
            }
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key = at_top(scalar(k.clone(), false));
                entries.push((key, to_node(v, limits, values, depth + 1)?));
            }
            Value::Map(entries)
        }
    };
    Ok(at_top(value))
}

fn at_top(value: Value) -> Node {
    Node {
        value,
        line: 1,
        column: 1,
    }
}

/// Assembles the objects, in order, into one rule set: every object's own errors, the limits
/// on the whole set, then what spans the objects (as [`Loader::load`](super::Loader::load)
/// does for texts).
pub(crate) fn assemble_objects(
    objects: &[Arc<LoweredObject>],
    options: &LoadOptions,
) -> Result<RuleSet, LoadError> {
    let limits = &options.limits;
    let mut gathered = Gathered {
        errors: Collector::new(limits.max_errors),
        ..Gathered::default()
    };
    let mut lowered = Lowered::default();
    let mut digest = FNV_OFFSET;
    let (mut bytes, mut values) = (0usize, 0usize);
    for object in objects {
        for e in &object.errors {
            gathered.errors.push(e.clone());
        }
        digest = fnv1a(fnv1a(digest, &object.digest.to_le_bytes()), &[0xff]);
        bytes = bytes.saturating_add(object.bytes);
        values = values.saturating_add(object.values);
        gathered.skipped.extend(object.skipped.iter().cloned());
        lowered.extend_from(&object.lowered);
    }
    let over = [
        (bytes > limits.max_total_bytes).then(|| {
            (
                "max_total_bytes",
                format!(
                    "the objects hold more than {} bytes together (Limits::max_total_bytes)",
                    limits.max_total_bytes
                ),
            )
        }),
        (values > limits.max_total_nodes).then(|| {
            (
                "max_total_nodes",
                format!(
                    "the objects hold more than {} values together (Limits::max_total_nodes)",
                    limits.max_total_nodes
                ),
            )
        }),
        (lowered.regex_bytes > limits.max_regex_total).then(|| {
            (
                "max_regex_total",
                format!(
                    "the objects' regexes hold {} bytes together, more than the {} bytes allowed for all of them (Limits::max_regex_total)",
                    lowered.regex_bytes, limits.max_regex_total
                ),
            )
        }),
    ];
    for (limit, message) in over.into_iter().flatten() {
        gathered
            .errors
            .push(LoadError::new(ErrorKind::Limit, message).over_set_limit(limit));
    }
    let skipped = std::mem::take(&mut gathered.skipped);
    let assembled = assemble(lowered, &mut gathered, options)?;
    Ok(RuleSet::from_parts(
        assembled,
        skipped,
        Vec::new(),
        options.clone(),
        digest,
    ))
}
