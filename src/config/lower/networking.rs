//! VirtualService → model (docs/semantics.md §3): the resource, its routes and their matches.
//! What routes do is in `vs_forward.rs` (destinations, mirrors, header operations) and
//! `vs_actions.rs` (redirects, direct responses, rewrites, retries, faults, CORS).

use std::collections::HashMap;
use std::sync::Arc;

use super::Pos;
use super::vs_analyze::{self, RouteShape};
use super::vs_forward::{adding, removing};
use super::{Result, VirtualServiceLowering, pseudo_header_field, syntax};
use crate::config::de::from_node;
use crate::config::error::{ErrorKind, LoadError};
use crate::config::node::{Node, Value};
use crate::config::path::FieldPath;
use crate::config::wire::StringMatch as WireMatch;
use crate::config::wire::networking as wire;
use crate::model::assembly::{DelegateUse, VirtualServiceIn};
use crate::model::{
    Action, Condition, Field, HeaderPolicy, RequestMatch, Resource, RetryPolicy, Route,
    RoutePolicy, Selector, StringMatch,
};
use crate::model::{ServiceHost, service_host};

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
        let gateways = self.gateways(&spec_path.key("gateways"), spec.gateways.take())?;
        let export = self.scope(&spec_path, &spec, &ns)?;
        self.check_vs_shape(&spec_path, &hosts, &gateways, &spec)?;
        let written = spec.hosts.as_deref().unwrap_or_default();
        if let Some((i, j)) = syntax::overlapping_hosts(written) {
            let problem = format!(
                "duplicate hosts in virtual service: {} & {} (they overlap: one covers the other)",
                written[i], written[j]
            );
            return Err(self.invalid(&spec_path.key("hosts").index(j), &written[j], &problem));
        }
        let mut routes: Vec<Arc<Route>> = Vec::new();
        let mut shapes = Vec::new();
        let mut delegates = Vec::new();
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
            let (route, delegate, shape) = match lowered {
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
            shapes.push(shape);
            routes.push(Arc::new(route));
        }
        if errors.is_empty() {
            self.analyze_routes(&spec_path, &routes, &shapes);
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
            export,
        })
    }

    /// The notes on what the VirtualService holds that a caller may not see (`tcp` and `tls`
    /// sections, a restricted `exportTo`), and its `exportTo` checked.
    fn scope(
        &mut self,
        spec_path: &FieldPath,
        spec: &wire::VirtualService,
        ns: &str,
    ) -> Result<Option<Vec<Box<str>>>> {
        for (present, field) in [(spec.tls.is_some(), "tls"), (spec.tcp.is_some(), "tcp")] {
            if present {
                self.note(
                    Some(&spec_path.key(field)),
                    format!("`{field}` routes are not HTTP and are not evaluated in-process; the `http` routes apply"),
                );
            }
        }
        let path = spec_path.key("exportTo");
        let export = self.export_to(&path, spec.export_to.as_deref().unwrap_or_default(), ns)?;
        if let Some(list) = &export {
            self.note(
                Some(&path),
                format!("exported to {} only: it applies to callers of those namespaces (Caller::with_namespace), never to a caller without one", list.join(", ")),
            );
        }
        Ok(export)
    }

    /// IST0130 for each route no request reaches (after a catch-all, or whose entries all
    /// repeat earlier ones) and IST0131 for each match entry an earlier one takes.
    fn analyze_routes(
        &mut self,
        spec_path: &FieldPath,
        routes: &[Arc<Route>],
        shapes: &[RouteShape],
    ) {
        let mut found = vs_analyze::analyze(shapes).into_iter().peekable();
        let mut catch_all: Option<usize> = None;
        for (i, route) in routes.iter().enumerate() {
            let path = spec_path.key("http").index(i);
            let mut ours = catch_all.map(|c| {
                format!(
                    "this route is unreachable: {} matches every request before it",
                    spec_path.key("http").index(c)
                )
            });
            catch_all = catch_all.or(route.is_unconditional().then_some(i));
            while let Some(f) = found.next_if(|f| f.route == i) {
                match f.entry {
                    Some(j) => self.analyzer(f.code, true, &path.key("match").index(j), f.message),
                    None => {
                        let message = match ours.take() {
                            Some(o) => format!("{o}; Istio: {}", f.message),
                            None => f.message,
                        };
                        self.analyzer(f.code, false, &path, message);
                    }
                }
            }
            if let Some(o) = ours {
                self.analyzer("IST0130", false, &path, o);
            }
        }
    }

    /// The items of `spec.http` as read (each is deserialized on its own).
    pub(super) fn http_nodes<'r>(
        &self,
        root: &'r Node,
        spec_path: &FieldPath,
    ) -> Result<&'r [Node]> {
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
    pub(super) fn one_http_route(
        &mut self,
        resource: &Arc<Resource>,
        (index, path): (usize, &FieldPath),
        node: &Node,
        is_delegate: bool,
    ) -> Result<(Route, Option<DelegateUse<Pos>>, RouteShape)> {
        let http: wire::HttpRoute =
            from_node(node, &path.to_string()).map_err(|e| e.with_document(self.doc.clone()))?;
        let shape = RouteShape {
            name: http.name.clone(),
            matches: http.match_.clone().unwrap_or_default(),
        };
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
        Ok((route, delegate, shape))
    }

    /// `gateways` (of a VirtualService or of a match), each `mesh` or `[namespace/]name`.
    pub(super) fn gateways(
        &self,
        path: &FieldPath,
        list: Option<Vec<String>>,
    ) -> Result<Vec<Box<str>>> {
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
    pub(super) fn check_vs_shape(
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
    pub(super) fn vs_hosts(
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
            // Two spellings of one host (`reviews`, `reviews.shop.svc.cluster.local`) are one.
            if seen.insert(host.canonical.clone(), i).is_none() {
                out.push(host);
            }
        }
        Ok(out)
    }

    /// A route's `delegate`: the VirtualService (by name, in the root's namespace unless given)
    /// whose routes take the route's place once the whole set is loaded.
    pub(super) fn delegate_ref(
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

    pub(super) fn http_route(
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
    pub(super) fn route_headers(
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
    pub(super) fn check_route_fields(
        &self,
        path: &FieldPath,
        http: &wire::HttpRoute,
    ) -> Result<()> {
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
    pub(super) fn check_prefix_redirect(
        &self,
        path: &FieldPath,
        http: &wire::HttpRoute,
    ) -> Result<()> {
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

    pub(super) fn match_request(
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
    pub(super) fn header_field(&mut self, path: &FieldPath, name: &str) -> Result<Field> {
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

    pub(super) fn lint_literal_regex(&mut self, path: &FieldPath, sm: &WireMatch) {
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
}
