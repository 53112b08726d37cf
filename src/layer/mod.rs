//! The Tower integration: [`MeshLayer`] around one service, or [`MeshRouter`] in front of
//! labelled destinations. It owns no routing logic: every decision comes from
//! [`RouteTable::evaluate`](crate::RouteTable::evaluate); the middleware carries it out.

mod body;
mod future;
mod reply;
mod router;
mod rules;
mod service;
mod timer;

pub use body::MeshBody;
pub use future::ResponseFuture;
pub use router::{Destinations, MeshRouter};
pub use rules::MeshRules;
#[cfg(not(feature = "tokio"))]
pub use service::NoTimer;
pub use service::{DefaultTimer, MeshLayer, MeshService};
pub use timer::Timer;
#[cfg(feature = "tokio")]
pub use timer::TokioTimer;
