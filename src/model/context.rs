//! What the evaluator needs to know besides the request: whose proxy this is, and who calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::labels::Labels;

/// The calling workload: its service, namespace and labels.
///
/// Istio applies `sourceLabels`, `sourceNamespace` and a RouteRule's `match.source` to the
/// workload whose proxy evaluates the rules. In-process, the application says who that is, for
/// the whole layer or per request (as a request extension).
///
/// ```
/// use tower_mesh::Caller;
///
/// let caller = Caller::new()
///     .with_service("productpage")
///     .with_namespace("default")
///     .with_labels([("app", "productpage"), ("version", "v1")]);
/// assert_eq!(caller.labels().get("version"), Some("v1"));
/// assert_eq!(caller.namespace(), Some("default"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    pub(super) service: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) labels: Labels,
}

impl Caller {
    /// A caller with no identity.
    pub fn new() -> Self {
        Caller::default()
    }

    /// Sets the caller's service name (matched by a RouteRule's `match.source`).
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Sets the caller's namespace (matched by `sourceNamespace`).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the caller's workload labels (matched by `sourceLabels` and `match.source.labels`).
    pub fn with_labels<K: Into<String>, V: Into<String>>(
        mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.labels = Labels::from_iter(labels);
        self
    }

    /// The caller's service name.
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// The caller's namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The caller's labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }
}

/// Where a request is evaluated: the target host, the proxy's gateway name, the caller and the
/// local port. Everything is optional; the defaults fit a sidecar-like use (gateway `mesh`,
/// host taken from the request's authority).
///
/// ```
/// use tower_mesh::{Caller, Context};
///
/// let ctx = Context::new()
///     .with_host("reviews")
///     .with_port(9080)
///     .with_caller(Caller::new().with_labels([("app", "productpage")]));
/// assert_eq!(ctx.gateway(), "mesh");
/// assert_eq!(ctx.host(), Some("reviews"));
/// assert_eq!(ctx.port(), Some(9080));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Context {
    target: Option<Arc<str>>,
    /// The target as the host index holds names: lower-case, without port or final dot.
    target_key: Option<Arc<str>>,
    /// The last host table found for the target: a rule set's generation and the table.
    host_cache: Option<Arc<AtomicU64>>,
    gateway: Option<Arc<str>>,
    caller: Option<Arc<Caller>>,
    port: Option<u32>,
    https: bool,
}

impl Context {
    /// A context with every default.
    pub fn new() -> Self {
        Context::default()
    }

    /// Sets the service host the request is addressed to (e.g. `helloworld-service`). Without
    /// it, the request's authority (or `Host` header) is used.
    pub fn with_host(mut self, host: impl Into<Arc<str>>) -> Self {
        let host: Arc<str> = host.into();
        self.target_key = super::host::normalize_host(host.as_bytes()).map(|k| match k {
            std::borrow::Cow::Borrowed(b) if b.len() == host.len() => host.clone(),
            k => Arc::from(&*k),
        });
        self.target = Some(host);
        self.host_cache = Some(Arc::new(AtomicU64::new(0)));
        self
    }

    /// Sets the proxy's gateway name; `mesh` (the default) stands for a sidecar.
    pub fn with_gateway(mut self, gateway: impl Into<Arc<str>>) -> Self {
        self.gateway = Some(gateway.into());
        self
    }

    /// Sets the calling workload.
    pub fn with_caller(self, caller: Caller) -> Self {
        self.with_shared_caller(Arc::new(caller))
    }

    /// Sets the calling workload from a shared value (no copy).
    pub fn with_shared_caller(mut self, caller: Arc<Caller>) -> Self {
        self.caller = Some(caller);
        self
    }

    /// Sets the service port the requests are addressed to, compared with a VirtualService's
    /// `match.port` and a Gateway API parentRef's `port`. Without it, the port in the request's
    /// authority counts, else 80 (443 for `https`); set it on a gateway identity to the
    /// listener's port, since a load balancer in front may name another one.
    pub fn with_port(mut self, port: u32) -> Self {
        self.port = Some(port);
        self
    }

    /// Says the connection is TLS, so a request without a scheme counts as `https`.
    pub fn with_https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// The service host set with [`Context::with_host`], if any.
    pub fn host(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The proxy's gateway name (`mesh` unless set).
    pub fn gateway(&self) -> &str {
        self.gateway.as_deref().unwrap_or("mesh")
    }

    /// Whether no gateway was set (the request comes through the mesh's sidecars).
    #[inline]
    pub(super) fn gateway_unset(&self) -> bool {
        self.gateway.is_none()
    }

    /// The calling workload, if set.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_deref()
    }

    /// The local port, if set.
    pub fn port(&self) -> Option<u32> {
        self.port
    }

    pub(super) fn target_key(&self) -> Option<&str> {
        self.target_key.as_deref()
    }

    /// The table remembered for the target in rule set `generation`, if any.
    #[inline]
    pub(super) fn cached_table(&self, generation: u64) -> Option<Option<usize>> {
        let v = self.host_cache.as_ref()?.load(Ordering::Relaxed);
        (v != 0 && v >> 24 == generation).then(|| {
            let id = (v & 0xff_ffff) as usize;
            id.checked_sub(1)
        })
    }

    /// Remembers the table found for the target (`None`: no table covers it).
    #[inline]
    pub(super) fn remember_table(&self, generation: u64, table: Option<usize>) {
        if let Some(cache) = &self.host_cache {
            let id = table.map_or(0, |t| t + 1);
            if id < 0xff_ffff && generation < (1 << 40) {
                cache.store(generation << 24 | id as u64, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn caller_labels(&self) -> &Labels {
        static EMPTY: Labels = Labels::new();
        self.caller.as_deref().map_or(&EMPTY, |c| &c.labels)
    }

    pub(super) fn default_scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}
