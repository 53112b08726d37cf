//! DestinationRules across a rule set: Istio's index of them by namespace, host and
//! `exportTo` (merging those Istio merges), the one each caller namespace gets for a host, and
//! the labels of the subsets VirtualServices name, resolved for every caller.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, PoisonError};

use super::inputs::{DestinationRuleIn, SubsetUse, VirtualServiceIn};
use super::{Finding, FindingKind};
use crate::model::destination::SubsetLabels;
use crate::model::labels::Labels;
use crate::model::policy::DestinationPolicy;

/// The mesh's root namespace (Istio's default `rootNamespace`).
const ROOT: &str = "istio-system";

/// One entry of the index: a DestinationRule with those merged into it, its raw `exportTo`,
/// its load position, and its subsets' names indexed.
#[derive(Clone, Debug)]
struct Entry<T> {
    rule: Arc<DestinationRuleIn<T>>,
    export: Arc<BTreeSet<String>>,
    order: usize,
    by_name: Arc<HashMap<Arc<str>, usize>>,
}

impl<T: Clone + std::fmt::Display> Entry<T> {
    /// A DestinationRule with its `exportTo` as a set and its subsets indexed, shared by the
    /// lists it enters until one of them merges another into it.
    fn new(rule: DestinationRuleIn<T>, order: usize) -> Self {
        let by_name = rule
            .policy
            .subsets
            .iter()
            .enumerate()
            .map(|(i, s)| (Arc::from(s.name.as_str()), i))
            .collect();
        let export = rule.policy.export_to.iter().cloned().collect();
        Entry {
            rule: Arc::new(rule),
            export: Arc::new(export),
            order,
            by_name: Arc::new(by_name),
        }
    }

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

    /// Merges `later` into this entry: its subsets with new names (a name this one has
    /// already is warned about, and the first definition kept), and its `trafficPolicy` where
    /// this one has none.
    fn merge(&mut self, later: &DestinationRuleIn<T>, warnings: &mut Vec<Finding<T>>) {
        let rule = Arc::make_mut(&mut self.rule);
        let at = rule.at.clone();
        let merged = Arc::make_mut(&mut rule.policy);
        let by_name = Arc::make_mut(&mut self.by_name);
        for subset in &later.policy.subsets {
            if by_name.contains_key(subset.name.as_str()) {
                warnings.push(Finding::warning(
                    later.at.clone(),
                    format!(
                        "Duplicate subset {} found while merging destination rules for {}: the one of {} is used, and this one is ignored",
                        subset.name, later.host, at
                    ),
                ));
                continue;
            }
            by_name.insert(Arc::from(subset.name.as_str()), merged.subsets.len());
            merged.subsets.push(subset.clone());
        }
        if merged.traffic_policy.is_none() {
            merged.traffic_policy = later.policy.traffic_policy.clone();
        }
        merged.merged_from.push(later.policy.resource.clone());
    }

    /// Whether a caller of namespace `caller` may use this entry of another namespace.
    fn visible(&self, caller: Option<&str>) -> bool {
        self.export.is_empty()
            || self.export.contains("*")
            || caller.is_some_and(|c| self.export.contains(c))
    }
}

/// Entries by host, for one namespace (or the root's private ones); wildcard hosts apart, so
/// that a miss does not look at every host.
#[derive(Clone, Debug)]
struct ByHost<T> {
    exact: HashMap<String, Vec<Entry<T>>>,
    wildcards: HashMap<String, Vec<Entry<T>>>,
}

impl<T> Default for ByHost<T> {
    fn default() -> Self {
        ByHost {
            exact: HashMap::new(),
            wildcards: HashMap::new(),
        }
    }
}

impl<T> ByHost<T> {
    fn slot(&mut self, host: String) -> &mut Vec<Entry<T>> {
        let map = match host.starts_with('*') {
            true => &mut self.wildcards,
            false => &mut self.exact,
        };
        map.entry(host).or_default()
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &Vec<Entry<T>>)> {
        self.exact.iter().chain(&self.wildcards)
    }
}

/// The DestinationRules of a set, indexed as Istio indexes them.
#[derive(Clone, Debug)]
pub(crate) struct DestinationRules<T> {
    /// Per namespace, the entries its own callers use.
    local: HashMap<String, ByHost<T>>,
    /// Per namespace, the entries it exports to others.
    exported: HashMap<String, ByHost<T>>,
    /// The root namespace's private entries, for callers in the root namespace.
    root_local: ByHost<T>,
    /// The root namespace, whose callers have their own lookup.
    root: String,
    /// For each host with a DestinationRule of its own, the namespaces that have one (their
    /// callers may get it); wildcard hosts apart, with their namespace.
    local_hosts: HashMap<String, Vec<String>>,
    local_wildcards: Vec<(String, String)>,
    /// DestinationRules with a `workloadSelector`: they apply to the workloads they select,
    /// which an in-process caller is not; listed by `policies` only.
    selected: Vec<DestinationRuleIn<T>>,
    /// Canonical hosts of DestinationRules that failed to load: a subset of these is not
    /// reported unknown (the DestinationRule's own error is the one to fix).
    broken: HashSet<String>,
}

impl<T> Default for DestinationRules<T> {
    fn default() -> Self {
        DestinationRules {
            local: HashMap::new(),
            exported: HashMap::new(),
            root_local: ByHost::default(),
            root: ROOT.to_string(),
            local_hosts: HashMap::new(),
            local_wildcards: Vec::new(),
            selected: Vec::new(),
            broken: HashSet::new(),
        }
    }
}

/// Istio's `mergeDestinationRule` for one list: `rule` goes into each entry with the same
/// raw `exportTo`, or one whose (non-empty) `exportTo` it covers; otherwise it stands apart.
fn merge_into<T: Clone + std::fmt::Display>(
    list: &mut Vec<Entry<T>>,
    entry: &Entry<T>,
    warnings: &mut Vec<Finding<T>>,
) {
    let export = &*entry.export;
    let mut merged = false;
    for m in list.iter_mut() {
        if *export == *m.export || (!m.export.is_empty() && export.is_superset(&m.export)) {
            m.merge(&entry.rule, warnings);
            merged = true;
        }
    }
    if !merged {
        list.push(entry.clone());
    }
}

/// Whether the DestinationRule host `key` covers `host`: equal, or a wildcard whose suffix
/// `host` ends with.
fn covers(key: &str, host: &str) -> bool {
    key == host
        || key
            .strip_prefix('*')
            .is_some_and(|suffix| host.ends_with(suffix))
}

/// Istio's `MostSpecificHostMatch`: the entries of `host` itself, else of the longest
/// wildcard key that covers it.
fn best<'a, T>(index: Option<&'a ByHost<T>>, host: &str) -> &'a [Entry<T>] {
    let Some(index) = index else { return &[] };
    if let Some(list) = index.exact.get(host) {
        return list;
    }
    index
        .wildcards
        .iter()
        .filter(|(k, _)| covers(k, host))
        .max_by_key(|(k, _)| k.len())
        .map_or(&[], |(_, list)| list.as_slice())
}

/// The namespace of a Kubernetes service host `<name>.<ns>.svc.cluster.local`.
fn service_namespace(host: &str) -> Option<&str> {
    let rest = host.strip_suffix(".svc.cluster.local")?;
    let (_, ns) = rest.rsplit_once('.')?;
    (!ns.is_empty() && !ns.contains('*')).then_some(ns)
}

/// What a subset a destination names comes to.
enum Resolved {
    Labels(SubsetLabels),
    /// The host's DestinationRule failed to load: the destination names no subset.
    Dropped,
    /// Not defined for any caller: the error's message.
    Undefined(String),
}

impl<T: Clone + std::fmt::Display> DestinationRules<T> {
    /// Indexes the DestinationRules, in load order (Istio's creation order), as Istio does:
    /// by namespace for that namespace's callers, and by namespace for the others they are
    /// exported to, merging those of one namespace and host whose `exportTo` agree.
    pub(super) fn new(
        rules: impl IntoIterator<Item = DestinationRuleIn<T>>,
        broken: impl IntoIterator<Item = String>,
        warnings: &mut Vec<Finding<T>>,
    ) -> Self {
        let mut index = DestinationRules {
            broken: broken.into_iter().collect(),
            ..DestinationRules::default()
        };
        for (order, rule) in rules.into_iter().enumerate() {
            if rule.policy.workload_selector.is_some() {
                warnings.push(Finding::note(
                    rule.at.clone(),
                    format!("{} has a workloadSelector: Istio applies it to the sidecars of the workloads it selects, which a caller in-process is not; subsets come from the DestinationRules without one", rule.policy.resource),
                ));
                index.selected.push(rule);
                continue;
            }
            let ns = rule.policy.resource.namespace().to_string();
            if rule.canonical.starts_with('*') {
                index
                    .local_wildcards
                    .push((rule.canonical.clone(), ns.clone()));
            } else {
                let list = index.local_hosts.entry(rule.canonical.clone()).or_default();
                if !list.contains(&ns) {
                    list.push(ns.clone());
                }
            }
            let host = rule.canonical.clone();
            let entry = Entry::new(rule, order);
            let export = &entry.rule.policy.export_to;
            let local_too =
                export.is_empty() || export.iter().any(|e| e == "*" || e == "." || *e == ns);
            if local_too {
                let list = index.local.entry(ns.clone()).or_default();
                merge_into(list.slot(host.clone()), &entry, warnings);
            }
            let private = export.len() == 1 && (export[0] == "." || export[0] == ns);
            let list = if !private {
                index.exported.entry(ns.clone()).or_default().slot(host)
            } else if ns == ROOT {
                index.root_local.slot(host)
            } else {
                continue;
            };
            // Warnings of the merge were given for the local list already, if it has one.
            let mut quiet = Vec::new();
            let to = if local_too {
                &mut quiet
            } else {
                &mut *warnings
            };
            merge_into(list, &entry, to);
        }
        index.warn_kept_apart(warnings);
        index
    }

    /// A warning for each namespace and host whose DestinationRules Istio keeps apart (their
    /// `exportTo` differ): callers see only one of them.
    fn warn_kept_apart(&self, warnings: &mut Vec<Finding<T>>) {
        for by_host in self.local.values().chain(self.exported.values()) {
            for (_, list) in by_host.iter().filter(|(_, l)| l.len() > 1) {
                let (first, last) = (&list[0], &list[list.len() - 1]);
                let message = format!(
                    "DestinationRules for host {} in one namespace have different exportTo ({} and {}), so Istio does not merge them: a caller that may see both uses {} only",
                    last.rule.host, first.rule.at, last.rule.at, last.rule.at,
                );
                if !warnings.iter().any(|w| w.message == message) {
                    warnings.push(Finding::warning(last.rule.at.clone(), message));
                }
            }
        }
    }

    /// Istio's lookup: the DestinationRule a caller of namespace `caller` (`None`: not known)
    /// gets for `host`.
    fn rule_for(&self, host: &str, caller: Option<&str>) -> Option<&Entry<T>> {
        let own = match caller {
            Some(ROOT) => best(Some(&self.root_local), host),
            Some(c) => best(self.local.get(c), host),
            None => &[],
        };
        if let Some(e) = own.last() {
            return Some(e);
        }
        let visible = |ns: &str| {
            best(self.exported.get(ns), host)
                .iter()
                .rfind(|e| e.visible(caller))
        };
        service_namespace(host)
            .and_then(visible)
            .or_else(|| visible(ROOT))
    }

    /// For each host, the DestinationRule it has (the first loaded, with those merged into
    /// it), whoever the caller.
    pub(crate) fn policies(&self) -> impl Iterator<Item = (&str, &Arc<DestinationPolicy>)> {
        let mut first: HashMap<&str, &Entry<T>> = HashMap::new();
        let all = self.local.values().chain(self.exported.values());
        for (host, list) in all.flat_map(|m| m.iter()).chain(self.root_local.iter()) {
            for e in list {
                let slot = first.entry(host.as_str()).or_insert(e);
                if e.order < slot.order {
                    *slot = e;
                }
            }
        }
        let selected = self
            .selected
            .iter()
            .filter(|r| !first.contains_key(r.canonical.as_str()))
            .map(|r| (r.canonical.as_str(), &r.policy))
            .collect::<Vec<_>>();
        first
            .into_iter()
            .map(|(h, e)| (h, &e.rule.policy))
            .chain(selected)
    }

    /// The subset's labels for every caller: as a caller without a namespace (or of any
    /// namespace the rules do not single out) gets them, and where a namespace gets others.
    fn resolve(&self, canonical: &str, host: &str, subset: &str) -> Resolved {
        if self.broken.contains(canonical) {
            return Resolved::Dropped;
        }
        fn labels<'a, T>(e: Option<&'a Entry<T>>, subset: &str) -> Option<&'a Labels> {
            e.and_then(|e| {
                let i = *e.by_name.get(subset)?;
                Some(&e.rule.policy.subsets[i].labels)
            })
        }
        let default_rule = self.rule_for(canonical, None);
        let default = labels(default_rule, subset);
        let mut by_namespace: Vec<(Box<str>, Option<Labels>)> = Vec::new();
        let mut anywhere = default.is_some();
        // The namespaces whose callers may see another DestinationRule for this host.
        let wildcards = self
            .local_wildcards
            .iter()
            .filter(|(key, _)| covers(key, canonical))
            .map(|(_, ns)| ns);
        // Exported entries name the namespaces they reach: only those for this host count, so
        // the work per subset is bounded by the DestinationRules of its host.
        let exported = [service_namespace(canonical), Some(ROOT)]
            .into_iter()
            .flatten()
            .flat_map(|ns| best(self.exported.get(ns), canonical))
            .flat_map(|e| e.export.iter());
        let candidates = std::iter::once(&self.root)
            .chain(self.local_hosts.get(canonical).into_iter().flatten())
            .chain(wildcards)
            .chain(exported)
            .filter(|ns| *ns != "." && *ns != "*");
        for ns in candidates {
            let got = labels(self.rule_for(canonical, Some(ns)), subset);
            anywhere |= got.is_some();
            if got != default && !by_namespace.iter().any(|(n, _)| **n == **ns) {
                by_namespace.push((ns.as_str().into(), got.cloned()));
            }
        }
        if anywhere {
            return Resolved::Labels(SubsetLabels {
                default: default.cloned(),
                by_namespace,
            });
        }
        let seen = default_rule.or_else(|| {
            let mut owners = self.local_hosts.get(canonical).into_iter().flatten();
            owners.find_map(|ns| self.rule_for(canonical, Some(ns)))
        });
        match seen {
            None => Resolved::Undefined(format!(
                "subset `{subset}` is not defined: no DestinationRule for host {host} was loaded (load it in the same set)"
            )),
            Some(e) => Resolved::Undefined(format!(
                "subset `{subset}` is not defined for host {host} by the DestinationRule in force, {}; it defines: {}",
                e.rule.at,
                e.names()
            )),
        }
    }

    /// The labels of the subsets one VirtualService names (`uses`, as its lowering recorded
    /// them), one per use (`None`: the subset is dropped). An undefined subset is an error:
    /// the first of each route, as lowering one route stops at its first mistake.
    pub(super) fn check_subsets(
        &self,
        uses: &[SubsetUse<T>],
    ) -> Result<Vec<Option<SubsetLabels>>, Vec<Finding<T>>> {
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
        let by_use: HashMap<(&str, &str), &Option<SubsetLabels>> = uses
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
