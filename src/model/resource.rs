//! Where a rule came from: the Istio or Gateway API resource kind, and the resource.

use std::fmt;
use std::sync::Arc;

/// Which Istio resource kind a rule came from.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::ResourceKind;
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
/// assert_eq!(decision.resource().unwrap().kind(), ResourceKind::VirtualService);
/// assert_eq!(ResourceKind::RouteRule.to_string(), "RouteRule");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `config.istio.io/v1alpha2` `RouteRule`.
    RouteRule,
    /// `networking.istio.io` `VirtualService`.
    VirtualService,
    /// `gateway.networking.k8s.io` `HTTPRoute`.
    HttpRoute,
    /// `gateway.networking.k8s.io` `GRPCRoute`.
    GrpcRoute,
    /// `networking.istio.io` `DestinationRule`.
    DestinationRule,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::RouteRule => "RouteRule",
            ResourceKind::VirtualService => "VirtualService",
            ResourceKind::HttpRoute => "HTTPRoute",
            ResourceKind::GrpcRoute => "GRPCRoute",
            ResourceKind::DestinationRule => "DestinationRule",
        })
    }
}

/// The resource (RouteRule or VirtualService) a route belongs to.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, ResourceKind, RuleSet};
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
/// let req = Request::get("/api").body(())?;
/// let decision = rules.evaluate(&req, &Context::new().with_host("reviews"), &NeverSampler);
/// let resource = decision.resource().unwrap();
/// assert_eq!(resource.kind(), ResourceKind::VirtualService);
/// assert_eq!((resource.namespace(), resource.name()), ("shop", "reviews"));
/// assert_eq!(resource.precedence(), None, "only RouteRules have one");
/// assert_eq!(resource.to_string(), "VirtualService shop/reviews");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub(super) kind: ResourceKind,
    pub(super) namespace: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) precedence: Option<i32>,
}

impl Resource {
    /// A resource of `kind` named `namespace/name`; RouteRules have a `precedence`.
    pub(crate) fn new(
        kind: ResourceKind,
        namespace: impl Into<Arc<str>>,
        name: impl Into<Arc<str>>,
        precedence: Option<i32>,
    ) -> Self {
        Resource {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            precedence,
        }
    }

    /// RouteRule or VirtualService.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// `metadata.namespace` (`default` when absent).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A RouteRule's precedence (0 when absent); `None` for a VirtualService.
    pub fn precedence(&self) -> Option<i32> {
        self.precedence
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}
