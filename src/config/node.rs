//! A YAML (and JSON) document tree that remembers where each value stood.
//!
//! The loader reads text into [`Node`]s first, so that every later error (from serde or from
//! validation) can name the line it comes from. Building the tree is iterative and bounded by
//! [`Limits`]: nesting depth and the number of nodes (aliases count every time they are
//! expanded), so neither deep nesting nor an alias bomb can exhaust the stack or memory.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::error::{ErrorKind, LoadError};
use super::limits::Limits;

/// A value in a parsed document.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) value: Value,
    /// 1-based line of the value's first character.
    pub(crate) line: usize,
    /// 1-based column of the value's first character.
    pub(crate) column: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// A scalar. `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// What a plain scalar resolves to under the YAML 1.2 core schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScalarType {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

impl Node {
    /// The type of this node, as a user would name it in an error message.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.value {
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Scalar { .. } => match self.scalar_type() {
                ScalarType::Null => "null",
                ScalarType::Bool => "a boolean",
                ScalarType::Int => "an integer",
                ScalarType::Float => "a number",
                ScalarType::Str => "a string",
            },
        }
    }

    pub(crate) fn scalar_type(&self) -> ScalarType {
        match &self.value {
            Value::Scalar { text, plain: true } => resolve_plain(text),
            Value::Scalar { plain: false, .. } => ScalarType::Str,
            _ => ScalarType::Str,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.value, Value::Scalar { .. }) && self.scalar_type() == ScalarType::Null
    }

    /// The entry of a mapping whose key is `key`, also trying the snake_case spelling of a
    /// camelCase key (Istio accepts both).
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        let Value::Map(entries) = &self.value else {
            return None;
        };
        let snake = camel_to_snake(key);
        entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Scalar { text, .. } if text == key || *text == snake))
            .map(|(_, v)| v)
    }

    /// The scalar text of a mapping entry, if it is a scalar.
    pub(crate) fn get_str(&self, key: &str) -> Option<&str> {
        match &self.get(key)?.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
pub(crate) fn resolve_plain(text: &str) -> ScalarType {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return ScalarType::Bool,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return ScalarType::Float,
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return ScalarType::Int;
    }
    if let Some(hex) = text.strip_prefix("0x")
        && !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return ScalarType::Int;
    }
    if let Some(oct) = text.strip_prefix("0o")
        && !oct.is_empty()
        && oct.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return ScalarType::Int;
    }
    if looks_like_float(digits) {
        return ScalarType::Float;
    }
    ScalarType::Str
}

fn looks_like_float(s: &str) -> bool {
    // [0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)? with at least one digit before the exponent.
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mantissa, ""),
    };
    let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits_ok(int) || !digits_ok(frac) {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits_ok(e)
        }
    }
}

/// `httpFault` → `http_fault`.
pub(crate) fn camel_to_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `http_fault` → `httpFault`.
pub(crate) fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// One document of a stream: its root (absent for an empty document) and its 1-based line.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) root: Option<Node>,
    pub(crate) line: usize,
}

/// A list or mapping being read.
struct Frame {
    start: Span,
    anchor: usize,
    /// The greatest height of the values it holds so far.
    height: usize,
    /// How many values it holds so far, at every depth.
    count: usize,
    /// Bytes of scalar text it holds so far.
    bytes: usize,
    kind: Kind,
}

enum Kind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Line of each scalar key, once the mapping is too large to search its keys in turn.
        keys: Option<HashMap<String, usize>>,
    },
}

/// A value with an anchor, kept for its aliases with how tall it is and how many values it holds.
struct Anchored {
    node: Node,
    height: usize,
    count: usize,
    /// Bytes of scalar text it holds, copied again by each alias.
    bytes: usize,
}

/// Keys of a mapping are searched in turn up to this many; past it, through a hash map.
const LINEAR_KEYS: usize = 16;

fn located(span: Span, value: Value) -> Node {
    Node {
        value,
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn syntax_error(line: usize, column: usize, message: String) -> LoadError {
    LoadError::new(ErrorKind::Syntax, message).at(line, column)
}

/// Parses a YAML stream (JSON is a subset of it) into documents.
///
/// The tree it builds is never taller than [`Limits::max_depth`], aliases included: a value
/// that an alias repeats counts with its full height where the alias stands. Every later walk
/// over the tree (serde, validation, dropping it) is therefore bounded in depth by the limit,
/// not by the input.
pub(crate) fn parse_stream(text: &str, limits: &Limits) -> Result<Vec<Document>, LoadError> {
    parse_stream_within(text, limits, usize::MAX).map(|(docs, _)| docs)
}

/// [`parse_stream`] with at most `values_left` values (what [`Limits::max_total_nodes`] leaves
/// of one load after the texts before), and the number of values read.
pub(crate) fn parse_stream_within(
    text: &str,
    limits: &Limits,
    values_left: usize,
) -> Result<(Vec<Document>, usize), LoadError> {
    if text.len() > limits.max_input_bytes {
        return Err(LoadError::new(
            ErrorKind::Limit,
            format!(
                "the input is {} bytes; at most {} bytes are accepted (Limits::max_input_bytes)",
                text.len(),
                limits.max_input_bytes
            ),
        ));
    }
    let mut reader = Reader {
        limits,
        max_nodes: limits.max_nodes.min(values_left),
        total: values_left < limits.max_nodes,
        docs: Vec::new(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        copied: 0,
        doc_line: 1,
        root: None,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let err = syntax_error(
                e.marker().line(),
                e.marker().col() + 1,
                format!("invalid YAML: {}", e.info()),
            );
            if e.info().contains("recursion limit") {
                err.with_kind(ErrorKind::Limit)
            } else {
                err
            }
        })?;
        if let Some(finished) = reader.event(event, span)? {
            reader.place(finished, span)?;
        }
    }
    Ok((reader.docs, reader.nodes))
}

/// A value just read, before it is placed in its parent.
struct Finished {
    node: Node,
    anchor: usize,
    height: usize,
    count: usize,
    bytes: usize,
}

/// The state of [`parse_stream`] between events.
struct Reader<'l> {
    limits: &'l Limits,
    /// The most values this text may hold: `Limits::max_nodes`, or less when the load's total
    /// (`total`) leaves less.
    max_nodes: usize,
    total: bool,
    docs: Vec<Document>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    /// Values read so far in the stream, aliases counted with all they repeat.
    nodes: usize,
    /// Bytes of text copied by aliases so far.
    copied: usize,
    doc_line: usize,
    root: Option<Node>,
}

impl Reader<'_> {
    /// Takes one event; returns the value it finishes, if any.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<Option<Finished>, LoadError> {
        let scalar = |node: Node| Finished {
            bytes: match &node.value {
                Value::Scalar { text, .. } => text.len(),
                _ => 0,
            },
            node,
            anchor: 0,
            height: 1,
            count: 1,
        };
        Ok(match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                self.doc_line = span.start.line();
                self.root = None;
                self.anchors.clear();
                None
            }
            Event::DocumentEnd => {
                let root = self.root.take().filter(|r| !r.is_null());
                self.docs.push(Document {
                    root,
                    line: self.doc_line,
                });
                None
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                let text = text.into_owned();
                Some(Finished {
                    anchor,
                    ..scalar(located(span, Value::Scalar { text, plain }))
                })
            }
            Event::Alias(id) => Some(self.alias(id, span)?),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.check_depth(0, span)?;
                let kind = if matches!(event, Event::SequenceStart(..)) {
                    Kind::Seq(Vec::new())
                } else {
                    Kind::Map {
                        entries: Vec::new(),
                        key: None,
                        keys: None,
                    }
                };
                self.stack.push(Frame {
                    start: span,
                    anchor,
                    height: 0,
                    count: 0,
                    bytes: 0,
                    kind,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => self.stack.pop().map(close),
        })
    }

    /// The value an alias repeats, if it fits within the limits where it stands.
    fn alias(&mut self, id: usize, span: Span) -> Result<Finished, LoadError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(syntax_error(
                span.start.line(),
                span.start.col() + 1,
                "alias refers to an unknown anchor".to_string(),
            ));
        };
        let (height, count, bytes) = (anchored.height, anchored.count, anchored.bytes);
        // The alias's own count is added when it is placed.
        if self.nodes + count > self.max_nodes {
            return Err(self.too_many_nodes(span));
        }
        // Each alias copies the text it repeats: the copies together may be no larger than
        // the input itself may be.
        if self.copied + bytes > self.limits.max_input_bytes {
            return Err(syntax_error(
                span.start.line(),
                span.start.col() + 1,
                format!(
                    "aliases repeat more than {} bytes of text (Limits::max_input_bytes); each \
                     use of an alias copies what it stands for",
                    self.limits.max_input_bytes
                ),
            )
            .with_kind(ErrorKind::Limit));
        }
        self.check_depth(height, span)?;
        self.nodes += count - 1;
        self.copied += bytes;
        Ok(Finished {
            node: self.anchors[&id].node.clone(),
            anchor: 0,
            height,
            count,
            bytes,
        })
    }

    /// Fails when a value `height` tall cannot stand at the current depth (0: a list or mapping
    /// being opened).
    fn check_depth(&self, height: usize, span: Span) -> Result<(), LoadError> {
        // Lists and mappings opened so far, and those the repeated value opens below its own.
        let depth = self.stack.len() + height.saturating_sub(2);
        if depth < self.limits.max_depth {
            return Ok(());
        }
        let message = if height == 0 {
            format!(
                "nesting is deeper than {} levels (Limits::max_depth)",
                self.limits.max_depth
            )
        } else {
            format!(
                "this alias repeats a value {height} levels tall, which nests deeper than {} \
                 levels here (Limits::max_depth)",
                self.limits.max_depth
            )
        };
        Err(
            syntax_error(span.start.line(), span.start.col() + 1, message)
                .with_kind(ErrorKind::Limit),
        )
    }

    /// Puts a finished value in its parent (or makes it the document's root).
    fn place(&mut self, finished: Finished, span: Span) -> Result<(), LoadError> {
        self.nodes += 1;
        if self.nodes > self.max_nodes {
            return Err(self.too_many_nodes(span));
        }
        let Finished {
            node,
            anchor,
            height,
            count,
            bytes,
        } = finished;
        if anchor != 0 {
            let node = node.clone();
            let anchored = Anchored {
                node,
                height,
                count,
                bytes,
            };
            self.anchors.insert(anchor, anchored);
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.height = frame.height.max(height);
        frame.count += count;
        frame.bytes += bytes;
        match &mut frame.kind {
            Kind::Seq(items) => items.push(node),
            Kind::Map { entries, key, keys } => match key.take() {
                None => {
                    if entries.len() >= self.limits.max_mapping_keys {
                        return Err(syntax_error(
                            node.line,
                            node.column,
                            format!(
                                "the mapping has more than {} keys (Limits::max_mapping_keys)",
                                self.limits.max_mapping_keys
                            ),
                        )
                        .with_kind(ErrorKind::Limit));
                    }
                    check_duplicate(entries, keys, &node)?;
                    *key = Some(node);
                }
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

/// A list or mapping whose end was read, as a finished value.
fn close(frame: Frame) -> Finished {
    let value = match frame.kind {
        Kind::Seq(items) => Value::Seq(items),
        Kind::Map { entries, .. } => Value::Map(entries),
    };
    Finished {
        node: located(frame.start, value),
        anchor: frame.anchor,
        height: frame.height + 1,
        count: frame.count + 1,
        bytes: frame.bytes,
    }
}

/// Fails when `key` is a scalar key the mapping already has. Keys are searched in turn while
/// the mapping is small, then through a hash map, so a mapping of many keys reads in linear time.
fn check_duplicate(
    entries: &[(Node, Node)],
    keys: &mut Option<HashMap<String, usize>>,
    key: &Node,
) -> Result<(), LoadError> {
    let Value::Scalar { text, .. } = &key.value else {
        return Ok(());
    };
    let scalar_text = |k: &Node| match &k.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    };
    if keys.is_none() && entries.len() >= LINEAR_KEYS {
        let mut map = HashMap::with_capacity(entries.len() * 2);
        for (k, _) in entries {
            if let Some(t) = scalar_text(k) {
                map.entry(t).or_insert(k.line);
            }
        }
        *keys = Some(map);
    }
    let first = match keys {
        Some(map) => match map.get(text.as_str()) {
            Some(&line) => Some(line),
            None => {
                map.insert(text.clone(), key.line);
                None
            }
        },
        None => entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Scalar { text: t, .. } if t == text))
            .map(|(k, _)| k.line),
    };
    match first {
        None => Ok(()),
        Some(line) => Err(syntax_error(
            key.line,
            key.column,
            format!("duplicate key `{text}` (first defined on line {line})"),
        )
        .with_kind(ErrorKind::DuplicateKey)),
    }
}

impl Reader<'_> {
    fn too_many_nodes(&self, span: Span) -> LoadError {
        let message = if self.total {
            format!(
                "the texts of this load expand to more than {} values together \
                 (Limits::max_total_nodes); aliases are counted each time they are used",
                self.limits.max_total_nodes
            )
        } else {
            format!(
                "the document expands to more than {} values (Limits::max_nodes); \
                 aliases are counted each time they are used",
                self.limits.max_nodes
            )
        };
        let err = syntax_error(span.start.line(), span.start.col() + 1, message);
        if self.total {
            err.over_set_limit("max_total_nodes")
        } else {
            err.with_kind(ErrorKind::Limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Document> {
        parse_stream(text, &Limits::default()).unwrap()
    }

    #[test]
    fn documents_and_lines() {
        let docs = parse("a: 1\n---\nb:\n  c: [x, 'y']\n---\n");
        assert_eq!(docs.len(), 3);
        let b = docs[1].root.as_ref().unwrap().get("b").unwrap();
        assert_eq!(b.get("c").unwrap().line, 4);
        assert!(
            docs[2].root.is_none(),
            "a trailing empty document has no root"
        );
    }

    #[test]
    fn json_is_read_too() {
        let docs = parse(r#"{"kind": "VirtualService", "spec": {"hosts": ["a"]}}"#);
        assert_eq!(
            docs[0].root.as_ref().unwrap().get_str("kind"),
            Some("VirtualService")
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_stream("a: 1\nb: 2\na: 3\n", &Limits::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DuplicateKey);
        assert_eq!(err.line(), Some(3));
        assert!(err.to_string().contains("first defined on line 1"), "{err}");
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_stream(&text, &Limits::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse_stream(&text, &Limits::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    }

    #[test]
    fn plain_scalars_resolve_like_yaml_core() {
        assert_eq!(resolve_plain("12"), ScalarType::Int);
        assert_eq!(resolve_plain("-3"), ScalarType::Int);
        assert_eq!(resolve_plain("1.5"), ScalarType::Float);
        assert_eq!(resolve_plain("1e3"), ScalarType::Float);
        assert_eq!(resolve_plain("true"), ScalarType::Bool);
        assert_eq!(resolve_plain("~"), ScalarType::Null);
        assert_eq!(resolve_plain("v1"), ScalarType::Str);
        assert_eq!(resolve_plain("1.2.3.4"), ScalarType::Str);
        assert_eq!(resolve_plain("."), ScalarType::Str);
    }

    #[test]
    fn case_conversions() {
        assert_eq!(camel_to_snake("httpFault"), "http_fault");
        assert_eq!(snake_to_camel("http_req_timeout"), "httpReqTimeout");
    }
}
