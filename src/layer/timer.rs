//! The timer delay faults sleep on.

use std::future::Future;
use std::time::Duration;

/// Sleeps for delay faults. tower-mesh creates a sleep only when a delay fault fires.
///
/// [`TokioTimer`] (feature `tokio`, on by default) is the usual choice; another runtime
/// plugs in its own.
///
/// ```
/// use std::time::Duration;
/// use tower_mesh::layer::Timer;
///
/// /// A timer for tests that never waits.
/// #[derive(Clone)]
/// struct Instant;
///
/// impl Timer for Instant {
///     type Sleep = std::future::Ready<()>;
///     fn sleep(&self, _: Duration) -> Self::Sleep {
///         std::future::ready(())
///     }
/// }
/// ```
pub trait Timer: Clone + Send + Sync + 'static {
    /// The future a sleep returns.
    type Sleep: Future<Output = ()> + Send + 'static;

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Self::Sleep;
}

/// Tokio's timer (honours `tokio::time::pause` in tests). Needs a Tokio runtime with time
/// enabled when a delay fires.
///
/// ```
/// use tower_mesh::{MeshLayer, RuleSet};
/// use tower_mesh::layer::TokioTimer;
///
/// // The default timer with the `tokio` feature; set explicitly here.
/// let layer = MeshLayer::new(RuleSet::empty()).timer(TokioTimer);
/// # let _ = layer;
/// ```
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioTimer;

#[cfg(feature = "tokio")]
impl Timer for TokioTimer {
    type Sleep = tokio::time::Sleep;

    fn sleep(&self, duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }
}
