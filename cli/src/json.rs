//! A JSON object written one field at a time, on one line.

use std::fmt::Write;

/// Builds `{"a":1,"b":"x"}`; fields whose value is `None` are left out.
pub(crate) struct Object(String);

impl Object {
    pub(crate) fn new() -> Self {
        Object(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        string(&mut self.0, key);
        self.0.push(':');
    }

    pub(crate) fn str(mut self, key: &str, value: Option<&str>) -> Self {
        if let Some(v) = value {
            self.key(key);
            string(&mut self.0, v);
        }
        self
    }

    pub(crate) fn num(mut self, key: &str, value: Option<usize>) -> Self {
        if let Some(v) = value {
            self.key(key);
            let _ = write!(self.0, "{v}");
        }
        self
    }

    pub(crate) fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Appends `text` as a JSON string literal.
fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects() {
        let o = Object::new()
            .str("a", Some("say \"hi\"\n\\ \u{1}"))
            .num("n", Some(7))
            .str("skipped", None)
            .finish();
        assert_eq!(o, r#"{"a":"say \"hi\"\n\\ \u0001","n":7}"#);
        assert_eq!(Object::new().finish(), "{}");
    }
}
