//! `networking.istio.io` `v1alpha3`, `v1beta1` and `v1`: `VirtualService`, `DestinationRule`.
//! The three versions share one schema.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Duration, StringMatch};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VirtualService {
    pub(crate) hosts: Option<Vec<String>>,
    pub(crate) gateways: Option<Vec<String>>,
    /// Read route by route when lowering, so that each route's errors are reported.
    pub(crate) http: Option<IgnoredAny>,
    pub(crate) tls: Option<IgnoredAny>,
    pub(crate) tcp: Option<IgnoredAny>,
    #[allow(dead_code)] // accepted; no in-process meaning
    pub(crate) export_to: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRoute {
    pub(crate) name: Option<String>,
    #[serde(rename = "match")]
    pub(crate) match_: Option<Vec<HttpMatchRequest>>,
    pub(crate) route: Option<Vec<HttpRouteDestination>>,
    pub(crate) redirect: Option<HttpRedirect>,
    pub(crate) direct_response: Option<HttpDirectResponse>,
    pub(crate) delegate: Option<Delegate>,
    pub(crate) rewrite: Option<HttpRewrite>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: Option<HttpRetry>,
    pub(crate) fault: Option<HttpFaultInjection>,
    pub(crate) mirror: Option<Destination>,
    pub(crate) mirrors: Option<Vec<HttpMirrorPolicy>>,
    pub(crate) mirror_percent: Option<u32>,
    pub(crate) mirror_percentage: Option<Percent>,
    pub(crate) cors_policy: Option<CorsPolicy>,
    pub(crate) headers: Option<Headers>,
    // Removed in Istio 1.5, mapped with a warning.
    pub(crate) websocket_upgrade: Option<bool>,
    pub(crate) append_headers: Option<BTreeMap<String, String>>,
    pub(crate) append_request_headers: Option<BTreeMap<String, String>>,
    pub(crate) remove_request_headers: Option<Vec<String>>,
    pub(crate) append_response_headers: Option<BTreeMap<String, String>>,
    pub(crate) remove_response_headers: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpMatchRequest {
    pub(crate) name: Option<String>,
    pub(crate) uri: Option<StringMatch>,
    pub(crate) scheme: Option<StringMatch>,
    pub(crate) method: Option<StringMatch>,
    pub(crate) authority: Option<StringMatch>,
    pub(crate) headers: Option<BTreeMap<String, StringMatch>>,
    pub(crate) without_headers: Option<BTreeMap<String, StringMatch>>,
    pub(crate) query_params: Option<BTreeMap<String, StringMatch>>,
    pub(crate) ignore_uri_case: Option<bool>,
    pub(crate) port: Option<u32>,
    pub(crate) source_labels: Option<BTreeMap<String, String>>,
    pub(crate) gateways: Option<Vec<String>>,
    pub(crate) source_namespace: Option<String>,
    #[allow(dead_code)] // accepted; no in-process meaning
    pub(crate) stat_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRouteDestination {
    pub(crate) destination: Option<Destination>,
    pub(crate) weight: Option<i32>,
    pub(crate) headers: Option<Headers>,
    // Removed in Istio 1.5, mapped with a warning.
    pub(crate) append_request_headers: Option<BTreeMap<String, String>>,
    pub(crate) remove_request_headers: Option<Vec<String>>,
    pub(crate) append_response_headers: Option<BTreeMap<String, String>>,
    pub(crate) remove_response_headers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Destination {
    pub(crate) host: Option<String>,
    pub(crate) subset: Option<String>,
    pub(crate) port: Option<PortSelector>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PortSelector {
    pub(crate) number: Option<u32>,
    pub(crate) name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRedirect {
    pub(crate) uri: Option<String>,
    pub(crate) authority: Option<String>,
    pub(crate) port: Option<u32>,
    pub(crate) derive_port: Option<String>,
    pub(crate) scheme: Option<String>,
    pub(crate) redirect_code: Option<u32>,
    pub(crate) prefix_rewrite: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpDirectResponse {
    pub(crate) status: Option<u32>,
    pub(crate) body: Option<HttpBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpBody {
    pub(crate) string: Option<String>,
    pub(crate) bytes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Delegate {
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRewrite {
    pub(crate) uri: Option<String>,
    pub(crate) authority: Option<String>,
    pub(crate) uri_regex_rewrite: Option<RegexRewrite>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RegexRewrite {
    #[serde(rename = "match")]
    pub(crate) match_: Option<String>,
    pub(crate) rewrite: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRetry {
    pub(crate) attempts: Option<i32>,
    pub(crate) per_try_timeout: Option<Duration>,
    pub(crate) retry_on: Option<String>,
    /// Accepted (no in-process meaning), but only with retries.
    pub(crate) retry_remote_localities: Option<bool>,
    #[allow(dead_code)] // accepted; no in-process meaning
    pub(crate) retry_ignore_previous_hosts: Option<bool>,
    pub(crate) backoff: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpFaultInjection {
    pub(crate) delay: Option<Delay>,
    pub(crate) abort: Option<Abort>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Delay {
    pub(crate) percent: Option<i32>,
    pub(crate) fixed_delay: Option<Duration>,
    pub(crate) exponential_delay: Option<Duration>,
    pub(crate) percentage: Option<Percent>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Abort {
    pub(crate) percent: Option<i32>,
    pub(crate) http_status: Option<i32>,
    pub(crate) grpc_status: Option<String>,
    pub(crate) http2_error: Option<String>,
    pub(crate) percentage: Option<Percent>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Percent {
    pub(crate) value: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpMirrorPolicy {
    pub(crate) destination: Option<Destination>,
    pub(crate) percentage: Option<Percent>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CorsPolicy {
    pub(crate) allow_origins: Option<Vec<StringMatch>>,
    pub(crate) allow_origin: Option<Vec<String>>,
    pub(crate) allow_methods: Option<Vec<String>>,
    pub(crate) allow_headers: Option<Vec<String>>,
    pub(crate) expose_headers: Option<Vec<String>>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) allow_credentials: Option<bool>,
    pub(crate) unmatched_preflights: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Headers {
    pub(crate) request: Option<HeaderOperations>,
    pub(crate) response: Option<HeaderOperations>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HeaderOperations {
    pub(crate) set: Option<BTreeMap<String, String>>,
    pub(crate) add: Option<BTreeMap<String, String>>,
    pub(crate) remove: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DestinationRule {
    pub(crate) host: Option<String>,
    pub(crate) traffic_policy: Option<super::policy::TrafficPolicy>,
    pub(crate) subsets: Option<Vec<Subset>>,
    pub(crate) export_to: Option<Vec<String>>,
    pub(crate) workload_selector: Option<WorkloadSelector>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WorkloadSelector {
    pub(crate) match_labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Subset {
    pub(crate) name: Option<String>,
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) traffic_policy: Option<super::policy::TrafficPolicy>,
}
