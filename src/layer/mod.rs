//! The Tower integration: [`MeshLayer`] around one service, or [`MeshRouter`] in front of
//! labelled destinations. It owns no routing logic: every decision comes from
//! [`RouteTable::evaluate`](crate::RouteTable::evaluate); the middleware carries it out.

mod authority;
mod body;
mod future;
mod live;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod observe;
mod pipeline;
mod replay;
mod reply;
mod retry_state;
mod router;
mod service;
mod shared;
mod timer;

pub use body::MeshBody;
pub use future::ResponseFuture;
pub(crate) use live::LiveTable;
pub use replay::{DEFAULT_REPLAY_LIMIT, ReplayBody};
pub use router::{Destinations, MeshRouter};
#[cfg(not(feature = "tokio"))]
pub use service::NoTimer;
pub use service::{DEFAULT_MIRROR_LIMIT, DefaultTimer, MeshLayer, MeshService};
pub use shared::{BodyMode, DEFAULT_MIRROR_TIMEOUT, MirrorStats, Replaying, Streaming};
pub use timer::Timer;
#[cfg(feature = "tokio")]
pub use timer::TokioTimer;
