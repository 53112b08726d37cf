//! The live rule set: swapped atomically while requests flow.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{LoadError, RuleSet};

/// A handle on the rules a [`MeshLayer`](super::MeshLayer) enforces. Clones share the rules;
/// a reload through any clone is seen by every service built from the layer.
///
/// A request keeps the rules it started with. A reload that fails leaves the running rules
/// untouched and returns the error.
///
/// ```
/// use tower_mesh::RuleSet;
/// use tower_mesh::layer::MeshRules;
///
/// let rules = MeshRules::new(RuleSet::empty());
/// let err = rules.reload_yaml("kind: [").unwrap_err();
/// assert_eq!(err.kind(), tower_mesh::ErrorKind::Syntax);
/// assert_eq!(rules.current().table().route_count(), 0, "the old rules stay");
/// ```
#[derive(Clone)]
pub struct MeshRules {
    current: Arc<ArcSwap<RuleSet>>,
}

impl MeshRules {
    /// A handle starting with `rules`.
    pub fn new(rules: RuleSet) -> Self {
        MeshRules {
            current: Arc::new(ArcSwap::from_pointee(rules)),
        }
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    pub(crate) fn swap_guard(&self) -> arc_swap::Guard<Arc<RuleSet>> {
        self.current.load()
    }

    /// Puts `rules` in force; returns the rules they replace.
    pub fn replace(&self, rules: RuleSet) -> Arc<RuleSet> {
        self.current.swap(Arc::new(rules))
    }

    /// Loads the files the current rules came from again (same options) and puts them in force.
    /// On error nothing changes.
    pub fn reload(&self) -> Result<Arc<RuleSet>, LoadError> {
        let fresh = self.current().reload()?;
        self.replace(fresh);
        Ok(self.current())
    }

    /// Loads YAML (or JSON) text and puts it in force. On error nothing changes.
    pub fn reload_yaml(&self, text: &str) -> Result<Arc<RuleSet>, LoadError> {
        let fresh = crate::config::Loader::new()
            .options(self.current().options().clone())
            .text(text)
            .load()?;
        self.replace(fresh);
        Ok(self.current())
    }
}

impl fmt::Debug for MeshRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshRules")
            .field("routes", &self.current.load().table().route_count())
            .finish()
    }
}

impl From<RuleSet> for MeshRules {
    fn from(rules: RuleSet) -> Self {
        MeshRules::new(rules)
    }
}
