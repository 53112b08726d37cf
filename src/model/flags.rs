//! Envoy's response flags: what happened to a request besides its status.

use std::fmt;

/// Envoy's response flags for one request, as its access log and Istio's `response_flags`
/// metric label write them: `-` when there is none, else the short names joined by `,` in
/// Envoy's order (`UH,UT,NR,DI,FI,URX`).
///
/// The decision knows the injected faults and a missing route
/// ([`Decision::response_flags`](crate::Decision::response_flags)); the middleware adds what
/// happened when it carried the decision out (no destination registered, the route timeout,
/// retries used up) to the decision it puts in the response's extensions.
///
/// ```
/// use tower_mesh::ResponseFlags;
///
/// assert_eq!(ResponseFlags::NONE.to_string(), "-");
/// let both = ResponseFlags::FAULT_INJECTED | ResponseFlags::DELAY_INJECTED;
/// assert_eq!(both.to_string(), "DI,FI");
/// assert!(both.contains(ResponseFlags::FAULT_INJECTED));
/// assert!(!both.contains(ResponseFlags::NO_ROUTE_FOUND));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResponseFlags(u16);

/// The flags in Envoy's order, with their short names.
const NAMES: [(ResponseFlags, &str); 6] = [
    (ResponseFlags::NO_HEALTHY_UPSTREAM, "UH"),
    (ResponseFlags::UPSTREAM_REQUEST_TIMEOUT, "UT"),
    (ResponseFlags::NO_ROUTE_FOUND, "NR"),
    (ResponseFlags::DELAY_INJECTED, "DI"),
    (ResponseFlags::FAULT_INJECTED, "FI"),
    (ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED, "URX"),
];

impl ResponseFlags {
    /// No flag: `-`.
    pub const NONE: ResponseFlags = ResponseFlags(0);
    /// `UH`: no registered destination serves the chosen host and labels (503).
    pub const NO_HEALTHY_UPSTREAM: ResponseFlags = ResponseFlags(1);
    /// `UT`: the route timeout ran out (504).
    pub const UPSTREAM_REQUEST_TIMEOUT: ResponseFlags = ResponseFlags(1 << 1);
    /// `NR`: rules cover the host but no route matched (404).
    pub const NO_ROUTE_FOUND: ResponseFlags = ResponseFlags(1 << 2);
    /// `DI`: a delay fault was injected.
    pub const DELAY_INJECTED: ResponseFlags = ResponseFlags(1 << 3);
    /// `FI`: an abort fault was injected.
    pub const FAULT_INJECTED: ResponseFlags = ResponseFlags(1 << 4);
    /// `URX`: the request was retried as often as the policy allows, and the last answer was
    /// still one the policy retries.
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: ResponseFlags = ResponseFlags(1 << 5);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: ResponseFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The short names of the flags set, in Envoy's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }

    /// The bits, for compact keys.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn bits(self) -> u16 {
        self.0
    }
}

impl std::ops::BitOr for ResponseFlags {
    type Output = ResponseFlags;
    fn bitor(self, rhs: ResponseFlags) -> ResponseFlags {
        ResponseFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for ResponseFlags {
    fn bitor_assign(&mut self, rhs: ResponseFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut sep = "";
        for name in self.names() {
            write!(f, "{sep}{name}")?;
            sep = ",";
        }
        Ok(())
    }
}
