//! Istio's routing and fault-injection rules, enforced in-process.
//!
//! tower-mesh loads the rules a team writes for Istio (legacy `RouteRule`, current
//! `VirtualService` and `DestinationRule`, YAML or JSON) and applies them with exactly the
//! meaning they have in Istio: precedence- and order-aware matching, routing to labelled
//! destinations, weighted splits, percentage-based aborts and delays. `docs/semantics.md` in
//! the repository says what every field means here.
//!
//! # How the crate is built
//!
//! ```text
//! config  ──builds──▶  model  ◀──evaluates with──  layer
//!    ▲                                                ▲
//!    └──────────────────  reload  ────────────────────┘
//! ```
//!
//! - [`model`] is the pure core: compiled routes, the table that holds them and
//!   [`RouteTable::evaluate`], which turns an `http::Request` into a [`Decision`]. It builds
//!   itself: everything that spans resources is the model's assembly (which DestinationRule is
//!   in force for a host and the labels of the subsets routes name, delegation, which
//!   VirtualService or RouteRules take a host, Gateway API attachment, the limits on the whole
//!   set, the findings about them), as are the order of each host's routes and the host index;
//!   each route works out the facts about itself (does it change messages, retry, mirror) when
//!   it is made. It knows nothing of YAML, Tower, bodies, tasks or timers.
//! - [`config`] reads YAML or JSON into wire types that mirror Istio's schema and lowers each
//!   document on its own into the model's values, checking it; it maps the assembly's findings
//!   back to where they are written. The result is a [`RuleSet`] (the table, the warnings, the
//!   files it came from). Errors name the document, line and field.
//! - [`layer`] carries decisions out as Tower middleware: [`MeshLayer`] around one service,
//!   [`MeshRouter`] in front of labelled destinations. It holds only the compiled table, behind
//!   an atomic pointer, and decides nothing itself.
//! - `reload` is the glue: [`MeshRules`] puts a loaded rule set in force in running layers and
//!   loads it again from its files. It is the only place that uses both `config` and `layer`.
//!
//! - The feeds (`MeshRules::follow` for files and folders, `MeshRules::watch_cluster` for the
//!   cluster's resources) load rules with `config` and put them in force through `reload`; they
//!   use nothing else.
//!
//! No arrow points the other way: the model uses neither `config` nor `layer`, and the layer
//! does not use `config`. `scripts/layering.py` checks every use against this picture.
//!
//! The README follows; its examples are compiled as tests.
#![doc = ""]
#![doc = include_str!("../README.md")]
// The lints are in Cargo.toml's `[lints]` table; the library itself has no unsafe code at all.
#![forbid(unsafe_code)]

pub mod config;
#[cfg(any(feature = "watch", feature = "kube"))]
mod feed;
pub mod layer;
pub mod model;
mod reload;

pub use config::{
    DocumentRef, ErrorKind, Limits, LoadError, LoadOptions, Loader, RuleSet, Warning,
};
#[cfg(feature = "kube")]
pub use feed::cluster::{ClusterError, ClusterOptions, ClusterStats, ClusterWatch};
#[cfg(feature = "watch")]
pub use feed::files::{FollowError, FollowOptions, FollowStats, Follower};
pub use layer::{Destinations, MeshBody, MeshLayer, MeshRouter, MeshService};
pub use model::{
    AlwaysSampler, Caller, Context, Decision, Destination, ExplainLine, Explanation, Labels,
    NeverSampler, Outcome, Resource, ResourceKind, ResponseFlags, RewriteError, Route, RouteTable,
    Sampler, ScriptedSampler, SeededSampler, ThreadSampler, Verdict,
};
pub use reload::MeshRules;
