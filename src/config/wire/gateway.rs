//! `gateway.networking.k8s.io` `v1` (and `v1beta1`) `HTTPRoute`, the experimental channel's
//! schema field by field.

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRoute {
    pub(crate) parent_refs: Option<Vec<ParentRef>>,
    pub(crate) hostnames: Option<Vec<String>>,
    pub(crate) rules: Option<Vec<Rule>>,
    #[allow(dead_code)] // accepted; concerns Gateways only
    pub(crate) use_default_gateways: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ParentRef {
    pub(crate) group: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) section_name: Option<String>,
    pub(crate) port: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Rule {
    pub(crate) name: Option<String>,
    pub(crate) matches: Option<Vec<Match>>,
    pub(crate) filters: Option<Vec<Filter>>,
    pub(crate) backend_refs: Option<Vec<BackendRef>>,
    pub(crate) timeouts: Option<Timeouts>,
    pub(crate) retry: Option<Retry>,
    pub(crate) session_persistence: Option<IgnoredAny>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Match {
    pub(crate) path: Option<PathMatch>,
    pub(crate) headers: Option<Vec<NameMatch>>,
    pub(crate) query_params: Option<Vec<NameMatch>>,
    pub(crate) method: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PathMatch {
    #[serde(rename = "type")]
    pub(crate) type_: Option<String>,
    pub(crate) value: Option<String>,
}

/// A header or query parameter match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NameMatch {
    #[serde(rename = "type")]
    pub(crate) type_: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Filter {
    #[serde(rename = "type")]
    pub(crate) type_: Option<String>,
    pub(crate) request_header_modifier: Option<HeaderModifier>,
    pub(crate) response_header_modifier: Option<HeaderModifier>,
    pub(crate) request_mirror: Option<Mirror>,
    pub(crate) request_redirect: Option<Redirect>,
    pub(crate) url_rewrite: Option<Rewrite>,
    pub(crate) extension_ref: Option<ExtensionRef>,
    pub(crate) cors: Option<Cors>,
    pub(crate) external_auth: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HeaderModifier {
    pub(crate) set: Option<Vec<Header>>,
    pub(crate) add: Option<Vec<Header>>,
    pub(crate) remove: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Header {
    pub(crate) name: Option<String>,
    pub(crate) value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Mirror {
    pub(crate) backend_ref: Option<BackendObjectRef>,
    pub(crate) percent: Option<i64>,
    pub(crate) fraction: Option<Fraction>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Fraction {
    pub(crate) numerator: Option<i64>,
    pub(crate) denominator: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Redirect {
    pub(crate) scheme: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) path: Option<PathModifier>,
    pub(crate) port: Option<i64>,
    pub(crate) status_code: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Rewrite {
    pub(crate) hostname: Option<String>,
    pub(crate) path: Option<PathModifier>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PathModifier {
    #[serde(rename = "type")]
    pub(crate) type_: Option<String>,
    pub(crate) replace_full_path: Option<String>,
    pub(crate) replace_prefix_match: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ExtensionRef {
    pub(crate) group: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Cors {
    pub(crate) allow_origins: Option<Vec<String>>,
    pub(crate) allow_credentials: Option<bool>,
    pub(crate) allow_methods: Option<Vec<String>>,
    pub(crate) allow_headers: Option<Vec<String>>,
    pub(crate) expose_headers: Option<Vec<String>>,
    pub(crate) max_age: Option<i64>,
}

/// A `backendRefs` entry: where to send, its weight, and its own filters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BackendRef {
    pub(crate) group: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) port: Option<i64>,
    pub(crate) weight: Option<i64>,
    pub(crate) filters: Option<Vec<Filter>>,
}

/// A mirror's `backendRef`: no weight, no filters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BackendObjectRef {
    pub(crate) group: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) port: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Timeouts {
    pub(crate) request: Option<String>,
    pub(crate) backend_request: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Retry {
    pub(crate) codes: Option<Vec<i64>>,
    pub(crate) attempts: Option<i64>,
    pub(crate) backoff: Option<String>,
}

/// `GRPCRoute` (`v1`; `v1alpha2` is its deprecated alias).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GrpcRoute {
    pub(crate) parent_refs: Option<Vec<ParentRef>>,
    pub(crate) hostnames: Option<Vec<String>>,
    pub(crate) rules: Option<Vec<GrpcRule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GrpcRule {
    pub(crate) name: Option<String>,
    pub(crate) matches: Option<Vec<GrpcMatch>>,
    pub(crate) filters: Option<Vec<Filter>>,
    pub(crate) backend_refs: Option<Vec<BackendRef>>,
    pub(crate) session_persistence: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GrpcMatch {
    pub(crate) method: Option<GrpcMethodMatch>,
    pub(crate) headers: Option<Vec<NameMatch>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GrpcMethodMatch {
    #[serde(rename = "type")]
    pub(crate) type_: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) method: Option<String>,
}
