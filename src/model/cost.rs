//! Counts of the work one evaluation does to read the request, for the crate's own cost tests
//! (feature `cost-counters`, off by default; without it every count compiles to nothing).
//!
//! The unit is a byte taken apart: each time a condition or the route index reads a request
//! field counts one, and splitting the query string into parameters or joining a header's lines
//! counts the bytes split or joined. What the matchers then do with a value is not counted: an
//! exact or prefix match reads at most the value, a regex at most the value once.

#[cfg(feature = "cost-counters")]
thread_local! {
    static PARSED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Adds `bytes` to this thread's count.
#[inline(always)]
pub(super) fn parsed(bytes: usize) {
    #[cfg(feature = "cost-counters")]
    PARSED.with(|c| c.set(c.get() + bytes as u64));
    #[cfg(not(feature = "cost-counters"))]
    let _ = bytes;
}

/// This thread's count since the last call, and the count set back to zero (always 0 without
/// the feature `cost-counters`).
#[doc(hidden)]
pub fn take_bytes_parsed() -> u64 {
    #[cfg(feature = "cost-counters")]
    return PARSED.with(|c| c.replace(0));
    #[cfg(not(feature = "cost-counters"))]
    0
}
