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

enum Frame {
    Seq {
        start: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: Span,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

fn located(span: Span, value: Value) -> Node {
    Node {
        value,
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

fn syntax_error(line: usize, column: usize, message: String) -> LoadError {
    LoadError::new(ErrorKind::Syntax, message).at(line, column)
}

/// Parses a YAML stream (JSON is a subset of it) into documents.
pub(crate) fn parse_stream(text: &str, limits: &Limits) -> Result<Vec<Document>, LoadError> {
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
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut nodes = 0usize;
    let mut doc_line = 1;
    let mut root: Option<Node> = None;

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
        let finished: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                doc_line = span.start.line();
                root = None;
                anchors.clear();
                None
            }
            Event::DocumentEnd => {
                let root = root.take().filter(|r| !r.is_null());
                docs.push(Document {
                    root,
                    line: doc_line,
                });
                None
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                Some((
                    located(
                        span,
                        Value::Scalar {
                            text: text.into_owned(),
                            plain,
                        },
                    ),
                    anchor,
                ))
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| {
                    syntax_error(
                        span.start.line(),
                        span.start.col() + 1,
                        "alias refers to an unknown anchor".to_string(),
                    )
                })?;
                nodes += count_nodes(&node);
                if nodes > limits.max_nodes {
                    return Err(too_many_nodes(span, limits));
                }
                Some((node, 0))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= limits.max_depth {
                    return Err(syntax_error(
                        span.start.line(),
                        span.start.col() + 1,
                        format!(
                            "nesting is deeper than {} levels (Limits::max_depth)",
                            limits.max_depth
                        ),
                    )
                    .with_kind(ErrorKind::Limit));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        start: span,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        start: span,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    }
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq {
                    start,
                    anchor,
                    items,
                }) => Some((located(start, Value::Seq(items)), anchor)),
                Some(Frame::Map {
                    start,
                    anchor,
                    entries,
                    ..
                }) => Some((located(start, Value::Map(entries)), anchor)),
                None => None,
            },
        };
        let Some((node, anchor)) = finished else {
            continue;
        };
        nodes += 1;
        if nodes > limits.max_nodes {
            return Err(too_many_nodes(span, limits));
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    if let Value::Scalar { text, .. } = &node.value
                        && let Some((first, _)) = entries.iter().find(
                            |(k, _)| matches!(&k.value, Value::Scalar { text: t, .. } if t == text),
                        )
                    {
                        return Err(syntax_error(
                            node.line,
                            node.column,
                            format!(
                                "duplicate key `{text}` (first defined on line {})",
                                first.line
                            ),
                        )
                        .with_kind(ErrorKind::DuplicateKey));
                    }
                    *key = Some(node);
                }
                Some(k) => entries.push((k, node)),
            },
        }
    }
    Ok(docs)
}

fn too_many_nodes(span: Span, limits: &Limits) -> LoadError {
    syntax_error(
        span.start.line(),
        span.start.col() + 1,
        format!(
            "the document expands to more than {} values (Limits::max_nodes); \
             aliases are counted each time they are used",
            limits.max_nodes
        ),
    )
    .with_kind(ErrorKind::Limit)
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
