//! Assembling a rule set: everything that spans resources. The resources of a load go in
//! lowered, each on its own, with opaque tags `T` that the caller maps back to where they are
//! written (file, document, line and column); the model decides which DestinationRule is in
//! force for a host and gives destinations their subsets' labels, merges delegates into their
//! roots, lets VirtualServices and RouteRules take hosts, attaches Gateway API routes to their
//! Services, counts the whole set against its limits, and reports what it finds.
//!
//! Two steps, so that the caller can stop between them when a document failed: [`Assembly::
//! resolve`] (DestinationRules and subsets, whose errors stand beside the documents' own), then
//! [`Assembly::build`].

mod delegate;
mod destinations;
mod gateway;
mod hosts;
mod inputs;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub(crate) use inputs::{
    DelegateUse, DestinationRuleIn, GatewayRouteIn, Parent, RouteRuleIn, SubsetUse,
    VirtualServiceIn,
};

use super::builder::TableBuilder;
use super::table::{RouteTable, VirtualServiceRoutes};
use delegate::Size;
use destinations::DestinationRules;

/// What a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FindingKind {
    /// The set loads, but probably not as its author meant.
    Warning,
    /// A scope note: something without effect in-process (the set loads).
    Note,
    /// A route names a subset that the DestinationRule in force does not define.
    UnknownSubset,
    /// A route delegates to a VirtualService that is not loaded, or that delegates again.
    BadDelegate,
    /// The set is over a limit: the name of the `Limits` field.
    Limit(&'static str),
}

/// Something the assembly found, where it is, and what it says.
#[derive(Clone, Debug)]
pub(crate) struct Finding<T> {
    pub(crate) at: T,
    pub(crate) kind: FindingKind,
    pub(crate) message: String,
    /// The value at fault, when one is.
    pub(crate) value: Option<String>,
    /// Istio's analyzer code for the same finding, when it has one.
    pub(crate) code: Option<&'static str>,
}

impl<T: Clone> Finding<T> {
    pub(crate) fn warning(at: T, message: String) -> Self {
        Finding {
            at,
            kind: FindingKind::Warning,
            message,
            value: None,
            code: None,
        }
    }

    pub(crate) fn note(at: T, message: String) -> Self {
        Finding {
            at,
            kind: FindingKind::Note,
            message,
            value: None,
            code: None,
        }
    }

    /// The same finding, under Istio's analyzer code.
    pub(crate) fn coded(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The set is over a limit, at `at`.
    fn over(at: &T, (kind, message): delegate::Over) -> Self {
        Finding {
            at: at.clone(),
            kind,
            message,
            value: None,
            code: None,
        }
    }
}

/// The limits on the whole set that the assembly counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SetLimits {
    pub(crate) max_routes: usize,
    pub(crate) max_matches: usize,
}

/// The resources of one load, lowered, in load order.
#[derive(Clone, Debug)]
pub(crate) struct Assembly<T> {
    pub(crate) route_rules: Vec<(T, RouteRuleIn)>,
    pub(crate) virtual_services: Vec<(T, VirtualServiceIn<T>)>,
    /// For each VirtualService read (lowered or not): whether it lowered, and the subsets it
    /// names (those of one that did not lower are checked too, beside its other mistakes).
    pub(crate) subset_uses: Vec<(bool, Arc<[SubsetUse<T>]>)>,
    pub(crate) gateway_routes: Vec<(T, GatewayRouteIn)>,
    pub(crate) destination_rules: Vec<DestinationRuleIn<T>>,
    /// Canonical hosts of DestinationRules that failed: their subsets are not reported unknown
    /// (the DestinationRule's own error is the one to fix).
    pub(crate) broken: Vec<String>,
    /// The DestinationRules in force, once [`resolve`](Assembly::resolve) has run.
    index: Option<DestinationRules<T>>,
}

impl<T> Default for Assembly<T> {
    fn default() -> Self {
        Assembly {
            route_rules: Vec::new(),
            virtual_services: Vec::new(),
            subset_uses: Vec::new(),
            gateway_routes: Vec::new(),
            destination_rules: Vec::new(),
            broken: Vec::new(),
            index: None,
        }
    }
}

impl<T: Clone + fmt::Display> Assembly<T> {
    /// Appends copies of `other`'s resources, after this one's.
    pub(crate) fn extend_from(&mut self, other: &Assembly<T>) {
        self.route_rules.extend(other.route_rules.iter().cloned());
        self.virtual_services
            .extend(other.virtual_services.iter().cloned());
        self.subset_uses.extend(other.subset_uses.iter().cloned());
        self.gateway_routes
            .extend(other.gateway_routes.iter().cloned());
        self.destination_rules
            .extend(other.destination_rules.iter().cloned());
        self.broken.extend(other.broken.iter().cloned());
    }

    /// Picks the DestinationRule in force for each host (merging those Istio merges) and gives
    /// the VirtualServices' destinations their subsets' labels. Returns the errors (subsets not
    /// defined), in load order; warnings go to `warnings`.
    pub(crate) fn resolve(&mut self, warnings: &mut Vec<Finding<T>>) -> Vec<Finding<T>> {
        let rules = std::mem::take(&mut self.destination_rules);
        let index = DestinationRules::new(rules, std::mem::take(&mut self.broken), warnings);
        let mut errors = Vec::new();
        let mut lowered = self.virtual_services.iter_mut();
        for (ok, uses) in &self.subset_uses {
            // One lowered VirtualService for each that lowered, in the same order.
            let next = if *ok { lowered.next() } else { None };
            let resolved = match next {
                Some((_, vs)) => index.resolve_subsets(vs, uses),
                None => index.check_subsets(uses).map(drop),
            };
            if let Err(found) = resolved {
                errors.extend(found);
            }
        }
        self.index = Some(index);
        errors
    }

    /// Builds the table: delegation, which resources take each host, Gateway API attachment,
    /// the limits on the whole set. The error is the first limit or delegate found wrong;
    /// warnings go to `warnings`.
    pub(crate) fn build(
        mut self,
        limits: SetLimits,
        gateway_merge: bool,
        warnings: &mut Vec<Finding<T>>,
    ) -> Result<RouteTable, Finding<T>> {
        let index = match self.index.take() {
            Some(index) => index,
            None => {
                self.resolve(warnings);
                self.index.take().unwrap_or_default()
            }
        };
        let mut size = Size::new(limits);
        for (at, rule) in &self.route_rules {
            size.add(rule.route.matches().len())
                .map_err(|e| Finding::over(at, e))?;
        }
        delegate::expand(&mut self.virtual_services, warnings, &mut size)?;

        let mut builder = TableBuilder::new();
        index
            .policies()
            .for_each(|(host, policy)| builder.add_destination_policy(host, policy.clone()));
        let other_hosts = add_hosts(
            &mut builder,
            self.virtual_services,
            self.route_rules,
            gateway_merge,
            warnings,
        );
        gateway::add_http_routes(
            &mut builder,
            self.gateway_routes,
            &other_hosts,
            warnings,
            &mut size,
        )?;
        Ok(builder.finish(size.routes))
    }
}

/// Puts the VirtualServices and RouteRules under the hosts they take; returns each host they
/// took with the first resource's tag.
fn add_hosts<T: Clone + fmt::Display>(
    builder: &mut TableBuilder,
    services: Vec<(T, VirtualServiceIn<T>)>,
    route_rules: Vec<(T, RouteRuleIn)>,
    gateway_merge: bool,
    warnings: &mut Vec<Finding<T>>,
) -> HashMap<String, T> {
    let vs_hosts = hosts::group_virtual_services(services, gateway_merge, warnings);
    let claimed: HashMap<&str, &Arc<VirtualServiceRoutes>> = vs_hosts
        .iter()
        .map(|h| (h.canonical.as_str(), &h.services[0]))
        .collect();
    let rr_hosts = hosts::group_route_rules(route_rules, &claimed, warnings);
    drop(claimed);
    let mut legacy_hosts: Vec<(String, T)> = Vec::new();
    for host in rr_hosts {
        let first = host.rules[0].tag.clone();
        legacy_hosts.push((host.canonical.clone(), first.clone()));
        let added = builder.add_route_rules(&host.names, host.service, host.rules);
        for s in added.shadowed {
            warnings.push(Finding::warning(
                s.tag.clone(),
                format!("RouteRule {} is unreachable: it is shadowed by the catch-all rule {} (precedence {}), which comes first (higher precedence, or equal precedence and a smaller name)", s.key, s.by, s.by_precedence),
            ));
        }
        hosts::warn_taken(warnings, &first, added.taken);
    }
    let mut other_hosts: HashMap<String, T> = HashMap::new();
    for host in vs_hosts {
        other_hosts
            .entry(host.canonical.clone())
            .or_insert_with(|| host.doc.clone());
        let taken = builder.add_virtual_services(&host.names, host.services, gateway_merge);
        hosts::warn_taken(warnings, &host.doc, taken);
    }
    other_hosts.extend(legacy_hosts);
    other_hosts
}
