//! VirtualService → model (docs/semantics.md §3).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use super::Pos;
use super::{Result, VirtualServiceLowering, pseudo_header_field, syntax};
use crate::config::de::from_node;
use crate::config::error::{ErrorKind, LoadError};
use crate::config::node::{Node, Value};
use crate::config::path::FieldPath;
use crate::config::wire::StringMatch as WireMatch;
use crate::config::wire::networking as wire;
use crate::model::assembly::{DelegateUse, SubsetUse, VirtualServiceIn};
use crate::model::{
    AbortFault, AbortStatus, Action, Condition, CorsPolicy, DelayFault, Destination,
    DirectResponse, Fault, Field, HeaderPolicy, Labels, Mirror, PPM, Redirect, RedirectPath,
    RedirectPort, RegexRewrite, RequestMatch, Resource, RetryPolicy, Rewrite, Route, RoutePolicy,
    Selector, StringMatch, WeightedDestination,
};
use crate::model::{ServiceHost, service_host};

/// The methods a CORS policy may allow, as Istio's validation lists them.
const CORS_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// The largest direct-response body Istio accepts (Pilot's `DefaultMaxDirectResponseBodySizeBytes`).
const MAX_DIRECT_RESPONSE_BODY: usize = 1 << 20;

const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

impl VirtualServiceLowering<'_, '_> {
    /// Lowers one VirtualService.
    pub(crate) fn virtual_service(
        &mut self,
        resource: Arc<Resource>,
        mut spec: wire::VirtualService,
    ) -> Result<VirtualServiceIn<Pos>> {
        let spec_path = FieldPath::root().key("spec");
        let ns = resource.namespace().to_string();
        let hosts = self.vs_hosts(&spec_path, spec.hosts.as_deref().unwrap_or_default(), &ns)?;
        for (present, field) in [(spec.tls.is_some(), "tls"), (spec.tcp.is_some(), "tcp")] {
            if present {
                self.warn(
                    Some(&spec_path.key(field)),
                    format!("`{field}` routes are not HTTP and are ignored"),
                );
            }
        }
        let gateways = self.gateways(&spec_path.key("gateways"), spec.gateways.take())?;
        self.check_vs_shape(&spec_path, &hosts, &gateways, &spec)?;
        let mut routes: Vec<Arc<Route>> = Vec::new();
        let mut delegates = Vec::new();
        let mut unconditional: Option<String> = None;
        let mut errors = Vec::new();
        let max_errors = self.options.limits.max_errors;
        // Each route is read on its own, so that one load reports the mistakes of them all.
        let root = self.root;
        for (i, node) in self.http_nodes(root, &spec_path)?.iter().enumerate() {
            let path = spec_path.key("http").index(i);
            let uses_before = self.subset_uses.len();
            let lowered = self.one_http_route(&resource, (i, &path), node, hosts.is_empty());
            for u in &mut self.subset_uses[uses_before..] {
                u.route = i;
            }
            let (route, delegate) = match lowered {
                Ok(r) => r,
                Err(e) => {
                    let stop = e.kind() == ErrorKind::Limit;
                    errors.push(e);
                    if stop || errors.len() >= max_errors {
                        break;
                    }
                    continue;
                }
            };
            delegates.extend(delegate);
            if let Some(first) = &unconditional {
                self.warn(
                    Some(&path),
                    format!("this route is unreachable: {first} matches every request before it"),
                );
            } else if route.is_unconditional() {
                unconditional = Some(path.to_string());
            }
            routes.push(Arc::new(route));
        }
        if !errors.is_empty() {
            return Err(LoadError::several(errors, false));
        }
        Ok(VirtualServiceIn {
            resource,
            hosts,
            gateways,
            routes,
            resolved: Arc::default(),
            delegates,
        })
    }

    /// The items of `spec.http` as read (each is deserialized on its own).
    fn http_nodes<'r>(&self, root: &'r Node, spec_path: &FieldPath) -> Result<&'r [Node]> {
        let Some(node) = root.get("spec").and_then(|s| s.get("http")) else {
            return Ok(&[]);
        };
        match &node.value {
            Value::Seq(items) => Ok(items),
            _ if node.is_null() => Ok(&[]),
            _ => Err(self.error(
                ErrorKind::WrongType,
                &spec_path.key("http"),
                None,
                format!("expected a list of HTTP routes, found {}", node.describe()),
            )),
        }
    }

    /// One item of `spec.http`, read from its node and lowered, with its delegate if it has
    /// one. `is_delegate`: the VirtualService has no hosts, so it may not delegate again.
    fn one_http_route(
        &mut self,
        resource: &Arc<Resource>,
        (index, path): (usize, &FieldPath),
        node: &Node,
        is_delegate: bool,
    ) -> Result<(Route, Option<DelegateUse<Pos>>)> {
        let http: wire::HttpRoute =
            from_node(node, &path.to_string()).map_err(|e| e.with_document(self.doc.clone()))?;
        let ns = resource.namespace().to_string();
        let mut delegate = None;
        if let Some(d) = &http.delegate {
            if is_delegate {
                // A VirtualService without hosts is a delegate, and delegates do not
                // delegate again, whether or not a root refers to this one.
                return Err(self.conflict(
                    &path.key("delegate"),
                    "a delegate VirtualService (one without `hosts`) must not delegate again; Istio allows one level of delegation",
                ));
            }
            delegate = Some(self.delegate_ref(&path.key("delegate"), d, index, &ns)?);
        }
        let route = self.http_route(resource, path, http, &ns)?;
        Ok((route, delegate))
    }

    /// `gateways` (of a VirtualService or of a match), each `mesh` or `[namespace/]name`.
    fn gateways(&self, path: &FieldPath, list: Option<Vec<String>>) -> Result<Vec<Box<str>>> {
        let list = list.unwrap_or_default();
        for (i, g) in list.iter().enumerate() {
            if let Err(problem) = syntax::gateway(g) {
                return Err(self.invalid(&path.index(i), g, &problem));
            }
        }
        Ok(list.into_iter().map(String::into_boxed_str).collect())
    }

    /// What Istio requires of a VirtualService as a whole: routes when it has hosts, no
    /// gateways when it is a delegate, and no host `*` for the mesh.
    fn check_vs_shape(
        &self,
        spec_path: &FieldPath,
        hosts: &[ServiceHost],
        gateways: &[Box<str>],
        spec: &wire::VirtualService,
    ) -> Result<()> {
        if hosts.is_empty() {
            if !gateways.is_empty() {
                return Err(self.conflict(
                    &spec_path.key("gateways"),
                    "a delegate VirtualService (one without `hosts`) must not set `gateways`; the root's gateways apply",
                ));
            }
            for (present, field) in [(spec.tcp.is_some(), "tcp"), (spec.tls.is_some(), "tls")] {
                if present {
                    return Err(self.conflict(
                        &spec_path.key(field),
                        &format!("a delegate VirtualService (one without `hosts`) has only `http` routes; `{field}` is not allowed"),
                    ));
                }
            }
            return Ok(());
        }
        if spec.http.is_none() && spec.tcp.is_none() && spec.tls.is_none() {
            return Err(self.missing(
                spec_path,
                "a VirtualService with `hosts` needs at least one of `http`, `tcp` or `tls`",
            ));
        }
        let for_mesh = gateways.is_empty() || gateways.iter().any(|g| &**g == "mesh");
        if for_mesh && let Some(i) = hosts.iter().position(|h| h.canonical == "*") {
            return Err(self.invalid(
                &spec_path.key("hosts").index(i),
                "*",
                "the host `*` is not allowed for the mesh (no `gateways`, or `mesh` among them); name the services",
            ));
        }
        Ok(())
    }

    /// `hosts`, expanded with the namespace; none makes the VirtualService a delegate only.
    fn vs_hosts(
        &mut self,
        spec_path: &FieldPath,
        hosts: &[String],
        ns: &str,
    ) -> Result<Vec<ServiceHost>> {
        let mut out: Vec<ServiceHost> = Vec::with_capacity(hosts.len());
        let mut seen = HashMap::with_capacity(hosts.len());
        for (i, h) in hosts.iter().enumerate() {
            let p = spec_path.key("hosts").index(i);
            if h.is_empty() {
                return Err(self.invalid(&p, h, "a host must not be empty"));
            }
            if let Err(problem) = syntax::virtual_service_host(h) {
                return Err(self.invalid(&p, h, &problem));
            }
            let host = service_host(h, ns);
            if let Some(first) = seen.insert(host.canonical.clone(), i) {
                let problem = format!("the same host as hosts[{first}]; a host is listed once");
                return Err(self.invalid(&p, h, &problem));
            }
            out.push(host);
        }
        if out.is_empty() {
            self.warn(
                Some(spec_path),
                "the VirtualService has no `hosts`: it can only be used as a delegate",
            );
        }
        Ok(out)
    }

    /// A route's `delegate`: the VirtualService (by name, in the root's namespace unless given)
    /// whose routes take the route's place once the whole set is loaded.
    fn delegate_ref(
        &self,
        dpath: &FieldPath,
        d: &wire::Delegate,
        index: usize,
        ns: &str,
    ) -> Result<DelegateUse<Pos>> {
        let Some(name) = d.name.clone().filter(|n| !n.is_empty()) else {
            return Err(self.missing(
                &dpath.key("name"),
                "a delegate needs the `name` of a VirtualService",
            ));
        };
        Ok(DelegateUse {
            index,
            namespace: d.namespace.clone().unwrap_or_else(|| ns.to_string()),
            name,
            at: self.pos(dpath),
        })
    }

    fn http_route(
        &mut self,
        resource: &Arc<Resource>,
        path: &FieldPath,
        mut http: wire::HttpRoute,
        ns: &str,
    ) -> Result<Route> {
        self.check_route_fields(path, &http)?;
        let mut matches = Vec::new();
        for (i, m) in http.match_.take().into_iter().flatten().enumerate() {
            matches.push(self.match_request(&path.key("match").index(i), m)?);
        }
        let headers = self.route_headers(path, &mut http)?;
        let rewrite = match http.rewrite {
            Some(rw) => Some(self.rewrite(&path.key("rewrite"), rw, &headers)?),
            None => None,
        };
        let timeout = match &http.timeout {
            Some(t) => Some(self.duration(&path.key("timeout"), t)?),
            None => None,
        };
        let retries = match http.retries {
            Some(r) => self.retries(&path.key("retries"), r)?,
            // Istio's mesh-wide default applies to a route that sets no policy.
            None => Some(RetryPolicy::mesh_default()),
        };
        let fault = match http.fault {
            Some(f) => Some(self.fault(&path.key("fault"), f)?),
            None => None,
        };
        let legacy_mirror = (http.mirror, http.mirror_percentage, http.mirror_percent);
        let mirrors = self.mirrors(path, legacy_mirror, http.mirrors, ns)?;
        let cors = match http.cors_policy {
            Some(c) => Some(self.cors(&path.key("corsPolicy"), c)?),
            None => None,
        };
        let policy = RoutePolicy::default()
            .with_rewrite(rewrite)
            .with_headers(headers)
            .with_timeout(timeout)
            .with_retries(retries)
            .with_mirrors(mirrors)
            .with_cors(cors);
        let action = if http.delegate.is_some() {
            // A placeholder: the delegate's routes replace this one when the set is built.
            Action::forward(Vec::new())
        } else if let Some(r) = http.redirect {
            self.redirect(&path.key("redirect"), r)?
        } else if let Some(d) = http.direct_response {
            self.direct_response(&path.key("directResponse"), d)?
        } else {
            self.forward(&path.key("route"), http.route.unwrap_or_default(), ns)?
        };
        let name = http.name.map(|n| n.into());
        Ok(Route::new(
            resource.clone(),
            name,
            path.to_string(),
            matches,
            action,
            fault,
            policy,
        ))
    }

    /// The route's `headers`, with the header fields Istio 1.5 removed read into them (each
    /// with a warning), and a warning for the removed `websocketUpgrade`.
    fn route_headers(
        &mut self,
        path: &FieldPath,
        http: &mut wire::HttpRoute,
    ) -> Result<HeaderPolicy> {
        let mut headers = self.headers(&path.key("headers"), http.headers.take())?;
        if http.websocket_upgrade.is_some() {
            self.warn(
                Some(&path.key("websocketUpgrade")),
                "`websocketUpgrade` was removed in Istio 1.5; upgrades are always allowed, so it is ignored",
            );
        }
        let removed = [
            ("appendHeaders", adding(http.append_headers.take()), true),
            (
                "appendRequestHeaders",
                adding(http.append_request_headers.take()),
                true,
            ),
            (
                "appendResponseHeaders",
                adding(http.append_response_headers.take()),
                false,
            ),
            (
                "removeRequestHeaders",
                removing(http.remove_request_headers.take()),
                true,
            ),
            (
                "removeResponseHeaders",
                removing(http.remove_response_headers.take()),
                false,
            ),
        ];
        self.removed_header_fields(path, &mut headers, removed)?;
        Ok(headers)
    }

    /// Exactly one action, and no field the action excludes (Istio's
    /// `validateHTTPRouteConflict`).
    fn check_route_fields(&self, path: &FieldPath, http: &wire::HttpRoute) -> Result<()> {
        let actions = [
            ("route", http.route.as_ref().is_some_and(|r| !r.is_empty())),
            ("redirect", http.redirect.is_some()),
            ("directResponse", http.direct_response.is_some()),
            ("delegate", http.delegate.is_some()),
        ];
        let set: Vec<&str> = actions
            .iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| *n)
            .collect();
        match set.len() {
            0 => {
                return Err(self.missing(
                    path,
                    "an HTTP route needs one of `route`, `redirect`, `directResponse` or `delegate`",
                ));
            }
            1 => {}
            _ => {
                return Err(self.conflict(
                    path,
                    &format!("only one of `route`, `redirect`, `directResponse` and `delegate` may be set; found {}", set.join(" and ")),
                ));
            }
        }
        if http.redirect.is_some() || http.direct_response.is_some() {
            let which = if http.redirect.is_some() {
                "redirect"
            } else {
                "directResponse"
            };
            for (present, field) in [
                (http.fault.is_some(), "fault"),
                (http.rewrite.is_some(), "rewrite"),
            ] {
                if present {
                    return Err(self.conflict(
                        path,
                        &format!("`{which}` cannot be combined with `{field}`"),
                    ));
                }
            }
        }
        if http.mirror.is_some() && http.mirrors.is_some() {
            return Err(self.conflict(path, "`mirror` and `mirrors` cannot be used together"));
        }
        self.check_prefix_redirect(path, http)
    }

    /// `redirect.prefixRewrite` replaces the matched prefix: it excludes `redirect.uri`, and
    /// every match of the route must match the uri by prefix (no uri match counts as `/`).
    fn check_prefix_redirect(&self, path: &FieldPath, http: &wire::HttpRoute) -> Result<()> {
        let set = |f: &Option<String>| f.as_deref().is_some_and(|v| !v.is_empty());
        let Some(r) = http.redirect.as_ref().filter(|r| set(&r.prefix_rewrite)) else {
            return Ok(());
        };
        if set(&r.uri) {
            return Err(self.conflict(
                &path.key("redirect"),
                "`uri` and `prefixRewrite` cannot be used together",
            ));
        }
        for (i, m) in http.match_.iter().flatten().enumerate() {
            if m.uri.as_ref().is_some_and(|u| u.prefix.is_none()) {
                return Err(self.conflict(
                    &path.key("match").index(i).key("uri"),
                    "`redirect.prefixRewrite` replaces the matched prefix, so every match of the route must use a `prefix` uri match",
                ));
            }
        }
        Ok(())
    }

    /// `rewrite`: a path (`uri` or `uriRegexRewrite`) and an authority, set once.
    fn rewrite(
        &mut self,
        rpath: &FieldPath,
        rw: wire::HttpRewrite,
        headers: &HeaderPolicy,
    ) -> Result<Rewrite> {
        let mut rw = rw;
        // Proto3: an empty string is unset.
        for field in [&mut rw.uri, &mut rw.authority] {
            if field.as_deref() == Some("") {
                *field = None;
            }
        }
        if rw.uri.is_none() && rw.authority.is_none() && rw.uri_regex_rewrite.is_none() {
            return Err(self.missing(
                rpath,
                "a rewrite needs `uri`, `authority` or `uriRegexRewrite` (empty values count as unset)",
            ));
        }
        if rw.uri.is_some() && rw.uri_regex_rewrite.is_some() {
            return Err(self.conflict(rpath, "`uri` and `uriRegexRewrite` cannot be used together"));
        }
        if rw.authority.is_some() && headers.authority().is_some() {
            return Err(self.conflict(rpath, "the authority is rewritten twice: by `rewrite.authority` and by `headers.request` (`:authority`/`host`)"));
        }
        let uri_regex = match rw.uri_regex_rewrite {
            Some(rr) => Some(self.regex_rewrite(&rpath.key("uriRegexRewrite"), rr)?),
            None => None,
        };
        if let Some(uri) = &rw.uri
            && (!uri.starts_with('/') || http::uri::PathAndQuery::try_from(uri.as_str()).is_err())
        {
            return Err(self.invalid(
                &rpath.key("uri"),
                uri,
                "a rewrite path must start with `/` and be a valid URI path",
            ));
        }
        Ok(Rewrite::new(
            rw.uri.map(String::into_boxed_str),
            rw.authority.map(String::into_boxed_str),
            uri_regex,
        ))
    }

    /// `uriRegexRewrite`: its regex, checked like any other and counted against the limits.
    fn regex_rewrite(&mut self, p: &FieldPath, rr: wire::RegexRewrite) -> Result<RegexRewrite> {
        let Some(pattern) = rr.match_ else {
            return Err(self.missing(&p.key("match"), "`uriRegexRewrite` needs `match`"));
        };
        let Some(rewrite) = rr.rewrite else {
            return Err(self.missing(&p.key("rewrite"), "`uriRegexRewrite` needs `rewrite`"));
        };
        // Validates syntax and size like any regex; rewriting matches anywhere.
        self.regex(&p.key("match"), &pattern)?;
        let max = self.options.limits.max_regex_size;
        let rewrite = RegexRewrite::new(&pattern, &rewrite, max)
            .map_err(|e| self.invalid(&p.key("match"), &pattern, &e.message))?;
        self.charge_regex(&p.key("match"), &pattern, rewrite.heap_bytes())?;
        Ok(rewrite)
    }

    /// `mirror` (with `mirrorPercentage` or the deprecated `mirrorPercent`) and `mirrors`.
    fn mirrors(
        &mut self,
        path: &FieldPath,
        (mirror, percentage, percent): (
            Option<wire::Destination>,
            Option<wire::Percent>,
            Option<u32>,
        ),
        mirrors: Option<Vec<wire::HttpMirrorPolicy>>,
        ns: &str,
    ) -> Result<Vec<Mirror>> {
        // Both percentages are checked, and the deprecated one warned about, whether or not a
        // `mirror` is set (as Istio validates them); `mirrorPercentage` wins.
        let from_percentage = match percentage {
            Some(p) => Some(self.percentage(
                &path.key("mirrorPercentage").key("value"),
                p.value.unwrap_or(0.0),
            )?),
            None => None,
        };
        let from_percent = match percent {
            Some(pct) => {
                self.warn(
                    Some(&path.key("mirrorPercent")),
                    "`mirrorPercent` is deprecated; use `mirrorPercentage`",
                );
                if pct > 100 {
                    return Err(self.invalid(
                        &path.key("mirrorPercent"),
                        &pct.to_string(),
                        "a percent must be between 0 and 100",
                    ));
                }
                Some(pct * 10_000)
            }
            None => None,
        };
        let mut out = Vec::new();
        if let Some(m) = mirror {
            let destination = self.destination(&path.key("mirror"), Some(m), ns)?;
            let ppm = from_percentage.or(from_percent).unwrap_or(PPM);
            out.push(Mirror::new(destination, ppm));
        }
        for (i, m) in mirrors.into_iter().flatten().enumerate() {
            let mpath = path.key("mirrors").index(i);
            let destination = self.destination(&mpath.key("destination"), m.destination, ns)?;
            let ppm = match m.percentage {
                Some(p) => self.percentage(
                    &mpath.key("percentage").key("value"),
                    p.value.unwrap_or(0.0),
                )?,
                None => PPM,
            };
            out.push(Mirror::new(destination, ppm));
        }
        Ok(out)
    }

    /// `route`: the weighted destinations of a forward.
    fn forward(
        &mut self,
        rpath: &FieldPath,
        route: Vec<wire::HttpRouteDestination>,
        ns: &str,
    ) -> Result<Action> {
        let mut destinations = Vec::new();
        for (i, d) in route.into_iter().enumerate() {
            destinations.push(self.weighted_destination(&rpath.index(i), d, ns)?);
        }
        let total: u64 = destinations.iter().map(|d| u64::from(d.weight())).sum();
        if destinations.len() > 1 && total == 0 {
            return Err(self.invalid(
                rpath,
                "0",
                "with several destinations, the weights must not all be 0",
            ));
        }
        if total > u64::from(u32::MAX) {
            return Err(self.invalid(
                rpath,
                &total.to_string(),
                "the weights add up to more than 4294967295",
            ));
        }
        Ok(Action::forward(destinations))
    }

    /// One entry of `route`: its destination, weight and header operations.
    fn weighted_destination(
        &mut self,
        p: &FieldPath,
        d: wire::HttpRouteDestination,
        ns: &str,
    ) -> Result<WeightedDestination> {
        let weight = d.weight.unwrap_or(0);
        if weight < 0 {
            return Err(self.invalid(
                &p.key("weight"),
                &weight.to_string(),
                "a weight must not be negative",
            ));
        }
        let destination = self.destination(&p.key("destination"), d.destination, ns)?;
        let mut headers = self.headers(&p.key("headers"), d.headers)?;
        let removed = [
            (
                "appendRequestHeaders",
                adding(d.append_request_headers),
                true,
            ),
            (
                "appendResponseHeaders",
                adding(d.append_response_headers),
                false,
            ),
            ("appendHeaders", None, true),
            (
                "removeRequestHeaders",
                removing(d.remove_request_headers),
                true,
            ),
            (
                "removeResponseHeaders",
                removing(d.remove_response_headers),
                false,
            ),
        ];
        self.removed_header_fields(p, &mut headers, removed)?;
        Ok(WeightedDestination::new(
            destination,
            weight as u32,
            headers,
        ))
    }

    fn match_request(
        &mut self,
        path: &FieldPath,
        m: wire::HttpMatchRequest,
    ) -> Result<RequestMatch> {
        let mut conditions = Vec::new();
        let ignore_case = m.ignore_uri_case.unwrap_or(false);
        if let Some(uri) = &m.uri {
            let sm = self.string_match(&path.key("uri"), uri, true, ignore_case, false)?;
            conditions.push(Condition::new(Field::Uri, sm));
        }
        for (key, field, value) in [
            ("scheme", Field::Scheme, &m.scheme),
            ("method", Field::Method, &m.method),
            ("authority", Field::Authority, &m.authority),
        ] {
            if let Some(v) = value {
                let sm = self.string_match(&path.key(key), v, false, false, false)?;
                conditions.push(Condition::new(field, sm));
            }
        }
        for (name, sm) in m.headers.iter().flatten() {
            let p = path.key("headers").key(name);
            let field = self.header_field(&p, name)?;
            let matcher = self.string_match(&p, sm, false, false, false)?;
            self.lint_literal_regex(&p, sm);
            conditions.push(Condition::new(field, matcher));
        }
        for (name, sm) in m.without_headers.iter().flatten() {
            let p = path.key("withoutHeaders").key(name);
            let field = self.header_field(&p, name)?;
            let matcher = if sm.regex.as_deref() == Some("*") {
                StringMatch::present()
            } else {
                self.string_match(&p, sm, false, false, false)?
            };
            conditions.push(Condition::without(field, matcher));
        }
        for (name, sm) in m.query_params.iter().flatten() {
            let p = path.key("queryParams").key(name);
            let matcher = self.string_match(&p, sm, false, false, false)?;
            conditions.push(Condition::new(Field::Query(name.as_str().into()), matcher));
        }
        let gateways = self.gateways(&path.key("gateways"), m.gateways)?;
        let selector = Selector::new(
            m.port,
            self.labels(&path.key("sourceLabels"), m.source_labels)?,
            m.source_namespace.map(String::into_boxed_str),
            gateways,
        );
        Ok(RequestMatch::new(
            m.name.map(Into::into),
            conditions,
            selector,
        ))
    }

    /// The field a `headers`/`withoutHeaders` key matches, with Istio's quirks.
    fn header_field(&mut self, path: &FieldPath, name: &str) -> Result<Field> {
        let lower = name.to_ascii_lowercase();
        if let Some(f) = pseudo_header_field(&lower) {
            return Ok(f);
        }
        if lower.starts_with("@request.auth.claims") {
            self.warn(
                Some(path),
                format!(
                    "`{name}` matches a JWT claim; tower-mesh has no claims, so it never matches"
                ),
            );
            return Ok(Field::Absent(name.into()));
        }
        if lower == "host" {
            self.warn(
                Some(path),
                "Istio never sees a `host` header (HTTP/1.1 Host becomes :authority), so this never matches; use `authority`",
            );
            return Ok(Field::Absent(name.into()));
        }
        if matches!(lower.as_str(), "uri" | "scheme" | "method" | "authority") {
            self.warn(
                Some(path),
                format!(
                    "the docs say the `{lower}` header key \"will be ignored\", but Istio matches a header literally named `{lower}`; use the `{lower}` match field instead"
                ),
            );
        }
        Ok(Field::Header(self.header_name(path, name)?))
    }

    fn lint_literal_regex(&mut self, path: &FieldPath, sm: &WireMatch) {
        if let Some(r) = &sm.regex
            && !r.is_empty()
            && r.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | ' ' | '=' | ';' | ',')
            })
        {
            self.warn(
                Some(&path.key("regex")),
                format!("regex \"{r}\" has no special characters and must match the whole value, like exact; did you mean \".*{r}.*\"?"),
            );
        }
    }

    fn destination(
        &mut self,
        path: &FieldPath,
        d: Option<wire::Destination>,
        ns: &str,
    ) -> Result<Arc<Destination>> {
        let Some(d) = d else {
            return Err(self.missing(path, "`destination` is required"));
        };
        let Some(host) = d.host.filter(|h| !h.is_empty()) else {
            return Err(self.missing(&path.key("host"), "a destination needs a `host`"));
        };
        if let Err(problem) = syntax::destination_host(&host) {
            return Err(self.invalid(&path.key("host"), &host, &problem));
        }
        let port = match d.port {
            Some(p) => {
                if p.name.is_some() {
                    return Err(self.invalid(
                        &path.key("port").key("name"),
                        p.name.as_deref().unwrap_or_default(),
                        "`port.name` was removed from Istio; use `port.number`",
                    ));
                }
                // Proto3: `port: {}` is `number: 0`.
                match p.number.unwrap_or(0) {
                    n @ 1..=65535 => Some(n),
                    n => {
                        return Err(self.invalid(
                            &path.key("port").key("number"),
                            &n.to_string(),
                            "a port must be between 1 and 65535 (`port: {}` is port 0)",
                        ));
                    }
                }
            }
            None => None,
        };
        let subset = d.subset.filter(|s| !s.is_empty()).map(|subset| {
            let subset: Arc<str> = subset.into();
            let at = self.pos(&path.key("subset"));
            self.subset_uses.push(SubsetUse {
                route: 0,
                canonical: service_host(&host, ns).canonical,
                host: host.clone(),
                subset: subset.clone(),
                at,
            });
            subset
        });
        Ok(Arc::new(
            Destination::new(host, Labels::new()).in_subset(subset, port),
        ))
    }

    fn headers(&mut self, path: &FieldPath, h: Option<wire::Headers>) -> Result<HeaderPolicy> {
        let h = h.unwrap_or_default();
        let (request, authority) = self.header_ops(&path.key("request"), h.request, true)?;
        let (response, _) = self.header_ops(&path.key("response"), h.response, false)?;
        Ok(HeaderPolicy::new(request, response, authority))
    }

    /// The header fields Istio 1.5 removed (`appendHeaders`, `removeRequestHeaders`, ...),
    /// each read as the `headers` operation that replaced it, in the order given.
    fn removed_header_fields(
        &mut self,
        path: &FieldPath,
        headers: &mut HeaderPolicy,
        fields: [(&str, Option<wire::HeaderOperations>, bool); 5],
    ) -> Result<()> {
        for (field, ops, request) in fields {
            let Some(ops) = ops else { continue };
            let p = path.key(field);
            let side = if request { "request" } else { "response" };
            let op = if ops.add.is_some() { "add" } else { "remove" };
            self.warn(
                Some(&p),
                format!("`{field}` was removed in Istio 1.5; read as `headers.{side}.{op}`"),
            );
            let (lowered, _) = self.header_ops(&p, Some(ops), request)?;
            headers.extend(request, lowered);
        }
        Ok(())
    }

    fn redirect(&mut self, path: &FieldPath, mut r: wire::HttpRedirect) -> Result<Action> {
        // Proto3: a field equal to its zero value is unset (`uri: ""` keeps the path).
        for field in [
            &mut r.uri,
            &mut r.authority,
            &mut r.scheme,
            &mut r.prefix_rewrite,
        ] {
            if field.as_deref() == Some("") {
                *field = None;
            }
        }
        let nothing = r.uri.is_none()
            && r.authority.is_none()
            && r.scheme.is_none()
            && r.port.is_none()
            && r.derive_port.is_none()
            && r.prefix_rewrite.is_none();
        if nothing {
            return Err(self.missing(
                path,
                "a redirect needs one of `uri`, `prefixRewrite`, `authority`, `scheme`, `port` or `derivePort` \
                 (empty values count as unset); without any it would send the client back to \
                 the same URL",
            ));
        }
        let code = match r.redirect_code {
            None | Some(0) => StatusCode::MOVED_PERMANENTLY,
            Some(c @ (301 | 302 | 303 | 307 | 308)) => {
                StatusCode::from_u16(c as u16).unwrap_or(StatusCode::MOVED_PERMANENTLY)
            }
            Some(c) => {
                return Err(self.invalid(
                    &path.key("redirectCode"),
                    &c.to_string(),
                    "a redirect code must be 301, 302, 303, 307 or 308",
                ));
            }
        };
        let port = match (r.port, r.derive_port.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(self.conflict(path, "`port` and `derivePort` cannot be used together"));
            }
            (Some(p), None) => match u16::try_from(p) {
                Ok(p) if p > 0 => Some(RedirectPort::Number(p)),
                _ => {
                    return Err(self.invalid(
                        &path.key("port"),
                        &p.to_string(),
                        "a port must be between 1 and 65535",
                    ));
                }
            },
            (None, Some("FROM_PROTOCOL_DEFAULT")) => Some(RedirectPort::FromProtocolDefault),
            (None, Some("FROM_REQUEST_PORT")) => Some(RedirectPort::FromRequestPort),
            (None, Some(other)) => {
                return Err(self.invalid(
                    &path.key("derivePort"),
                    other,
                    "allowed: FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT",
                ));
            }
            (None, None) => None,
        };
        let path_rule = match (r.uri, r.prefix_rewrite) {
            (Some(uri), _) => RedirectPath::Replace(uri.into_boxed_str()),
            (None, Some(prefix)) => RedirectPath::ReplacePrefix(prefix.into_boxed_str()),
            (None, None) => RedirectPath::Keep,
        };
        Ok(Action::Redirect(Redirect::new(
            path_rule,
            r.authority.map(String::into_boxed_str),
            port,
            r.scheme.map(String::into_boxed_str),
            code,
        )))
    }

    fn direct_response(&mut self, path: &FieldPath, d: wire::HttpDirectResponse) -> Result<Action> {
        let Some(status) = d.status else {
            return Err(self.missing(&path.key("status"), "a direct response needs a `status`"));
        };
        let status = u16::try_from(status)
            .ok()
            .filter(|s| (200..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| {
                self.invalid(
                    &path.key("status"),
                    &status.to_string(),
                    "a status must be between 200 and 599",
                )
            })?;
        let body = match d.body {
            None => None,
            Some(b) => {
                let bpath = path.key("body");
                let bytes = match (b.string, b.bytes) {
                    (Some(_), Some(_)) => {
                        return Err(
                            self.conflict(&bpath, "only one of `string` and `bytes` may be set")
                        );
                    }
                    (Some(s), None) => Bytes::from(s),
                    (None, Some(b64)) => Bytes::from(decode_base64(&b64).ok_or_else(|| {
                        self.invalid(&bpath.key("bytes"), &b64, "`bytes` must be base64")
                    })?),
                    (None, None) => Bytes::new(),
                };
                // Pilot raises Envoy's 4 KiB default for inline bodies to 1 MiB.
                if bytes.len() > MAX_DIRECT_RESPONSE_BODY {
                    return Err(self.invalid(
                        &bpath,
                        &format!("{} bytes", bytes.len()),
                        "a direct response body is limited to 1 MiB (1048576 bytes), as Istio limits it",
                    ));
                }
                Some(bytes)
            }
        };
        Ok(Action::DirectResponse(DirectResponse::new(status, body)))
    }

    fn retries(&mut self, path: &FieldPath, r: wire::HttpRetry) -> Result<Option<RetryPolicy>> {
        let attempts = r.attempts.unwrap_or(0);
        if attempts < 0 {
            return Err(self.invalid(
                &path.key("attempts"),
                &attempts.to_string(),
                "attempts must not be negative",
            ));
        }
        if attempts == 0
            && (r.per_try_timeout.is_some()
                || r.retry_on.is_some()
                || r.backoff.is_some()
                || r.retry_remote_localities.is_some())
        {
            return Err(self.conflict(path, "`attempts: 0` disables retries, so `perTryTimeout`, `retryOn`, `retryRemoteLocalities` and `backoff` must not be set"));
        }
        let per_try_timeout = match &r.per_try_timeout {
            Some(d) => Some(self.duration(&path.key("perTryTimeout"), d)?),
            None => None,
        };
        let backoff = match &r.backoff {
            Some(d) => Some(self.duration(&path.key("backoff"), d)?),
            None => None,
        };
        let mut retry_on = Vec::new();
        for token in r
            .retry_on
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let is_code = token.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c));
            if !is_code && !RETRY_ON.contains(&token) {
                return Err(self.invalid(
                    &path.key("retryOn"),
                    token,
                    &format!(
                        "unknown retry condition; allowed: {} or an HTTP status code",
                        RETRY_ON.join(", ")
                    ),
                ));
            }
            retry_on.push(token.into());
        }
        if attempts == 0 {
            return Ok(None);
        }
        if retry_on.is_empty() {
            retry_on = RetryPolicy::default_retry_on();
        }
        Ok(Some(RetryPolicy::new(
            attempts as u32,
            per_try_timeout,
            retry_on,
            backoff,
        )))
    }

    fn fault(&mut self, path: &FieldPath, f: wire::HttpFaultInjection) -> Result<Fault> {
        if f.delay.is_none() && f.abort.is_none() {
            return Err(self.missing(path, "a fault needs `delay`, `abort` or both"));
        }
        let mut fault = Fault::default();
        if let Some(d) = f.delay {
            let dpath = path.key("delay");
            if d.exponential_delay.is_some() {
                return Err(self.invalid(
                    &dpath.key("exponentialDelay"),
                    "exponentialDelay",
                    "Istio does not support exponentialDelay",
                ));
            }
            let ppm = self.fault_percent(&dpath, d.percentage, d.percent, "delay", false)?;
            match &d.fixed_delay {
                Some(fixed) => {
                    let duration = self.duration(&dpath.key("fixedDelay"), fixed)?;
                    fault.set_delay(DelayFault::new(duration, ppm));
                }
                None => self.warn(
                    Some(&dpath),
                    "the delay has no `fixedDelay`, so Istio drops it; no delay is injected",
                ),
            }
        }
        if let Some(a) = f.abort {
            let apath = path.key("abort");
            if a.http2_error.is_some() {
                return Err(self.invalid(
                    &apath.key("http2Error"),
                    a.http2_error.as_deref().unwrap_or_default(),
                    "http2Error aborts are not supported by Istio",
                ));
            }
            let ppm = self.fault_percent(&apath, a.percentage, a.percent, "abort", true)?;
            let status = match (a.http_status, a.grpc_status.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(self.conflict(
                        &apath,
                        "only one of `httpStatus` and `grpcStatus` may be set",
                    ));
                }
                (Some(s), None) => Some(AbortStatus::Http(
                    self.abort_status(&apath.key("httpStatus"), s)?,
                )),
                (None, Some(g)) => {
                    Some(AbortStatus::Grpc(super::grpc_code(g).ok_or_else(|| {
                        self.invalid(
                            &apath.key("grpcStatus"),
                            g,
                            "expected a gRPC status name such as UNAVAILABLE (not a number)",
                        )
                    })?))
                }
                (None, None) => {
                    self.warn(
                        Some(&apath),
                        "abort configured, but no `httpStatus` or `grpcStatus`: Istio drops it",
                    );
                    None
                }
            };
            if let Some(status) = status {
                fault.set_abort(AbortFault::new(status, ppm));
            }
        }
        Ok(fault)
    }

    fn fault_percent(
        &mut self,
        path: &FieldPath,
        percentage: Option<wire::Percent>,
        percent: Option<i32>,
        what: &str,
        removed: bool,
    ) -> Result<u32> {
        if let Some(p) = percentage {
            return self.percentage(&path.key("percentage").key("value"), p.value.unwrap_or(0.0));
        }
        if let Some(pct) = percent {
            let ppath = path.key("percent");
            if !(0..=100).contains(&pct) {
                return Err(self.invalid(
                    &ppath,
                    &pct.to_string(),
                    "a percent must be between 0 and 100",
                ));
            }
            if removed {
                // Istio 1.5 removed it: the API server prunes it and the abort never fires.
                // Mapping it would give it a meaning Istio never gives, so it is refused.
                return Err(self.error(
                    ErrorKind::UnknownField,
                    &ppath,
                    Some(&pct.to_string()),
                    format!(
                        "`{what}.percent` was removed in Istio 1.5, which drops it (the {what} \
                         would never fire); write `percentage: {{value: {pct}}}`"
                    ),
                ));
            }
            self.warn(
                Some(&ppath),
                format!("`{what}.percent` is deprecated; read as `percentage: {{value: {pct}}}`"),
            );
            return Ok(pct as u32 * 10_000);
        }
        self.warn(
            Some(path),
            format!("the {what} has no percentage; it will never trigger (Istio's behaviour)"),
        );
        Ok(0)
    }

    /// `allowMethods` from Istio's list (letter case counts); `allowHeaders` and
    /// `exposeHeaders` valid, non-empty header names.
    fn check_cors_lists(
        &self,
        path: &FieldPath,
        methods: &[String],
        allow_headers: &Option<Vec<String>>,
        expose_headers: &Option<Vec<String>>,
    ) -> Result<()> {
        for (i, m) in methods.iter().enumerate() {
            if !CORS_METHODS.contains(&m.as_str()) {
                return Err(self.invalid(
                    &path.key("allowMethods").index(i),
                    m,
                    &format!("allowed: {} (letter case counts)", CORS_METHODS.join(", ")),
                ));
            }
        }
        for (field, names) in [
            ("allowHeaders", allow_headers),
            ("exposeHeaders", expose_headers),
        ] {
            for (i, name) in names.iter().flatten().enumerate() {
                if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(self.invalid(
                        &path.key(field).index(i),
                        name,
                        "not a valid header name",
                    ));
                }
            }
        }
        Ok(())
    }

    fn cors(&mut self, path: &FieldPath, c: wire::CorsPolicy) -> Result<CorsPolicy> {
        let mut allow_origins = Vec::new();
        for (i, m) in c.allow_origins.iter().flatten().enumerate() {
            let p = path.key("allowOrigins").index(i);
            // An origin match must say something (Istio's validation): no `{}`, no empty value.
            let empty = [&m.exact, &m.prefix, &m.regex]
                .iter()
                .all(|v| v.as_deref().is_none_or(str::is_empty));
            if empty {
                return Err(self.missing(
                    &p,
                    "an `allowOrigins` entry needs a non-empty `exact`, `prefix` or `regex`",
                ));
            }
            allow_origins.push(self.string_match(&p, m, false, false, false)?);
        }
        if c.allow_origin.is_some() {
            self.warn(
                Some(&path.key("allowOrigin")),
                "`allowOrigin` is deprecated; use `allowOrigins`",
            );
            if c.allow_origins.is_none() {
                for o in c.allow_origin.iter().flatten() {
                    allow_origins.push(if o == "*" {
                        StringMatch::present()
                    } else {
                        StringMatch::exact(o)
                    });
                }
            }
        }
        let max_age = match &c.max_age {
            Some(d) => Some(self.duration(&path.key("maxAge"), d)?),
            None => None,
        };
        if let Some(age) = max_age.filter(|a| a.subsec_nanos() != 0) {
            let value = format!("{age:?}");
            return Err(self.invalid(
                &path.key("maxAge"),
                &value,
                "`maxAge` is sent in whole seconds; write a whole number of seconds",
            ));
        }
        let forward_unmatched_preflights = match c.unmatched_preflights.as_deref() {
            None | Some("UNSPECIFIED") | Some("FORWARD") => true,
            Some("IGNORE") => false,
            Some(other) => {
                return Err(self.invalid(
                    &path.key("unmatchedPreflights"),
                    other,
                    "allowed: UNSPECIFIED, FORWARD, IGNORE",
                ));
            }
        };
        let methods = c.allow_methods.unwrap_or_default();
        self.check_cors_lists(path, &methods, &c.allow_headers, &c.expose_headers)?;
        let boxed = |v: Option<Vec<String>>| {
            v.unwrap_or_default()
                .into_iter()
                .map(String::into_boxed_str)
                .collect()
        };
        Ok(CorsPolicy::new(
            allow_origins,
            boxed(Some(methods)),
            boxed(c.allow_headers),
            boxed(c.expose_headers),
            max_age,
            c.allow_credentials,
            forward_unmatched_preflights,
        ))
    }
}

/// Standard base64 (with or without padding); `None` when malformed.
/// A removed `append*Headers` field as the `add` operation that replaced it.
fn adding(map: Option<BTreeMap<String, String>>) -> Option<wire::HeaderOperations> {
    map.map(|add| wire::HeaderOperations {
        add: Some(add),
        ..Default::default()
    })
}

/// A removed `remove*Headers` field as the `remove` operation that replaced it.
fn removing(list: Option<Vec<String>>) -> Option<wire::HeaderOperations> {
    list.map(|remove| wire::HeaderOperations {
        remove: Some(remove),
        ..Default::default()
    })
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64("a$b").is_none());
    }
}
