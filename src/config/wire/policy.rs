//! `networking.istio.io` `DestinationRule.trafficPolicy`: load balancing, connection pool,
//! outlier detection, TLS, port-level settings, tunnel, PROXY protocol and retry budget, field
//! by field (the proto's snake_case spelling is read as well, as everywhere). Integers are read
//! wide so that a negative or oversized value is reported by the
//! checks, with Istio's message, rather than as a type error.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TrafficPolicy {
    pub(crate) load_balancer: Option<LoadBalancer>,
    pub(crate) connection_pool: Option<ConnectionPool>,
    pub(crate) outlier_detection: Option<OutlierDetection>,
    pub(crate) tls: Option<ClientTls>,
    pub(crate) port_level_settings: Option<Vec<Option<PortTrafficPolicy>>>,
    pub(crate) tunnel: Option<Tunnel>,
    pub(crate) proxy_protocol: Option<ProxyProtocol>,
    pub(crate) retry_budget: Option<RetryBudget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PortTrafficPolicy {
    pub(crate) port: Option<PortSelector>,
    pub(crate) load_balancer: Option<LoadBalancer>,
    pub(crate) connection_pool: Option<ConnectionPool>,
    pub(crate) outlier_detection: Option<OutlierDetection>,
    pub(crate) tls: Option<ClientTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PortSelector {
    pub(crate) number: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LoadBalancer {
    pub(crate) simple: Option<String>,
    pub(crate) consistent_hash: Option<ConsistentHash>,
    pub(crate) locality_lb_setting: Option<LocalityLbSetting>,
    /// Kept as it is: regional tiers and `failoverPriority` only in-process.
    pub(crate) zone_aware_lb_setting: Option<IgnoredAny>,
    pub(crate) warmup_duration_secs: Option<Duration>,
    pub(crate) warmup: Option<Warmup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConsistentHash {
    pub(crate) http_header_name: Option<String>,
    pub(crate) http_cookie: Option<HttpCookie>,
    pub(crate) use_source_ip: Option<bool>,
    pub(crate) http_query_parameter_name: Option<String>,
    pub(crate) ring_hash: Option<RingHash>,
    pub(crate) maglev: Option<Maglev>,
    pub(crate) minimum_ring_size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpCookie {
    pub(crate) name: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) attributes: Option<Vec<CookieAttribute>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CookieAttribute {
    pub(crate) name: Option<String>,
    pub(crate) value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RingHash {
    pub(crate) minimum_ring_size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Maglev {
    pub(crate) table_size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LocalityLbSetting {
    pub(crate) enabled: Option<bool>,
    pub(crate) distribute: Option<Vec<Distribute>>,
    pub(crate) failover: Option<Vec<Failover>>,
    pub(crate) failover_priority: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Distribute {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<std::collections::BTreeMap<String, i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Failover {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Warmup {
    pub(crate) duration: Option<Duration>,
    pub(crate) minimum_percent: Option<f64>,
    pub(crate) aggression: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConnectionPool {
    pub(crate) tcp: Option<TcpSettings>,
    pub(crate) http: Option<HttpSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TcpSettings {
    pub(crate) max_connections: Option<i64>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) tcp_keepalive: Option<TcpKeepalive>,
    pub(crate) max_connection_duration: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TcpKeepalive {
    #[allow(dead_code)] // accepted; TCP keep-alive has no meaning in-process
    pub(crate) probes: Option<i64>,
    pub(crate) time: Option<Duration>,
    pub(crate) interval: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpSettings {
    pub(crate) http1_max_pending_requests: Option<i64>,
    pub(crate) http2_max_requests: Option<i64>,
    pub(crate) max_requests_per_connection: Option<i64>,
    pub(crate) max_retries: Option<i64>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) h2_upgrade_policy: Option<String>,
    pub(crate) use_client_protocol: Option<bool>,
    pub(crate) max_concurrent_streams: Option<i64>,
    pub(crate) http2_keep_alive: Option<Http2KeepAlive>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Http2KeepAlive {
    pub(crate) interval: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OutlierDetection {
    pub(crate) consecutive_errors: Option<i64>,
    pub(crate) split_external_local_origin_errors: Option<bool>,
    pub(crate) consecutive_local_origin_failures: Option<i64>,
    pub(crate) consecutive_gateway_errors: Option<i64>,
    pub(crate) consecutive_5xx_errors: Option<i64>,
    pub(crate) interval: Option<Duration>,
    pub(crate) base_ejection_time: Option<Duration>,
    pub(crate) max_ejection_percent: Option<i64>,
    pub(crate) min_health_percent: Option<i64>,
    pub(crate) outlier_detection_http_error_codes: Option<Vec<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ClientTls {
    pub(crate) mode: Option<String>,
    pub(crate) client_certificate: Option<String>,
    pub(crate) private_key: Option<String>,
    pub(crate) ca_certificates: Option<String>,
    pub(crate) credential_name: Option<String>,
    pub(crate) subject_alt_names: Option<Vec<String>>,
    #[allow(dead_code)] // accepted; only `mode` is kept (TLS is the endpoint services')
    pub(crate) sni: Option<String>,
    pub(crate) insecure_skip_verify: Option<bool>,
    pub(crate) ca_crl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Tunnel {
    pub(crate) protocol: Option<String>,
    pub(crate) target_host: Option<String>,
    pub(crate) target_port: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProxyProtocol {
    pub(crate) version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RetryBudget {
    pub(crate) percent: Option<f64>,
    pub(crate) min_retry_concurrency: Option<i64>,
}
