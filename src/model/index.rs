//! An index over a list of routes, so that first-match evaluation costs a few hash lookups
//! instead of a scan.
//!
//! Every match entry is filed under one literal it requires: a header's or the path's exact
//! value, a literal it must start with, or one it must end with (taken from exact and prefix
//! matchers and from regexes). The literal chosen is the one fewest entries share. Entries with
//! no such literal are always candidates. A request then looks up its own values, and only the
//! candidates found are matched in full, in list order, so the first match is the same as a scan
//! finds. Equality with the scan is checked by a property test against a reference evaluator.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, PatternID, PatternSet};

use super::context::Context;
use super::hash::FxHashMap;
use super::request::Field;
use super::request::RequestView;
use super::route::Route;
use super::string_match::{KeyKind, StringMatch};

/// Route lists shorter than this are scanned.
const MIN_ENTRIES: usize = 4;

/// An entry whose best literal is shared by more entries than this, or that has none, is
/// filed under its regex instead, when it has one.
const REGEX_OVER: usize = 8;

/// The largest compiled multi-pattern regex of one field; a larger one is not built (its
/// entries are scanned).
const MAX_SET_SIZE: usize = 32 << 20;

/// Sorted positions of match entries.
type Positions = Vec<u32>;

/// A field whose value the caller has read already, and the value.
type Known<'a> = Option<(&'a Field, &'a [u8])>;

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

/// The entries that require a regex on one field, filed under one multi-pattern regex: a
/// single search of the field's value says which of them can match.
#[derive(Debug)]
struct RegexGroup {
    field: Field,
    /// Pattern `i` is the regex of the entry at `positions[i]`; positions ascend.
    set: Regex,
    positions: Positions,
}

/// The entries that require a regex on one field with a literal inside it (every value the
/// regex matches contains the literal), filed under that literal: a single search of the
/// field's value for all the literals says which regexes are worth running.
#[derive(Debug)]
struct InnerGroup {
    field: Field,
    finder: AhoCorasick,
    /// Literal `i` → the entries whose regex contains it.
    positions: Vec<Positions>,
}

/// The index of one route list (a VirtualService's routes, or a host's RouteRules).
#[derive(Debug)]
pub(super) struct RouteIndex {
    /// Position → (route, entry); entry `u32::MAX` stands for a route with no match entries.
    slots: Vec<(u32, u32)>,
    always: Positions,
    fields: Vec<FieldIndex>,
    inner: Vec<InnerGroup>,
    regexes: Vec<RegexGroup>,
}

/// Reused from one search to the next: the patterns found, and the candidate positions.
struct Scratch {
    found: PatternSet,
    candidates: Positions,
}

impl Scratch {
    /// Empties `found`, making room for `len` patterns.
    fn reset(&mut self, len: usize) {
        if self.found.capacity() < len {
            self.found = PatternSet::new(len);
        } else {
            self.found.clear();
        }
        self.candidates.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        found: PatternSet::new(0),
        candidates: Vec::new(),
    });
}

/// Which field an index key is on: a header or a query parameter by name, or the path.
#[derive(Clone, PartialEq, Eq, Hash)]
enum FieldKey {
    Uri,
    Header(http::HeaderName),
    Query(Box<str>),
}

/// The crowded regex entries of one field: those with a literal inside their regex, and the
/// others with their full-match patterns.
struct Group {
    field: FieldKey,
    inner: Vec<(u32, Vec<u8>)>,
    regexes: Vec<(u32, String)>,
}

impl Group {
    fn new(field: FieldKey) -> Self {
        Group {
            field,
            inner: Vec::new(),
            regexes: Vec::new(),
        }
    }
}

impl FieldKey {
    fn of(field: &Field) -> Option<FieldKey> {
        match field {
            Field::Uri => Some(FieldKey::Uri),
            Field::Header(name) => Some(FieldKey::Header(name.clone())),
            Field::Query(name) => Some(FieldKey::Query(name.clone())),
            _ => None,
        }
    }

    fn to_field(&self) -> Field {
        match self {
            FieldKey::Uri => Field::Uri,
            FieldKey::Header(h) => Field::Header(h.clone()),
            FieldKey::Query(q) => Field::Query(q.clone()),
        }
    }
}

/// What one match entry can be filed under: the literals it requires, and the first regex it
/// requires on a field.
struct EntryKeys<'a> {
    keys: Vec<(FieldKey, KeyKind, &'a [u8])>,
    /// The field, the full-match pattern, and a literal inside it when one is known.
    regex: Option<(FieldKey, String, Option<Vec<u8>>)>,
}

impl<'a> EntryKeys<'a> {
    /// The keys of entry `e` of `route` (`u32::MAX`: the route has no entries, and no keys).
    fn of(route: &'a Route, e: u32) -> Self {
        let mut entry = EntryKeys {
            keys: Vec::new(),
            regex: None,
        };
        if e == u32::MAX {
            return entry;
        }
        for c in &route.matches[e as usize].conditions {
            let Some(field) = FieldKey::of(&c.field).filter(|_| !c.invert) else {
                continue;
            };
            if entry.regex.is_none() {
                entry.regex = c
                    .matcher
                    .set_pattern()
                    .map(|p| (field.clone(), p, c.matcher.inner_literal()));
            }
            for (kind, lit) in c.matcher.index_keys() {
                entry.keys.push((field.clone(), kind, lit));
            }
        }
        entry
    }
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
        let entries: Vec<EntryKeys<'_>> = slots
            .iter()
            .map(|&(r, e)| EntryKeys::of(&routes[r as usize], e))
            .collect();
        // How many entries share each literal, and how many crowded entries have a regex on
        // each field.
        let mut counts: HashMap<(FieldKey, KeyKind, &[u8]), usize> = HashMap::new();
        for k in entries.iter().flat_map(|e| &e.keys) {
            *counts.entry(k.clone()).or_default() += 1;
        }
        let mut index = RouteIndex {
            slots,
            always: Vec::new(),
            fields: Vec::new(),
            inner: Vec::new(),
            regexes: Vec::new(),
        };
        let mut field_pos: HashMap<FieldKey, usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        for (pos, entry) in entries.into_iter().enumerate() {
            let pos = pos as u32;
            let best = entry.keys.into_iter().min_by_key(|k| {
                let rank = match k.1 {
                    KeyKind::Exact => 0,
                    _ => 1,
                };
                (counts[k], rank, usize::MAX - k.2.len())
            });
            let crowded = best.as_ref().is_none_or(|k| counts[k] > REGEX_OVER);
            if crowded && let Some((field, pattern, inner)) = entry.regex {
                let at = match groups.iter().position(|g| g.field == field) {
                    Some(at) => at,
                    None => {
                        groups.push(Group::new(field));
                        groups.len() - 1
                    }
                };
                let group = &mut groups[at];
                match inner {
                    Some(lit) => group.inner.push((pos, lit)),
                    None => group.regexes.push((pos, pattern)),
                }
                continue;
            }
            match best {
                Some((field, kind, lit)) => index.file(&mut field_pos, field, kind, lit, pos),
                None => index.always.push(pos),
            }
        }
        for group in groups {
            index.add_inner_group(group.field.clone(), group.inner);
            let (positions, patterns): (Positions, Vec<String>) = group.regexes.into_iter().unzip();
            index.add_group(group.field, positions, &patterns);
        }
        Some(index)
    }

    /// Files the entry at `pos` under a literal of `field`.
    fn file(
        &mut self,
        field_pos: &mut HashMap<FieldKey, usize>,
        field: FieldKey,
        kind: KeyKind,
        lit: &[u8],
        pos: u32,
    ) {
        let at = *field_pos.entry(field.clone()).or_insert_with(|| {
            self.fields.push(FieldIndex {
                field: field.to_field(),
                exact: FxHashMap::default(),
                prefix: Literals::default(),
                suffix: Literals::default(),
            });
            self.fields.len() - 1
        });
        let f = &mut self.fields[at];
        match kind {
            KeyKind::Exact => f.exact.entry(lit.into()).or_default().push(pos),
            KeyKind::Prefix => f.prefix.insert(lit, pos),
            KeyKind::Suffix => f.suffix.insert(lit, pos),
        }
    }

    /// Files the entries of `inner` (position, literal) under one search for their literals
    /// on `field`; when there is only one, or the search cannot be built, they are scanned.
    fn add_inner_group(&mut self, field: FieldKey, inner: Vec<(u32, Vec<u8>)>) {
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut positions: Vec<Positions> = Vec::new();
        for (pos, lit) in &inner {
            match literals.iter().position(|l| l == lit) {
                Some(at) => positions[at].push(*pos),
                None => {
                    literals.push(lit.clone());
                    positions.push(vec![*pos]);
                }
            }
        }
        let finder = (inner.len() > 1)
            .then(|| AhoCorasick::new(&literals).ok())
            .flatten();
        match finder {
            Some(finder) => self.inner.push(InnerGroup {
                field: field.to_field(),
                finder,
                positions,
            }),
            None => {
                self.always.extend(inner.into_iter().map(|(pos, _)| pos));
                self.always.sort_unstable();
            }
        }
    }

    /// Files the entries at `positions` under one search for their regexes on `field`; when
    /// there is only one, or the search would be too large, they are scanned instead.
    fn add_group(&mut self, field: FieldKey, positions: Positions, patterns: &[String]) {
        let set = (positions.len() > 1)
            .then(|| StringMatch::compile_set(patterns, MAX_SET_SIZE))
            .flatten();
        match set {
            Some(set) => self.regexes.push(RegexGroup {
                field: field.to_field(),
                set,
                positions,
            }),
            None => {
                self.always.extend(positions);
                self.always.sort_unstable();
            }
        }
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
        let hit = |pos: u32, known: Option<(&Field, &[u8])>| {
            let (r, e) = self.slots[pos as usize];
            e == u32::MAX || {
                let m = &routes[r as usize].matches[e as usize];
                m.selector.fits(ctx, view)
                    && match known {
                        Some((field, value)) => m.matches_knowing(view, field, value),
                        None => m.matches(view),
                    }
            }
        };
        let scan = |list: &[u32], best: &mut u32, known: Option<(&Field, &[u8])>| {
            if let Some(&pos) = list
                .iter()
                .take_while(|&&p| p < *best)
                .find(|&&p| hit(p, known))
            {
                *best = pos;
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
        self.search_inner(view, &mut best, &hit);
        self.search_regexes(view, &mut best, &hit);
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

    /// The entries filed under literals inside their regexes: those whose literal the value
    /// contains are matched in full.
    fn search_inner(
        &self,
        view: &RequestView<'_>,
        best: &mut u32,
        hit: &impl Fn(u32, Known<'_>) -> bool,
    ) {
        for g in &self.inner {
            if *best == 0 {
                break;
            }
            let Some(value) = view.field(&g.field) else {
                continue;
            };
            let value: &[u8] = &value;
            SCRATCH.with_borrow_mut(|s| {
                s.reset(g.positions.len());
                for m in g.finder.find_overlapping_iter(value) {
                    let id = m.pattern().as_usize();
                    if s.found
                        .try_insert(PatternID::new_unchecked(id))
                        .unwrap_or(false)
                    {
                        s.candidates
                            .extend(g.positions[id].iter().filter(|&&p| p < *best));
                    }
                }
                s.candidates.sort_unstable();
                if let Some(&pos) = s
                    .candidates
                    .iter()
                    .find(|&&p| hit(p, Some((&g.field, value))))
                {
                    *best = pos;
                }
            });
        }
    }

    /// The entries filed under one multi-pattern regex per field: those whose regex the one
    /// search found matching are checked in full.
    fn search_regexes(
        &self,
        view: &RequestView<'_>,
        best: &mut u32,
        hit: &impl Fn(u32, Known<'_>) -> bool,
    ) {
        for g in &self.regexes {
            if *best == 0 {
                break;
            }
            // A regex on a header that is absent fails.
            let Some(value) = view.field(&g.field) else {
                continue;
            };
            let value: &[u8] = &value;
            SCRATCH.with_borrow_mut(|s| {
                s.reset(g.set.pattern_len());
                let input = Input::new(value).anchored(Anchored::Yes);
                g.set.which_overlapping_matches(&input, &mut s.found);
                let candidates = s.found.iter().map(|id| g.positions[id.as_usize()]);
                let first = candidates
                    .take_while(|&p| p < *best)
                    .find(|&p| hit(p, Some((&g.field, value))));
                if let Some(pos) = first {
                    *best = pos;
                }
            });
        }
    }
}
