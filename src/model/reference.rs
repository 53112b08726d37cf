//! A reference evaluator, for tests only: a plain reading of docs/semantics.md over the compiled
//! routes (a scan in order, every regex run by the regex engine as `^(?:…)$`, no index and no
//! literal shortcuts). `config`'s property test checks that the real evaluator decides the
//! same on generated rule sets.

use std::sync::Arc;

use http::Request;
use regex::bytes::Regex;

use super::condition::Condition;
use super::context::Context;
use super::decision::Decision;
use super::host::normalize_host;
use super::request::RequestView;
use super::route::Route;
use super::table::{HostTable, RouteTable};

fn reference_string_match(c: &Condition, value: &[u8]) -> bool {
    let m = c.matcher();
    let described = m.describe();
    let ignore_case = described.ends_with("(ignoring case)");
    let src = m.source().as_bytes();
    if described.starts_with("exact") {
        if ignore_case {
            value.eq_ignore_ascii_case(src)
        } else {
            value == src
        }
    } else if described.starts_with("prefix") {
        value.len() >= src.len()
            && if ignore_case {
                value[..src.len()].eq_ignore_ascii_case(src)
            } else {
                value.starts_with(src)
            }
    } else if described == "present" {
        true
    } else {
        thread_local! {
            static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Regex>> =
                std::cell::RefCell::default();
        }
        COMPILED.with(|cache| {
            let mut cache = cache.borrow_mut();
            let re = cache.entry(m.source().to_string()).or_insert_with(|| {
                Regex::new(&format!("^(?:{})$", m.source())).expect("a loaded regex compiles")
            });
            re.is_match(value)
        })
    }
}

/// A query parameter read the plain way: the first `name` or `name=value` pair.
fn reference_query<'a>(view: &RequestView<'a>, name: &str) -> Option<&'a [u8]> {
    view.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v.as_bytes())
    })
}

fn reference_condition(c: &Condition, view: &RequestView<'_>) -> bool {
    let value = match c.field() {
        super::request::Field::Query(name) => reference_query(view, name).map(Into::into),
        field => view.field(field),
    };
    match (c.is_inverted(), value.as_deref()) {
        (false, None) => false,
        (false, Some(v)) => reference_string_match(c, v),
        (true, v) if c.matcher().is_presence() => v.is_none(),
        (true, v) => !reference_string_match(c, v.unwrap_or(b"")),
    }
}

/// The first route of `routes` that matches, by a plain scan.
fn reference_first(routes: &[Arc<Route>], view: &RequestView<'_>, ctx: &Context) -> Option<usize> {
    routes.iter().position(|r| {
        r.matches.is_empty()
            || r.matches.iter().any(|m| {
                m.selector.misfit(ctx, view).is_none()
                    && m.conditions.iter().all(|c| reference_condition(c, view))
            })
    })
}

/// Which route (by identity) decides by the reference reading; with none, whether the host has
/// routes for this caller (a 404) or not (pass-through).
#[derive(Debug, PartialEq)]
pub(crate) enum Expected {
    Route(*const Route),
    NotFound,
    PassThrough,
}

pub(crate) fn reference_route<B>(table: &RouteTable, req: &Request<B>, ctx: &Context) -> Expected {
    reference_route_inner(table, req, ctx).unwrap_or(Expected::PassThrough)
}

fn reference_route_inner<B>(
    table: &RouteTable,
    req: &Request<B>,
    ctx: &Context,
) -> Option<Expected> {
    let view = RequestView::new(req, "http");
    let host = match ctx.host() {
        Some(t) => normalize_host(t.as_bytes())?,
        None => normalize_host(view.authority()?)?,
    };
    let id = table.index.lookup(&host)?;
    match &table.tables[id] {
        HostTable::Legacy { routes, .. } => Some(match reference_first(routes, &view, ctx) {
            Some(i) => Expected::Route(Arc::as_ptr(&routes[i])),
            None => Expected::PassThrough,
        }),
        HostTable::Virtual {
            services,
            merge_mesh: false,
            ..
        } if ctx.gateway() == "mesh" => {
            // The caller's view: the VirtualServices exported to its namespace, by group.
            let caller = ctx.caller().and_then(|c| c.namespace());
            let mut visible: Vec<_> = services
                .iter()
                .filter_map(|vs| Some((vs.group(caller)?, vs)))
                .collect();
            visible.sort_by_key(|(group, _)| *group);
            for (_, vs) in visible {
                let applies = if vs.gateways.is_empty() {
                    ctx.gateway() == "mesh"
                } else {
                    vs.gateways.iter().any(|g| &**g == ctx.gateway())
                };
                if !applies {
                    continue;
                }
                if let Some(i) = reference_first(&vs.routes, &view, ctx) {
                    return Some(Expected::Route(Arc::as_ptr(&vs.routes[i])));
                }
                let exists = vs.routes.iter().any(|r| {
                    r.matches.is_empty()
                        || r.matches
                            .iter()
                            .any(|m| m.selector.misfit(ctx, &view).is_none())
                });
                if exists {
                    return Some(Expected::NotFound);
                }
            }
            None
        }
        HostTable::Virtual { .. } => None,
    }
}

pub(crate) fn decided(d: &Decision) -> Expected {
    match (&d.route, d.outcome()) {
        (Some(r), _) => Expected::Route(Arc::as_ptr(r)),
        (None, super::decision::Outcome::NotFound) => Expected::NotFound,
        _ => Expected::PassThrough,
    }
}
