//! Istio's routing and fault-injection rules, enforced in-process.
//!
//! tower-mesh loads the rules a team writes for Istio (legacy `RouteRule`, current
//! `VirtualService` and `DestinationRule`, YAML or JSON) and applies them with exactly the
//! meaning they have in Istio: precedence- and order-aware matching, routing to labelled
//! destinations, weighted splits, percentage-based aborts and delays.
//!
//! - [`config`] reads YAML or JSON into a [`RuleSet`], with errors that name the document, line
//!   and field, and warnings beside the rules.
//! - [`model`] is the pure core: compiled routes and [`RouteTable::evaluate`], which returns a
//!   [`Decision`] for an `http::Request`; [`RouteTable::explain`] writes the evaluation out.
//! - [`layer`] carries decisions out as Tower middleware: [`MeshLayer`] around one service,
//!   [`MeshRouter`] in front of labelled destinations, [`MeshRules`] to reload while running.
//!
//! The README follows; its examples are compiled as tests.
#![doc = ""]
#![doc = include_str!("../README.md")]
// The lints are in Cargo.toml's `[lints]` table; the library itself has no unsafe code at all.
#![forbid(unsafe_code)]

pub mod config;
pub mod layer;
pub mod model;
mod reload;

pub use config::{
    DocumentRef, ErrorKind, Limits, LoadError, LoadOptions, Loader, RuleSet, Warning,
};
pub use layer::{Destinations, MeshBody, MeshLayer, MeshRouter, MeshService};
pub use model::{
    AlwaysSampler, Caller, Context, Decision, Destination, ExplainLine, Explanation, Labels,
    NeverSampler, Outcome, Resource, ResourceKind, Route, RouteTable, Sampler, ScriptedSampler,
    SeededSampler, ThreadSampler, Verdict,
};
pub use reload::MeshRules;
