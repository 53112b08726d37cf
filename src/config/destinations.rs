//! DestinationRules across a rule set: which one is in force for a host (the first loaded),
//! and the labels of the subsets VirtualServices name, resolved against it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};

use super::error::{ErrorKind, LoadError, Warning};
use super::lower::hosts::service_host;
use super::lower::networking::{LoweredDestinationRule, LoweredVirtualService, SubsetUse};
use crate::model::{DestinationPolicy, Labels};

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

    /// The labels of the subsets one VirtualService names (`uses`, as its lowering recorded
    /// them), one per use (`None`: the subset is dropped). An undefined subset is an error:
    /// the first of each route, as lowering one route stops at its first mistake.
    pub(super) fn check_subsets(
        &self,
        uses: &[SubsetUse],
    ) -> Result<Vec<Option<Labels>>, Vec<LoadError>> {
        let mut found = Vec::with_capacity(uses.len());
        let mut errors: Vec<LoadError> = Vec::new();
        let mut failed_route = None;
        for u in uses {
            match self.resolve(&u.canonical, &u.host, &u.subset) {
                Resolved::Labels(labels) => found.push(Some(labels)),
                Resolved::Dropped => found.push(None),
                Resolved::Undefined(_) if failed_route == Some(u.route) => {}
                Resolved::Undefined(message) => {
                    failed_route = Some(u.route);
                    errors.push(undefined(u, message));
                }
            }
        }
        match errors.is_empty() {
            true => Ok(found),
            false => Err(errors),
        }
    }

    /// Gives the destinations of one VirtualService's routes the labels of the subsets they
    /// name ([`check_subsets`](Self::check_subsets)). Where the VirtualService was resolved
    /// before to the same labels, those routes are taken again as they are.
    pub(super) fn resolve_subsets(
        &self,
        vs: &mut LoweredVirtualService,
        uses: &[SubsetUse],
    ) -> Result<(), Vec<LoadError>> {
        let found = self.check_subsets(uses)?;
        if uses.is_empty() {
            return Ok(());
        }
        let mut memo = vs.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((labels, routes)) = &*memo
            && *labels == found
        {
            vs.routes.clone_from(routes);
            return Ok(());
        }
        let labels = |host: &str, subset: &str| {
            uses.iter()
                .zip(&found)
                .find(|(u, _)| u.host == host && &*u.subset == subset)
                .and_then(|(_, l)| l.clone())
        };
        for route in &mut vs.routes {
            Arc::make_mut(route).resolve_subsets(&labels);
        }
        *memo = Some((found, vs.routes.clone()));
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
