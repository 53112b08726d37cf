//! Wire types: Istio's schema field by field, as serde reads it.
//!
//! Field names are lowerCamel; the deserializer also accepts the proto's snake_case spelling.
//! Unknown fields are rejected. `oneof`s are plain optional fields, checked when lowering, so
//! that the error can say which fields conflict.

pub(crate) mod gateway;
pub(crate) mod legacy;
pub(crate) mod networking;
pub(crate) mod policy;

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// A `StringMatch`: `{exact|prefix|regex: ...}`, `{}` (presence), or, leniently for the
/// RouteRule docs' shorthand, a bare string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StringMatch {
    pub(crate) exact: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) regex: Option<String>,
    pub(crate) bare: Option<String>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum StringMatchField {
    Exact,
    Prefix,
    Regex,
}

impl<'de> Deserialize<'de> for StringMatch {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string match ({exact: ...}, {prefix: ...}, {regex: ...} or {})")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringMatch, E> {
                Ok(StringMatch {
                    bare: Some(v.to_string()),
                    ..StringMatch::default()
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringMatch, E> {
                // Istio refuses a null match ("cannot be null"); presence is written `{}`.
                Err(E::custom(
                    "a string match cannot be null; write `{}` to test that the value is present",
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMatch, A::Error> {
                let mut m = StringMatch::default();
                while let Some(key) = map.next_key::<StringMatchField>()? {
                    let value: Option<String> = map.next_value()?;
                    match key {
                        StringMatchField::Exact => m.exact = value,
                        StringMatchField::Prefix => m.prefix = value,
                        StringMatchField::Regex => m.regex = value,
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_any(V)
    }
}

/// A `google.protobuf.Duration` as text (`"7s"`, `"1.5s"`, `"100ms"`), parsed when lowering.
#[derive(Clone, Debug)]
pub(crate) struct Duration(String);

impl std::ops::Deref for Duration {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"7s\" or \"100ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Ok(Duration(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}
