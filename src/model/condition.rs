//! Match conditions: what one `HTTPMatchRequest` (or a RouteRule's `match`) tests.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::context::Context;
use super::labels::Labels;
use super::request::{Field, RequestView};
use super::string_match::StringMatch;

/// One condition: a field, a [`StringMatch`], and whether it is inverted (`withoutHeaders`).
///
/// ```
/// use tower_mesh::model::{Condition, Field, StringMatch};
///
/// let chrome = Condition::new(
///     Field::Header(http::HeaderName::from_static("user-agent")),
///     StringMatch::regex(".*Chrome.*", 1 << 20)?,
/// );
/// assert!(!chrome.is_inverted());
/// assert!(matches!(chrome.field(), Field::Header(name) if name == "user-agent"));
/// assert_eq!(chrome.matcher().source(), ".*Chrome.*");
/// let no_debug = Condition::without(
///     Field::Header(http::HeaderName::from_static("x-debug")),
///     StringMatch::present(),
/// );
/// assert!(no_debug.is_inverted());
/// # Ok::<(), tower_mesh::model::PatternError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Condition {
    pub(super) field: Field,
    pub(super) matcher: StringMatch,
    pub(super) invert: bool,
}

impl Condition {
    /// A condition that holds when `field` is present and `matcher` accepts its value.
    pub fn new(field: Field, matcher: StringMatch) -> Self {
        Condition {
            field,
            matcher,
            invert: false,
        }
    }

    /// The inverted form used by `withoutHeaders`: a presence matcher holds when the field is
    /// absent; any other holds when the value (an absent one counts as empty) does not match.
    pub fn without(field: Field, matcher: StringMatch) -> Self {
        Condition {
            field,
            matcher,
            invert: true,
        }
    }

    /// The field tested.
    pub fn field(&self) -> &Field {
        &self.field
    }

    /// The matcher applied.
    pub fn matcher(&self) -> &StringMatch {
        &self.matcher
    }

    /// Whether the condition is inverted (`withoutHeaders`).
    pub fn is_inverted(&self) -> bool {
        self.invert
    }

    /// Whether the condition holds for every request that has a normal path (`uri` prefix `/`
    /// or regex `.*`), so that it does not stop a route from being a catch-all.
    pub(super) fn is_trivial(&self) -> bool {
        !self.invert && matches!(self.field, Field::Uri) && self.matcher.matches_every_path()
    }

    #[inline]
    pub(super) fn evaluate(&self, req: &RequestView<'_>) -> bool {
        let value = req.field(&self.field);
        self.holds_for(value.as_deref())
    }

    /// The decision for a given value (`None` when the field is absent).
    #[inline]
    pub(super) fn holds_for(&self, value: Option<&[u8]>) -> bool {
        match (self.invert, value) {
            (false, None) => false,
            (false, Some(v)) => self.matcher.matches_http(v),
            (true, _) if self.matcher.is_presence() => value.is_none(),
            (true, None) => !self.matcher.matches_http(b""),
            (true, Some(v)) => !self.matcher.matches_http(v),
        }
    }

    pub(super) fn describe(&self) -> String {
        let verb = if self.invert { "without " } else { "" };
        format!("{verb}{} {}", self.field, self.matcher.describe())
    }

    pub(super) fn value_for_explain<'r>(&self, req: &'r RequestView<'_>) -> Option<Cow<'r, [u8]>> {
        req.field(&self.field)
    }
}

/// The config-time part of a match: which callers and listeners the entry exists for.
///
/// Istio evaluates these when it builds a proxy's configuration, not per request: an entry that
/// does not fit the proxy is absent, so evaluation goes on with the next entry.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    pub(super) port: Option<u32>,
    pub(super) source_labels: Labels,
    pub(super) source_namespace: Option<Box<str>>,
    pub(super) gateways: Vec<Box<str>>,
    /// A RouteRule's `match.source`: the caller's service names and labels.
    pub(super) legacy_source: Option<LegacySource>,
}

/// A RouteRule `match.source`.
#[derive(Clone, Debug)]
pub(crate) struct LegacySource {
    pub(super) names: Vec<Box<str>>,
    pub(super) labels: Labels,
}

impl LegacySource {
    /// A calling service, by any of its `names`, with `labels` among its workload's.
    pub(crate) fn new(names: Vec<Box<str>>, labels: Labels) -> Self {
        LegacySource { names, labels }
    }
}

impl Selector {
    /// A VirtualService match entry's config-time part: the local `port`, the caller's labels
    /// and namespace, and the gateways it exists for.
    pub(crate) fn new(
        port: Option<u32>,
        source_labels: Labels,
        source_namespace: Option<Box<str>>,
        gateways: Vec<Box<str>>,
    ) -> Self {
        Selector {
            port,
            source_labels,
            source_namespace,
            gateways,
            legacy_source: None,
        }
    }

    /// A RouteRule's `match.source` as a selector.
    pub(crate) fn legacy(source: LegacySource) -> Self {
        Selector {
            legacy_source: Some(source),
            ..Selector::default()
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.port.is_none()
            && self.source_labels.is_empty()
            && self.source_namespace.is_none()
            && self.gateways.is_empty()
            && self.legacy_source.is_none()
    }

    /// Whether the entry exists for this context ([PILOT] `TranslateRoute`,
    /// `sourceMatchHTTP`). Allocates nothing.
    /// `port` is compared with the port the request is addressed to ([`service_port`]).
    #[inline]
    pub(super) fn fits(&self, ctx: &Context, view: &RequestView<'_>) -> bool {
        self.is_empty() || self.misfit(ctx, view).is_none()
    }

    /// Why the entry does not exist for this context and service port, if it does not.
    pub(super) fn misfit<'a>(
        &'a self,
        ctx: &'a Context,
        view: &RequestView<'_>,
    ) -> Option<Misfit<'a>> {
        if let Some(port) = self.port {
            let service = service_port(view, ctx);
            if service != port {
                return Some(Misfit::Port(port, service, ctx.port().is_some()));
            }
        }
        if let Some(source) = &self.legacy_source {
            // The caller's service: as set, else its `app` label (Kubernetes' convention).
            let service = ctx
                .caller()
                .and_then(|c| c.service.as_deref().or_else(|| c.labels.get("app")));
            let name_ok = service.is_some_and(|s| {
                source
                    .names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(s.trim_end_matches('.')))
            });
            if !name_ok {
                return Some(Misfit::SourceService(&source.names[0], service));
            }
            if !source.labels.is_subset_of(ctx.caller_labels()) {
                return Some(Misfit::SourceLabels(&source.labels, ctx.caller_labels()));
            }
        }
        if !self.gateways.is_empty() {
            return (!self.gateways.iter().any(|g| gateway_is(g, ctx.gateway())))
                .then_some(Misfit::Gateways(&self.gateways, ctx.gateway()));
        }
        if !self.source_labels.is_subset_of(ctx.caller_labels()) {
            return Some(Misfit::SourceLabels(
                &self.source_labels,
                ctx.caller_labels(),
            ));
        }
        let namespace = ctx.caller().and_then(|c| c.namespace.as_deref());
        match &self.source_namespace {
            Some(ns) if namespace != Some(&**ns) => Some(Misfit::Namespace(ns, namespace)),
            _ => None,
        }
    }
}

/// Why a match entry does not exist for a context.
pub(super) enum Misfit<'a> {
    /// The entry's port, the request's service port, whether the context set it.
    Port(u32, u32, bool),
    SourceService(&'a str, Option<&'a str>),
    SourceLabels(&'a Labels, &'a Labels),
    Gateways(&'a [Box<str>], &'a str),
    Namespace(&'a str, Option<&'a str>),
}

impl fmt::Display for Misfit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::Port(want, got, true) => {
                write!(f, "port {want} does not fit the context's port {got}")
            }
            Misfit::Port(want, got, false) => write!(
                f,
                "port {want} does not fit the port the request is addressed to, {got}"
            ),
            Misfit::SourceService(want, got) => write!(
                f,
                "match.source {want} does not fit the caller service {}",
                got.unwrap_or("(none)")
            ),
            Misfit::SourceLabels(want, got) => {
                write!(f, "source labels {want} are not all on the caller {got}")
            }
            Misfit::Gateways(list, ours) => {
                write!(
                    f,
                    "match gateways [{}] do not include {ours}",
                    list.join(", ")
                )
            }
            Misfit::Namespace(want, got) => write!(
                f,
                "sourceNamespace {want} is not the caller's namespace {}",
                got.unwrap_or("(none)")
            ),
        }
    }
}

/// Whether a gateway named in configuration (`name` or `namespace/name`) is the proxy's.
pub(super) fn gateway_is(listed: &str, ours: &str) -> bool {
    if listed == ours {
        return true;
    }
    match (listed.split_once('/'), ours.split_once('/')) {
        (Some((_, a)), None) => a == ours,
        (None, Some((_, b))) => listed == b,
        _ => false,
    }
}

/// One match entry: runtime conditions (all must hold) and the config-time selector.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match:
///     - headers: {end-user: {exact: jason}}
///       sourceLabels: {app: productpage}
///     fault:
///       delay: {fixedDelay: 2s, percentage: {value: 50}}
///       abort: {httpStatus: 503, percentage: {value: 1}}
///     rewrite: {uri: /v2}
///     headers: {response: {set: {x-version: v2}}}
///     route:
///     - destination: {host: reviews}
///       weight: 90
///     - destination: {host: reviews-canary}
///       weight: 10
///       headers: {request: {add: {x-canary: "yes"}}}
///   - redirect: {uri: /login, port: 8443}
/// "#)?;
/// let jason = Request::get("/").header("end-user", "jason").body(())?;
/// let ctx = Context::new()
///     .with_host("reviews")
///     .with_caller(Caller::new().with_labels([("app", "productpage")]));
/// let decision = rules.evaluate(&jason, &ctx, &NeverSampler);
/// let route = decision.route().unwrap();
/// let entry = &route.matches()[0];
/// assert_eq!(entry.name(), None);
/// assert_eq!(entry.conditions().len(), 1, "sourceLabels is a selector, not a condition");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct RequestMatch {
    pub(super) name: Option<Arc<str>>,
    pub(super) conditions: Vec<Condition>,
    pub(super) selector: Selector,
}

impl RequestMatch {
    /// A match entry: every condition must hold, for callers and listeners `selector` admits.
    pub(crate) fn new(
        name: Option<Arc<str>>,
        conditions: Vec<Condition>,
        selector: Selector,
    ) -> Self {
        let mut conditions = conditions;
        conditions.shrink_to_fit();
        RequestMatch {
            name,
            conditions,
            selector,
        }
    }

    /// The entry's `name`, when it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The runtime conditions, all of which must hold.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// Whether every request matches once the selector fits (no runtime condition).
    pub(super) fn is_catch_all(&self) -> bool {
        self.conditions.iter().all(Condition::is_trivial)
    }

    #[inline]
    pub(super) fn matches(&self, req: &RequestView<'_>) -> bool {
        self.conditions.iter().all(|c| c.evaluate(req))
    }

    /// [`matches`](Self::matches), given the value of one field already read (by the route
    /// index), so that it is not looked up again.
    #[inline]
    pub(super) fn matches_knowing(
        &self,
        req: &RequestView<'_>,
        field: &Field,
        value: &[u8],
    ) -> bool {
        self.conditions.iter().all(|c| {
            if c.field.same_as(field) {
                c.holds_for(Some(value))
            } else {
                c.evaluate(req)
            }
        })
    }
}

impl Field {
    /// Whether two fields name the same part of a request (uri, one header or one query
    /// parameter).
    #[inline]
    fn same_as(&self, other: &Field) -> bool {
        match (self, other) {
            (Field::Uri, Field::Uri) => true,
            (Field::Header(a), Field::Header(b)) => a == b,
            (Field::Query(a), Field::Query(b)) => a == b,
            _ => false,
        }
    }
}

/// The service port a request is addressed to: the context's port when set, else the port of
/// the request's authority, else the scheme's default (443 for `https`, else 80). Both
/// VirtualService `match.port` and Gateway API parentRef ports compare with it.
pub(super) fn service_port(view: &RequestView<'_>, ctx: &Context) -> u32 {
    if let Some(port) = ctx.port() {
        return port;
    }
    let from_authority = view.authority().and_then(|a| {
        let a = std::str::from_utf8(a).ok()?;
        let (host, port) = a.rsplit_once(':')?;
        (!host.contains(':') || host.ends_with(']')).then(|| port.parse().ok())?
    });
    from_authority.unwrap_or(if view.scheme() == "https" { 443 } else { 80 })
}
