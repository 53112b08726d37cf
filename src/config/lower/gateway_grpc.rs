//! Gateway API `GRPCRoute` → model: method matches become path conditions on `/service/method`,
//! and each match entry gets the GRPCRoute precedence (docs/semantics.md §4b).

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use super::gateway::{MAX_RULES, route_per_match};
use super::{GrpcLowering, Result};
use crate::config::path::FieldPath;
use crate::config::wire::gateway as wire;
use crate::model::assembly::GatewayRouteIn;
use crate::model::{
    Action, Condition, DirectResponse, Field, Precedence, RequestMatch, Resource, RetryPolicy,
    Route, RoutePolicy, RuleAt, Selector, StringMatch,
};

/// The filter types a GRPCRoute allows.
const GRPC_FILTERS: [&str; 4] = [
    "ResponseHeaderModifier",
    "RequestHeaderModifier",
    "RequestMirror",
    "ExtensionRef",
];

/// `^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$`: a gRPC service name.
fn is_service_name(s: &str) -> bool {
    let s = s.strip_prefix('.').unwrap_or(s);
    !s.is_empty() && s.split('.').all(is_identifier)
}

/// `^[A-Za-z_][A-Za-z_0-9]*$`: a gRPC method name (and one part of a service name).
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl GrpcLowering<'_, '_, '_> {
    /// Lowers one GRPCRoute; `created` is its `metadata.creationTimestamp`.
    pub(crate) fn route(
        &mut self,
        resource: Arc<Resource>,
        spec: wire::GrpcRoute,
        created: Option<(i64, u32)>,
    ) -> Result<GatewayRouteIn> {
        let spec_path = FieldPath::root().key("spec");
        if self.root.get_str("apiVersion") == Some("gateway.networking.k8s.io/v1alpha2") {
            self.warn(
                None,
                "gateway.networking.k8s.io/v1alpha2 GRPCRoute is deprecated and no longer served; use v1",
            );
        }
        let ns = resource.namespace().to_string();
        let mut parents = self.parents(
            &spec_path.key("parentRefs"),
            spec.parent_refs.unwrap_or_default(),
            &ns,
        )?;
        if let Some(hosts) = &spec.hostnames {
            self.check_hostnames(&spec_path.key("hostnames"), hosts)?;
        }
        let Some(rules) = spec.rules else {
            self.warn(
                Some(&spec_path),
                "a GRPCRoute without `rules` routes nothing; it is ignored",
            );
            parents.clear();
            return Ok(GatewayRouteIn {
                resource,
                parents,
                entries: Vec::new(),
            });
        };
        self.check_grpc_counts(&spec_path.key("rules"), &rules)?;
        let key: Arc<str> = format!("{ns}/{}", resource.name()).into();
        let mut entries = Vec::new();
        for (i, rule) in rules.into_iter().enumerate() {
            let base = RuleAt {
                route: key.clone(),
                created,
                rule: i,
            };
            let path = spec_path.key("rules").index(i);
            entries.extend(self.rule(&resource, &path, rule, base)?);
        }
        Ok(GatewayRouteIn {
            resource,
            parents,
            entries,
        })
    }

    fn check_grpc_counts(&self, path: &FieldPath, rules: &[wire::GrpcRule]) -> Result<()> {
        if rules.len() > MAX_RULES {
            return Err(self.invalid(path, &rules.len().to_string(), "at most 16 rules"));
        }
        self.check_match_counts(path, rules.iter().map(|r| r.matches.as_deref()))
    }

    /// One GRPCRoute rule: a route per match entry.
    fn rule(
        &mut self,
        resource: &Arc<Resource>,
        path: &FieldPath,
        rule: wire::GrpcRule,
        base: RuleAt,
    ) -> Result<Vec<(Route, Precedence)>> {
        let filters = rule.filters.unwrap_or_default();
        for (k, f) in filters.iter().enumerate() {
            if let Some(t) = f.type_.as_deref().filter(|t| !GRPC_FILTERS.contains(t)) {
                return Err(self.invalid(
                    &path.key("filters").index(k).key("type"),
                    t,
                    &format!("allowed in a GRPCRoute: {}", GRPC_FILTERS.join(", ")),
                ));
            }
        }
        let filters = self.filters(&path.key("filters"), filters, &[], resource.namespace())?;
        let backends = rule.backend_refs.unwrap_or_default();
        let destinations = self.backends(
            &path.key("backendRefs"),
            backends,
            resource.namespace(),
            &[],
        )?;
        let total: u64 = destinations.iter().map(|d| u64::from(d.weight())).sum();
        // Where an HTTPRoute answers 500, a GRPCRoute answers UNAVAILABLE.
        let action = if filters.unresolved || total == 0 {
            Action::DirectResponse(DirectResponse::new(
                StatusCode::SERVICE_UNAVAILABLE,
                None::<Bytes>,
            ))
        } else {
            Action::forward(destinations)
        };
        self.ignore_session_persistence(path, rule.session_persistence.is_some());
        let policy = RoutePolicy::default()
            .with_headers(filters.headers)
            .with_mirrors(filters.mirrors)
            .with_retries(Some(RetryPolicy::mesh_default()));
        let matches = match rule.matches {
            Some(m) if !m.is_empty() => m,
            _ => vec![wire::GrpcMatch::default()],
        };
        let lowered = (matches.into_iter().enumerate())
            .map(|(j, m)| self.route_match(&path.key("matches").index(j), m, &base, j))
            .collect::<Result<_>>()?;
        Ok(route_per_match(
            resource, path, rule.name, action, policy, lowered,
        ))
    }

    /// One GRPCRoute match: the method as conditions on the path, and the headers.
    fn route_match(
        &mut self,
        path: &FieldPath,
        m: wire::GrpcMatch,
        base: &RuleAt,
        j: usize,
    ) -> Result<(RequestMatch, Precedence)> {
        let mut conditions = Vec::new();
        let (mut service_len, mut method_len) = (0, 0);
        if let Some(method) = m.method {
            (service_len, method_len) =
                self.method(&path.key("method"), method, &mut conditions)?;
        }
        let headers = self.name_matches(
            &path.key("headers"),
            m.headers.unwrap_or_default(),
            true,
            &mut conditions,
        )?;
        let key = Precedence::grpc(base, j, service_len, method_len, headers);
        Ok((
            RequestMatch::new(None, conditions, Selector::default()),
            key,
        ))
    }

    /// A method match: conditions on `/service/method`, and the lengths of the configured
    /// service and method.
    fn method(
        &mut self,
        path: &FieldPath,
        m: wire::GrpcMethodMatch,
        out: &mut Vec<Condition>,
    ) -> Result<(usize, usize)> {
        let exact = match m.type_.as_deref().unwrap_or("Exact") {
            "Exact" => true,
            "RegularExpression" => false,
            other => {
                return Err(self.invalid(
                    &path.key("type"),
                    other,
                    "allowed: Exact, RegularExpression",
                ));
            }
        };
        let (service, method) = (
            m.service.filter(|s| !s.is_empty()),
            m.method.filter(|s| !s.is_empty()),
        );
        if service.is_none() && method.is_none() {
            return Err(self.missing(
                path,
                "One or both of 'service' or 'method' must be specified",
            ));
        }
        if exact {
            if let Some(s) = service.as_deref().filter(|s| !is_service_name(s)) {
                return Err(self.invalid(&path.key("service"), s, "service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)"));
            }
            if let Some(s) = method.as_deref().filter(|s| !is_identifier(s)) {
                return Err(self.invalid(
                    &path.key("method"),
                    s,
                    "method must only contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$)",
                ));
            }
        }
        let lens = (
            service.as_ref().map_or(0, String::len),
            method.as_ref().map_or(0, String::len),
        );
        if let (true, Some(s), Some(me)) = (exact, &service, &method) {
            out.push(Condition::new(
                Field::Uri,
                StringMatch::exact(&format!("/{s}/{me}")),
            ));
            return Ok(lens);
        }
        let part = |v: &Option<String>| match v {
            Some(v) if exact => regex::escape(v),
            Some(v) => format!("(?:{v})"),
            None => "[^/]+".to_string(),
        };
        let pattern = format!("/{}/{}", part(&service), part(&method));
        out.push(Condition::new(
            Field::Uri,
            self.regex(&path.key("method"), &pattern)?,
        ));
        if !exact {
            // Exactly two segments, so that each regex matches its own segment whole.
            out.push(Condition::new(
                Field::Uri,
                self.regex(path, "/[^/]+/[^/]+")?,
            ));
        }
        Ok(lens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_service_name("grpc.health.v1.Health"));
        assert!(is_service_name(".pkg.Svc"));
        assert!(!is_service_name("pkg..Svc"));
        assert!(!is_service_name("1pkg.Svc"));
        assert!(is_identifier("Check"));
        assert!(!is_identifier("Check/Other"));
    }
}
