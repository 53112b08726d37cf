//! DestinationRules across a rule set: which one is in force for a host (the first loaded,
//! with the later ones Istio merges into it), and the labels of the subsets VirtualServices
//! name, resolved against it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};

use super::inputs::{DestinationRuleIn, SubsetUse, VirtualServiceIn};
use super::{Finding, FindingKind};
use crate::model::labels::Labels;
use crate::model::policy::DestinationPolicy;

/// The DestinationRule in force for a host, with its subsets' names indexed.
#[derive(Clone, Debug)]
struct InForce<T> {
    rule: DestinationRuleIn<T>,
    by_name: HashMap<Arc<str>, usize>,
}

impl<T: Clone + std::fmt::Display> InForce<T> {
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

/// Whether Istio merges `later` into `first` (its `mergeDestinationRule`, for one namespace):
/// the same `exportTo` as a set, and neither has a `workloadSelector`.
fn mergeable<T>(first: &DestinationRuleIn<T>, later: &DestinationRuleIn<T>) -> bool {
    let (a, b) = (&first.policy, &later.policy);
    a.resource.namespace() == b.resource.namespace()
        && as_set(&a.export_to) == as_set(&b.export_to)
        && a.workload_selector.is_none()
        && b.workload_selector.is_none()
}

fn as_set(entries: &[String]) -> std::collections::BTreeSet<&str> {
    entries.iter().map(String::as_str).collect()
}

impl<T: Clone + std::fmt::Display> InForce<T> {
    /// Merges `later` into this DestinationRule: its subsets with new names (a name this one
    /// has already is warned about, and the first definition kept), and its `trafficPolicy`
    /// where this one has none.
    fn merge(&mut self, later: DestinationRuleIn<T>, warnings: &mut Vec<Finding<T>>) {
        let merged = Arc::make_mut(&mut self.rule.policy);
        for subset in &later.policy.subsets {
            if self.by_name.contains_key(subset.name.as_str()) {
                warnings.push(Finding::warning(
                    later.at.clone(),
                    format!(
                        "Duplicate subset {} found while merging destination rules for {}: the one of {} is used, and this one is ignored",
                        subset.name, later.host, self.rule.at
                    ),
                ));
                continue;
            }
            self.by_name
                .insert(Arc::from(subset.name.as_str()), merged.subsets.len());
            merged.subsets.push(subset.clone());
        }
        if merged.traffic_policy.is_none() {
            merged.traffic_policy = later.policy.traffic_policy.clone();
        }
        merged.merged_from.push(later.policy.resource.clone());
    }
}

/// The DestinationRules in force, by canonical host.
#[derive(Clone, Debug)]
pub(crate) struct DestinationRules<T> {
    hosts: HashMap<String, InForce<T>>,
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

impl<T> Default for DestinationRules<T> {
    fn default() -> Self {
        DestinationRules {
            hosts: HashMap::new(),
            broken: HashSet::new(),
        }
    }
}

impl<T: Clone + std::fmt::Display> DestinationRules<T> {
    /// Takes the DestinationRules in load order. The first for a host is in force; a later one
    /// of the same namespace with the same `exportTo` (as a set) and no `workloadSelector`
    /// (nor the first) is merged into it, as Istio merges them: the subsets it adds whose
    /// names are new, and its `trafficPolicy` where the first has none. Any other later one is
    /// named in a warning and not used.
    pub(super) fn new(
        rules: impl IntoIterator<Item = DestinationRuleIn<T>>,
        broken: impl IntoIterator<Item = String>,
        warnings: &mut Vec<Finding<T>>,
    ) -> Self {
        let mut index = DestinationRules {
            hosts: HashMap::new(),
            broken: broken.into_iter().collect(),
        };
        for rule in rules {
            let Some(first) = index.hosts.get_mut(&rule.canonical) else {
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
                continue;
            };
            if mergeable(&first.rule, &rule) {
                first.merge(rule, warnings);
                continue;
            }
            let message = format!(
                "two DestinationRules define subsets for host {}: {} is in force (loaded first), and this one ({}) is ignored; only DestinationRules of one namespace with the same exportTo and no workloadSelector are merged",
                rule.host, first.rule.at, rule.at
            );
            warnings.push(Finding::warning(rule.at, message));
        }
        index
    }

    /// The policy in force for each host, by canonical host.
    pub(crate) fn policies(&self) -> impl Iterator<Item = (&str, &Arc<DestinationPolicy>)> {
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
                in_force.rule.at,
                in_force.names()
            )),
        }
    }

    /// The labels of the subsets one VirtualService names (`uses`, as its lowering recorded
    /// them), one per use (`None`: the subset is dropped). An undefined subset is an error:
    /// the first of each route, as lowering one route stops at its first mistake.
    pub(super) fn check_subsets(
        &self,
        uses: &[SubsetUse<T>],
    ) -> Result<Vec<Option<Labels>>, Vec<Finding<T>>> {
        let mut found = Vec::with_capacity(uses.len());
        let mut errors: Vec<Finding<T>> = Vec::new();
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
        vs: &mut VirtualServiceIn<T>,
        uses: &[SubsetUse<T>],
    ) -> Result<(), Vec<Finding<T>>> {
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
        // By (host, subset): a VirtualService may name many subsets, and each destination
        // looks its own up.
        let by_use: HashMap<(&str, &str), &Option<Labels>> = uses
            .iter()
            .zip(&found)
            .map(|(u, l)| ((u.host.as_str(), &*u.subset), l))
            .collect();
        let labels =
            |host: &str, subset: &str| by_use.get(&(host, subset)).and_then(|l| (*l).clone());
        for route in &mut vs.routes {
            Arc::make_mut(route).resolve_subsets(&labels);
        }
        *memo = Some((found, vs.routes.clone()));
        Ok(())
    }
}

fn undefined<T: Clone>(u: &SubsetUse<T>, message: String) -> Finding<T> {
    Finding {
        at: u.at.clone(),
        kind: FindingKind::UnknownSubset,
        message,
        value: Some(u.subset.to_string()),
        code: Some("IST0101"),
    }
}
