//! The rule model: canonical, compiled routes and their evaluation.
//!
//! Pure: no Tower, no async, no I/O and no serde wire types. RouteRules and VirtualServices are
//! both lowered into these types by the loader (the `config` module); the middleware only carries out
//! the [`Decision`]s that [`RouteTable::evaluate`] returns.

mod action;
pub(crate) mod assembly;
mod builder;
mod condition;
mod context;
mod cors;
mod cost;
mod decision;
mod delegation;
mod destination;
mod explain;
mod fault;
mod flags;
mod gateway;
pub(crate) mod hash;
mod header_policy;
mod host;
mod index;
mod labels;
mod path_rewrite;
mod policy;
#[cfg(test)]
pub(crate) mod reference;
mod request;
mod resource;
mod retry;
mod rewrite;
mod route;
mod sampler;
mod service_host;
mod simple_regex;
mod string_match;
mod table;

pub(crate) use action::RedirectPath;
pub use action::{Action, DirectResponse, Redirect, RedirectPort};
pub use condition::{Condition, RequestMatch, Selector};
pub use context::{Caller, Context};
pub use cors::Cors;
pub use cors::CorsPolicy;
#[doc(hidden)]
pub use cost::take_bytes_parsed;
pub use decision::{Decision, Outcome};
pub use destination::{Destination, Mirror, WeightedDestination};
pub use explain::{ExplainLine, Explanation, Verdict};
pub use fault::{AbortFault, AbortStatus, DelayFault, Fault};
pub use flags::ResponseFlags;
pub(crate) use gateway::{PathMatch, Precedence, RuleAt};
pub use header_policy::{HeaderOperations, HeaderPolicy};
pub use labels::Labels;
pub use path_rewrite::Rewrite;
pub use policy::{
    Balance, ConnectionPool, ConsistentHash, DestinationPolicy, HashKey, HashRing, HttpPool,
    LoadBalancer, Locality, OutlierDetection, PortPolicy, RetryBudget, SubsetPolicy, TcpPool,
    TlsMode, TrafficPolicy, Warmup,
};
pub use request::Field;
pub use resource::{Resource, ResourceKind};
pub use retry::RetryPolicy;
pub use route::{Route, RoutePolicy};
pub use sampler::{
    AlwaysSampler, NeverSampler, PPM, Sampler, ScriptedSampler, SeededSampler, ThreadSampler,
};
pub use string_match::{PatternError, StringMatch};
pub use table::RouteTable;

pub use rewrite::RewriteError;

pub(crate) use condition::LegacySource;
pub(crate) use host::normalize_host;
pub(crate) use path_rewrite::RegexRewrite;
pub(crate) use route::Retries;
pub(crate) use service_host::{ServiceHost, service_host};
