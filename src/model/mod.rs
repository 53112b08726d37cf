//! The rule model: canonical, compiled routes and their evaluation.
//!
//! Pure: no Tower, no async, no I/O and no serde wire types. RouteRules and VirtualServices are
//! both lowered into these types by the loader (the `config` module); the middleware only carries out
//! the [`Decision`]s that [`RouteTable::evaluate`] returns.

mod builder;
mod condition;
mod context;
mod cors;
mod cost;
mod decision;
mod delegation;
mod explain;
mod flags;
mod gateway;
pub(crate) mod hash;
mod host;
mod index;
mod labels;
#[cfg(test)]
pub(crate) mod reference;
mod request;
mod rewrite;
mod route;
mod sampler;
mod simple_regex;
mod string_match;
mod table;

pub use condition::{Condition, RequestMatch, Selector};
pub use context::{Caller, Context};
pub use cors::Cors;
#[doc(hidden)]
pub use cost::take_bytes_parsed;
pub use decision::{Decision, Outcome};
pub use explain::{ExplainLine, Explanation, Verdict};
pub use flags::ResponseFlags;
pub(crate) use gateway::{GatewayEntry, Precedence};
pub use labels::Labels;
pub use request::Field;
pub(crate) use route::RedirectPath;
pub use route::{
    AbortFault, AbortStatus, Action, CorsPolicy, DelayFault, Destination, DirectResponse, Fault,
    HeaderOperations, HeaderPolicy, Mirror, Redirect, RedirectPort, Resource, ResourceKind,
    RetryPolicy, Rewrite, Route, RoutePolicy, WeightedDestination,
};
pub use sampler::{
    AlwaysSampler, NeverSampler, PPM, Sampler, ScriptedSampler, SeededSampler, ThreadSampler,
};
pub use string_match::{PatternError, StringMatch};
pub use table::RouteTable;

pub use rewrite::RewriteError;

pub(crate) use builder::{RankedRule, TableBuilder};
pub(crate) use condition::LegacySource;
pub(crate) use delegation::{delegated_route, merged_bound};
pub(crate) use host::normalize_host;
pub(crate) use route::{RegexRewrite, Retries};
pub(crate) use table::VirtualServiceRoutes;
