//! An index over a list of routes, so that first-match evaluation costs a few hash lookups
//! instead of a scan.
//!
//! Every match entry is filed under one literal it requires: a header's or the path's exact
//! value, a literal it must start with, or one it must end with (taken from exact and prefix
//! matchers and from regexes). The literal chosen is the one fewest entries share. Entries with
//! no such literal are always candidates. A request then looks up its own values, and only the
//! candidates found are matched in full, in list order, so the first match is the same as a scan
//! finds. Equality with the scan is checked by a property test against a reference evaluator.

use std::collections::HashMap;
use std::sync::Arc;

use super::context::Context;
use super::hash::FxHashMap;
use super::request::Field;
use super::request::RequestView;
use super::route::Route;
use super::string_match::KeyKind;

/// Route lists shorter than this are scanned.
const MIN_ENTRIES: usize = 4;

/// Sorted positions of match entries.
type Positions = Vec<u32>;

#[derive(Debug, Default)]
struct Literals {
    /// The distinct literal lengths, shortest first.
    lens: Vec<usize>,
    map: FxHashMap<Box<[u8]>, Positions>,
}

impl Literals {
    fn insert(&mut self, lit: &[u8], pos: u32) {
        if !self.lens.contains(&lit.len()) {
            self.lens.push(lit.len());
            self.lens.sort_unstable();
        }
        self.map.entry(lit.into()).or_default().push(pos);
    }
}

#[derive(Debug)]
struct FieldIndex {
    field: Field,
    exact: FxHashMap<Box<[u8]>, Positions>,
    prefix: Literals,
    suffix: Literals,
}

/// The index of one route list (a VirtualService's routes, or a host's RouteRules).
#[derive(Debug)]
pub(super) struct RouteIndex {
    /// Position → (route, entry); entry `u32::MAX` stands for a route with no match entries.
    slots: Vec<(u32, u32)>,
    always: Positions,
    fields: Vec<FieldIndex>,
}

/// Which field an index key is on: a header by name, or the path.
#[derive(Clone, PartialEq, Eq, Hash)]
enum FieldKey {
    Uri,
    Header(http::HeaderName),
}

impl RouteIndex {
    /// Builds the index, or `None` when the list is short enough to scan.
    pub(super) fn build(routes: &[Arc<Route>]) -> Option<RouteIndex> {
        let mut slots = Vec::new();
        for (r, route) in routes.iter().enumerate() {
            if route.matches.is_empty() {
                slots.push((r as u32, u32::MAX));
            }
            for e in 0..route.matches.len() {
                slots.push((r as u32, e as u32));
            }
        }
        if slots.len() < MIN_ENTRIES || slots.len() > u32::MAX as usize {
            return None;
        }
        // Every key each entry could be filed under, and how many entries share each.
        let mut candidates: Vec<Vec<(FieldKey, KeyKind, &[u8])>> = Vec::with_capacity(slots.len());
        let mut counts: HashMap<(FieldKey, KeyKind, &[u8]), usize> = HashMap::new();
        for &(r, e) in &slots {
            let mut keys = Vec::new();
            if e != u32::MAX {
                for c in &routes[r as usize].matches[e as usize].conditions {
                    if c.invert {
                        continue;
                    }
                    let field = match &c.field {
                        Field::Uri => FieldKey::Uri,
                        Field::Header(name) => FieldKey::Header(name.clone()),
                        _ => continue,
                    };
                    for (kind, lit) in c.matcher.index_keys() {
                        keys.push((field.clone(), kind, lit));
                    }
                }
            }
            for k in &keys {
                *counts.entry(k.clone()).or_default() += 1;
            }
            candidates.push(keys);
        }
        let mut index = RouteIndex {
            slots,
            always: Vec::new(),
            fields: Vec::new(),
        };
        let mut field_pos: HashMap<FieldKey, usize> = HashMap::new();
        for (pos, keys) in candidates.into_iter().enumerate() {
            let pos = pos as u32;
            let best = keys.into_iter().min_by_key(|k| {
                let rank = match k.1 {
                    KeyKind::Exact => 0,
                    _ => 1,
                };
                (counts[k], rank, usize::MAX - k.2.len())
            });
            let Some((field, kind, lit)) = best else {
                index.always.push(pos);
                continue;
            };
            let at = *field_pos.entry(field.clone()).or_insert_with(|| {
                index.fields.push(FieldIndex {
                    field: match &field {
                        FieldKey::Uri => Field::Uri,
                        FieldKey::Header(h) => Field::Header(h.clone()),
                    },
                    exact: FxHashMap::default(),
                    prefix: Literals::default(),
                    suffix: Literals::default(),
                });
                index.fields.len() - 1
            });
            let f = &mut index.fields[at];
            match kind {
                KeyKind::Exact => f.exact.entry(lit.into()).or_default().push(pos),
                KeyKind::Prefix => f.prefix.insert(lit, pos),
                KeyKind::Suffix => f.suffix.insert(lit, pos),
            }
        }
        Some(index)
    }

    /// The first route (and entry) that matches, as a scan in list order would find it.
    pub(super) fn find(
        &self,
        routes: &[Arc<Route>],
        view: &RequestView<'_>,
        ctx: &Context,
    ) -> Option<(usize, usize)> {
        let mut best = u32::MAX;
        // `known`: a field whose value the caller has read already.
        let scan = |list: &[u32], best: &mut u32, known: Option<(&Field, &[u8])>| {
            for &pos in list {
                if pos >= *best {
                    return;
                }
                let (r, e) = self.slots[pos as usize];
                let route = &routes[r as usize];
                let hit = e == u32::MAX || {
                    let m = &route.matches[e as usize];
                    m.selector.fits(ctx)
                        && match known {
                            Some((field, value)) => m.matches_knowing(view, field, value),
                            None => m.matches(view),
                        }
                };
                if hit {
                    *best = pos;
                    return;
                }
            }
        };
        scan(&self.always, &mut best, None);
        for f in &self.fields {
            if best == 0 {
                break;
            }
            let Some(value) = view.field(&f.field) else {
                continue;
            };
            let value: &[u8] = &value;
            let known = Some((&f.field, value));
            if let Some(list) = f.exact.get(value) {
                scan(list, &mut best, known);
            }
            for &len in &f.prefix.lens {
                if len > value.len() {
                    break;
                }
                if let Some(list) = f.prefix.map.get(&value[..len]) {
                    scan(list, &mut best, known);
                }
            }
            for &len in &f.suffix.lens {
                if len > value.len() {
                    break;
                }
                if let Some(list) = f.suffix.map.get(&value[value.len() - len..]) {
                    scan(list, &mut best, known);
                }
            }
        }
        (best != u32::MAX).then(|| {
            let (r, e) = self.slots[best as usize];
            let entry = if e == u32::MAX {
                super::route::NO_ENTRY
            } else {
                e as usize
            };
            (r as usize, entry)
        })
    }
}
