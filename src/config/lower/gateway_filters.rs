//! HTTPRoute filters, backends, timeouts and retries → model (docs/semantics.md §4b).

use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};

use super::gateway::{PathChange, RuleFilters, parse_duration, service_destination};
use super::{GatewayLowering, Result};
use crate::config::path::FieldPath;
use crate::config::wire::gateway as wire;
use crate::model::{
    CorsPolicy, HeaderOperations, HeaderPolicy, Mirror, PPM, Redirect, RedirectPath, RedirectPort,
    RetryPolicy, Rewrite, StringMatch, WeightedDestination,
};

/// The filter types, with the field each one must set.
const FILTER_FIELDS: [(&str, &str); 8] = [
    ("RequestHeaderModifier", "requestHeaderModifier"),
    ("ResponseHeaderModifier", "responseHeaderModifier"),
    ("RequestMirror", "requestMirror"),
    ("RequestRedirect", "requestRedirect"),
    ("URLRewrite", "urlRewrite"),
    ("ExtensionRef", "extensionRef"),
    ("CORS", "cors"),
    ("ExternalAuth", "externalAuth"),
];

/// Which of a filter's type fields are set, in `FILTER_FIELDS` order.
fn fields_set(f: &wire::Filter) -> [bool; 8] {
    [
        f.request_header_modifier.is_some(),
        f.response_header_modifier.is_some(),
        f.request_mirror.is_some(),
        f.request_redirect.is_some(),
        f.url_rewrite.is_some(),
        f.extension_ref.is_some(),
        f.cors.is_some(),
        f.external_auth.is_some(),
    ]
}

/// Whether exactly one match, a `PathPrefix` one (after defaulting), is given.
fn one_prefix_match(matches: &[wire::Match]) -> bool {
    matches.len() == 1
        && matches[0]
            .path
            .as_ref()
            .and_then(|p| p.type_.as_deref())
            .is_none_or(|t| t == "PathPrefix")
}

impl GatewayLowering<'_, '_> {
    /// A rule's `filters`.
    pub(super) fn filters(
        &mut self,
        path: &FieldPath,
        filters: Vec<wire::Filter>,
        matches: &[wire::Match],
        route_ns: &str,
    ) -> Result<RuleFilters> {
        if filters.len() > 16 {
            return Err(self.invalid(path, &filters.len().to_string(), "at most 16 filters"));
        }
        self.check_filter_types(path, &filters)?;
        let mut out = RuleFilters::default();
        let mut request_authority = None;
        for (i, f) in filters.into_iter().enumerate() {
            let p = path.index(i);
            if let Some(m) = f.request_header_modifier {
                let (ops, authority) =
                    self.header_modifier(&p.key("requestHeaderModifier"), m, true)?;
                request_authority = authority;
                out.headers.extend(true, ops);
            }
            if let Some(m) = f.response_header_modifier {
                let (ops, _) = self.header_modifier(&p.key("responseHeaderModifier"), m, false)?;
                out.headers.extend(false, ops);
            }
            if let Some(m) = f.request_mirror {
                out.mirrors
                    .extend(self.mirror(&p.key("requestMirror"), m, route_ns)?);
            }
            if let Some(r) = f.request_redirect {
                out.redirect = Some(self.redirect(&p.key("requestRedirect"), r, matches)?);
            }
            if let Some(r) = f.url_rewrite {
                out.rewrite = Some(self.rewrite(&p.key("urlRewrite"), r, matches)?);
            }
            if let Some(c) = f.cors {
                out.cors = Some(self.cors(&p.key("cors"), c)?);
            }
            if let Some(e) = &f.extension_ref
                && (e.group.is_none()
                    || e.kind.as_deref().is_none_or(str::is_empty)
                    || e.name.as_deref().is_none_or(str::is_empty))
            {
                return Err(self.missing(
                    &p.key("extensionRef"),
                    "an extensionRef needs `group` (which may be \"\"), `kind` and `name`",
                ));
            }
            if f.extension_ref.is_some() || f.external_auth.is_some() {
                self.warn(Some(&p), "tower-mesh resolves no extension filter: requests this rule matches are answered 500, as the API requires for a filter that cannot be resolved");
                out.unresolved = true;
            }
        }
        if let Some(authority) = request_authority {
            if out
                .rewrite
                .as_ref()
                .is_some_and(|r| r.authority().is_some())
            {
                return Err(self.conflict(path, "the Host is set twice: by URLRewrite `hostname` and by a RequestHeaderModifier of `host`"));
            }
            out.headers = HeaderPolicy::new(
                out.headers.request().clone(),
                out.headers.response().clone(),
                Some(authority),
            );
        }
        Ok(out)
    }

    /// Each filter sets exactly the field its type names; single-use types appear once;
    /// a redirect and a rewrite exclude each other.
    fn check_filter_types(&self, path: &FieldPath, filters: &[wire::Filter]) -> Result<()> {
        let mut counts = [0usize; 8];
        for (i, f) in filters.iter().enumerate() {
            let p = path.index(i);
            let Some(t) = f.type_.as_deref() else {
                return Err(self.missing(&p.key("type"), "a filter needs a `type`"));
            };
            let Some(at) = FILTER_FIELDS.iter().position(|(name, _)| *name == t) else {
                let all: Vec<&str> = FILTER_FIELDS.iter().map(|(n, _)| *n).collect();
                return Err(self.invalid(
                    &p.key("type"),
                    t,
                    &format!("allowed: {}", all.join(", ")),
                ));
            };
            let set = fields_set(f);
            let field = FILTER_FIELDS[at].1;
            if !set[at] {
                return Err(self.missing(
                    &p,
                    &format!("filter.{field} must be specified for {t} filter.type"),
                ));
            }
            if let Some(other) = (0..8).find(|&k| k != at && set[k]) {
                let (other_type, other_field) = FILTER_FIELDS[other];
                return Err(self.conflict(
                    &p,
                    &format!(
                        "filter.{other_field} must be nil if the filter.type is not {other_type}"
                    ),
                ));
            }
            counts[at] += 1;
        }
        for (k, (name, _)) in FILTER_FIELDS.iter().enumerate() {
            if counts[k] > 1 && !matches!(*name, "RequestMirror" | "ExtensionRef") {
                return Err(self.conflict(path, &format!("{name} filter cannot be repeated")));
            }
        }
        if counts[3] > 0 && counts[4] > 0 {
            return Err(self.conflict(path, "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"));
        }
        Ok(())
    }

    /// A header modifier: its operations, and on the request a Host set or added.
    fn header_modifier(
        &mut self,
        path: &FieldPath,
        m: wire::HeaderModifier,
        request: bool,
    ) -> Result<(HeaderOperations, Option<Box<str>>)> {
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        let mut authority = None;
        let mut names: Vec<String> = Vec::new();
        let mut once = |this: &Self, p: &FieldPath, name: &str| {
            let lower = name.to_ascii_lowercase();
            if names.contains(&lower) {
                return Err(this.conflict(p, &format!("`{name}` is changed more than once: a header modifier takes one action per header name")));
            }
            names.push(lower);
            Ok(())
        };
        for (field, list) in [("set", m.set), ("add", m.add)] {
            for (i, h) in list.into_iter().flatten().enumerate() {
                let p = path.key(field).index(i);
                let name = h.name.unwrap_or_default();
                let value = h.value.unwrap_or_default();
                once(self, &p, &name)?;
                if request && name.eq_ignore_ascii_case("host") {
                    authority = Some(value.into_boxed_str());
                    continue;
                }
                let header = self.header_name(&p.key("name"), &name)?;
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    self.invalid(&p.key("value"), &value, "not a valid header value")
                })?;
                if field == "set" {
                    set.push((header, value));
                } else {
                    add.push((header, value));
                }
            }
        }
        for (i, name) in m.remove.into_iter().flatten().enumerate() {
            let p = path.key("remove").index(i);
            once(self, &p, &name)?;
            remove.push(self.header_name(&p, &name)?);
        }
        Ok((HeaderOperations::new(set, add, remove), authority))
    }

    fn header_name(&self, path: &FieldPath, name: &str) -> Result<HeaderName> {
        if name.starts_with(':') {
            return Err(self.invalid(
                path,
                name,
                "a header name is an HTTP token; pseudo-headers cannot be changed",
            ));
        }
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| self.invalid(path, name, "not a valid header name"))
    }

    /// `RequestMirror`: the mirror, unless its backend is not a Service (dropped, warned).
    fn mirror(
        &mut self,
        path: &FieldPath,
        m: wire::Mirror,
        route_ns: &str,
    ) -> Result<Option<Mirror>> {
        let Some(b) = m.backend_ref else {
            return Err(self.missing(&path.key("backendRef"), "a mirror needs a `backendRef`"));
        };
        let ppm =
            match (m.percent, m.fraction) {
                (Some(_), Some(_)) => return Err(self.conflict(
                    path,
                    "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter",
                )),
                (Some(p @ 0..=100), None) => p as u32 * 10_000,
                (Some(p), None) => {
                    return Err(self.invalid(
                        &path.key("percent"),
                        &p.to_string(),
                        "a percent is between 0 and 100",
                    ));
                }
                (None, Some(f)) => {
                    let (num, den) = (f.numerator.unwrap_or(0), f.denominator.unwrap_or(100));
                    if num < 0 || den < 1 || num > den {
                        return Err(self.invalid(
                            &path.key("fraction"),
                            &format!("{num}/{den}"),
                            "numerator must be less than or equal to denominator",
                        ));
                    }
                    (PPM as i64 * num / den) as u32
                }
                (None, None) => PPM,
            };
        let bpath = path.key("backendRef");
        let port = self.backend_port(&bpath, b.group.as_deref(), b.kind.as_deref(), b.port)?;
        let Some(name) = b.name.filter(|n| !n.is_empty()) else {
            return Err(self.missing(&bpath.key("name"), "a backendRef needs a `name`"));
        };
        if !is_service(b.group.as_deref(), b.kind.as_deref()) {
            self.warn(
                Some(&bpath),
                "a mirror to a backend that is not a Service is invalid and dropped",
            );
            return Ok(None);
        }
        Ok(Some(Mirror::new(
            service_destination(&name, b.namespace.as_deref(), route_ns, port),
            ppm,
        )))
    }

    /// A backend's `port`: required for a Service, 1 to 65535.
    fn backend_port(
        &self,
        path: &FieldPath,
        group: Option<&str>,
        kind: Option<&str>,
        port: Option<i64>,
    ) -> Result<Option<u32>> {
        match port {
            Some(p @ 1..=65535) => Ok(Some(p as u32)),
            Some(p) => Err(self.invalid(
                &path.key("port"),
                &p.to_string(),
                "a port must be between 1 and 65535",
            )),
            None if is_service(group, kind) => {
                Err(self.missing(path, "Must have port for Service reference"))
            }
            None => Ok(None),
        }
    }

    /// `RequestRedirect`: the `Location` rules and the status (302 by default).
    fn redirect(
        &mut self,
        path: &FieldPath,
        r: wire::Redirect,
        matches: &[wire::Match],
    ) -> Result<Redirect> {
        if let Some(h) = r.hostname.as_deref().filter(|h| {
            h.is_empty()
                || h.len() > 253
                || !h.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
        }) {
            return Err(self.invalid(
                &path.key("hostname"),
                h,
                "a redirect hostname is a lower-case DNS name, without wildcards",
            ));
        }
        let scheme = match r.scheme.as_deref() {
            None => None,
            Some(s @ ("http" | "https")) => Some(s.into()),
            Some(other) => {
                return Err(self.invalid(&path.key("scheme"), other, "allowed: http, https"));
            }
        };
        let code = match r.status_code.unwrap_or(302) {
            c @ (301 | 302 | 303 | 307 | 308) => {
                StatusCode::from_u16(c as u16).unwrap_or(StatusCode::FOUND)
            }
            c => {
                return Err(self.invalid(
                    &path.key("statusCode"),
                    &c.to_string(),
                    "allowed: 301, 302, 303, 307, 308",
                ));
            }
        };
        let port = match r.port {
            Some(p @ 1..=65535) => Some(RedirectPort::Number(p as u16)),
            Some(p) => {
                return Err(self.invalid(
                    &path.key("port"),
                    &p.to_string(),
                    "a port must be between 1 and 65535",
                ));
            }
            None if scheme.is_some() => Some(RedirectPort::FromProtocolDefault),
            None => Some(RedirectPort::FromRequestPort),
        };
        let change = match r.path {
            Some(m) => {
                Some(self.path_modifier(&path.key("path"), m, matches, "RequestRedirect")?)
            }
            None => None,
        };
        let path_rule = match change {
            Some(PathChange::Full(p)) => RedirectPath::Replace(p.into()),
            Some(PathChange::Prefix(p)) => RedirectPath::ReplaceSegments(trim_slash(&p).into()),
            None => RedirectPath::Keep,
        };
        Ok(Redirect::new(
            path_rule,
            r.hostname.map(String::into_boxed_str),
            port,
            scheme,
            code,
        ))
    }

    /// `URLRewrite`: the Host, and the path (whole, or the matched prefix).
    fn rewrite(
        &mut self,
        path: &FieldPath,
        r: wire::Rewrite,
        matches: &[wire::Match],
    ) -> Result<Rewrite> {
        let host = r.hostname.map(String::into_boxed_str);
        Ok(match r.path {
            None => Rewrite::new(None, host, None),
            Some(m) => match self.path_modifier(&path.key("path"), m, matches, "URLRewrite")? {
                PathChange::Full(p) => {
                    Rewrite::new(Some(p.into()), host, None).replacing_full_path()
                }
                PathChange::Prefix(p) => Rewrite::new(Some(trim_slash(&p).into()), host, None),
            },
        })
    }

    /// `path` of a redirect or rewrite: exactly the field its `type` names; a prefix
    /// replacement needs one `PathPrefix` match.
    fn path_modifier(
        &self,
        path: &FieldPath,
        m: wire::PathModifier,
        matches: &[wire::Match],
        filter: &str,
    ) -> Result<PathChange> {
        match (
            m.type_.as_deref(),
            m.replace_full_path,
            m.replace_prefix_match,
        ) {
            (Some("ReplaceFullPath"), Some(p), None) => Ok(PathChange::Full(p)),
            (Some("ReplacePrefixMatch"), None, Some(p)) => {
                if !one_prefix_match(matches) {
                    return Err(self.conflict(path, &format!("When using {filter} filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified")));
                }
                Ok(PathChange::Prefix(p))
            }
            (Some("ReplaceFullPath"), _, _) => Err(self.invalid(
                path,
                "ReplaceFullPath",
                "replaceFullPath must be specified when type is set to 'ReplaceFullPath'",
            )),
            (Some("ReplacePrefixMatch"), _, _) => Err(self.invalid(
                path,
                "ReplacePrefixMatch",
                "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'",
            )),
            (_, Some(_), _) => Err(self.invalid(
                path,
                "",
                "type must be 'ReplaceFullPath' when replaceFullPath is set",
            )),
            (_, _, Some(_)) => Err(self.invalid(
                path,
                "",
                "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set",
            )),
            (t, None, None) => Err(self.invalid(
                &path.key("type"),
                t.unwrap_or(""),
                "allowed: ReplaceFullPath, ReplacePrefixMatch",
            )),
        }
    }

    /// `CORS` as the §2.5.9 policy; preflights from other origins are not forwarded.
    fn cors(&self, path: &FieldPath, c: wire::Cors) -> Result<CorsPolicy> {
        let alone = |list: &Option<Vec<String>>, message: &str| -> Result<()> {
            match list {
                Some(l) if l.len() > 1 && l.iter().any(|v| v == "*") => {
                    Err(self.conflict(path, message))
                }
                _ => Ok(()),
            }
        };
        alone(
            &c.allow_origins,
            "AllowOrigins cannot contain '*' alongside other origins",
        )?;
        alone(
            &c.allow_methods,
            "AllowMethods cannot contain '*' alongside other methods",
        )?;
        alone(
            &c.allow_headers,
            "AllowHeaders cannot contain '*' alongside other methods",
        )?;
        self.check_cors_values(path, &c)?;
        let mut origins = Vec::new();
        for (i, o) in c.allow_origins.unwrap_or_default().iter().enumerate() {
            origins.push(match o.as_str() {
                "*" => StringMatch::present(),
                o if o.contains('*') => {
                    self.regex(&path.key("allowOrigins").index(i), &regex_escape_star(o))?
                }
                o => StringMatch::exact(o),
            });
        }
        let max_age = match c.max_age.unwrap_or(5) {
            n @ 1.. => Duration::from_secs(n as u64),
            n => {
                return Err(self.invalid(
                    &path.key("maxAge"),
                    &n.to_string(),
                    "maxAge is at least 1 second",
                ));
            }
        };
        let boxed = |l: Option<Vec<String>>| {
            l.unwrap_or_default()
                .into_iter()
                .map(String::into_boxed_str)
                .collect()
        };
        Ok(CorsPolicy::new(
            origins,
            boxed(c.allow_methods),
            boxed(c.allow_headers),
            boxed(c.expose_headers),
            Some(max_age),
            c.allow_credentials.filter(|&b| b),
            false,
        ))
    }

    /// CORS values as the CRD allows them: origins `*` or `http(s)://host[:port]` (the host may
    /// start with `*.`), methods from the method list or `*`, at most 64 origins and headers.
    fn check_cors_values(&self, path: &FieldPath, c: &wire::Cors) -> Result<()> {
        for (i, o) in c.allow_origins.iter().flatten().enumerate() {
            let rest = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"));
            let host = rest.map(|r| {
                r.rsplit_once(':').map_or(r, |(h, p)| {
                    if p.bytes().all(|b| b.is_ascii_digit()) {
                        h
                    } else {
                        r
                    }
                })
            });
            let ok = o == "*"
                || host.is_some_and(|h| {
                    let h = h.strip_prefix("*.").unwrap_or(h);
                    !h.is_empty()
                        && h.split('.').all(|l| {
                            !l.is_empty()
                                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        })
                });
            if !ok || c.allow_origins.as_ref().is_some_and(|l| l.len() > 64) {
                return Err(self.invalid(&path.key("allowOrigins").index(i), o, "an origin is `*` or `http(s)://host[:port]`, the host possibly starting with `*.`; at most 64"));
            }
        }
        const METHODS: [&str; 10] = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "*",
        ];
        for (i, m) in c.allow_methods.iter().flatten().enumerate() {
            if !METHODS.contains(&m.as_str()) {
                return Err(self.invalid(
                    &path.key("allowMethods").index(i),
                    m,
                    &format!("allowed: {}", METHODS.join(", ")),
                ));
            }
        }
        for (field, list) in [
            ("allowHeaders", &c.allow_headers),
            ("exposeHeaders", &c.expose_headers),
        ] {
            for (i, h) in list.iter().flatten().enumerate() {
                if h != "*" && HeaderName::from_bytes(h.as_bytes()).is_err()
                    || list.as_ref().is_some_and(|l| l.len() > 64)
                {
                    return Err(self.invalid(
                        &path.key(field).index(i),
                        h,
                        "a header name (at most 64 of them)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// `backendRefs`: Services get their weight; other kinds keep theirs and answer 500.
    pub(super) fn backends(
        &mut self,
        path: &FieldPath,
        refs: Vec<wire::BackendRef>,
        route_ns: &str,
        _matches: &[wire::Match],
    ) -> Result<Vec<WeightedDestination>> {
        if refs.len() > 16 {
            return Err(self.invalid(path, &refs.len().to_string(), "at most 16 backendRefs"));
        }
        let mut out = Vec::new();
        for (j, b) in refs.into_iter().enumerate() {
            let p = path.index(j);
            let Some(name) = b.name.clone().filter(|n| !n.is_empty() && n.len() <= 253) else {
                return Err(self.missing(
                    &p.key("name"),
                    "a backendRef needs a `name` (1 to 253 characters)",
                ));
            };
            let weight = match b.weight.unwrap_or(1) {
                w @ 0..=1_000_000 => w as u32,
                w => {
                    return Err(self.invalid(
                        &p.key("weight"),
                        &w.to_string(),
                        "a weight is between 0 and 1000000",
                    ));
                }
            };
            let port = self.backend_port(&p, b.group.as_deref(), b.kind.as_deref(), b.port)?;
            let destination = service_destination(&name, b.namespace.as_deref(), route_ns, port);
            if !is_service(b.group.as_deref(), b.kind.as_deref()) {
                self.warn(Some(&p), "a backend that is not a Service cannot be sent to: its share of requests is answered 500");
                out.push(WeightedDestination::unusable(destination, weight));
                continue;
            }
            let headers = self.backend_filters(&p.key("filters"), b.filters.unwrap_or_default())?;
            out.push(WeightedDestination::new(destination, weight, headers));
        }
        Ok(out)
    }

    /// A backend's own filters: header modifiers only.
    fn backend_filters(
        &mut self,
        path: &FieldPath,
        filters: Vec<wire::Filter>,
    ) -> Result<HeaderPolicy> {
        self.check_filter_types(path, &filters)?;
        let mut headers = HeaderPolicy::default();
        let mut authority = None;
        for (k, f) in filters.into_iter().enumerate() {
            let p = path.index(k);
            match (f.request_header_modifier, f.response_header_modifier) {
                (Some(m), _) => {
                    let (ops, a) =
                        self.header_modifier(&p.key("requestHeaderModifier"), m, true)?;
                    authority = a.or(authority);
                    headers.extend(true, ops);
                }
                (_, Some(m)) => headers.extend(
                    false,
                    self.header_modifier(&p.key("responseHeaderModifier"), m, false)?
                        .0,
                ),
                _ => return Err(self.invalid(
                    &p.key("type"),
                    f.type_.as_deref().unwrap_or(""),
                    "a backendRef's filters are RequestHeaderModifier or ResponseHeaderModifier",
                )),
            }
        }
        Ok(match authority {
            Some(a) => HeaderPolicy::new(
                headers.request().clone(),
                headers.response().clone(),
                Some(a),
            ),
            None => headers,
        })
    }

    /// `timeouts` and `retry`: the route timeout and the retry policy (the mesh default when
    /// the rule has no `retry`).
    pub(super) fn timeouts(
        &self,
        path: &FieldPath,
        timeouts: Option<wire::Timeouts>,
        retry: Option<wire::Retry>,
    ) -> Result<(Option<Duration>, RetryPolicy)> {
        let parse = |p: FieldPath, text: Option<String>| -> Result<Option<Duration>> {
            match text {
                None => Ok(None),
                Some(t) => parse_duration(&t).map(Some).ok_or_else(|| self.invalid(&p, &t, "a duration is 1 to 4 parts of up to 5 digits with h, m, s or ms, such as \"1s500ms\"")),
            }
        };
        let t = timeouts.unwrap_or(wire::Timeouts {
            request: None,
            backend_request: None,
        });
        let request = parse(path.key("timeouts").key("request"), t.request)?;
        let backend = parse(
            path.key("timeouts").key("backendRequest"),
            t.backend_request,
        )?;
        if let (Some(r), Some(b)) = (request, backend)
            && !r.is_zero()
            && b > r
        {
            return Err(self.invalid(
                &path.key("timeouts"),
                "",
                "backendRequest timeout cannot be longer than request timeout",
            ));
        }
        let per_try = backend.filter(|b| !b.is_zero());
        let policy = match retry {
            None if per_try.is_none() => RetryPolicy::mesh_default(),
            None => RetryPolicy::new(2, per_try, RetryPolicy::default_retry_on(), None),
            Some(r) => self.retry(&path.key("retry"), r, per_try)?,
        };
        Ok((request.filter(|r| !r.is_zero()), policy))
    }

    fn retry(
        &self,
        path: &FieldPath,
        r: wire::Retry,
        per_try: Option<Duration>,
    ) -> Result<RetryPolicy> {
        let attempts = match r.attempts.unwrap_or(2) {
            a @ 1..=1000 => a as u32,
            a => {
                return Err(self.invalid(
                    &path.key("attempts"),
                    &a.to_string(),
                    "attempts is at least 1",
                ));
            }
        };
        let mut retry_on: Vec<Box<str>> = [
            "connect-failure",
            "refused-stream",
            "unavailable",
            "cancelled",
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        let mut codes: Vec<i64> = Vec::new();
        for (i, c) in r.codes.unwrap_or_default().into_iter().enumerate() {
            if !(400..=599).contains(&c) || codes.contains(&c) {
                return Err(self.invalid(
                    &path.key("codes").index(i),
                    &c.to_string(),
                    "a code is between 400 and 599, listed once",
                ));
            }
            codes.push(c);
            retry_on.push(c.to_string().into());
        }
        let backoff = match r.backoff {
            None => None,
            Some(b) => Some(parse_duration(&b).ok_or_else(|| {
                self.invalid(&path.key("backoff"), &b, "not a duration such as \"100ms\"")
            })?),
        };
        Ok(RetryPolicy::new(attempts, per_try, retry_on, backoff))
    }
}

fn is_service(group: Option<&str>, kind: Option<&str>) -> bool {
    group.unwrap_or("").is_empty() && kind.unwrap_or("Service") == "Service"
}

/// `value` without one trailing `/` (`/` gives the empty string).
fn trim_slash(value: &str) -> &str {
    value.strip_suffix('/').unwrap_or(value)
}

/// A CORS origin pattern as a regex: `*` is any characters, everything else literal.
fn regex_escape_star(origin: &str) -> String {
    origin
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*")
}
