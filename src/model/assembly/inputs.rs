//! What goes into an assembly: each resource of a load, lowered on its own, with the opaque
//! tags that say where its parts are written.

use std::sync::{Arc, Mutex};

use super::super::destination::SubsetLabels;
use super::super::gateway::Precedence;
use super::super::policy::DestinationPolicy;
use super::super::resource::Resource;
use super::super::route::Route;
use super::super::service_host::ServiceHost;

/// A destination's `subset` as a VirtualService names it: the DestinationRule in force for
/// the host gives it its labels when the set is assembled.
#[derive(Clone, Debug)]
pub(crate) struct SubsetUse<T> {
    /// The index in `spec.http` of the route it is in.
    pub(crate) route: usize,
    /// The destination's host, canonical and as written.
    pub(crate) canonical: String,
    pub(crate) host: String,
    pub(crate) subset: Arc<str>,
    /// Where `subset` is written.
    pub(crate) at: T,
}

/// A DestinationRule: its host (canonical, and as written) and the model's value; `at` is
/// where `spec.host` is written.
#[derive(Clone, Debug)]
pub(crate) struct DestinationRuleIn<T> {
    pub(crate) canonical: String,
    pub(crate) host: String,
    pub(crate) at: T,
    pub(crate) policy: Arc<DestinationPolicy>,
}

/// Routes whose destinations have their subsets' labels, and those labels, one per subset
/// use (`None`: the subset is dropped).
pub(crate) type Resolved = (Vec<Option<SubsetLabels>>, Vec<Arc<Route>>);

/// A VirtualService.
#[derive(Clone, Debug)]
pub(crate) struct VirtualServiceIn<T> {
    pub(crate) resource: Arc<Resource>,
    pub(crate) hosts: Vec<ServiceHost>,
    pub(crate) gateways: Vec<Box<str>>,
    /// The routes, their destinations' subsets not yet given labels.
    pub(crate) routes: Vec<Arc<Route>>,
    /// The routes as last resolved, with the labels they were given: kept with the lowered
    /// VirtualService, so that assembling it again with the same subsets' labels copies
    /// nothing.
    pub(crate) resolved: Arc<Mutex<Option<Resolved>>>,
    /// Routes that hand over to a delegate VirtualService.
    pub(crate) delegates: Vec<DelegateUse<T>>,
    /// The namespaces it is exported to (`.` made its own); `None`: every namespace.
    pub(crate) export: Option<Vec<Box<str>>>,
}

/// A root route's `delegate`: the route's index, the delegate's namespace and name, and where
/// `delegate` is written.
#[derive(Clone, Debug)]
pub(crate) struct DelegateUse<T> {
    pub(crate) index: usize,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) at: T,
}

/// A RouteRule, before rules are grouped by host and sorted.
#[derive(Clone, Debug)]
pub(crate) struct RouteRuleIn {
    pub(crate) host: ServiceHost,
    /// The destination host as the rule names it, for the default route.
    pub(crate) display_host: Arc<str>,
    pub(crate) precedence: i32,
    pub(crate) key: String,
    pub(crate) route: Route,
}

/// A Service a Gateway API route attaches to.
#[derive(Clone, Debug)]
pub(crate) struct Parent {
    pub(crate) host: ServiceHost,
    pub(crate) namespace: String,
    pub(crate) port: Option<u32>,
}

/// An HTTPRoute or GRPCRoute: the Services it attaches to and its match entries.
#[derive(Clone, Debug)]
pub(crate) struct GatewayRouteIn {
    pub(crate) resource: Arc<Resource>,
    pub(crate) parents: Vec<Parent>,
    pub(crate) entries: Vec<(Route, Precedence)>,
}
