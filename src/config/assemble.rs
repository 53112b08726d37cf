//! From the documents read to one [`RouteTable`]: each document is lowered on its own, then
//! the model's assembly (`model::assembly`) does what spans them. Here, the lowering loop and
//! the mapping of the assembly's findings back to documents, fields, lines and columns.

use std::sync::Arc;

use super::LoadOptions;
use super::error::{DocumentRef, ErrorKind, LoadError, Warning};
use super::lower::{
    DestinationRuleLowering, GatewayLowering, GrpcLowering, Lowerer, Pos, RouteRuleLowering,
    VirtualServiceLowering,
};
use super::reader::{Entry, Gathered, Spec};
use crate::model::assembly::{Assembly, Finding, FindingKind, SetLimits};
use crate::model::{Resource, RouteTable, service_host};

/// Lowers the documents `gathered` holds and assembles them into one table, with the warnings;
/// the errors of reading and lowering, if any, in input order.
pub(super) fn build(
    gathered: &mut Gathered,
    options: &LoadOptions,
) -> Result<Assembled, LoadError> {
    let entries = std::mem::take(&mut gathered.entries);
    let lowered = lower_all(entries, options, gathered);
    assemble(lowered, gathered, options)
}

/// A table with the warnings and the scope notes of the load.
pub(super) struct Assembled {
    pub(super) table: RouteTable,
    pub(super) warnings: Vec<Warning>,
    pub(super) notes: Vec<Warning>,
}

/// Assembles lowered documents into one table, with the warnings and notes. The errors of
/// reading and lowering (in `gathered`) and of assembling, if any, in input order.
pub(super) fn assemble(
    lowered: Lowered,
    gathered: &mut Gathered,
    options: &LoadOptions,
) -> Result<Assembled, LoadError> {
    let Lowered {
        mut assembly,
        mut warnings,
        mut notes,
        regex_bytes: _,
    } = lowered;
    let mut found = Vec::new();
    for e in assembly.resolve(&mut found) {
        if gathered.errors.push(to_error(e)) {
            break;
        }
    }
    if let Err(e) = gathered.finish_errors() {
        split(found, &mut warnings, &mut notes);
        let skipped = std::mem::take(&mut gathered.skipped);
        return Err(e.with_warnings(warnings).with_notes(notes, skipped));
    }
    let limits = SetLimits {
        max_routes: options.limits.max_routes,
        max_matches: options.limits.max_matches,
    };
    let built = assembly.build(limits, options.gateway_merge, &mut found);
    split(found, &mut warnings, &mut notes);
    match built {
        Ok(table) => Ok(Assembled {
            table,
            warnings,
            notes,
        }),
        Err(e) => {
            let skipped = std::mem::take(&mut gathered.skipped);
            Err(to_error(e)
                .with_warnings(warnings)
                .with_notes(notes, skipped))
        }
    }
}

/// The assembly's warnings and notes, each to its list.
fn split(found: Vec<Finding<Pos>>, warnings: &mut Vec<Warning>, notes: &mut Vec<Warning>) {
    for f in found {
        match f.kind {
            FindingKind::Note => notes.push(to_warning(f)),
            _ => warnings.push(to_warning(f)),
        }
    }
}

fn to_warning(f: Finding<Pos>) -> Warning {
    Warning {
        document: f.at.doc,
        path: f.at.path,
        line: Some(f.at.line),
        message: f.message,
        code: f.code,
    }
}

fn to_error(f: Finding<Pos>) -> LoadError {
    let kind = match f.kind {
        FindingKind::UnknownSubset => ErrorKind::UnknownSubset,
        FindingKind::Limit(_) => ErrorKind::Limit,
        FindingKind::BadDelegate | FindingKind::Warning | FindingKind::Note => {
            ErrorKind::InvalidValue
        }
    };
    let mut err = LoadError::new(kind, f.message).with_document(f.at.doc);
    if let FindingKind::Limit(limit) = f.kind {
        err = err.over_set_limit(limit);
    }
    if let Some(path) = f.at.path {
        err = err.with_path(path);
    }
    if let Some(column) = f.at.column {
        err = err.at(f.at.line, column);
    }
    match f.value {
        Some(v) => err.with_value(v),
        None => err,
    }
}

/// Lowers every document in load order, each on its own (no document reads another); the
/// errors go to `gathered`.
pub(super) fn lower_all(
    entries: Vec<Entry>,
    options: &LoadOptions,
    gathered: &mut Gathered,
) -> Lowered {
    let regex_bytes = std::cell::Cell::new(0);
    let mut lowered = Lowered::default();
    let broken = std::mem::take(&mut gathered.broken_hosts);
    lowered.assembly.broken = broken
        .iter()
        .map(|(host, ns)| service_host(host, ns).canonical)
        .collect();
    for e in entries {
        let Entry {
            doc,
            root,
            spec,
            resource,
        } = e;
        let mut lw = Lowerer {
            doc: &doc,
            root: &root,
            options,
            warnings: &mut lowered.warnings,
            regex_bytes: &regex_bytes,
            notes: Vec::new(),
            subset_uses: Vec::new(),
        };
        let assembly = &mut lowered.assembly;
        let failed = match spec {
            Spec::DestinationRule(spec) => {
                let host = spec.host.clone().unwrap_or_default();
                let ns = resource.namespace().to_string();
                match DestinationRuleLowering(&mut lw).destination_rule(resource, *spec) {
                    Ok(rule) => {
                        assembly.destination_rules.push(rule);
                        None
                    }
                    Err(e) => {
                        assembly.broken.push(service_host(&host, &ns).canonical);
                        Some(e)
                    }
                }
            }
            Spec::VirtualService(spec) => {
                let r = VirtualServiceLowering(&mut lw).virtual_service(resource, *spec);
                let uses = std::mem::take(&mut lw.subset_uses);
                assembly.subset_uses.push((r.is_ok(), uses.into()));
                let at = Pos::document(&doc);
                r.map(|vs| assembly.virtual_services.push((at, vs))).err()
            }
            spec => lower_route(&mut lw, &doc, spec, resource, assembly).err(),
        };
        lowered.notes.append(&mut lw.notes);
        if let Some(err) = failed
            && gathered.errors.push(err)
        {
            break;
        }
    }
    lowered.regex_bytes = regex_bytes.get();
    lowered
}

/// Lowers one RouteRule, HTTPRoute or GRPCRoute into `assembly`.
fn lower_route(
    lw: &mut Lowerer<'_>,
    doc: &DocumentRef,
    spec: Spec,
    resource: Arc<Resource>,
    assembly: &mut Assembly<Pos>,
) -> Result<(), LoadError> {
    let at = Pos::document(doc);
    match spec {
        Spec::RouteRule(spec) => {
            let rule = RouteRuleLowering(lw).route_rule(resource, *spec)?;
            assembly.route_rules.push((at, rule));
        }
        Spec::HttpRoute(spec, created) => {
            let route = GatewayLowering(lw).http_route(resource, *spec, created)?;
            assembly.gateway_routes.push((at, route));
        }
        Spec::GrpcRoute(spec, created) => {
            let route = GrpcLowering(&mut GatewayLowering(lw)).route(resource, *spec, created)?;
            assembly.gateway_routes.push((at, route));
        }
        Spec::VirtualService(_) | Spec::DestinationRule(_) => {
            unreachable!("lowered by lower_all")
        }
    }
    Ok(())
}

/// Documents lowered each on its own, in load order, for the model to assemble; the warnings
/// lowering gave.
#[derive(Clone, Default)]
pub(super) struct Lowered {
    pub(super) assembly: Assembly<Pos>,
    pub(super) warnings: Vec<Warning>,
    pub(super) notes: Vec<Warning>,
    /// Heap bytes of the regexes compiled.
    pub(super) regex_bytes: usize,
}

impl Lowered {
    /// Appends copies of `other`'s documents, after this one's.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    pub(super) fn extend_from(&mut self, other: &Lowered) {
        self.assembly.extend_from(&other.assembly);
        self.warnings.extend(other.warnings.iter().cloned());
        self.notes.extend(other.notes.iter().cloned());
        self.regex_bytes = self.regex_bytes.saturating_add(other.regex_bytes);
    }
}
