//! Gateway API `HTTPRoute` → model: the CRD's defaults, its validation, and one route with a
//! single match entry per (rule, match), with the entry's precedence (docs/semantics.md §4b).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, StatusCode};

use super::{GatewayLowering, Result};
use crate::config::path::FieldPath;
use crate::config::wire::gateway as wire;
use crate::model::assembly::{GatewayRouteIn, Parent};
use crate::model::service_host;
use crate::model::{
    Action, Condition, CorsPolicy, Destination, DirectResponse, Field, HeaderPolicy, Labels,
    Mirror, PathMatch, Precedence, Redirect, RequestMatch, Resource, Rewrite, Route, RoutePolicy,
    RuleAt, Selector, StringMatch, WeightedDestination,
};

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
pub(super) const MAX_RULES: usize = 16;
const MAX_MATCHES_PER_RULE: usize = 64;
const MAX_MATCHES: usize = 128;

/// What a rule's filters amount to.
#[derive(Default)]
pub(super) struct RuleFilters {
    pub(super) headers: HeaderPolicy,
    pub(super) redirect: Option<Redirect>,
    pub(super) rewrite: Option<Rewrite>,
    pub(super) mirrors: Vec<Mirror>,
    pub(super) cors: Option<CorsPolicy>,
    /// An `ExtensionRef` or `ExternalAuth` filter: requests get 500.
    pub(super) unresolved: bool,
}

/// A path modifier as written, for a redirect or a rewrite.
pub(super) enum PathChange {
    Full(String),
    Prefix(String),
}

impl GatewayLowering<'_, '_> {
    /// Lowers one HTTPRoute; `created` is its `metadata.creationTimestamp`.
    pub(crate) fn http_route(
        &mut self,
        resource: Arc<Resource>,
        spec: wire::HttpRoute,
        created: Option<(i64, u32)>,
    ) -> Result<GatewayRouteIn> {
        let spec_path = FieldPath::root().key("spec");
        let ns = resource.namespace().to_string();
        let parents = self.parents(
            &spec_path.key("parentRefs"),
            spec.parent_refs.unwrap_or_default(),
            &ns,
        )?;
        if let Some(hosts) = &spec.hostnames {
            self.check_hostnames(&spec_path.key("hostnames"), hosts)?;
            if !hosts.is_empty() && !parents.is_empty() {
                self.warn(
                    Some(&spec_path.key("hostnames")),
                    "`hostnames` has no effect on a route attached to a Service; the Service's own names are used",
                );
            }
        }
        // The CRD's default: one catch-all rule without backends (every request gets 500).
        let rules = spec.rules.unwrap_or_else(|| vec![wire::Rule::default()]);
        self.check_rule_counts(&spec_path.key("rules"), &rules)?;
        let key: Arc<str> = format!("{ns}/{}", resource.name()).into();
        let mut entries = Vec::new();
        for (i, rule) in rules.into_iter().enumerate() {
            let path = spec_path.key("rules").index(i);
            let base = RuleAt {
                route: key.clone(),
                created,
                rule: i,
            };
            entries.extend(self.rule(&resource, &path, rule, base)?);
        }
        self.warn_unreachable_regexes(&entries);
        Ok(GatewayRouteIn {
            resource,
            parents,
            entries,
        })
    }

    /// `parentRefs`: the Services the route attaches to; Gateways and other kinds are
    /// ignored with a warning.
    pub(super) fn parents(
        &mut self,
        path: &FieldPath,
        refs: Vec<wire::ParentRef>,
        ns: &str,
    ) -> Result<Vec<Parent>> {
        if refs.len() > 32 {
            return Err(self.invalid(path, &refs.len().to_string(), "at most 32 parentRefs"));
        }
        self.check_parent_duplicates(path, &refs)?;
        let mut parents = Vec::new();
        for (i, r) in refs.into_iter().enumerate() {
            let p = path.index(i);
            let group = r.group.as_deref().unwrap_or("gateway.networking.k8s.io");
            let kind = r.kind.as_deref().unwrap_or("Gateway");
            let Some(name) = r.name.filter(|n| !n.is_empty()) else {
                return Err(self.missing(&p.key("name"), "a parentRef needs a `name`"));
            };
            if (group, kind) != ("", "Service") {
                let message = match (group, kind) {
                    ("gateway.networking.k8s.io", "Gateway") => "a Gateway parent is out of scope in-process (only Services, the mesh profile, are); this parentRef is ignored; use a VirtualService bound to the gateway".to_string(),
                    (_, "Service") => format!("parent kind Service in group `{group}` is not a Service; this parentRef is ignored (did you mean `group: \"\"`?)"),
                    _ => format!("parent {group}/{kind} is not supported; this parentRef is ignored"),
                };
                match (group, kind) {
                    (_, "Service") => self.warn(Some(&p), message),
                    _ => self.note(Some(&p), message),
                }
                continue;
            }
            if r.section_name.is_some() {
                return Err(self.invalid(
                    &p.key("sectionName"),
                    r.section_name.as_deref().unwrap_or_default(),
                    "a Service port name cannot be resolved in-process; attach with `port`",
                ));
            }
            let port = match r.port {
                Some(n @ 1..=65535) => Some(n as u32),
                Some(n) => {
                    return Err(self.invalid(
                        &p.key("port"),
                        &n.to_string(),
                        "a port must be between 1 and 65535",
                    ));
                }
                None => None,
            };
            if let Some(given) = r.namespace.as_deref()
                && let Err(why) = super::syntax::namespace(given)
            {
                return Err(self.invalid(&p.key("namespace"), given, &why));
            }
            let namespace = r.namespace.unwrap_or_else(|| ns.to_string());
            let host = service_host(&format!("{name}.{namespace}.svc.cluster.local"), &namespace);
            parents.push(Parent {
                host,
                namespace,
                port,
            });
        }
        Ok(parents)
    }

    /// Several refs to one parent must each set `sectionName` or `port`, and differ in them.
    fn check_parent_duplicates(&self, path: &FieldPath, refs: &[wire::ParentRef]) -> Result<()> {
        let id = |r: &wire::ParentRef| {
            (
                r.group.clone(),
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
            )
        };
        for (i, a) in refs.iter().enumerate() {
            for (j, b) in refs[..i].iter().enumerate() {
                if id(a) != id(b) {
                    continue;
                }
                let unset = |r: &wire::ParentRef| r.section_name.is_none() && r.port.is_none();
                let problem = if unset(a) || unset(b) {
                    "specified"
                } else if (&a.section_name, a.port) == (&b.section_name, b.port) {
                    "unique"
                } else {
                    continue;
                };
                return Err(self.error(
                    crate::config::error::ErrorKind::InvalidValue,
                    &path.index(i),
                    None,
                    format!("this parentRef and {} name the same parent: sectionName or port must be {problem} when parentRefs includes 2 or more references to the same parent", path.index(j)),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn check_hostnames(&self, path: &FieldPath, hosts: &[String]) -> Result<()> {
        if hosts.len() > 16 {
            return Err(self.invalid(path, &hosts.len().to_string(), "at most 16 hostnames"));
        }
        for (i, h) in hosts.iter().enumerate() {
            let rest = h.strip_prefix("*.").unwrap_or(h);
            let ok = h.len() <= 253
                && !rest.is_empty()
                && rest.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !ok {
                return Err(self.invalid(
                    &path.index(i),
                    h,
                    "a hostname is lower-case DNS labels, optionally after `*.`",
                ));
            }
        }
        Ok(())
    }

    fn check_rule_counts(&self, path: &FieldPath, rules: &[wire::Rule]) -> Result<()> {
        if rules.is_empty() || rules.len() > MAX_RULES {
            return Err(self.invalid(path, &rules.len().to_string(), "a route has 1 to 16 rules"));
        }
        self.check_match_counts(path, rules.iter().map(|r| r.matches.as_deref()))?;
        let mut names: Vec<&str> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if let Some(n) = &r.name {
                if names.contains(&n.as_str()) {
                    return Err(self.invalid(
                        &path.index(i).key("name"),
                        n,
                        "Rule name must be unique within the route",
                    ));
                }
                if !n.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                }) || n.len() > 253
                {
                    return Err(self.invalid(
                        &path.index(i).key("name"),
                        n,
                        "a rule name is a lower-case DNS subdomain",
                    ));
                }
                names.push(n);
            }
        }
        Ok(())
    }

    /// The CRDs' limits on match entries: at most 64 in a rule and 128 in a route, a rule
    /// without any counting as one.
    pub(super) fn check_match_counts<'m, M: 'm>(
        &self,
        path: &FieldPath,
        rules: impl Iterator<Item = Option<&'m [M]>> + Clone,
    ) -> Result<()> {
        for (i, matches) in rules.clone().enumerate() {
            let n = matches.map_or(0, <[M]>::len);
            if n > MAX_MATCHES_PER_RULE {
                return Err(self.invalid(
                    &path.index(i).key("matches"),
                    &n.to_string(),
                    "at most 64 matches in a rule",
                ));
            }
        }
        let total: usize = rules.map(|m| m.map_or(1, |m| m.len().max(1))).sum();
        if total > MAX_MATCHES {
            return Err(self.invalid(path, &total.to_string(), "While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a route must be less than 128"));
        }
        Ok(())
    }

    /// Warns that `sessionPersistence`, when set, is not applied.
    pub(super) fn ignore_session_persistence(&mut self, path: &FieldPath, set: bool) {
        if set {
            self.warn(
                Some(&path.key("sessionPersistence")),
                "session persistence is not applied in-process; ignored",
            );
        }
    }

    /// One rule: a route per match entry, all sharing the rule's action and policy.
    fn rule(
        &mut self,
        resource: &Arc<Resource>,
        path: &FieldPath,
        rule: wire::Rule,
        base: RuleAt,
    ) -> Result<Vec<(Route, Precedence)>> {
        let matches = match rule.matches {
            Some(m) if !m.is_empty() => m,
            _ => vec![wire::Match::default()],
        };
        let filters = self.filters(
            &path.key("filters"),
            rule.filters.unwrap_or_default(),
            &matches,
            resource.namespace(),
        )?;
        let backends = rule.backend_refs.unwrap_or_default();
        if filters.redirect.is_some() && !backends.is_empty() {
            return Err(self.conflict(
                path,
                "RequestRedirect filter must not be used together with backendRefs",
            ));
        }
        let destinations = self.backends(
            &path.key("backendRefs"),
            backends,
            resource.namespace(),
            &matches,
        )?;
        let action = action_of(&filters, destinations);
        let (timeout, retries) = self.timeouts(path, rule.timeouts, rule.retry)?;
        self.ignore_session_persistence(path, rule.session_persistence.is_some());
        let policy = RoutePolicy::default()
            .with_rewrite(filters.rewrite)
            .with_headers(filters.headers)
            .with_timeout(timeout)
            .with_retries(Some(retries))
            .with_mirrors(filters.mirrors)
            .with_cors(filters.cors);
        let lowered = (matches.into_iter().enumerate())
            .map(|(j, m)| self.route_match(&path.key("matches").index(j), m, &base, j))
            .collect::<Result<_>>()?;
        Ok(route_per_match(
            resource, path, rule.name, action, policy, lowered,
        ))
    }

    /// One `matches` entry, defaulted: its conditions and its precedence.
    fn route_match(
        &mut self,
        path: &FieldPath,
        m: wire::Match,
        base: &RuleAt,
        j: usize,
    ) -> Result<(RequestMatch, Precedence)> {
        let pm = m.path.unwrap_or_default();
        let kind = pm.type_.unwrap_or_else(|| "PathPrefix".into());
        let value = pm.value.unwrap_or_else(|| "/".into());
        let ppath = path.key("path");
        let matcher = match kind.as_str() {
            "Exact" | "PathPrefix" => {
                self.check_match_path(&ppath.key("value"), &value)?;
                if kind == "Exact" {
                    StringMatch::exact(&value)
                } else {
                    StringMatch::path_segments(&value)
                }
            }
            "RegularExpression" => self.regex(&ppath.key("value"), &value)?,
            other => {
                return Err(self.invalid(
                    &ppath.key("type"),
                    other,
                    "allowed: Exact, PathPrefix, RegularExpression",
                ));
            }
        };
        let mut conditions = vec![Condition::new(Field::Uri, matcher)];
        let has_method = m.method.is_some();
        let headers = self.name_matches(
            &path.key("headers"),
            m.headers.unwrap_or_default(),
            true,
            &mut conditions,
        )?;
        let queries = self.name_matches(
            &path.key("queryParams"),
            m.query_params.unwrap_or_default(),
            false,
            &mut conditions,
        )?;
        if let Some(method) = m.method {
            if !METHODS.contains(&method.as_str()) {
                return Err(self.invalid(
                    &path.key("method"),
                    &method,
                    &format!("allowed: {}", METHODS.join(", ")),
                ));
            }
            conditions.push(Condition::new(Field::Method, StringMatch::exact(&method)));
        }
        let path_match = match kind.as_str() {
            "Exact" => PathMatch::Exact(&value),
            "PathPrefix" => PathMatch::Prefix(&value),
            _ => PathMatch::Regex(&value),
        };
        let key = Precedence::http(base, j, path_match, has_method, headers, queries);
        Ok((
            RequestMatch::new(None, conditions, Selector::default()),
            key,
        ))
    }

    /// A path match value: absolute, without `//`, `/./`, `/../`, `%2f` or `#`, of the allowed
    /// characters, at most 1,024 long.
    fn check_match_path(&self, path: &FieldPath, value: &str) -> Result<()> {
        let rule = |ok: bool, message: &str| {
            if ok {
                Ok(())
            } else {
                Err(self.invalid(path, value, message))
            }
        };
        rule(
            value.starts_with('/'),
            "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']",
        )?;
        rule(
            !value.contains("//"),
            "must not contain '//' when type one of ['Exact', 'PathPrefix']",
        )?;
        rule(
            !value.contains("/./"),
            "must not contain '/./' when type one of ['Exact', 'PathPrefix']",
        )?;
        rule(
            !value.contains("/../"),
            "must not contain '/../' when type one of ['Exact', 'PathPrefix']",
        )?;
        rule(
            !value.contains("%2f"),
            "must not contain '%2f' when type one of ['Exact', 'PathPrefix']",
        )?;
        rule(
            !value.contains("%2F"),
            "must not contain '%2F' when type one of ['Exact', 'PathPrefix']",
        )?;
        rule(
            !value.contains('#'),
            "must not contain '#' when type one of ['Exact', 'PathPrefix']",
        )?;
        rule(
            !value.ends_with("/.."),
            "must not end with '/..' when type one of ['Exact', 'PathPrefix']",
        )?;
        rule(
            !value.ends_with("/."),
            "must not end with '/.' when type one of ['Exact', 'PathPrefix']",
        )?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-/._~!$&'()*+,;=:@%".contains(c);
        rule(
            value.chars().all(allowed) && value.len() <= 1024,
            "must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix']",
        )
    }

    /// `headers` (`header` true) or `queryParams`: conditions added to `out`; returns how many
    /// count for precedence (header names equal but for case count once; the later is dropped).
    pub(super) fn name_matches(
        &mut self,
        path: &FieldPath,
        list: Vec<wire::NameMatch>,
        header: bool,
        out: &mut Vec<Condition>,
    ) -> Result<usize> {
        if list.len() > 16 {
            return Err(self.invalid(path, &list.len().to_string(), "at most 16 entries"));
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, nm) in list.into_iter().enumerate() {
            let p = path.index(i);
            let name = nm.name.unwrap_or_default();
            let value = nm.value.unwrap_or_default();
            if name.is_empty() || name.len() > 256 || !name.bytes().all(is_token) {
                return Err(self.invalid(
                    &p.key("name"),
                    &name,
                    "a name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~",
                ));
            }
            let max = if header { 4096 } else { 1024 };
            if value.is_empty()
                || value.len() > max
                || (header
                    && !value
                        .bytes()
                        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
            {
                return Err(self.invalid(
                    &p.key("value"),
                    &value,
                    &format!("a value is 1 to {max} printable ASCII characters"),
                ));
            }
            if seen.contains(&name) {
                return Err(self.invalid(
                    &p.key("name"),
                    &name,
                    "this name is already matched above",
                ));
            }
            if header && seen.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
                self.warn(Some(&p), format!("`{name}` names a header already matched above (names ignore case); only the first is used"));
                continue;
            }
            seen.push(name.clone());
            let matcher = match nm.type_.as_deref().unwrap_or("Exact") {
                "Exact" => StringMatch::exact(&value),
                "RegularExpression" => self.regex(&p.key("value"), &value)?,
                other => {
                    return Err(self.invalid(
                        &p.key("type"),
                        other,
                        "allowed: Exact, RegularExpression",
                    ));
                }
            };
            let field = if header {
                Field::Header(
                    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
                        self.invalid(&p.key("name"), &name, "not a valid header name")
                    })?,
                )
            } else {
                Field::Query(name.as_str().into())
            };
            out.push(Condition::new(field, matcher));
        }
        Ok(seen.len())
    }

    /// A RegularExpression path entry behind a catch-all `PathPrefix /` entry never matches.
    fn warn_unreachable_regexes(&mut self, entries: &[(Route, Precedence)]) {
        let catch_all = entries.iter().any(|(r, k)| {
            k.is_catch_all_prefix()
                && r.matches().iter().all(|m| m.conditions().len() == 1)
                && r.matches()[0].conditions()[0].matcher().source() == "/"
        });
        if !catch_all {
            return;
        }
        for (_, k) in entries.iter().filter(|(_, k)| k.is_regex_path()) {
            let (rule, entry) = k.position();
            let path = FieldPath::root()
                .key("spec")
                .key("rules")
                .index(rule)
                .key("matches")
                .index(entry)
                .key("path");
            self.warn(Some(&path), "a RegularExpression path ranks below every PathPrefix, and this route has a catch-all `PathPrefix /` rule: this match can never win");
        }
    }
}

/// A byte of an HTTP token (RFC 7230).
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// A route per match entry of one rule, all sharing the rule's name, action and policy; each
/// is known by its entry's field path.
pub(super) fn route_per_match(
    resource: &Arc<Resource>,
    path: &FieldPath,
    name: Option<String>,
    action: Action,
    policy: RoutePolicy,
    matches: Vec<(RequestMatch, Precedence)>,
) -> Vec<(Route, Precedence)> {
    let name: Option<Arc<str>> = name.map(Into::into);
    (matches.into_iter().enumerate())
        .map(|(j, (request_match, key))| {
            let route = Route::new(
                resource.clone(),
                name.clone(),
                path.key("matches").index(j).to_string(),
                vec![request_match],
                action.clone(),
                None,
                policy.clone(),
            );
            (route, key)
        })
        .collect()
}

/// The rule's action: a redirect, a 500 when there is nothing to send (or an unresolved
/// filter), else the weighted backends.
fn action_of(filters: &RuleFilters, destinations: Vec<WeightedDestination>) -> Action {
    let total: u64 = destinations.iter().map(|d| u64::from(d.weight())).sum();
    if filters.unresolved || (filters.redirect.is_none() && total == 0) {
        return Action::DirectResponse(DirectResponse::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None::<Bytes>,
        ));
    }
    match &filters.redirect {
        Some(r) => Action::Redirect(r.clone()),
        None => Action::forward(destinations),
    }
}

/// A Service destination for a backend named `name` in `namespace`, written as the route's
/// namespace resolves it: `name`, or `name.namespace` in another namespace.
pub(super) fn service_destination(
    name: &str,
    namespace: Option<&str>,
    route_ns: &str,
    port: Option<u32>,
) -> Arc<Destination> {
    let host = match namespace.filter(|n| *n != route_ns) {
        Some(ns) => format!("{name}.{ns}"),
        None => name.to_string(),
    };
    Arc::new(Destination::new(host, Labels::new()).in_subset(None, port))
}

/// GEP-2257 durations: one to four `<1-5 digits><h|m|s|ms>` parts.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = Duration::ZERO;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else {
            match rest.as_bytes().first()? {
                b'h' => (Duration::from_secs(3600), 1),
                b'm' => (Duration::from_secs(60), 1),
                b's' => (Duration::from_secs(1), 1),
                _ => return None,
            }
        };
        rest = &rest[len..];
        total += unit * u32::try_from(n).ok()?;
        parts += 1;
    }
    (1..=4).contains(&parts).then_some(total)
}

/// An RFC 3339 date-time as (seconds, nanoseconds) since the Unix epoch.
/// The days of month `mo` (1 to 12) of year `y`, in the proleptic Gregorian calendar.
fn days_in_month(y: i64, mo: i64) -> i64 {
    match mo {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

pub(crate) fn rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &frac[..digits.min(9)];
        nanos = f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6
            && (o.starts_with('+') || o.starts_with('-'))
            && o.get(3..4) == Some(":") =>
        {
            let part = |r: std::ops::Range<usize>| {
                let p = o.get(r)?;
                p.bytes()
                    .all(|c| c.is_ascii_digit())
                    .then(|| p.parse::<i64>().ok())?
            };
            let (oh, om) = (part(1..3)?, part(4..6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let mins = oh * 60 + om;
            if o.starts_with('-') { -mins } else { mins }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian), as in Howard Hinnant's algorithm.
    let (yy, mm) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + s - offset * 60, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1s500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("00060m"), Some(Duration::from_secs(3600)));
        for bad in ["1.5s", "-1s", "1d", "0", "", "1h1m1s1ms1h", "123456s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert!(rfc3339("2024-02-29T00:00:00Z").is_some(), "a leap day");
        assert!(rfc3339("2000-02-29T00:00:00-23:59").is_some());
        assert_eq!(rfc3339("2024-03-01T10:00:00Z"), Some((1_709_287_200, 0)));
        assert_eq!(
            rfc3339("2024-03-01T11:00:00.5+01:00"),
            Some((1_709_287_200, 500_000_000))
        );
        for bad in [
            "2024-03-01",
            "2024-13-01T00:00:00Z",
            "yesterday",
            "2024-03-01T10:00:00",
            "2024-03-01T10:00:00+99:99",
            "2024-03-01T10:00:00+24:00",
            "2024-03-01T10:00:00+-1:00",
            "2024-03-01T10:00:00-0:100",
            "2024-02-31T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
    }
}
