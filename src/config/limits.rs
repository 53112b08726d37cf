//! Bounds the loader enforces on its input.

/// Bounds on what the loader accepts, so that no configuration can exhaust memory or time.
///
/// Every limit that is exceeded is reported as a [`LoadError`](crate::LoadError) of kind
/// [`ErrorKind::Limit`](crate::ErrorKind::Limit) that names the limit.
///
/// ```
/// use tower_mesh::{Limits, LoadOptions};
///
/// let options = LoadOptions::default().with_limits(Limits { max_routes: 10, ..Limits::default() });
/// # let _ = options;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest text accepted in one call, in bytes (default 16 MiB). The text that YAML
    /// aliases copy counts against it once more for each use of an alias.
    pub max_input_bytes: usize,
    /// Deepest nesting of lists and mappings (default 64).
    pub max_depth: usize,
    /// Most values in one text, counting each use of an alias again (default 1,000,000).
    pub max_nodes: usize,
    /// Most bytes all the texts of one load may hold together (default 32 MiB): files read
    /// together by a [`Loader`](crate::Loader), [`RuleSet::from_files`](crate::RuleSet::from_files),
    /// a followed folder or `tower-mesh check`.
    pub max_total_bytes: usize,
    /// Most values all the texts of one load may hold together, counting each use of an alias
    /// again (default 2,000,000).
    pub max_total_nodes: usize,
    /// Longest regular expression, in characters (default 1,024, Istio's own limit).
    pub max_regex_len: usize,
    /// Largest compiled size of one regular expression, in bytes (default 1 MiB).
    pub max_regex_size: usize,
    /// Most HTTP routes (RouteRules and VirtualService routes) in one rule set, counted after
    /// delegation has put each delegate's routes in its root route's place (default 20,000).
    pub max_routes: usize,
    /// Most match entries (items of the routes' `match` lists; a route without one counts as
    /// one) in one rule set, counted after delegation has merged each root match with each
    /// delegate match (default 50,000).
    pub max_matches: usize,
    /// Largest heap memory of all compiled regular expressions together, in bytes
    /// (default 128 MiB). Matches answered without a regex engine (`.*Chrome.*`, exact
    /// values) count nothing.
    pub max_regex_total: usize,
    /// Most keys in one YAML or JSON mapping (default 10,000).
    pub max_mapping_keys: usize,
    /// Most subsets in one DestinationRule (default 10,000).
    pub max_subsets: usize,
    /// Most errors one load reports before it stops looking for more (default 100); see
    /// [`LoadError::errors`](crate::LoadError::errors).
    pub max_errors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 16 << 20,
            max_depth: 64,
            max_nodes: 1_000_000,
            max_total_bytes: 32 << 20,
            max_total_nodes: 2_000_000,
            max_regex_len: 1024,
            max_regex_size: 1 << 20,
            max_routes: 20_000,
            max_matches: 50_000,
            max_regex_total: 128 << 20,
            max_mapping_keys: 10_000,
            max_subsets: 10_000,
            max_errors: 100,
        }
    }
}
