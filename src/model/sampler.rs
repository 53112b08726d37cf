//! Random draws for percentages and weights, injectable for deterministic tests.
//!
//! A draw is taken only when its result is uncertain: a fault whose percentage is neither 0
//! nor 100, and a route with two or more destinations of non-zero weight. Per request, the
//! order is: the delay, then the abort, then the destination. Scripted samplers rely on it.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// One million: percentages are compiled to parts per million, as Envoy's
/// `FractionalPercent` with denominator `MILLION`.
pub const PPM: u32 = 1_000_000;

/// A source of random draws.
///
/// ```
/// use tower_mesh::{Sampler, ScriptedSampler};
///
/// let s = ScriptedSampler::new([10, 999_999]);
/// assert_eq!(s.roll_ppm(), 10);       // a 1% fault (10,000 ppm) fires: 10 < 10,000
/// assert_eq!(s.roll_ppm(), 999_999);  // ... and does not fire now
/// ```
pub trait Sampler: Send + Sync {
    /// A number in `0..1_000_000`; a fault of `p` parts per million fires when it is below `p`.
    fn roll_ppm(&self) -> u32;
    /// A number in `0..total` (`total` > 0), to walk cumulative weights.
    fn pick(&self, total: u32) -> u32;
}

impl<S: Sampler + ?Sized> Sampler for &S {
    fn roll_ppm(&self) -> u32 {
        (**self).roll_ppm()
    }
    fn pick(&self, total: u32) -> u32 {
        (**self).pick(total)
    }
}

impl<S: Sampler + ?Sized> Sampler for std::sync::Arc<S> {
    fn roll_ppm(&self) -> u32 {
        (**self).roll_ppm()
    }
    fn pick(&self, total: u32) -> u32 {
        (**self).pick(total)
    }
}

thread_local! {
    static THREAD_RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

/// The default: a fast generator per thread, seeded once from the operating system's entropy.
/// It holds no state, so clones of a service never repeat one another's draws, and no lock is
/// taken.
///
/// ```
/// use tower_mesh::{Sampler, ThreadSampler};
///
/// let draw = ThreadSampler.roll_ppm();
/// assert!(draw < 1_000_000, "draws are parts per million");
/// assert!(ThreadSampler.pick(3) < 3, "a weight draw is below the total");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadSampler;

impl Sampler for ThreadSampler {
    fn roll_ppm(&self) -> u32 {
        THREAD_RNG.with(|r| r.borrow_mut().random_range(0..PPM))
    }
    fn pick(&self, total: u32) -> u32 {
        THREAD_RNG.with(|r| r.borrow_mut().random_range(0..total.max(1)))
    }
}

/// A seeded generator: the same seed gives the same sequence of draws.
///
/// ```
/// use tower_mesh::{Sampler, SeededSampler};
///
/// let a = SeededSampler::new(42);
/// let b = SeededSampler::new(42);
/// assert_eq!(a.roll_ppm(), b.roll_ppm());
/// ```
#[derive(Debug)]
pub struct SeededSampler(Mutex<SmallRng>);

impl SeededSampler {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededSampler(Mutex::new(SmallRng::seed_from_u64(seed)))
    }

    fn with<T>(&self, f: impl FnOnce(&mut SmallRng) -> T) -> T {
        let mut rng = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut rng)
    }
}

impl Sampler for SeededSampler {
    fn roll_ppm(&self) -> u32 {
        self.with(|r| r.random_range(0..PPM))
    }
    fn pick(&self, total: u32) -> u32 {
        self.with(|r| r.random_range(0..total.max(1)))
    }
}

/// Every uncertain fault fires, and the first destination with a non-zero weight is chosen.
///
/// ```
/// use http::Request;
/// use tower_mesh::{AlwaysSampler, Context, Outcome, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: svc}
/// spec:
///   hosts: [svc]
///   http:
///   - fault: {abort: {httpStatus: 503, percentage: {value: 0.001}}}
///     route: [{destination: {host: svc}}]
/// "#)?;
/// let req = Request::get("/").body(())?;
/// let decision = rules.evaluate(&req, &Context::new().with_host("svc"), &AlwaysSampler);
/// assert_eq!(decision.outcome(), Outcome::Abort);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysSampler;

impl Sampler for AlwaysSampler {
    fn roll_ppm(&self) -> u32 {
        0
    }
    fn pick(&self, _total: u32) -> u32 {
        0
    }
}

/// No uncertain fault fires (a 100% fault still does), and the first destination with a
/// non-zero weight is chosen.
///
/// ```
/// use http::Request;
/// use tower_mesh::{NeverSampler, Context, Outcome, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: svc}
/// spec:
///   hosts: [svc]
///   http:
///   - fault: {abort: {httpStatus: 503, percentage: {value: 0.001}}}
///     route: [{destination: {host: svc}}]
/// "#)?;
/// let req = Request::get("/").body(())?;
/// let decision = rules.evaluate(&req, &Context::new().with_host("svc"), &NeverSampler);
/// assert_eq!(decision.outcome(), Outcome::Forward);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverSampler;

impl Sampler for NeverSampler {
    fn roll_ppm(&self) -> u32 {
        PPM - 1
    }
    fn pick(&self, _total: u32) -> u32 {
        0
    }
}

/// Draws taken from a fixed list, in order, starting again at the beginning when it runs out.
///
/// A roll returns the number modulo one million; a pick returns it modulo the total weight.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, Outcome, RuleSet, ScriptedSampler};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: svc}
/// spec:
///   hosts: [svc]
///   http:
///   - fault: {abort: {httpStatus: 503, percentage: {value: 10}}}
///     route: [{destination: {host: svc}}]
/// "#)?;
/// let req = Request::get("/").body(())?;
/// let ctx = Context::new().with_host("svc");
/// // 10% is 100,000 parts per million: a draw below it fires the abort.
/// let fired = rules.evaluate(&req, &ctx, &ScriptedSampler::new([99_999]));
/// let spared = rules.evaluate(&req, &ctx, &ScriptedSampler::new([100_000]));
/// assert_eq!((fired.outcome(), spared.outcome()), (Outcome::Abort, Outcome::Forward));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ScriptedSampler {
    script: Box<[u32]>,
    next: AtomicUsize,
}

impl ScriptedSampler {
    /// A sampler that returns `script`'s numbers in order. An empty script acts as
    /// [`AlwaysSampler`] (every draw is 0).
    pub fn new(script: impl IntoIterator<Item = u32>) -> Self {
        ScriptedSampler {
            script: script.into_iter().collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn next(&self) -> u32 {
        if self.script.is_empty() {
            return 0;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.script[i % self.script.len()]
    }
}

impl Sampler for ScriptedSampler {
    fn roll_ppm(&self) -> u32 {
        self.next() % PPM
    }
    fn pick(&self, total: u32) -> u32 {
        self.next() % total.max(1)
    }
}
