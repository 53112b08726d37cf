//! RouteRule → model (docs/semantics.md §2).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};

use super::{Lowerer, Result, RouteRuleLowering};
use crate::config::error::ErrorKind;
use crate::config::path::FieldPath;
use crate::config::wire::legacy as wire;
use crate::model::assembly::RouteRuleIn;
use crate::model::{
    AbortFault, AbortStatus, Action, Condition, CorsPolicy, DelayFault, Destination, Fault, Field,
    HeaderOperations, HeaderPolicy, Labels, LegacySource, Mirror, PPM, Redirect, RedirectPath,
    RequestMatch, Resource, RetryPolicy, Rewrite, Route, RoutePolicy, Selector, StringMatch,
    WeightedDestination,
};
use crate::model::{ServiceHost, service_host};

/// The RouteRule default route timeout (Envoy v1's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

impl RouteRuleLowering<'_, '_> {
    fn istio_service(
        &mut self,
        path: &FieldPath,
        svc: &wire::IstioService,
        namespace: &str,
    ) -> Result<(ServiceHost, Arc<str>)> {
        match (&svc.name, &svc.service) {
            (Some(_), Some(_)) => {
                Err(self.conflict(path, "set either `name` or `service`, not both"))
            }
            (None, None) => Err(self.missing(path, "a service needs `name` or `service`")),
            (None, Some(fqdn)) => {
                if svc.namespace.is_some() || svc.domain.is_some() {
                    return Err(self.conflict(
                        path,
                        "`service` is a full name: `namespace` and `domain` must then be empty",
                    ));
                }
                Ok((service_host(fqdn, namespace), fqdn.as_str().into()))
            }
            (Some(name), None) => {
                if name.is_empty() {
                    return Err(self.invalid(
                        &path.key("name"),
                        name,
                        "a service name must not be empty",
                    ));
                }
                let ns = svc.namespace.as_deref().unwrap_or(namespace);
                let host = match svc.domain.as_deref() {
                    None | Some("svc.cluster.local") => service_host(name, ns),
                    Some(domain) => {
                        let fqdn = format!("{name}.{ns}.{domain}").to_ascii_lowercase();
                        ServiceHost {
                            canonical: fqdn.clone(),
                            names: vec![name.to_ascii_lowercase(), format!("{name}.{ns}"), fqdn],
                        }
                    }
                };
                Ok((host, name.as_str().into()))
            }
        }
    }

    /// Lowers one RouteRule.
    pub(crate) fn route_rule(
        &mut self,
        resource: Arc<Resource>,
        spec: wire::RouteRule,
    ) -> Result<RouteRuleIn> {
        let spec_path = FieldPath::root().key("spec");
        let ns = resource.namespace().to_string();
        let dest_path = spec_path.key("destination");
        let Some(destination) = &spec.destination else {
            return Err(self.missing(
                &dest_path,
                "`destination` is required: the service the rule applies to",
            ));
        };
        if destination.labels.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(self.invalid(
                &dest_path.key("labels"),
                "labels",
                "route rule destination labels must be empty; put version labels in `route[].labels`",
            ));
        }
        let (host, display_host) = self.istio_service(&dest_path, destination, &ns)?;
        if spec.l4_fault.is_some() {
            return Err(self.invalid(
                &spec_path.key("l4Fault"),
                "l4Fault",
                "L4 faults are not implemented (Istio rejects them too)",
            ));
        }
        let matches = match &spec.match_ {
            Some(m) => self.request_match(&spec_path.key("match"), m, &ns)?,
            None => Vec::new(),
        };
        let action = match &spec.redirect {
            Some(redirect) => self.redirect(&spec_path, &spec, redirect)?,
            None => self.destinations(
                &spec_path.key("route"),
                spec.route.as_deref().unwrap_or_default(),
                &display_host,
                &ns,
            )?,
        };
        let policy = self.policy(&spec_path, &spec, &ns)?;
        let fault = match &spec.http_fault {
            Some(f) => Some(self.fault(&spec_path.key("httpFault"), f)?),
            None => None,
        };
        Ok(RouteRuleIn {
            host,
            display_host,
            precedence: spec.precedence.unwrap_or(0),
            key: format!("{}/{}", resource.namespace(), resource.name()),
            route: Route::new(resource, None, "spec", matches, action, fault, policy),
        })
    }

    /// `match`: the request's header conditions and the calling service (a selector); no
    /// entry at all when it has neither.
    fn request_match(
        &mut self,
        mpath: &FieldPath,
        m: &wire::MatchCondition,
        ns: &str,
    ) -> Result<Vec<RequestMatch>> {
        if m.udp.is_some() {
            return Err(self.invalid(
                &mpath.key("udp"),
                "udp",
                "Istio does not support the UDP protocol",
            ));
        }
        if m.tcp.is_some() {
            self.warn(
                Some(&mpath.key("tcp")),
                "`match.tcp` (L4 attributes) does not apply to HTTP requests; ignored",
            );
        }
        let mut selector = Selector::default();
        if let Some(source) = &m.source {
            let spath = mpath.key("source");
            let (src, _) = self.istio_service(&spath, source, ns)?;
            let labels = self.labels(&spath.key("labels"), source.labels.clone())?;
            let names = src.names.into_iter().map(String::into_boxed_str).collect();
            selector = Selector::legacy(LegacySource::new(names, labels));
        }
        let mut conditions = Vec::new();
        if let Some(req) = &m.request {
            for (name, sm) in req.headers.iter().flatten() {
                let hpath = mpath.key("request").key("headers").key(name);
                conditions.push(self.condition(&hpath, name, sm)?);
            }
        }
        if conditions.is_empty() && selector.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![RequestMatch::new(None, conditions, selector)])
    }

    /// `redirect`, alone (no route, fault, rewrite or websocket upgrade beside it).
    fn redirect(
        &mut self,
        spec_path: &FieldPath,
        spec: &wire::RouteRule,
        redirect: &wire::HttpRedirect,
    ) -> Result<Action> {
        let rpath = spec_path.key("redirect");
        for (present, field) in [
            (spec.route.as_ref().is_some_and(|r| !r.is_empty()), "route"),
            (spec.http_fault.is_some(), "httpFault"),
            (spec.rewrite.is_some(), "rewrite"),
            (spec.websocket_upgrade == Some(true), "websocketUpgrade"),
        ] {
            if present {
                return Err(self.conflict(
                    &rpath,
                    &format!("`redirect` cannot be combined with `{field}`"),
                ));
            }
        }
        if redirect.uri.is_none() && redirect.authority.is_none() {
            return Err(self.missing(&rpath, "a redirect needs `uri` or `authority`"));
        }
        let path_rule = match redirect.uri.as_deref() {
            Some(uri) => RedirectPath::Replace(uri.into()),
            None => RedirectPath::Keep,
        };
        Ok(Action::Redirect(Redirect::new(
            path_rule,
            redirect.authority.as_deref().map(Into::into),
            None,
            None,
            StatusCode::MOVED_PERMANENTLY,
        )))
    }

    /// Rewrite, timeout (15 s by default), retries, mirror, CORS and `appendHeaders`.
    fn policy(
        &mut self,
        spec_path: &FieldPath,
        spec: &wire::RouteRule,
        ns: &str,
    ) -> Result<RoutePolicy> {
        let mut policy = RoutePolicy::default().with_timeout(Some(DEFAULT_TIMEOUT));
        if let Some(rw) = &spec.rewrite {
            if rw.uri.is_none() && rw.authority.is_none() {
                return Err(self.missing(
                    &spec_path.key("rewrite"),
                    "a rewrite needs `uri` or `authority`",
                ));
            }
            let uri = rw.uri.as_deref().map(Into::into);
            let authority = rw.authority.as_deref().map(Into::into);
            policy = policy.with_rewrite(Some(Rewrite::new(uri, authority, None)));
        }
        if let Some(t) = &spec.http_req_timeout
            && let Some(d) = self.timeout(&spec_path.key("httpReqTimeout"), t)?
        {
            policy = policy.with_timeout(Some(d));
        }
        if let Some(r) = &spec.http_req_retries {
            policy = policy.with_retries(self.retries(&spec_path.key("httpReqRetries"), r)?);
        }
        if let Some(mirror) = &spec.mirror {
            let mpath = spec_path.key("mirror");
            let (_, mhost) = self.istio_service(&mpath, mirror, ns)?;
            let labels = self.labels(&mpath.key("labels"), mirror.labels.clone())?;
            let destination = Arc::new(Destination::new(mhost, labels));
            policy = policy.with_mirrors(vec![Mirror::new(destination, PPM)]);
        }
        if let Some(cors) = &spec.cors_policy {
            policy = policy.with_cors(Some(self.cors(&spec_path.key("corsPolicy"), cors)?));
        }
        if let Some(headers) = &spec.append_headers {
            let hpath = spec_path.key("appendHeaders");
            let mut add = Vec::new();
            for (name, value) in headers {
                let p = hpath.key(name);
                let header: HeaderName = self.header_name(&p, name)?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| self.invalid(&p, value, "not a valid HTTP header value"))?;
                add.push((header, value));
            }
            let request = HeaderOperations::new(Vec::new(), add, Vec::new());
            policy = policy.with_headers(HeaderPolicy::new(
                request,
                HeaderOperations::default(),
                None,
            ));
        }
        Ok(policy)
    }

    /// `httpReqTimeout`: only `simpleTimeout.timeout` counts, as in Pilot.
    fn timeout(
        &mut self,
        tpath: &FieldPath,
        t: &wire::HttpTimeout,
    ) -> Result<Option<std::time::Duration>> {
        if t.custom.is_some() {
            self.warn(
                Some(&tpath.key("custom")),
                "custom timeout policies are ignored (as Pilot did)",
            );
        }
        let Some(simple) = &t.simple_timeout else {
            return Ok(None);
        };
        if simple.override_header_name.is_some() {
            self.warn(
                Some(&tpath.key("simpleTimeout").key("overrideHeaderName")),
                "`overrideHeaderName` is ignored (as Pilot did)",
            );
        }
        match &simple.timeout {
            Some(d) => Ok(Some(
                self.duration(&tpath.key("simpleTimeout").key("timeout"), d)?,
            )),
            None => Ok(None),
        }
    }

    /// `httpReqRetries`: `simpleRetry.attempts` more tries on the conditions Pilot hard-coded.
    fn retries(&mut self, rpath: &FieldPath, r: &wire::HttpRetry) -> Result<Option<RetryPolicy>> {
        if r.custom.is_some() {
            self.warn(
                Some(&rpath.key("custom")),
                "custom retry policies are ignored (as Pilot did)",
            );
        }
        let Some(simple) = &r.simple_retry else {
            return Ok(None);
        };
        let spath = rpath.key("simpleRetry");
        let attempts = simple.attempts.unwrap_or(0);
        if attempts < 0 {
            return Err(self.invalid(
                &spath.key("attempts"),
                &attempts.to_string(),
                "attempts must not be negative",
            ));
        }
        let per_try_timeout = match &simple.per_try_timeout {
            Some(d) => Some(self.duration(&spath.key("perTryTimeout"), d)?),
            None => None,
        };
        if simple.override_header_name.is_some() {
            self.warn(
                Some(&spath.key("overrideHeaderName")),
                "`overrideHeaderName` is ignored (as Pilot did)",
            );
        }
        let retry_on = ["5xx", "connect-failure", "refused-stream"].map(Into::into);
        Ok((attempts > 0)
            .then(|| RetryPolicy::new(attempts as u32, per_try_timeout, retry_on.into(), None)))
    }

    /// `corsPolicy`: exact origins (`*` for any).
    fn cors(&mut self, cpath: &FieldPath, cors: &wire::CorsPolicy) -> Result<CorsPolicy> {
        let max_age = match &cors.max_age {
            Some(d) => Some(self.duration(&cpath.key("maxAge"), d)?),
            None => None,
        };
        let origin = |o: &String| {
            if o == "*" {
                StringMatch::present()
            } else {
                StringMatch::exact(o)
            }
        };
        Ok(CorsPolicy::new(
            cors.allow_origin.iter().flatten().map(origin).collect(),
            boxed(&cors.allow_methods),
            boxed(&cors.allow_headers),
            boxed(&cors.expose_headers),
            max_age,
            cors.allow_credentials,
            true,
        ))
    }

    fn condition(
        &mut self,
        path: &FieldPath,
        name: &str,
        sm: &crate::config::wire::StringMatch,
    ) -> Result<Condition> {
        let lower = name.to_ascii_lowercase();
        let field = match lower.as_str() {
            "uri" => Field::Uri,
            "authority" => Field::Authority,
            "scheme" => Field::Scheme,
            "method" => Field::Method,
            _ => Field::Header(self.header_name(path, name)?),
        };
        if sm.bare.is_none() && sm.exact.is_none() && sm.prefix.is_none() && sm.regex.is_none() {
            return Err(self.missing(
                path,
                "a RouteRule string match needs `exact`, `prefix` or `regex`",
            ));
        }
        if matches!(field, Field::Uri) {
            for v in [&sm.exact, &sm.prefix, &sm.regex, &sm.bare]
                .into_iter()
                .flatten()
            {
                if v.is_empty() {
                    return Err(self.invalid(path, v, "a `uri` match value must not be empty"));
                }
            }
        }
        let matcher = self.string_match(path, sm, true, false, true)?;
        Ok(Condition::new(field, matcher))
    }

    fn destinations(
        &mut self,
        path: &FieldPath,
        routes: &[wire::DestinationWeight],
        display_host: &Arc<str>,
        ns: &str,
    ) -> Result<Action> {
        if routes.is_empty() {
            return Ok(Action::forward(vec![WeightedDestination::new(
                Arc::new(Destination::new(display_host.clone(), Labels::new())),
                100,
                HeaderPolicy::default(),
            )]));
        }
        let mut destinations = Vec::new();
        let mut sum: i64 = 0;
        // A single destination without a weight takes everything.
        let lone = routes.len() == 1 && routes[0].weight.unwrap_or(0) == 0;
        for (i, dw) in routes.iter().enumerate() {
            let p = path.index(i);
            let weight = dw.weight.unwrap_or(0);
            if !(0..=100).contains(&weight) {
                return Err(self.invalid(
                    &p.key("weight"),
                    &weight.to_string(),
                    "a weight must be between 0 and 100",
                ));
            }
            sum += i64::from(weight);
            let host = match &dw.destination {
                Some(d) => self.istio_service(&p.key("destination"), d, ns)?.1,
                None => display_host.clone(),
            };
            let labels = self.labels(&p.key("labels"), dw.labels.clone())?;
            let weight = if lone { 100 } else { weight as u32 };
            let destination = Arc::new(Destination::new(host, labels));
            destinations.push(WeightedDestination::new(
                destination,
                weight,
                HeaderPolicy::default(),
            ));
        }
        if !lone && sum != 100 {
            return Err(self.error(
                ErrorKind::InvalidValue,
                path,
                Some(&sum.to_string()),
                format!("route weights total {sum}; they must total 100"),
            ));
        }
        Ok(Action::forward(destinations))
    }

    fn fault(&mut self, path: &FieldPath, f: &wire::HttpFaultInjection) -> Result<Fault> {
        if f.delay.is_none() && f.abort.is_none() {
            return Err(self.missing(path, "a fault needs `delay`, `abort` or both"));
        }
        let compat = self.options.pilot_fault_compat;
        let percent_ppm = |lw: &mut Self, p: &FieldPath, percent: Option<f64>| -> Result<u32> {
            match percent {
                None if compat => Ok(0),
                None => Ok(PPM),
                Some(v) if !(0.0..=100.0).contains(&v) => {
                    Err(lw.invalid(p, &v.to_string(), "a percent must be between 0 and 100"))
                }
                Some(v) if compat => Ok((v.trunc() as u32) * 10_000),
                Some(v) => Ok(super::ppm(v)),
            }
        };
        let mut fault = Fault::default();
        if let Some(d) = &f.delay {
            let dpath = path.key("delay");
            if d.exponential_delay.is_some() {
                return Err(self.invalid(
                    &dpath.key("exponentialDelay"),
                    "exponentialDelay",
                    "Istio does not support exponentialDelay",
                ));
            }
            if d.override_header_name.is_some() {
                self.warn(
                    Some(&dpath.key("overrideHeaderName")),
                    "`overrideHeaderName` is ignored (as Pilot did)",
                );
            }
            let Some(fixed) = &d.fixed_delay else {
                return Err(self.missing(&dpath, "a delay needs `fixedDelay`"));
            };
            let duration = self.duration(&dpath.key("fixedDelay"), fixed)?;
            let ppm = percent_ppm(self, &dpath.key("percent"), d.percent)?;
            fault.set_delay(DelayFault::new(duration, ppm));
        }
        if let Some(a) = &f.abort {
            let apath = path.key("abort");
            if a.grpc_status.is_some() {
                return Err(self.invalid(
                    &apath.key("grpcStatus"),
                    a.grpc_status.as_deref().unwrap_or_default(),
                    "Istio does not support gRPC fault injection in RouteRules",
                ));
            }
            if a.override_header_name.is_some() {
                self.warn(
                    Some(&apath.key("overrideHeaderName")),
                    "`overrideHeaderName` is ignored (as Pilot did)",
                );
            }
            if a.http2_error.is_some() {
                self.warn(
                    Some(&apath.key("http2Error")),
                    "`http2Error` is ignored (as Pilot did)",
                );
            }
            let Some(status) = a.http_status else {
                return Err(self.missing(&apath, "an abort needs `httpStatus`"));
            };
            let status = self.abort_status(&apath.key("httpStatus"), status)?;
            let ppm = percent_ppm(self, &apath.key("percent"), a.percent)?;
            fault.set_abort(AbortFault::new(AbortStatus::Http(status), ppm));
        }
        Ok(fault)
    }
}

/// Shared with VirtualServices.
impl Lowerer<'_> {
    /// An abort's HTTP status: 200 to 599.
    pub(crate) fn abort_status(&self, path: &FieldPath, status: i32) -> Result<StatusCode> {
        u16::try_from(status)
            .ok()
            .filter(|s| (200..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| {
                self.invalid(
                    path,
                    &status.to_string(),
                    "an abort status must be between 200 and 599",
                )
            })
    }
}

fn boxed(v: &Option<Vec<String>>) -> Vec<Box<str>> {
    v.iter().flatten().map(|s| s.as_str().into()).collect()
}
