//! Istio's standard HTTP metrics, recorded through the `metrics` facade (feature `metrics`).
//!
//! Every label value comes from the configuration, the layer's own settings, the calling
//! workload the application names, or a small fixed set (HTTP status codes 100 to 599, gRPC's
//! 17 codes, flags; anything else an upstream answers is folded):
//! never from the request's path, headers or host, so the number of series stays bounded.
//! The handles of each series are kept, so that a request costs a lookup and four updates.

use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::{Counter, Histogram, Label};

use crate::model::hash::{FxHashMap, FxHasher};
use crate::model::{Caller, Context, Decision, ResponseFlags, Route};

/// The series the handle cache keeps before it starts again (rule reloads leave old routes'
/// entries behind).
const MAX_SERIES: usize = 4096;

/// Istio's names for what the crate cannot know.
const UNKNOWN: &str = "unknown";

/// What one finished request reports.
pub(crate) struct Report<'a> {
    pub(crate) reporter: &'static str,
    pub(crate) decision: &'a Decision,
    pub(crate) caller: Option<&'a Caller>,
    pub(crate) grpc: bool,
    pub(crate) status: u16,
    pub(crate) grpc_status: Option<u32>,
    pub(crate) flags: ResponseFlags,
    pub(crate) duration: Duration,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
}

/// The four metrics of one series.
struct Handles {
    requests: Counter,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
    /// Keeps the route alive, so that its address in the key is not reused.
    _route: Option<Arc<Route>>,
}

/// What decides a series' labels, compactly.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    reporter: &'static str,
    route: usize,
    destination: u64,
    caller: u64,
    status: u16,
    grpc_status: Option<u32>,
    flags: u16,
    grpc: bool,
}

/// Istio's standard metrics for the services of one layer.
pub(crate) struct Metrics {
    /// The layer's own host, for requests the decision names no destination for.
    host: Option<Box<str>>,
    /// The layer's calling workload, for requests that do not name their own.
    caller: Option<Caller>,
    series: Mutex<FxHashMap<Key, Arc<Handles>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new(context: &Context) -> Metrics {
        Metrics {
            host: context.host().map(Into::into),
            caller: context.caller().cloned(),
            series: Mutex::default(),
        }
    }

    /// A hash of values that come from the configuration or the application, never from a
    /// request (so the fast, unkeyed FxHash is safe).
    fn hash(&self, value: impl Hash) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(value)
    }

    pub(crate) fn record(&self, r: &Report<'_>) {
        let caller = r.caller.or(self.caller.as_ref());
        let destination = r.decision.destination();
        let key = Key {
            reporter: r.reporter,
            route: r
                .decision
                .route_shared()
                .map_or(0, |x| Arc::as_ptr(x) as usize),
            // Inside a route (kept alive by the cache), a destination is known by its address.
            destination: match (r.decision.route_shared(), destination) {
                (Some(_), Some(d)) => d as *const _ as u64,
                (None, Some(d)) => self.hash((d.host(), d.labels().get("version"))),
                (_, None) => 0,
            },
            caller: r.caller.map_or(0, |c| {
                self.hash((
                    c.service(),
                    c.namespace(),
                    c.labels().get("app"),
                    c.labels().get("version"),
                ))
            }),
            status: status_label(r.status).unwrap_or(0),
            grpc_status: r.grpc_status.map(grpc_code),
            flags: r.flags.bits(),
            grpc: r.grpc,
        };
        let handles = {
            let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
            match series.get(&key) {
                Some(h) => h.clone(),
                None => {
                    if series.len() >= MAX_SERIES {
                        series.clear();
                    }
                    let h = Arc::new(self.register(r, caller));
                    series.insert(key, h.clone());
                    h
                }
            }
        };
        handles.requests.increment(1);
        handles.duration.record(r.duration.as_secs_f64() * 1000.0);
        handles.request_bytes.record(r.request_bytes as f64);
        handles.response_bytes.record(r.response_bytes as f64);
    }

    /// Registers one series with the recorder installed now.
    fn register(&self, r: &Report<'_>, caller: Option<&Caller>) -> Handles {
        let labels = self.labels(r, caller);
        Handles {
            requests: metrics::counter!("istio_requests_total", labels.iter()),
            duration: metrics::histogram!("istio_request_duration_milliseconds", labels.iter()),
            request_bytes: metrics::histogram!("istio_request_bytes", labels.iter()),
            response_bytes: metrics::histogram!("istio_response_bytes", labels.iter()),
            _route: r.decision.route_shared().cloned(),
        }
    }

    /// Istio's standard labels for a report.
    fn labels(&self, r: &Report<'_>, caller: Option<&Caller>) -> Vec<Label> {
        let known = |v: Option<&str>| v.unwrap_or(UNKNOWN).to_string();
        let destination = r.decision.destination();
        let namespace = r.decision.resource().map(|res| res.namespace());
        let service = match (destination.map(|d| d.host()), self.host.as_deref()) {
            (Some(host), _) => Some(qualified(host, namespace)),
            (None, Some(host)) => Some(qualified(host, namespace)),
            (None, None) => None,
        };
        let service_name = service
            .as_deref()
            .map(|s| s.split('.').next().unwrap_or(s).to_string());
        let grpc_status = match (r.grpc, r.grpc_status) {
            (false, _) => String::new(),
            (true, Some(code)) => grpc_code(code).to_string(),
            (true, None) => UNKNOWN.to_string(),
        };
        vec![
            Label::new("reporter", r.reporter),
            Label::new("source_workload", known(caller.and_then(Caller::service))),
            Label::new(
                "source_workload_namespace",
                known(caller.and_then(Caller::namespace)),
            ),
            Label::new(
                "source_app",
                known(caller.and_then(|c| c.labels().get("app"))),
            ),
            Label::new(
                "source_version",
                known(caller.and_then(|c| c.labels().get("version"))),
            ),
            Label::new("destination_service", known(service.as_deref())),
            Label::new("destination_service_name", known(service_name.as_deref())),
            Label::new(
                "destination_version",
                known(destination.and_then(|d| d.labels().get("version"))),
            ),
            Label::new("request_protocol", if r.grpc { "grpc" } else { "http" }),
            Label::new(
                "response_code",
                status_label(r.status).map_or_else(|| UNKNOWN.to_string(), |s| s.to_string()),
            ),
            Label::new("grpc_response_status", grpc_status),
            Label::new("response_flags", r.flags.to_string()),
            Label::new("connection_security_policy", UNKNOWN),
        ]
    }
}

/// A service host as Istio reports it: a short name is a service of the resource's namespace,
/// written in full (`reviews.shop.svc.cluster.local`).
fn qualified(host: &str, namespace: Option<&str>) -> String {
    match (host.matches('.').count(), namespace) {
        (0, Some(ns)) => format!("{host}.{ns}.svc.cluster.local"),
        (1, _) => format!("{host}.svc.cluster.local"),
        _ if host.ends_with(".svc") => format!("{host}.cluster.local"),
        _ => host.to_string(),
    }
}

/// Counts a rule reload (`result` `ok` or `error`) and, after a good one, the routes in force.
pub(crate) fn rules_loaded(ok: bool, routes: Option<usize>) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!("tower_mesh_rule_reloads_total", "result" => result).increment(1);
    if let Some(n) = routes {
        metrics::gauge!("tower_mesh_routes").set(n as f64);
    }
}

/// Counts a mirrored copy (`result` `sent`, `dropped` or `failed`).
pub(crate) fn mirror(result: &'static str) {
    metrics::counter!("tower_mesh_mirror_requests_total", "result" => result).increment(1);
}

/// The shadow requests in flight now.
pub(crate) fn mirrors_in_flight(n: usize) {
    metrics::gauge!("tower_mesh_mirror_requests_in_flight").set(n as f64);
}

/// The gauge `tower_mesh_rules_version`: one series whose value is the version in force, the
/// number written by the first 12 hex digits of [`RuleSet::version`](crate::RuleSet::version)
/// (48 bits, exact in a float). A label per version would leave a series behind for every
/// version ever in force.
pub(crate) fn rules_version(version: &str) {
    metrics::gauge!("tower_mesh_rules_version").set(version_number(version) as f64);
}

/// The number the first 12 hex digits of a version write (0 when it does not start so).
pub(crate) fn version_number(version: &str) -> u64 {
    version
        .get(..12)
        .and_then(|digits| u64::from_str_radix(digits, 16).ok())
        .unwrap_or(0)
}

/// The HTTP status as a label: a code of the ranges HTTP defines (100 to 599), or `unknown`
/// for any other an upstream may send, so that upstreams cannot make series without end.
fn status_label(status: u16) -> Option<u16> {
    (100..=599).contains(&status).then_some(status)
}

/// The gRPC status as a label: one of gRPC's 17 codes; a number outside them is read as gRPC
/// reads it, `UNKNOWN` (2).
fn grpc_code(code: u32) -> u32 {
    if code <= 16 { code } else { 2 }
}
