//! The glue between loading and enforcing: [`MeshRules`], the handle that puts a loaded
//! [`RuleSet`] in force in a running [`MeshLayer`] and loads it again from its files.
//!
//! It is the one module that uses both [`config`](crate::config) (to read files and text) and
//! [`layer`](crate::layer) (to swap the table the services evaluate). The layer itself holds
//! only the compiled [`RouteTable`](crate::RouteTable).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::config::{LoadError, Loader, RuleSet};
use crate::layer::{LiveTable, MeshLayer, Timer};
use crate::model::RouteTable;

/// A handle on the rules a [`MeshLayer`] enforces. Clones share the rules; a reload through
/// any clone is seen by every service built from the layer.
///
/// A request keeps the rules it started with. A reload that fails leaves the running rules
/// untouched and returns the error.
///
/// ```
/// use tower_mesh::{MeshRules, RuleSet};
///
/// let rules = MeshRules::new(RuleSet::empty());
/// let err = rules.reload_yaml("kind: [").unwrap_err();
/// assert_eq!(err.kind(), tower_mesh::ErrorKind::Syntax);
/// assert_eq!(rules.current().table().route_count(), 0, "the old rules stay");
/// ```
#[derive(Clone)]
pub struct MeshRules {
    /// What requests evaluate: the table of `source`.
    table: Arc<ArcSwap<RouteTable>>,
    /// The rule set in force, with its files, options and warnings.
    source: Arc<ArcSwap<RuleSet>>,
    /// Held while a new rule set is put in force, so that `table` and `source` change together.
    writing: Arc<Mutex<()>>,
}

impl MeshRules {
    /// A handle starting with `rules`.
    pub fn new(rules: RuleSet) -> Self {
        announce(&rules);
        #[cfg(feature = "metrics")]
        crate::layer::metrics::rules_version(&rules.version());
        MeshRules {
            table: Arc::new(ArcSwap::new(rules.table().clone())),
            source: Arc::new(ArcSwap::from_pointee(rules)),
            writing: Arc::default(),
        }
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<RuleSet> {
        self.source.load_full()
    }

    /// The version of the rules in force ([`RuleSet::version`]): replicas showing the same
    /// version enforce the same rules. With feature `metrics` the gauge
    /// `tower_mesh_rules_version` shows it as a number: its first 12 hex digits (one series,
    /// whatever the number of reloads).
    pub fn version(&self) -> String {
        self.source.load().version()
    }

    /// Puts `rules` in force; returns the rules they replace.
    pub fn replace(&self, rules: RuleSet) -> Arc<RuleSet> {
        announce(&rules);
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        self.table.store(rules.table().clone());
        let old = self.source.swap(Arc::new(rules));
        #[cfg(feature = "metrics")]
        crate::layer::metrics::rules_version(&self.version());
        old
    }

    /// Loads the files the current rules came from again (same options) and puts them in force.
    /// On error nothing changes.
    pub fn reload(&self) -> Result<Arc<RuleSet>, LoadError> {
        let fresh = self.current().reload().inspect_err(refused)?;
        self.replace(fresh);
        Ok(self.current())
    }

    /// Loads YAML (or JSON) text and puts it in force. On error nothing changes.
    pub fn reload_yaml(&self, text: &str) -> Result<Arc<RuleSet>, LoadError> {
        let fresh = Loader::new()
            .options(self.current().options().clone())
            .text(text)
            .load()
            .inspect_err(refused)?;
        self.replace(fresh);
        Ok(self.current())
    }

    /// The live table a layer evaluates, remembering this handle.
    fn live(&self) -> LiveTable {
        LiveTable::new(self.table.clone(), Arc::new(self.clone()))
    }
}

impl fmt::Debug for MeshRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshRules")
            .field("routes", &self.table.load().route_count())
            .finish()
    }
}

impl From<RuleSet> for MeshRules {
    fn from(rules: RuleSet) -> Self {
        MeshRules::new(rules)
    }
}

impl MeshLayer {
    /// A layer enforcing `rules` (a [`RuleSet`], or a [`MeshRules`] handle to reload them).
    pub fn new(rules: impl Into<MeshRules>) -> Self {
        MeshLayer::with_rules(rules.into().live())
    }
}

impl<T: Timer, M> MeshLayer<T, M> {
    /// The handle on the rules, to reload them while the service runs.
    pub fn rules(&self) -> MeshRules {
        match self.live_table().origin().downcast_ref::<MeshRules>() {
            Some(rules) => rules.clone(),
            // Every layer is built from a `MeshRules` (see `MeshLayer::new`).
            None => unreachable!("a layer's rules come from a MeshRules handle"),
        }
    }

    /// The rules in force now.
    pub fn current_rules(&self) -> Arc<RuleSet> {
        self.rules().current()
    }
}

/// Rules put in force through a handle: each load warning as a WARN event, and (feature
/// `metrics`) the reload counted and the routes in force.
fn announce(rules: &RuleSet) {
    for w in rules.warnings() {
        tracing::warn!(target: "tower_mesh", "{w}");
    }
    #[cfg(feature = "metrics")]
    crate::layer::metrics::rules_loaded(true, Some(rules.table().route_count()));
}

/// A reload through a handle that did not load: a WARN event per error, counted; the rules in
/// force stay.
pub(crate) fn refused(err: &LoadError) {
    for e in err.errors() {
        tracing::warn!(target: "tower_mesh", "rules not reloaded: {e}");
    }
    #[cfg(feature = "metrics")]
    crate::layer::metrics::rules_loaded(false, None);
}

/// An object of a feed left out of the rules (its own WARN event is the feed's): counted as a
/// refused reload, as an update that does not load is.
#[cfg_attr(not(feature = "kube"), allow(dead_code))]
pub(crate) fn left_out() {
    #[cfg(feature = "metrics")]
    crate::layer::metrics::rules_loaded(false, None);
}
