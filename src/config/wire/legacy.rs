//! `config.istio.io/v1alpha2` `RouteRule` (spec: `istio.routing.v1alpha1.RouteRule`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Duration, StringMatch};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RouteRule {
    pub(crate) destination: Option<IstioService>,
    pub(crate) precedence: Option<i32>,
    #[serde(rename = "match")]
    pub(crate) match_: Option<MatchCondition>,
    pub(crate) route: Option<Vec<DestinationWeight>>,
    pub(crate) redirect: Option<HttpRedirect>,
    pub(crate) rewrite: Option<HttpRewrite>,
    pub(crate) websocket_upgrade: Option<bool>,
    pub(crate) http_req_timeout: Option<HttpTimeout>,
    pub(crate) http_req_retries: Option<HttpRetry>,
    pub(crate) http_fault: Option<HttpFaultInjection>,
    pub(crate) l4_fault: Option<IgnoredAny>,
    pub(crate) mirror: Option<IstioService>,
    pub(crate) cors_policy: Option<CorsPolicy>,
    pub(crate) append_headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IstioService {
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MatchCondition {
    pub(crate) source: Option<IstioService>,
    pub(crate) tcp: Option<IgnoredAny>,
    pub(crate) udp: Option<IgnoredAny>,
    pub(crate) request: Option<MatchRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MatchRequest {
    pub(crate) headers: Option<BTreeMap<String, StringMatch>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DestinationWeight {
    pub(crate) destination: Option<IstioService>,
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) weight: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRedirect {
    pub(crate) uri: Option<String>,
    pub(crate) authority: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRewrite {
    pub(crate) uri: Option<String>,
    pub(crate) authority: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpTimeout {
    pub(crate) simple_timeout: Option<SimpleTimeoutPolicy>,
    pub(crate) custom: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SimpleTimeoutPolicy {
    pub(crate) timeout: Option<Duration>,
    pub(crate) override_header_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRetry {
    pub(crate) simple_retry: Option<SimpleRetryPolicy>,
    pub(crate) custom: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SimpleRetryPolicy {
    pub(crate) attempts: Option<i32>,
    pub(crate) per_try_timeout: Option<Duration>,
    pub(crate) override_header_name: Option<String>,
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
    pub(crate) percent: Option<f64>,
    pub(crate) fixed_delay: Option<Duration>,
    pub(crate) exponential_delay: Option<Duration>,
    pub(crate) override_header_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Abort {
    pub(crate) percent: Option<f64>,
    pub(crate) grpc_status: Option<String>,
    pub(crate) http2_error: Option<String>,
    pub(crate) http_status: Option<i32>,
    pub(crate) override_header_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CorsPolicy {
    pub(crate) allow_origin: Option<Vec<String>>,
    pub(crate) allow_methods: Option<Vec<String>>,
    pub(crate) allow_headers: Option<Vec<String>>,
    pub(crate) expose_headers: Option<Vec<String>>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) allow_credentials: Option<bool>,
}
