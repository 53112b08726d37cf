//! Lowering: wire types → model, with validation. Shared helpers live here; each resource kind
//! has its own file.

mod destination_rule;
pub(crate) mod gateway;
mod gateway_filters;
mod gateway_grpc;
pub(crate) mod legacy;
pub(crate) mod networking;
mod policy;
pub(crate) mod syntax;
mod vs_actions;
mod vs_analyze;
mod vs_forward;

use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::LoadOptions;
use super::duration::parse_go_duration;
use super::error::{DocumentRef, ErrorKind, LoadError, Warning};
use super::node::Node;
use super::path::FieldPath;
use super::wire;
use crate::model::{Field, HeaderOperations, Labels, PPM, StringMatch};

/// What lowering one document needs: where it is (for errors), and where warnings go.
pub(crate) struct Lowerer<'a> {
    pub(crate) doc: &'a DocumentRef,
    pub(crate) root: &'a Node,
    pub(crate) options: &'a LoadOptions,
    pub(crate) warnings: &'a mut Vec<Warning>,
    /// Heap bytes of the regexes compiled so far in this load, against `Limits::max_regex_total`.
    pub(crate) regex_bytes: &'a std::cell::Cell<usize>,
    /// Scope notes: what Istio would act on and tower-mesh does not evaluate in-process.
    pub(crate) notes: Vec<Warning>,
    /// The subsets the document's destinations name, in order, for the assembly to resolve.
    pub(crate) subset_uses: Vec<crate::model::assembly::SubsetUse<Pos>>,
}

pub(crate) type Result<T> = std::result::Result<T, LoadError>;

/// A lowering context of one resource kind, over a more general one whose helpers it reaches
/// through `Deref`: each kind names its own steps (`rule`, `route_match`, ...) without
/// clashing with another kind's.
macro_rules! context {
    ($(#[$doc:meta])* $name:ident<$($l:lifetime),+> over $target:ty) => {
        $(#[$doc])*
        pub(crate) struct $name<$($l),+>(pub(crate) &'x mut $target);

        impl<$($l),+> std::ops::Deref for $name<$($l),+> {
            type Target = $target;
            fn deref(&self) -> &Self::Target {
                self.0
            }
        }

        impl<$($l),+> std::ops::DerefMut for $name<$($l),+> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                self.0
            }
        }
    };
}

context!(
    /// Lowering a VirtualService.
    VirtualServiceLowering<'x, 'a> over Lowerer<'a>
);
context!(
    /// Lowering a DestinationRule and its traffic policy.
    DestinationRuleLowering<'x, 'a> over Lowerer<'a>
);
context!(
    /// Lowering a RouteRule (`config.istio.io/v1alpha2`).
    RouteRuleLowering<'x, 'a> over Lowerer<'a>
);
context!(
    /// Lowering a Gateway API HTTPRoute, and what GRPCRoutes share with it.
    GatewayLowering<'x, 'a> over Lowerer<'a>
);
context!(
    /// Lowering a Gateway API GRPCRoute.
    GrpcLowering<'x, 'g, 'a> over GatewayLowering<'g, 'a>
);

/// Where something is written: its document, and in it the field's path, line and column when
/// it is a field. The tag config gives the model's assembly, and maps its findings back with.
#[derive(Clone, Debug)]
pub(crate) struct Pos {
    pub(crate) doc: DocumentRef,
    pub(crate) path: Option<String>,
    pub(crate) line: usize,
    pub(crate) column: Option<usize>,
}

impl Pos {
    /// The document as a whole (its first line).
    pub(crate) fn document(doc: &DocumentRef) -> Self {
        Pos {
            doc: doc.clone(),
            path: None,
            line: doc.line,
            column: None,
        }
    }
}

/// The document, as messages name it.
impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.doc.fmt(f)
    }
}

impl Lowerer<'_> {
    pub(crate) fn error(
        &self,
        kind: ErrorKind,
        path: &FieldPath,
        value: Option<&str>,
        message: impl Into<String>,
    ) -> LoadError {
        let node = path.locate(self.root);
        let err = LoadError::new(kind, message)
            .with_document(self.doc.clone())
            .with_path(path.to_string())
            .at(node.line, node.column);
        match value {
            Some(v) => err.with_value(v),
            None => err,
        }
    }

    /// An invalid value: "`value` is not ...; allowed: ...".
    pub(crate) fn invalid(&self, path: &FieldPath, value: &str, problem: &str) -> LoadError {
        self.error(
            ErrorKind::InvalidValue,
            path,
            Some(value),
            format!("`{value}`: {problem}"),
        )
    }

    /// Where the field at `path` is written.
    pub(crate) fn pos(&self, path: &FieldPath) -> Pos {
        let node = path.locate(self.root);
        Pos {
            doc: self.doc.clone(),
            path: Some(path.to_string()),
            line: node.line,
            column: Some(node.column),
        }
    }

    pub(crate) fn missing(&self, path: &FieldPath, what: &str) -> LoadError {
        self.error(ErrorKind::MissingField, path, None, what)
    }

    pub(crate) fn conflict(&self, path: &FieldPath, what: &str) -> LoadError {
        self.error(ErrorKind::Conflict, path, None, what)
    }

    /// A finding about the field at `path` (the document, when `None`).
    fn finding(&self, path: Option<&FieldPath>, message: String) -> Warning {
        Warning {
            document: self.doc.clone(),
            path: path.map(|p| p.to_string()),
            line: path.map(|p| p.locate(self.root).line),
            message,
            code: None,
        }
    }

    pub(crate) fn warn(&mut self, path: Option<&FieldPath>, message: impl Into<String>) {
        let w = self.finding(path, message.into());
        self.warnings.push(w);
    }

    /// A warning (`note`: a note) that `istioctl analyze` reports under `code`.
    pub(crate) fn analyzer(
        &mut self,
        code: &'static str,
        note: bool,
        path: &FieldPath,
        message: String,
    ) {
        let mut w = self.finding(Some(path), message);
        w.code = Some(code);
        if note {
            self.notes.push(w)
        } else {
            self.warnings.push(w)
        }
    }

    /// A scope note: Istio would act on this, tower-mesh does not evaluate it in-process (the
    /// rest of the document applies). Notes never fail `check --deny-warnings`.
    pub(crate) fn note(&mut self, path: Option<&FieldPath>, message: impl Into<String>) {
        let n = self.finding(path, message.into());
        self.notes.push(n);
    }

    /// `exportTo` checked as Istio does, with `.` made `ns`; `None` when it is empty or `*`
    /// (every namespace).
    pub(crate) fn export_to(
        &self,
        path: &FieldPath,
        list: &[String],
        ns: &str,
    ) -> Result<Option<Vec<Box<str>>>> {
        if let Err((i, problem)) = syntax::export_to(list, ns) {
            return Err(self.invalid(&path.index(i), &list[i], &problem));
        }
        if list.is_empty() || list.iter().any(|e| e == "*") {
            return Ok(None);
        }
        let named = list.iter().map(|e| if e == "." { ns } else { e.as_str() });
        Ok(Some(named.map(Box::from).collect()))
    }

    /// A duration of at least 1 ms in whole milliseconds (Istio's `ValidateDuration`).
    pub(crate) fn duration(&self, path: &FieldPath, text: &str) -> Result<Duration> {
        let d = parse_go_duration(text).map_err(|m| {
            self.invalid(
                path,
                text,
                &format!("{m}; expected a duration such as \"7s\", \"1.5s\" or \"100ms\""),
            )
        })?;
        if d < Duration::from_millis(1) || d.subsec_nanos() % 1_000_000 != 0 {
            return Err(self.invalid(
                path,
                text,
                "a duration must be at least 1ms and a whole number of milliseconds",
            ));
        }
        Ok(d)
    }

    /// A percentage (`0` or 0.0001 to 100) in parts per million, truncated like Pilot.
    pub(crate) fn percentage(&mut self, path: &FieldPath, value: f64) -> Result<u32> {
        if !(value == 0.0 || (0.0001..=100.0).contains(&value)) {
            return Err(self.invalid(
                path,
                &value.to_string(),
                "a percentage must be 0 or between 0.0001 and 100",
            ));
        }
        if value > 0.0 && value < 1.0 {
            self.warn(
                Some(path),
                format!(
                    "percentage {value} means {value}% (1 in {:.0} requests), not {}%; \
                     percentages run from 0 to 100",
                    100.0 / value,
                    value * 100.0
                ),
            );
        }
        Ok(ppm(value))
    }

    /// Label keys and values, checked with Kubernetes' rules.
    pub(crate) fn labels(
        &self,
        path: &FieldPath,
        labels: Option<std::collections::BTreeMap<String, String>>,
    ) -> Result<Labels> {
        let labels = labels.unwrap_or_default();
        for (k, v) in &labels {
            if let Err(why) = check_label_key(k) {
                return Err(self.invalid(&path.key(k), k, &format!("invalid label key: {why}")));
            }
            if let Err(why) = check_label_value(v) {
                return Err(self.invalid(&path.key(k), v, &format!("invalid label value: {why}")));
            }
        }
        Ok(Labels::from(labels))
    }

    /// A `StringMatch` against `field`. `allow_empty_prefix` is true only for `uri`; presence
    /// (`{}`) is allowed everywhere, `regex: "*"` nowhere (the caller handles `withoutHeaders`).
    pub(crate) fn string_match(
        &mut self,
        path: &FieldPath,
        m: &wire::StringMatch,
        allow_empty_prefix: bool,
        ignore_case: bool,
        allow_bare: bool,
    ) -> Result<StringMatch> {
        let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if set > 1 {
            return Err(self.conflict(path, "only one of `exact`, `prefix` and `regex` may be set"));
        }
        if let Some(bare) = &m.bare {
            if !allow_bare {
                return Err(self.error(
                    ErrorKind::WrongType,
                    path,
                    Some(bare),
                    format!(
                        "expected a string match such as {{exact: \"{bare}\"}}, found the string `{bare}`"
                    ),
                ));
            }
            self.warn(
                Some(path),
                format!("a bare string is read as {{exact: \"{bare}\"}}; Istio itself rejects it"),
            );
            return Ok(StringMatch::exact(bare));
        }
        if let Some(v) = &m.exact {
            return Ok(StringMatch::exact_with_case(v, ignore_case));
        }
        if let Some(v) = &m.prefix {
            if v.is_empty() && !allow_empty_prefix {
                return Err(self.invalid(
                    &path.key("prefix"),
                    v,
                    "an empty prefix is not allowed here (Envoy rejects it); use {} to test presence",
                ));
            }
            return Ok(StringMatch::prefix_with_case(v, ignore_case));
        }
        if let Some(v) = &m.regex {
            return self.regex(&path.key("regex"), v);
        }
        Ok(StringMatch::present())
    }

    pub(crate) fn regex(&self, path: &FieldPath, pattern: &str) -> Result<StringMatch> {
        let limits = &self.options.limits;
        if pattern.chars().count() > limits.max_regex_len {
            return Err(self.error(
                ErrorKind::Limit,
                path,
                Some(pattern),
                format!(
                    "the regex is {} characters long; at most {} are allowed (Limits::max_regex_len)",
                    pattern.chars().count(),
                    limits.max_regex_len
                ),
            ));
        }
        if pattern == "*" {
            return Err(self.invalid(
                path,
                pattern,
                "`*` is not a valid RE2 regex; use {} to test that a header is present, \
                 or \".*\" for any value",
            ));
        }
        let used = self.regex_bytes.get();
        let left = limits.max_regex_total.saturating_sub(used);
        let total_error = || {
            self.error(
                ErrorKind::Limit,
                path,
                Some(pattern),
                format!(
                    "the regexes loaded so far hold {used} bytes, and this one does not fit in \
                     the {} bytes allowed for all of them (Limits::max_regex_total)",
                    limits.max_regex_total
                ),
            )
            .over_set_limit("max_regex_total")
        };
        let compiled =
            StringMatch::regex(pattern, limits.max_regex_size.min(left)).map_err(|e| {
                if e.message.contains("more than") && left < limits.max_regex_size {
                    return total_error();
                }
                let kind = if e.message.contains("more than") {
                    ErrorKind::Limit
                } else {
                    ErrorKind::InvalidValue
                };
                self.error(
                    kind,
                    path,
                    Some(pattern),
                    format!(
                        "`{pattern}` is not a valid regex: {}; expected RE2 syntax (no lookaround, \
                     no backreferences), matched against the whole value",
                        e.message.trim()
                    ),
                )
            })?;
        self.charge_regex(path, pattern, compiled.heap_bytes())?;
        Ok(compiled)
    }

    /// Counts `bytes` of compiled regex against `Limits::max_regex_total`.
    pub(crate) fn charge_regex(&self, path: &FieldPath, pattern: &str, bytes: usize) -> Result<()> {
        let used = self.regex_bytes.get();
        let max = self.options.limits.max_regex_total;
        if used.saturating_add(bytes) > max {
            return Err(self.error(
                ErrorKind::Limit,
                path,
                Some(pattern),
                format!(
                    "the regexes loaded so far hold {used} bytes, and this one ({bytes} bytes) \
                     does not fit in the {max} bytes allowed for all of them (Limits::max_regex_total)"
                ),
            )
            .over_set_limit("max_regex_total"));
        }
        self.regex_bytes.set(used + bytes);
        Ok(())
    }

    pub(crate) fn header_name(&mut self, path: &FieldPath, name: &str) -> Result<HeaderName> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.warn(
                Some(path),
                format!(
                    "header name `{name}` is matched as `{}`: header names are lower-case",
                    name.to_ascii_lowercase()
                ),
            );
        }
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| self.invalid(path, name, "not a valid HTTP header name"))
    }

    /// Header operations (`set`, `add`, `remove`). An authority set through `:authority` or
    /// `host` is returned apart; other pseudo-headers and `host` are dropped with a warning.
    pub(crate) fn header_ops(
        &mut self,
        path: &FieldPath,
        ops: Option<wire::networking::HeaderOperations>,
        request: bool,
    ) -> Result<(HeaderOperations, Option<Box<str>>)> {
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        let mut authority = None;
        let Some(ops) = ops else {
            return Ok((HeaderOperations::default(), authority));
        };
        for (field, map) in [("set", ops.set), ("add", ops.add)] {
            for (name, value) in map.unwrap_or_default() {
                let p = path.key(field).key(&name);
                if let Err(problem) = syntax::header_value(&value) {
                    return Err(self.invalid(&p, &value, &problem));
                }
                if value.is_empty() {
                    // Envoy drops a header operation whose value is empty.
                    self.warn(
                        Some(&p),
                        format!("`{name}` has an empty value, so this `{field}` does nothing"),
                    );
                    continue;
                }
                let lower = name.to_ascii_lowercase();
                if request && (lower == ":authority" || lower == "host") {
                    authority = Some(value.into_boxed_str());
                    continue;
                }
                self.check_operation_name(&p, &name)?;
                let header = self.header_name(&p, &name)?;
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| self.invalid(&p, &value, "not a valid HTTP header value"))?;
                if field == "set" {
                    set.push((header, value));
                } else {
                    add.push((header, value));
                }
            }
        }
        for (i, name) in ops.remove.unwrap_or_default().into_iter().enumerate() {
            let p = path.key("remove").index(i);
            self.check_operation_name(&p, &name)?;
            remove.push(self.header_name(&p, &name)?);
        }
        Ok((HeaderOperations::new(set, add, remove), authority))
    }

    /// A header an operation may change, as Istio validates it: not a pseudo-header, and not
    /// `host` (which a request `set` or `add` turns into an authority rewrite before this).
    fn check_operation_name(&self, path: &FieldPath, name: &str) -> Result<()> {
        if name.starts_with(':') {
            return Err(self.invalid(
                path,
                name,
                "a pseudo-header cannot be changed (only `:authority`, by a request `set` or `add`)",
            ));
        }
        if name.eq_ignore_ascii_case("host") {
            return Err(self.invalid(
                path,
                name,
                "`host` can only be set or added on the request, where it rewrites the authority",
            ));
        }
        Ok(())
    }
}

/// `trunc(value * 10_000)` parts per million, as Pilot's `translatePercentToFractionalPercent`.
pub(crate) fn ppm(percent: f64) -> u32 {
    ((percent * 10_000.0) as u32).min(PPM)
}

/// The field a `headers` key names: pseudo-headers map to request properties.
pub(crate) fn pseudo_header_field(name: &str) -> Option<Field> {
    Some(match name {
        ":method" => Field::Method,
        ":authority" => Field::Authority,
        ":scheme" => Field::Scheme,
        ":path" => Field::PathAndQuery,
        _ => return None,
    })
}

fn check_label_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters");
    }
    let ok_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let first = name.chars().next().unwrap_or(' ');
    let last = name.chars().last().unwrap_or(' ');
    if !first.is_ascii_alphanumeric()
        || !last.is_ascii_alphanumeric()
        || !name.chars().all(ok_inner)
    {
        return Err(
            "must consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric",
        );
    }
    Ok(())
}

fn check_label_key(key: &str) -> std::result::Result<(), &'static str> {
    match key.split_once('/') {
        Some((prefix, name)) => {
            let dns_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !part.starts_with('-')
                        && !part.ends_with('-')
                });
            if !dns_ok {
                return Err("the prefix must be a DNS subdomain");
            }
            check_label_name(name)
        }
        None => check_label_name(key),
    }
}

fn check_label_value(value: &str) -> std::result::Result<(), &'static str> {
    if value.is_empty() {
        return Ok(());
    }
    check_label_name(value)
}

/// The gRPC status code of a name such as `UNAVAILABLE`.
pub(crate) fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_parts_per_million() {
        assert_eq!(ppm(100.0), 1_000_000);
        assert_eq!(ppm(10.0), 100_000);
        assert_eq!(ppm(0.0001), 1);
        assert_eq!(ppm(0.5), 5_000);
    }

    #[test]
    fn label_rules() {
        assert!(check_label_key("version").is_ok());
        assert!(check_label_key("app.kubernetes.io/name").is_ok());
        assert!(check_label_key("-bad").is_err());
        assert!(check_label_key("").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1").is_ok());
        assert!(check_label_value("has space").is_err());
    }

    #[test]
    fn grpc_codes() {
        assert_eq!(grpc_code("UNAVAILABLE"), Some(14));
        assert_eq!(grpc_code("OK"), Some(0));
        assert_eq!(grpc_code("14"), None);
    }
}
