//! DestinationRules across a rule set: which one is in force for a host (the first loaded),
//! and the labels of the subsets VirtualServices name, resolved against it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::error::{ErrorKind, LoadError, Warning};
use super::lower::hosts::service_host;
use super::lower::networking::{LoweredDestinationRule, SubsetUse};
use crate::model::{DestinationPolicy, Labels, Route};

/// The DestinationRule in force for a host, with its subsets' names indexed.
struct InForce {
    rule: LoweredDestinationRule,
    by_name: HashMap<Arc<str>, usize>,
}

impl InForce {
    /// The names in order, for an error message: at most 20, then how many more.
    fn names(&self) -> String {
        const SHOWN: usize = 20;
        let all = &self.rule.policy.subsets;
        let mut names: Vec<&str> = all.iter().take(SHOWN).map(|s| s.name.as_str()).collect();
        let more = format!("and {} more", all.len().saturating_sub(SHOWN));
        if all.len() > SHOWN {
            names.push(&more);
        }
        names.join(", ")
    }
}

/// The DestinationRules in force, by canonical host.
#[derive(Default)]
pub(super) struct DestinationRules {
    hosts: HashMap<String, InForce>,
    /// Canonical hosts of DestinationRules that failed to load: a subset of these is not
    /// reported unknown (the DestinationRule's own error is the one to fix).
    broken: HashSet<String>,
}

/// What a subset a destination names comes to.
enum Resolved {
    Labels(Labels),
    /// The host's DestinationRule failed to load: the destination names no subset.
    Dropped,
    /// Not defined: the error's message.
    Undefined(String),
}

impl DestinationRules {
    /// Takes the DestinationRules in load order: the first for a host is in force, and each
    /// later one is named in a warning.
    pub(super) fn new(
        rules: impl IntoIterator<Item = LoweredDestinationRule>,
        warnings: &mut Vec<Warning>,
    ) -> Self {
        let mut index = DestinationRules::default();
        for rule in rules {
            if let Some(first) = index.hosts.get(&rule.canonical) {
                warnings.push(Warning {
                    document: rule.doc.clone(),
                    path: Some("spec.host".to_string()),
                    line: Some(rule.host_line),
                    message: format!(
                        "two DestinationRules define subsets for host {}: {} is in force (loaded first), and this one ({}) is ignored",
                        rule.host, first.rule.doc, rule.doc
                    ),
                });
                continue;
            }
            let by_name = rule
                .policy
                .subsets
                .iter()
                .enumerate()
                .map(|(i, s)| (Arc::from(s.name.as_str()), i))
                .collect();
            index
                .hosts
                .insert(rule.canonical.clone(), InForce { rule, by_name });
        }
        index
    }

    /// Records that the DestinationRule for `host` (in `namespace`) failed to load.
    pub(super) fn mark_broken(&mut self, host: &str, namespace: &str) {
        self.broken.insert(service_host(host, namespace).canonical);
    }

    /// The policy in force for each host, by canonical host.
    pub(super) fn policies(&self) -> impl Iterator<Item = (&str, &Arc<DestinationPolicy>)> {
        self.hosts
            .iter()
            .map(|(host, f)| (host.as_str(), &f.rule.policy))
    }

    fn resolve(&self, canonical: &str, host: &str, subset: &str) -> Resolved {
        let Some(in_force) = self.hosts.get(canonical) else {
            if self.broken.contains(canonical) {
                return Resolved::Dropped;
            }
            return Resolved::Undefined(format!(
                "subset `{subset}` is not defined: no DestinationRule for host {host} was loaded (load it in the same set)"
            ));
        };
        match in_force.by_name.get(subset) {
            Some(&at) => Resolved::Labels(in_force.rule.policy.subsets[at].labels.clone()),
            None => Resolved::Undefined(format!(
                "subset `{subset}` is not defined for host {host} by the DestinationRule in force, {}; it defines: {}",
                in_force.rule.doc,
                in_force.names()
            )),
        }
    }

    /// Gives the destinations of one VirtualService's `routes` the labels of the subsets they
    /// name (`uses`, as its lowering recorded them). An undefined subset is an error: the
    /// first of each route, as lowering one route stops at its first mistake.
    pub(super) fn resolve_subsets(
        &self,
        routes: &mut [Route],
        uses: &[SubsetUse],
    ) -> Result<(), Vec<LoadError>> {
        let mut found: HashMap<(&str, &str), Option<Labels>> = HashMap::new();
        let mut errors: Vec<LoadError> = Vec::new();
        let mut failed_route = None;
        for u in uses {
            match self.resolve(&u.canonical, &u.host, &u.subset) {
                Resolved::Labels(labels) => {
                    found.insert((u.host.as_str(), &*u.subset), Some(labels));
                }
                Resolved::Dropped => {
                    found.insert((u.host.as_str(), &*u.subset), None);
                }
                Resolved::Undefined(_) if failed_route == Some(u.route) => {}
                Resolved::Undefined(message) => {
                    failed_route = Some(u.route);
                    errors.push(undefined(u, message));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if !found.is_empty() {
            let labels = |host: &str, subset: &str| found.get(&(host, subset)).cloned().flatten();
            routes.iter_mut().for_each(|r| r.resolve_subsets(&labels));
        }
        Ok(())
    }
}

fn undefined(u: &SubsetUse, message: String) -> LoadError {
    LoadError::new(ErrorKind::UnknownSubset, message)
        .with_document(u.doc.clone())
        .with_path(u.path.clone())
        .at(u.line, u.column)
        .with_value(&*u.subset)
}
