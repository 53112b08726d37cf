//! DestinationRule → model: its host, subsets and traffic policy (the traffic policy's own
//! checks are in `policy.rs`).

use std::sync::Arc;

use super::{DestinationRuleLowering, Pos, Result};
use crate::config::error::ErrorKind;
use crate::config::path::FieldPath;
use crate::config::wire::networking as wire;
use crate::model::assembly::DestinationRuleIn;
use crate::model::{DestinationPolicy, Resource, SubsetPolicy, service_host};

impl DestinationRuleLowering<'_, '_> {
    /// Lowers one DestinationRule.
    pub(crate) fn destination_rule(
        &mut self,
        resource: Arc<Resource>,
        spec: wire::DestinationRule,
    ) -> Result<DestinationRuleIn<Pos>> {
        let spec_path = FieldPath::root().key("spec");
        let Some(host) = spec.host.as_deref().filter(|h| !h.is_empty()) else {
            return Err(self.missing(&spec_path.key("host"), "`host` is required"));
        };
        let mut warned = std::collections::BTreeSet::new();
        if let Some(tp) = &spec.traffic_policy {
            self.traffic_policy(&spec_path.key("trafficPolicy"), tp, &mut warned)?;
        }
        let workload_selector = match spec.workload_selector.and_then(|w| w.match_labels) {
            Some(labels) => Some(self.labels(
                &spec_path.key("workloadSelector").key("matchLabels"),
                Some(labels),
            )?),
            None => None,
        };
        let export = spec.export_to.unwrap_or_default();
        self.export_to(&spec_path.key("exportTo"), &export, resource.namespace())?;
        if workload_selector.is_some() {
            let beyond = export
                .iter()
                .position(|e| e != "." && e != resource.namespace());
            let problem = match (beyond, export.len()) {
                (Some(i), _) => Some((
                    i,
                    "destination rule with workload selector cannot have exportTo beyond current namespace",
                )),
                (None, 2..) => Some((
                    1,
                    "destination rule with workload selector cannot have multiple entries in exportTo",
                )),
                _ => None,
            };
            if let Some((i, problem)) = problem {
                return Err(self.invalid(&spec_path.key("exportTo").index(i), &export[i], problem));
            }
        }
        let subset_policies = self.subsets(&spec_path.key("subsets"), spec.subsets, &mut warned)?;
        let canonical = service_host(host, resource.namespace()).canonical;
        let policy = DestinationPolicy {
            resource,
            host: host.to_string(),
            subsets: subset_policies,
            traffic_policy: spec.traffic_policy.as_ref().map(super::policy::to_model),
            export_to: export,
            workload_selector,
            merged_from: Vec::new(),
        };
        Ok(DestinationRuleIn {
            canonical,
            host: host.to_string(),
            at: self.pos(&spec_path.key("host")),
            policy: Arc::new(policy),
        })
    }

    /// A DestinationRule's subsets (at most `Limits::max_subsets`, names unique), each with its
    /// checked policy.
    fn subsets(
        &mut self,
        path: &FieldPath,
        subsets: Option<Vec<wire::Subset>>,
        warned: &mut std::collections::BTreeSet<&'static str>,
    ) -> Result<Vec<SubsetPolicy>> {
        let max = self.options.limits.max_subsets;
        if let Some(all) = subsets.as_ref().filter(|s| s.len() > max) {
            return Err(self.error(
                ErrorKind::Limit,
                path,
                None,
                format!(
                    "the DestinationRule has {} subsets; at most {max} are accepted (Limits::max_subsets)",
                    all.len()
                ),
            ));
        }
        let mut out: Vec<SubsetPolicy> = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, s) in subsets.into_iter().flatten().enumerate() {
            let p = path.index(i);
            let Some(name) = s.name.filter(|n| !n.is_empty()) else {
                return Err(self.missing(&p.key("name"), "a subset needs a `name`"));
            };
            if !names.insert(name.clone()) {
                return Err(self.invalid(
                    &p.key("name"),
                    &name,
                    "this subset name is already defined above",
                ));
            }
            let labels = self.labels(&p.key("labels"), s.labels)?;
            if let Some(tp) = &s.traffic_policy {
                self.traffic_policy(&p.key("trafficPolicy"), tp, warned)?;
            }
            out.push(SubsetPolicy {
                name,
                labels,
                traffic_policy: s.traffic_policy.as_ref().map(super::policy::to_model),
            });
        }
        Ok(out)
    }
}
