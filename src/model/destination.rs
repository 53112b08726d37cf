//! Where a forwarded request goes: a destination, a weighted destination, and a mirror.

use std::fmt;
use std::sync::Arc;

use super::header_policy::HeaderPolicy;
use super::labels::Labels;

/// Where a forwarded request goes: a service host and a version (subset and its labels).
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: DestinationRule
/// metadata: {name: reviews, namespace: shop}
/// spec:
///   host: reviews
///   subsets:
///   - {name: v2, labels: {version: v2}}
/// ---
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews, namespace: shop}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match: [{headers: {end-user: {exact: jason}}}]
///     fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}
///     route: [{destination: {host: reviews, subset: v2}}]
///   - name: others
///     match: [{uri: {prefix: /api}}]
///     route: [{destination: {host: reviews}}]
/// "#)?;
/// let req = Request::get("/").header("end-user", "jason").body(())?;
/// let decision = rules.evaluate(&req, &Context::new().with_host("reviews"), &NeverSampler);
/// let destination = decision.destination().unwrap();
/// assert_eq!(destination.host(), "reviews");
/// assert_eq!(destination.subset(), Some("v2"));
/// assert_eq!(destination.labels().get("version"), Some("v2"));
/// assert_eq!(destination.port(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub(super) host: Arc<str>,
    pub(super) subset: Option<Arc<str>>,
    pub(super) labels: Labels,
    pub(super) port: Option<u32>,
    /// Where callers of some namespaces get the subset from another DestinationRule.
    pub(super) callers: Option<Arc<CallerSubsets>>,
}

/// A subset's labels for every caller, as the assembly resolved them: for a caller without a
/// namespace (`default`; `None`: its DestinationRule lacks the subset), and for each
/// namespace whose callers get something else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubsetLabels {
    pub(crate) default: Option<Labels>,
    pub(crate) by_namespace: Vec<(Box<str>, Option<Labels>)>,
}

/// A namespace, and the destination its callers get (`None`: none, a 503).
pub(crate) type NamespaceView = (Box<str>, Option<Arc<Destination>>);

/// The destination as the callers of some namespaces see it (`None`: their DestinationRule
/// lacks the subset, so the request is answered 503), and whether a caller of any other
/// namespace, or without one, lacks it too.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CallerSubsets {
    pub(crate) by_namespace: Box<[NamespaceView]>,
    pub(crate) default_missing: bool,
}

impl CallerSubsets {
    /// The destination a caller of `namespace` gets: `Ok(None)` the default one, `Ok(Some)`
    /// another, `Err(())` none (its DestinationRule lacks the subset).
    #[allow(clippy::result_unit_err)]
    pub(crate) fn for_caller(
        &self,
        namespace: Option<&str>,
    ) -> Result<Option<&Arc<Destination>>, ()> {
        let found = namespace.and_then(|ns| self.by_namespace.iter().find(|(n, _)| &**n == ns));
        match found {
            Some((_, Some(d))) => Ok(Some(d)),
            Some((_, None)) => Err(()),
            None if self.default_missing => Err(()),
            None => Ok(None),
        }
    }
}

impl Destination {
    /// A destination on `host` with the given labels.
    pub fn new(host: impl Into<Arc<str>>, labels: Labels) -> Self {
        Destination {
            host: host.into(),
            subset: None,
            labels,
            port: None,
            callers: None,
        }
    }

    /// The same destination as `subset` of its service (whose labels these are), on `port`.
    pub(crate) fn in_subset(mut self, subset: Option<Arc<str>>, port: Option<u32>) -> Self {
        self.subset = subset;
        self.port = port;
        self
    }

    /// The service host, as the configuration names it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The DestinationRule subset, when the route names one.
    pub fn subset(&self) -> Option<&str> {
        self.subset.as_deref()
    }

    /// The labels that select the version (the subset's labels, or a RouteRule's `labels`);
    /// empty for the whole service.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The destination port, when the route names one.
    pub fn port(&self) -> Option<u32> {
        self.port
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if let Some(subset) = &self.subset {
            write!(f, " subset {subset}")?;
        }
        if !self.labels.is_empty() {
            write!(f, " {}", self.labels)?;
        }
        Ok(())
    }
}

/// One weighted destination of a route.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::model::Action;
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match:
///     - headers: {end-user: {exact: jason}}
///       sourceLabels: {app: productpage}
///     fault:
///       delay: {fixedDelay: 2s, percentage: {value: 50}}
///       abort: {httpStatus: 503, percentage: {value: 1}}
///     rewrite: {uri: /v2}
///     headers: {response: {set: {x-version: v2}}}
///     route:
///     - destination: {host: reviews}
///       weight: 90
///     - destination: {host: reviews-canary}
///       weight: 10
///       headers: {request: {add: {x-canary: "yes"}}}
///   - redirect: {uri: /login, port: 8443}
/// "#)?;
/// let jason = Request::get("/").header("end-user", "jason").body(())?;
/// let ctx = Context::new()
///     .with_host("reviews")
///     .with_caller(Caller::new().with_labels([("app", "productpage")]));
/// let decision = rules.evaluate(&jason, &ctx, &NeverSampler);
/// let route = decision.route().unwrap();
/// let Action::Forward { destinations, total_weight } = route.action() else { unreachable!() };
/// assert_eq!(*total_weight, 100);
/// let weights: Vec<_> = destinations.iter().map(|d| (d.destination().host(), d.weight())).collect();
/// assert_eq!(weights, [("reviews", 90), ("reviews-canary", 10)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct WeightedDestination {
    pub(super) destination: Arc<Destination>,
    pub(super) weight: u32,
    pub(super) headers: HeaderPolicy,
    /// A backend of a kind tower-mesh cannot send to: its share is answered 500.
    pub(super) unusable: bool,
}

impl WeightedDestination {
    /// `destination` with a relative `weight` and its own header operations.
    pub(crate) fn new(destination: Arc<Destination>, weight: u32, headers: HeaderPolicy) -> Self {
        WeightedDestination {
            destination,
            weight,
            headers,
            unusable: false,
        }
    }

    /// A Gateway API backend of a kind that cannot be sent to (not a Service): it keeps its
    /// `weight`, and the requests it draws are answered 500.
    pub(crate) fn unusable(destination: Arc<Destination>, weight: u32) -> Self {
        WeightedDestination {
            unusable: true,
            ..WeightedDestination::new(destination, weight, HeaderPolicy::default())
        }
    }

    /// Whether requests drawn for this backend are answered 500 (a Gateway API backend of a
    /// kind other than Service).
    pub fn is_unusable(&self) -> bool {
        self.unusable
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }
    /// Its relative weight (0 never receives traffic when there are several).
    pub fn weight(&self) -> u32 {
        self.weight
    }
    /// Header operations applied when this destination is chosen.
    pub fn headers(&self) -> &HeaderPolicy {
        &self.headers
    }
}

/// A mirror: a copy of the request goes to `destination` with probability `ppm` / 1,000,000.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: ratings}
/// spec:
///   hosts: [ratings]
///   http:
///   - name: moved
///     match: [{uri: {prefix: /old}}]
///     redirect: {uri: /new, redirectCode: 308}
///   - name: teapot
///     match: [{uri: {exact: /tea}}]
///     directResponse: {status: 418, body: {string: "short and stout"}}
///   - name: main
///     fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 5}}}
///     rewrite: {uri: /v1}
///     headers: {request: {set: {x-route: main}}}
///     timeout: 2s
///     retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx"}
///     mirror: {host: ratings-canary}
///     mirrorPercentage: {value: 10}
///     corsPolicy: {allowOrigins: [{exact: "https://shop.example"}], allowMethods: [GET]}
///     route: [{destination: {host: ratings}}]
/// "#)?;
/// let route = |path: &str| {
///     let req = Request::get(path).body(()).unwrap();
///     let decision = rules.evaluate(&req, &Context::new().with_host("ratings"), &NeverSampler);
///     decision.route().cloned().unwrap()
/// };
/// let main = route("/");
/// let mirror = &main.policy().mirrors()[0];
/// assert_eq!(mirror.destination().host(), "ratings-canary");
/// assert_eq!(mirror.ppm(), 100_000, "10% in parts per million");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Mirror {
    pub(super) destination: Arc<Destination>,
    pub(super) ppm: u32,
}

impl Mirror {
    /// A copy of each request, with probability `ppm` / 1,000,000, to `destination`.
    pub(crate) fn new(destination: Arc<Destination>, ppm: u32) -> Self {
        Mirror { destination, ppm }
    }

    /// Where the copy goes.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Where the copy goes, shared.
    pub(crate) fn destination_arc(&self) -> &Arc<Destination> {
        &self.destination
    }
    /// The share of requests mirrored, in parts per million.
    pub fn ppm(&self) -> u32 {
        self.ppm
    }
}
