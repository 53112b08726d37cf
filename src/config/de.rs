//! A serde `Deserializer` over [`Node`]s that reports the field path and line of every error.
//!
//! Struct fields may be written in lowerCamel (`httpFault`) or in the proto's snake_case
//! (`http_fault`), as Istio's jsonpb accepted both. Unknown fields are rejected with the list of
//! allowed ones. Scalars are typed by the YAML core schema: a plain `1` is not a string, while a
//! quoted `"7"` is accepted where an integer is expected (jsonpb accepts numeric strings).

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::error::{ErrorKind, LoadError};
use super::node::{Node, ScalarType, Value, snake_to_camel};

/// A `LoadError` that serde can build.
#[derive(Debug)]
pub(crate) struct DeError(pub(crate) LoadError);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(LoadError::new(ErrorKind::InvalidValue, msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError(LoadError::new(
            ErrorKind::WrongType,
            format!(
                "expected {}, found {}",
                schema_words(exp),
                found_words(&unexp)
            ),
        ))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError(LoadError::new(
            ErrorKind::InvalidValue,
            format!(
                "found {}, expected {}",
                found_words(&unexp),
                schema_words(exp)
            ),
        ))
    }

    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        DeError(LoadError::new(
            ErrorKind::InvalidValue,
            format!("found {len} items, expected {exp}"),
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError(LoadError::new(
            ErrorKind::MissingField,
            format!("the required field `{field}` is absent"),
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError(LoadError::new(
            ErrorKind::UnknownField,
            format!(
                "`{field}` is not a field here{}; allowed: {}",
                super::suggest::did_you_mean(field, expected),
                expected.join(", ")
            ),
        ))
    }
}

/// What serde expected, in the words of Istio's schema rather than Rust's (`i32` is "an
/// integer", `struct HttpRoute` is "a mapping").
fn schema_words(exp: &dyn de::Expected) -> String {
    let rust = exp.to_string();
    let words = match rust.as_str() {
        "i8" | "i16" | "i32" | "i64" => "an integer",
        "u8" | "u16" | "u32" | "u64" => "a non-negative integer",
        "f32" | "f64" => "a number",
        "a sequence" => "a list",
        "a map" => "a mapping",
        _ if rust.starts_with("struct ") => "a mapping of fields",
        _ => return rust,
    };
    words.to_string()
}

/// The value serde found, in the same words.
fn found_words(unexp: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match unexp {
        U::Signed(n) => format!("the integer {n}"),
        U::Unsigned(n) => format!("the integer {n}"),
        U::Float(n) => format!("the number {n}"),
        U::Unit => "null".to_string(),
        U::Seq => "a list".to_string(),
        U::Map => "a mapping".to_string(),
        other => other.to_string(),
    }
}

impl DeError {
    /// Puts the location on an error that has none yet (the innermost location wins).
    fn at(mut self, path: &Path<'_>, node: &Node) -> Self {
        if !self.0.is_located() {
            self.0 = self.0.with_path(path.render()).at(node.line, node.column);
        }
        self
    }
}

/// A field path kept on the stack while deserializing; written out only for an error.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root(p) => p.to_string(),
            Path::Key(parent, key) => {
                let p = parent.render();
                if p.is_empty() {
                    key.to_string()
                } else {
                    format!("{p}.{key}")
                }
            }
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

/// Deserializes `T` from `node`, whose field path is `path`.
pub(crate) fn from_node<T: de::DeserializeOwned>(node: &Node, path: &str) -> Result<T, LoadError> {
    T::deserialize(NodeDe {
        node,
        path: Path::Root(path),
    })
    .map_err(|e| e.0)
}

struct NodeDe<'a> {
    node: &'a Node,
    path: Path<'a>,
}

impl NodeDe<'_> {
    fn scalar(&self) -> Option<&str> {
        match &self.node.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    fn unexpected(&self) -> de::Unexpected<'_> {
        match &self.node.value {
            Value::Seq(_) => de::Unexpected::Seq,
            Value::Map(_) => de::Unexpected::Map,
            Value::Scalar { text, .. } => match self.node.scalar_type() {
                ScalarType::Null => de::Unexpected::Unit,
                ScalarType::Bool => de::Unexpected::Other("a boolean"),
                ScalarType::Int => de::Unexpected::Other("an integer"),
                ScalarType::Float => de::Unexpected::Other("a number"),
                ScalarType::Str => de::Unexpected::Str(text),
            },
        }
    }

    fn wrong<V>(&self, exp: &dyn de::Expected) -> Result<V, DeError> {
        let mut err = <DeError as de::Error>::invalid_type(self.unexpected(), exp);
        if self.node.scalar_type() != ScalarType::Str
            && let Some(v) = self.scalar()
        {
            err.0 = err.0.with_value(v);
        }
        Err(err.at(&self.path, self.node))
    }

    fn locate<V>(&self, r: Result<V, DeError>) -> Result<V, DeError> {
        r.map_err(|e| e.at(&self.path, self.node))
    }

    /// Text of a scalar usable as a number: a plain int/float, or a quoted numeric string.
    fn numeric(&self, want: ScalarType) -> Option<&str> {
        let text = self.scalar()?;
        let ty = self.node.scalar_type();
        let ok = match ty {
            ScalarType::Int => true,
            ScalarType::Float => want == ScalarType::Float,
            ScalarType::Str => {
                let t = super::node::resolve_plain(text);
                t == ScalarType::Int || (t == ScalarType::Float && want == ScalarType::Float)
            }
            _ => false,
        };
        ok.then_some(text)
    }

    fn visit_int<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Some(text) = self.numeric(ScalarType::Int) else {
            return self.wrong(&visitor);
        };
        let r = parse_int(text);
        match r {
            Some(IntValue::Signed(v)) => self.locate(visitor.visit_i64(v)),
            Some(IntValue::Unsigned(v)) => self.locate(visitor.visit_u64(v)),
            None => {
                let mut err = DeError(LoadError::new(
                    ErrorKind::InvalidValue,
                    format!("`{text}` is out of range for an integer"),
                ));
                err.0 = err.0.with_value(text);
                Err(err.at(&self.path, self.node))
            }
        }
    }
}

enum IntValue {
    Signed(i64),
    Unsigned(u64),
}

fn parse_int(text: &str) -> Option<IntValue> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        u64::from_str_radix(oct, 8).ok()?
    } else {
        digits.parse::<u64>().ok()?
    };
    if neg {
        if magnitude > i64::MAX as u64 + 1 {
            return None;
        }
        Some(IntValue::Signed((magnitude as i128).wrapping_neg() as i64))
    } else {
        Some(IntValue::Unsigned(magnitude))
    }
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

macro_rules! int_methods {
    ($($name:ident)*) => {$(
        fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.visit_int(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(_) => self.deserialize_seq(visitor),
            Value::Map(_) => self.deserialize_map(visitor),
            Value::Scalar { text, .. } => match self.node.scalar_type() {
                ScalarType::Null => self.locate(visitor.visit_unit()),
                ScalarType::Bool => self.deserialize_bool(visitor),
                ScalarType::Int => self.visit_int(visitor),
                ScalarType::Float => self.deserialize_f64(visitor),
                ScalarType::Str => self.locate(visitor.visit_str(text)),
            },
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match (self.scalar(), self.node.scalar_type()) {
            (Some(t), ScalarType::Bool) => {
                let v = t.eq_ignore_ascii_case("true");
                self.locate(visitor.visit_bool(v))
            }
            _ => self.wrong(&visitor),
        }
    }

    int_methods!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
                 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.numeric(ScalarType::Float).and_then(parse_float) {
            Some(v) => self.locate(visitor.visit_f64(v)),
            None => self.wrong(&visitor),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match (self.scalar(), self.node.scalar_type()) {
            (Some(t), ScalarType::Str) if t.contains('\0') => {
                Err(DeError(nul_error()).at(&self.path, self.node))
            }
            (Some(t), ScalarType::Str) => self.locate(visitor.visit_str(t)),
            _ => self.wrong(&visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.locate(visitor.visit_none())
        } else {
            let (node, path) = (self.node, self.path);
            visitor
                .visit_some(NodeDe { node, path })
                .map_err(|e| e.at(&path, node))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.locate(visitor.visit_unit())
        } else {
            self.wrong(&visitor)
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (node, path) = (self.node, self.path);
        visitor
            .visit_newtype_struct(NodeDe { node, path })
            .map_err(|e| e.at(&path, node))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => {
                let access = SeqAccess {
                    items: items.iter().enumerate(),
                    path: self.path,
                };
                self.locate(visitor.visit_seq(access))
            }
            _ => self.wrong(&visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => {
                let access = MapAccess {
                    entries: entries.iter(),
                    value: None,
                    path: self.path,
                    fields: None,
                };
                self.locate(visitor.visit_map(access))
            }
            _ => self.wrong(&visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => {
                let access = MapAccess {
                    entries: entries.iter(),
                    value: None,
                    path: self.path,
                    fields: Some(fields),
                };
                self.locate(visitor.visit_map(access))
            }
            _ => self.wrong(&visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match (self.scalar(), self.node.scalar_type()) {
            (Some(t), ScalarType::Str) => {
                let de: de::value::StrDeserializer<'_, DeError> = t.into_deserializer();
                let r = visitor.visit_enum(de).map_err(|mut e| {
                    e.0 = e.0.with_value(t);
                    e
                });
                self.locate(r)
            }
            _ => self.wrong(&visitor),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, I> {
    items: I,
    path: Path<'a>,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for SeqAccess<'a, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let parent = self.path;
                let path = Path::Index(&parent, i);
                seed.deserialize(NodeDe { node, path })
                    .map(Some)
                    .map_err(|e| e.at(&path, node))
            }
        }
    }
}

struct MapAccess<'a, I> {
    entries: I,
    value: Option<(&'a Node, String)>,
    path: Path<'a>,
    fields: Option<&'static [&'static str]>,
}

impl<'de, 'a, I: Iterator<Item = &'a (Node, Node)>> de::MapAccess<'de> for MapAccess<'a, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let Value::Scalar { text, .. } = &key.value else {
            let err = DeError(LoadError::new(
                ErrorKind::WrongType,
                format!("a mapping key must be a string, found {}", key.describe()),
            ));
            return Err(err.at(&self.path, key));
        };
        let mut name = text.clone();
        if let Some(fields) = self.fields
            && !fields.contains(&name.as_str())
        {
            let camel = snake_to_camel(&name);
            if fields.contains(&camel.as_str()) {
                name = camel;
            } else {
                let parent = self.path;
                let path = Path::Key(&parent, text);
                let err = <DeError as de::Error>::unknown_field(text, fields);
                return Err(err.at(&path, key));
            }
        }
        let r = seed.deserialize(KeyDe { text: &name });
        let parent = self.path;
        let r = r.map_err(|e| e.at(&Path::Key(&parent, &name), key))?;
        self.value = Some((value, name));
        Ok(Some(r))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((node, name)) = self.value.take() else {
            return Err(DeError(LoadError::new(
                ErrorKind::InvalidValue,
                "a mapping value was asked for before its key",
            )));
        };
        let parent = self.path;
        let path = Path::Key(&parent, &name);
        seed.deserialize(NodeDe { node, path })
            .map_err(|e| e.at(&path, node))
    }
}

/// The error for a text with a NUL character: no name, host, path or header can hold one.
pub(crate) fn nul_error() -> LoadError {
    LoadError::new(
        ErrorKind::InvalidValue,
        "the text contains a NUL character (\\0), which no name, host, path or header may hold",
    )
}

/// A mapping key: always read as a string, whatever its YAML type (`80:` is the key "80").
struct KeyDe<'a> {
    text: &'a str,
}

impl<'de> de::Deserializer<'de> for KeyDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.text.contains('\0') {
            return Err(DeError(nul_error()));
        }
        visitor.visit_str(self.text)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
