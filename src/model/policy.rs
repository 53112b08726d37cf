//! A destination's policy, as a DestinationRule states it: its subsets and its traffic policy
//! (load balancing, connection pool, outlier detection, TLS, port-level settings), checked when
//! loaded and kept whole, for the layer that carries it out and for tools that read it.
//!
//! ```
//! use tower_mesh::RuleSet;
//! use tower_mesh::model::{Balance, TlsMode};
//!
//! let rules = RuleSet::from_yaml(r#"
//! apiVersion: networking.istio.io/v1
//! kind: DestinationRule
//! metadata: {name: reviews, namespace: shop}
//! spec:
//!   host: reviews
//!   trafficPolicy:
//!     loadBalancer: {simple: LEAST_REQUEST}
//!     connectionPool: {http: {http1MaxPendingRequests: 1}}
//!   subsets:
//!   - name: v2
//!     labels: {version: v2}
//!     trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
//! "#)?;
//! let policy = rules.table().destination_policy("reviews.shop.svc.cluster.local").unwrap();
//! let top = policy.traffic_policy.as_ref().unwrap();
//! assert_eq!(top.load_balancer.as_ref().unwrap().balance, Balance::LeastRequest);
//! let pool = top.connection_pool.as_ref().unwrap();
//! assert_eq!(pool.http.http1_max_pending_requests, Some(1));
//! let v2 = &policy.subsets[0];
//! assert_eq!(v2.traffic_policy.as_ref().unwrap().tls, Some(TlsMode::IstioMutual));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::labels::Labels;
use super::resource::Resource;

/// A DestinationRule: the host it is for, its subsets, and its traffic policy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DestinationPolicy {
    /// The DestinationRule.
    pub resource: Arc<Resource>,
    /// `spec.host` as written.
    pub host: String,
    /// The subsets, in order.
    pub subsets: Vec<SubsetPolicy>,
    /// The top-level `trafficPolicy`.
    pub traffic_policy: Option<TrafficPolicy>,
    /// `exportTo` as written (empty: every namespace).
    pub export_to: Vec<String>,
    /// `workloadSelector.matchLabels`, when set.
    pub workload_selector: Option<Labels>,
    /// The later DestinationRules of the same namespace, host and `exportTo` merged into this
    /// one, in order (their subsets with new names, and their `trafficPolicy` where this one
    /// has none).
    pub merged_from: Vec<Arc<Resource>>,
}

/// One subset: its name, the labels that select its endpoints, and its own policy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SubsetPolicy {
    /// The subset's name.
    pub name: String,
    /// The labels an endpoint must carry.
    pub labels: Labels,
    /// The subset's `trafficPolicy`: each block it sets replaces the top-level one.
    pub traffic_policy: Option<TrafficPolicy>,
}

/// A `trafficPolicy` (top level, or a subset's).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TrafficPolicy {
    /// `loadBalancer`.
    pub load_balancer: Option<LoadBalancer>,
    /// `connectionPool`.
    pub connection_pool: Option<ConnectionPool>,
    /// `outlierDetection`.
    pub outlier_detection: Option<OutlierDetection>,
    /// `tls.mode` (the rest of `tls` has no meaning in-process).
    pub tls: Option<TlsMode>,
    /// `portLevelSettings`: policies for one port each, in order.
    pub port_level: Vec<PortPolicy>,
    /// Whether `tunnel` is set (it applies to TCP and TLS routes only).
    pub tunnel: bool,
    /// Whether `proxyProtocol` is set.
    pub proxy_protocol: bool,
    /// `retryBudget`.
    pub retry_budget: Option<RetryBudget>,
}

/// One `portLevelSettings` entry: it replaces the four blocks of the policy for its port.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PortPolicy {
    /// The destination port.
    pub port: u32,
    /// `loadBalancer`.
    pub load_balancer: Option<LoadBalancer>,
    /// `connectionPool`.
    pub connection_pool: Option<ConnectionPool>,
    /// `outlierDetection`.
    pub outlier_detection: Option<OutlierDetection>,
    /// `tls.mode`.
    pub tls: Option<TlsMode>,
}

/// `loadBalancer`: the algorithm, locality settings and slow start.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LoadBalancer {
    /// How an endpoint is chosen.
    pub balance: Balance,
    /// `localityLbSetting`.
    pub locality: Option<Locality>,
    /// Whether `zoneAwareLbSetting` is set.
    pub zone_aware: bool,
    /// `warmup` (or the older `warmupDurationSecs`, as a duration with Envoy's defaults).
    pub warmup: Option<Warmup>,
}

/// The load-balancing algorithm.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Balance {
    /// Neither `simple` nor `consistentHash` (or `simple: UNSPECIFIED`): Istio's default,
    /// least request.
    Default,
    /// `ROUND_ROBIN`.
    RoundRobin,
    /// `LEAST_REQUEST` (and the deprecated `LEAST_CONN`).
    LeastRequest,
    /// `RANDOM`.
    Random,
    /// `PASSTHROUGH`: the caller's original destination.
    Passthrough,
    /// `consistentHash`.
    ConsistentHash(ConsistentHash),
}

/// `consistentHash`: what is hashed, and on which ring.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConsistentHash {
    /// The hash key; `None` when the policy names none.
    pub key: Option<HashKey>,
    /// The ring.
    pub ring: HashRing,
}

/// What a consistent hash hashes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HashKey {
    /// `httpHeaderName`.
    Header(String),
    /// `httpCookie`.
    Cookie {
        /// The cookie's name.
        name: String,
        /// The path of a generated cookie.
        path: Option<String>,
        /// The lifetime of a generated cookie (`0s`: a session cookie).
        ttl: Option<Duration>,
        /// Further attributes of a generated cookie.
        attributes: Vec<(String, String)>,
    },
    /// `useSourceIp`.
    SourceIp,
    /// `httpQueryParameterName`.
    QueryParameter(String),
}

/// The ring a consistent hash uses.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HashRing {
    /// A ring hash with at least this many entries (`ringHash.minimumRingSize`, or the
    /// deprecated `minimumRingSize`); `None`: Envoy's default.
    RingHash(Option<u64>),
    /// `maglev.tableSize`.
    Maglev(u64),
}

/// `localityLbSetting`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Locality {
    /// `enabled`, when written.
    pub enabled: Option<bool>,
    /// `distribute`: each `from` locality with the weights of the `to` localities.
    pub distribute: Vec<(String, Vec<(String, u32)>)>,
    /// `failover`: (from region, to region).
    pub failover: Vec<(String, String)>,
    /// `failoverPriority`: the labels compared, in order.
    pub failover_priority: Vec<String>,
}

/// `warmup`: slow start for new endpoints.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Warmup {
    /// How long an endpoint warms up.
    pub duration: Duration,
    /// The smallest share of its weight a warming endpoint gets, in percent.
    pub minimum_percent: Option<f64>,
    /// How fast the weight grows.
    pub aggression: Option<f64>,
}

/// `connectionPool`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ConnectionPool {
    /// `tcp`.
    pub tcp: TcpPool,
    /// `http`.
    pub http: HttpPool,
}

/// `connectionPool.tcp`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TcpPool {
    /// `maxConnections`.
    pub max_connections: Option<u32>,
    /// `connectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// `maxConnectionDuration`.
    pub max_connection_duration: Option<Duration>,
    /// `idleTimeout`.
    pub idle_timeout: Option<Duration>,
}

/// `connectionPool.http`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HttpPool {
    /// `http1MaxPendingRequests`.
    pub http1_max_pending_requests: Option<u32>,
    /// `http2MaxRequests`.
    pub http2_max_requests: Option<u32>,
    /// `maxRequestsPerConnection`.
    pub max_requests_per_connection: Option<u32>,
    /// `maxRetries`.
    pub max_retries: Option<u32>,
    /// `idleTimeout`.
    pub idle_timeout: Option<Duration>,
    /// `maxConcurrentStreams`.
    pub max_concurrent_streams: Option<u32>,
    /// `h2UpgradePolicy: UPGRADE`.
    pub h2_upgrade: bool,
    /// `useClientProtocol`.
    pub use_client_protocol: bool,
}

/// `outlierDetection`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct OutlierDetection {
    /// `consecutive5xxErrors`.
    pub consecutive_5xx_errors: Option<u32>,
    /// `consecutiveGatewayErrors`.
    pub consecutive_gateway_errors: Option<u32>,
    /// The deprecated `consecutiveErrors`.
    pub consecutive_errors: Option<u32>,
    /// `splitExternalLocalOriginErrors`.
    pub split_external_local_origin_errors: bool,
    /// `consecutiveLocalOriginFailures`.
    pub consecutive_local_origin_failures: Option<u32>,
    /// `interval`.
    pub interval: Option<Duration>,
    /// `baseEjectionTime`.
    pub base_ejection_time: Option<Duration>,
    /// `maxEjectionPercent`.
    pub max_ejection_percent: Option<u32>,
    /// `minHealthPercent`.
    pub min_health_percent: Option<u32>,
    /// `outlierDetectionHttpErrorCodes`.
    pub http_error_codes: Vec<u16>,
}

/// `tls.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// `DISABLE`.
    Disable,
    /// `SIMPLE`.
    Simple,
    /// `MUTUAL`.
    Mutual,
    /// `ISTIO_MUTUAL`.
    IstioMutual,
}

/// `retryBudget`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RetryBudget {
    /// `percent`.
    pub percent: Option<f64>,
    /// `minRetryConcurrency`.
    pub min_retry_concurrency: Option<u32>,
}
