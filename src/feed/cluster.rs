//! Rules from the cluster (feature `kube`): the VirtualService, DestinationRule and (optionally)
//! Gateway API route resources of a namespace or of all namespaces, watched with the `kube`
//! crate and put in force as one rule set per change.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::time::Instant;

use crate::config::objects::{LoweredObject, assemble_objects};
use crate::config::{LoadError, LoadOptions};
use crate::reload::MeshRules;

/// What a [`ClusterWatch`] watches and how it waits: the namespace, the kinds, the quiet time
/// that ends a burst of changes, and the back-off while the API server cannot be reached.
///
/// ```
/// use std::time::Duration;
/// use tower_mesh::ClusterOptions;
///
/// let options = ClusterOptions::default()
///     .namespace("shop")
///     .gateway_api(true)
///     .debounce(Duration::from_millis(250));
/// assert_eq!(options.namespace_name(), Some("shop"));
/// ```
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    namespace: Option<String>,
    gateway_api: bool,
    debounce: Duration,
    backoff: (Duration, Duration),
}

impl Default for ClusterOptions {
    /// All namespaces; VirtualServices and DestinationRules; a debounce of 100 ms; a back-off
    /// from 800 ms doubling up to 30 s.
    fn default() -> Self {
        ClusterOptions {
            namespace: None,
            gateway_api: false,
            debounce: Duration::from_millis(100),
            backoff: (Duration::from_millis(800), Duration::from_secs(30)),
        }
    }
}

impl ClusterOptions {
    /// Watches the resources of `namespace` only (the service account then needs a Role in
    /// that namespace, not a ClusterRole).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The namespace watched; `None` for all namespaces.
    pub fn namespace_name(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Also watches the Gateway API's `HTTPRoute` and `GRPCRoute` (`gateway.networking.k8s.io/v1`).
    /// Off by default: in a cluster without the Gateway API's resource definitions the watch
    /// of them would fail, and no rules would be put in force until it succeeds.
    pub fn gateway_api(mut self, on: bool) -> Self {
        self.gateway_api = on;
        self
    }

    /// Changes closer together than `quiet` make one rule set, `quiet` after the last of them
    /// (default 100 ms). A burst that goes on longer than ten times `quiet` is applied then.
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.debounce = quiet;
        self
    }

    /// After a failed request to the API server, waits `initial`, then twice as long after
    /// each further failure, up to `max` (defaults 800 ms and 30 s). A success starts over.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max.max(initial));
        self
    }
}

/// What a [`ClusterWatch`] did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Whether every watched kind has been listed once (before that, no rules were put in
    /// force from the cluster).
    pub synced: bool,
    /// Rule sets put in force.
    pub applied: u64,
    /// Objects left out because they did not validate (each reported once per
    /// `resourceVersion`).
    pub left_out: u64,
    /// Failed requests to the API server (lists, watches, watch errors such as `410 Gone`).
    pub watch_errors: u64,
}

#[derive(Default)]
struct Shared {
    synced: AtomicBool,
    applied: AtomicU64,
    left_out: AtomicU64,
    watch_errors: AtomicU64,
}

/// Puts the cluster's rules in force in a [`MeshRules`] as they change; stops when dropped.
/// Made by [`MeshRules::watch_cluster`].
///
/// The watch lists each kind, then watches it from the list's `resourceVersion`, resuming
/// from the last one seen when a watch ends, and listing again when the API server answers
/// `410 Gone`. Once every kind has been listed, each change (after the debounce) puts the
/// objects of all kinds in force as one rule set, validated as files are. An object that does
/// not validate is left out with a WARN event naming its kind, namespace, name and error; the
/// other objects apply. While the API server cannot be reached, the rules in force stay and
/// the watch retries with back-off.
pub struct ClusterWatch {
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ClusterWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterWatch")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ClusterWatch {
    /// What the watch did so far.
    pub fn stats(&self) -> ClusterStats {
        ClusterStats {
            synced: self.shared.synced.load(Ordering::Relaxed),
            applied: self.shared.applied.load(Ordering::Relaxed),
            left_out: self.shared.left_out.load(Ordering::Relaxed),
            watch_errors: self.shared.watch_errors.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the watch could not start.
#[derive(Debug)]
pub struct ClusterError(&'static str);

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ClusterError {}

impl MeshRules {
    /// Watches the cluster's VirtualServices and DestinationRules in all namespaces with
    /// [`ClusterOptions::default`]: see [`watch_cluster_with`](MeshRules::watch_cluster_with).
    pub fn watch_cluster(&self, client: kube::Client) -> Result<ClusterWatch, ClusterError> {
        self.watch_cluster_with(client, ClusterOptions::default())
    }

    /// Watches the cluster's rule resources through `client` and puts them in force as they
    /// change (see [`ClusterWatch`]). The rules in force stay until every watched kind has
    /// been listed once. The load options are those of the rules in force when the watch
    /// starts. Must be called on a tokio runtime, which runs the watch.
    ///
    /// ```no_run
    /// use tower_mesh::{ClusterOptions, MeshLayer, RuleSet};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = MeshLayer::new(RuleSet::empty());
    /// let client = kube::Client::try_default().await?; // the pod's service account
    /// let watch = layer
    ///     .rules()
    ///     .watch_cluster_with(client, ClusterOptions::default().namespace("shop"))?;
    /// // ... serve; the rules follow `kubectl apply` of the VirtualServices.
    /// # drop(watch);
    /// # Ok(()) }
    /// ```
    pub fn watch_cluster_with(
        &self,
        client: kube::Client,
        options: ClusterOptions,
    ) -> Result<ClusterWatch, ClusterError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ClusterError("the cluster watch needs a tokio runtime"))?;
        let shared = Arc::new(Shared::default());
        let task = runtime.spawn(run(self.clone(), client, options, shared.clone()));
        Ok(ClusterWatch { task, shared })
    }
}

/// The kinds watched: `(group, kind, plural)`, all at version `v1`.
fn kinds(gateway_api: bool) -> Vec<ApiResource> {
    let mut kinds = vec![
        ("networking.istio.io", "VirtualService", "virtualservices"),
        ("networking.istio.io", "DestinationRule", "destinationrules"),
    ];
    if gateway_api {
        kinds.push(("gateway.networking.k8s.io", "HTTPRoute", "httproutes"));
        kinds.push(("gateway.networking.k8s.io", "GRPCRoute", "grpcroutes"));
    }
    kinds
        .into_iter()
        .map(|(group, kind, plural)| {
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
        })
        .collect()
}

/// Doubles from `initial` up to `max`; starts over after a success.
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        Some(wait)
    }
}

impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {
        self.next = self.initial;
    }
}

type Events = BoxStream<'static, (usize, Result<Event<DynamicObject>, watcher::Error>)>;

/// One watcher per kind, merged; each event tagged with its kind's index in `kinds`.
fn events(client: &kube::Client, kinds: &[ApiResource], options: &ClusterOptions) -> Events {
    let streams = kinds.iter().enumerate().map(|(i, kind)| {
        let api: Api<DynamicObject> = match &options.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, kind),
            None => Api::all_with(client.clone(), kind),
        };
        let (initial, max) = options.backoff;
        watcher::watcher(api, watcher::Config::default())
            .backoff(Backoff {
                initial,
                max,
                next: initial,
            })
            .map(move |event| (i, event))
            .boxed()
    });
    futures_util::stream::select_all(streams).boxed()
}

/// The watch: events update the store; a change, once every kind is listed and the burst is
/// over, puts the store's objects in force.
async fn run(rules: MeshRules, client: kube::Client, options: ClusterOptions, shared: Arc<Shared>) {
    let kinds = kinds(options.gateway_api);
    let mut events = events(&client, &kinds, &options);
    let mut store = Store::new(kinds);
    // When the current burst started, and when it is due.
    let mut burst: Option<(Instant, Instant)> = None;
    loop {
        let next = match burst {
            Some((_, due)) => match tokio::time::timeout_at(due, events.next()).await {
                Ok(next) => next,
                Err(_) => {
                    burst = None;
                    store.apply(&rules, &shared).await;
                    continue;
                }
            },
            None => events.next().await,
        };
        let Some((kind, event)) = next else { return };
        if store.on_event(kind, event, &shared) && store.synced() {
            shared.synced.store(true, Ordering::Relaxed);
            let now = Instant::now();
            let started = burst.map_or(now, |(started, _)| started);
            let due = (now + options.debounce).min(started + options.debounce * 10);
            burst = Some((started, due));
        }
    }
}

/// `(kind index, namespace, name)`.
type Key = (usize, String, String);

/// An object read and lowered, with the options it was lowered with.
type Kept = (LoadOptions, Arc<LoweredObject>);

/// An object as the loader reads it, and, once read, what reading and lowering it made.
#[derive(Clone)]
struct Object {
    /// The object as a JSON document: `apiVersion`, `kind`, `metadata` with the name,
    /// namespace and creation time only, and every other field but `status`.
    document: Arc<serde_json::Value>,
    /// The object read and lowered, with the options it was lowered with; made on the first
    /// rule set the object is in, and kept while the object stays the same.
    lowered: Arc<std::sync::Mutex<Option<Kept>>>,
    resource_version: Option<String>,
    /// `metadata.creationTimestamp` as the API server writes it (RFC 3339, UTC, seconds), so
    /// that its text order is its time order.
    created: Option<String>,
}

/// The objects of every kind as last seen, and what was reported of them.
struct Store {
    kinds: Vec<ApiResource>,
    objects: BTreeMap<Key, Object>,
    /// Per kind: the objects of a list in progress (`Some` between `Init` and `InitDone`).
    listing: Vec<Option<Vec<(Key, Object)>>>,
    listed: Vec<bool>,
    /// Objects left out, by key and `resourceVersion`, so that each is reported once.
    reported: HashSet<(Key, Option<String>)>,
}

impl Store {
    fn new(kinds: Vec<ApiResource>) -> Self {
        Store {
            listing: kinds.iter().map(|_| None).collect(),
            listed: vec![false; kinds.len()],
            kinds,
            objects: BTreeMap::new(),
            reported: HashSet::new(),
        }
    }

    fn synced(&self) -> bool {
        self.listed.iter().all(|l| *l)
    }

    /// Takes one event in; true when the objects may have changed.
    fn on_event(
        &mut self,
        kind: usize,
        event: Result<Event<DynamicObject>, watcher::Error>,
        shared: &Shared,
    ) -> bool {
        match event {
            Ok(Event::Init) => {
                self.listing[kind] = Some(Vec::new());
                false
            }
            Ok(Event::InitApply(object)) => {
                let entry = self.entry(kind, object);
                self.listing[kind].get_or_insert_with(Vec::new).push(entry);
                false
            }
            Ok(Event::InitDone) => {
                let listed = self.listing[kind].take().unwrap_or_default();
                self.objects.retain(|key, _| key.0 != kind);
                self.objects.extend(listed);
                self.listed[kind] = true;
                true
            }
            Ok(Event::Apply(object)) => {
                let (key, object) = self.entry(kind, object);
                self.objects.insert(key, object);
                true
            }
            Ok(Event::Delete(object)) => {
                let (key, _) = self.entry(kind, object);
                self.objects.remove(&key).is_some()
            }
            Err(e) => {
                shared.watch_errors.fetch_add(1, Ordering::Relaxed);
                let kind = &self.kinds[kind].kind;
                tracing::warn!(target: "tower_mesh", kind = %kind, "watching the cluster's {kind}s: {e}; the rules in force stay");
                false
            }
        }
    }

    /// The key of a watched object, and the object as a document for the loader.
    fn entry(&self, kind: usize, object: DynamicObject) -> (Key, Object) {
        let resource = &self.kinds[kind];
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let name = object.metadata.name.clone().unwrap_or_default();
        let mut document = serde_json::Map::new();
        document.insert("apiVersion".into(), resource.api_version.clone().into());
        document.insert("kind".into(), resource.kind.clone().into());
        let mut metadata = serde_json::Map::new();
        metadata.insert("name".into(), name.clone().into());
        if !namespace.is_empty() {
            metadata.insert("namespace".into(), namespace.clone().into());
        }
        let created = object
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string());
        if let Some(t) = &created {
            metadata.insert("creationTimestamp".into(), t.clone().into());
        }
        document.insert("metadata".into(), metadata.into());
        if let serde_json::Value::Object(fields) = object.data {
            document.extend(fields.into_iter().filter(|(k, _)| k != "status"));
        }
        let document = Arc::new(serde_json::Value::Object(document));
        let resource_version = object.metadata.resource_version;
        (
            (kind, namespace, name),
            Object {
                document,
                lowered: Arc::default(),
                resource_version,
                created,
            },
        )
    }

    /// Puts the objects in force as one rule set, leaving out those that cannot be admitted
    /// (see [`assemble`]); the loading runs on tokio's blocking threads, off the application's
    /// request threads.
    async fn apply(&mut self, rules: &MeshRules, shared: &Shared) {
        // Only what is still there, as it is now, stays reported.
        let objects = &self.objects;
        self.reported.retain(|(key, version)| {
            objects
                .get(key)
                .is_some_and(|o| &o.resource_version == version)
        });
        let mut ordered: Vec<(Key, Object)> = self
            .objects
            .iter()
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        // Oldest first (then by kind, namespace and name): the order every replica sees.
        ordered.sort_by(|(ka, a), (kb, b)| a.created.cmp(&b.created).then_with(|| ka.cmp(kb)));
        let kinds: Vec<String> = self.kinds.iter().map(|k| k.kind.clone()).collect();
        let options = rules.current().options().clone();
        let job = move || assemble(ordered, &kinds, &options);
        let Ok(assembled) = tokio::task::spawn_blocking(job).await else {
            return;
        };
        for (key, version, messages) in assembled.left_out {
            if self.reported.insert((key.clone(), version)) {
                shared.left_out.fetch_add(1, Ordering::Relaxed);
                self.report(&key, &messages);
            }
        }
        match assembled.result {
            Ok(set) => {
                if set.version() != rules.version() {
                    let version = set.version();
                    rules.replace(set);
                    shared.applied.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(target: "tower_mesh", version, "rules put in force from the cluster");
                }
            }
            Err(err) => crate::reload::refused(&err),
        }
    }

    /// A WARN event for each reason the object is left out.
    fn report(&self, key: &Key, messages: &[String]) {
        let kind = &self.kinds[key.0].kind;
        let (namespace, name) = (&key.1, &key.2);
        for message in messages {
            tracing::warn!(
                target: "tower_mesh",
                kind = %kind, namespace = %namespace, name = %name,
                "{kind} {namespace}/{name} left out of the rules: {message}"
            );
        }
        crate::reload::left_out();
    }
}

/// What [`assemble`] made of the objects: the rule set (or the error that no object explains),
/// and each object left out with its `resourceVersion` and why.
struct Assembled {
    result: Result<crate::config::RuleSet, LoadError>,
    left_out: Vec<(Key, Option<String>, Vec<String>)>,
}

/// The name an object's text has in the loader's errors: `Kind namespace/name`.
fn object_name(kinds: &[String], key: &Key) -> String {
    format!("{} {}/{}", kinds[key.0], key.1, key.2)
}

/// The object read and lowered (once: it is kept with the object for the next rule sets).
fn lowered(
    kinds: &[String],
    key: &Key,
    object: &Object,
    options: &LoadOptions,
) -> Arc<LoweredObject> {
    let mut kept = object
        .lowered
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &*kept {
        Some((with, lowered)) if with == options => lowered.clone(),
        _ => {
            let lowered = Arc::new(LoweredObject::new(
                object_name(kinds, key),
                &object.document,
                options,
            ));
            *kept = Some((options.clone(), lowered.clone()));
            lowered
        }
    }
}

/// Assembles the objects `keep` picks out of `objects` into one rule set; each object is read
/// and lowered on its own, once.
fn load_objects(
    objects: &[(Key, Object)],
    keep: &[usize],
    kinds: &[String],
    options: &LoadOptions,
) -> Result<crate::config::RuleSet, LoadError> {
    let lowered: Vec<Arc<LoweredObject>> = keep
        .iter()
        .map(|&i| lowered(kinds, &objects[i].0, &objects[i].1, options))
        .collect();
    let set = assemble_objects(&lowered, options)?;
    Ok(set.with_revision(newest(keep.iter().map(|&i| &objects[i].1))))
}

/// Whether an error is a limit on the whole rule set rather than on one object.
fn whole_set_limit(e: &LoadError) -> bool {
    e.set_limit().is_some()
}

/// Admits the objects (oldest first) into one rule set: an object that an error names (it
/// does not validate, or is over a limit of one object) is left out; when the set is over a
/// limit of the whole set, the fewest newest objects without which it fits are left out. The
/// result depends only on the objects, so replicas converge on the same set.
fn assemble(objects: Vec<(Key, Object)>, kinds: &[String], options: &LoadOptions) -> Assembled {
    let mut keep: Vec<usize> = (0..objects.len()).collect();
    let mut left_out = Vec::new();
    loop {
        let err = match load_objects(&objects, &keep, kinds, options) {
            Ok(set) => {
                return Assembled {
                    result: Ok(set),
                    left_out,
                };
            }
            Err(err) => err,
        };
        // The objects that errors other than a whole-set limit name.
        let mut bad: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for e in err.errors().filter(|e| !whole_set_limit(e)) {
            let named = e.document().and_then(|d| d.file.as_deref());
            let Some(at) = keep.iter().position(|&i| {
                named.is_some_and(|n| n.as_os_str() == &*object_name(kinds, &objects[i].0))
            }) else {
                continue;
            };
            let at_path = e.path().map(|p| format!("{p}: ")).unwrap_or_default();
            bad.entry(at)
                .or_default()
                .push(format!("{at_path}{}", e.message()));
        }
        if bad.is_empty() && err.errors().any(whole_set_limit) {
            let n = newest_to_leave_out(&objects, &keep, kinds, options);
            let limit = err
                .errors()
                .find(|e| whole_set_limit(e))
                .map(|e| e.message().to_string());
            let why = format!(
                "the rules would be over a limit with it ({}); the newest objects are left out first",
                limit.unwrap_or_default()
            );
            for at in (keep.len() - n..keep.len()).rev() {
                bad.insert(at, vec![why.clone()]);
            }
        }
        if bad.is_empty() {
            return Assembled {
                result: Err(err),
                left_out,
            };
        }
        for (at, messages) in bad.into_iter().rev() {
            let (key, object) = &objects[keep.remove(at)];
            left_out.push((key.clone(), object.resource_version.clone(), messages));
        }
    }
}

/// How many of the newest objects of `keep` must be left out for the rest to be within the
/// whole set's limits: doubling, then halving (a few loads, whatever the number of objects).
fn newest_to_leave_out(
    objects: &[(Key, Object)],
    keep: &[usize],
    kinds: &[String],
    options: &LoadOptions,
) -> usize {
    let fits = |n: usize| match load_objects(objects, &keep[..keep.len() - n], kinds, options) {
        Ok(_) => true,
        Err(e) => !e.errors().any(whole_set_limit),
    };
    let mut high = 1;
    while high < keep.len() && !fits(high) {
        high = (high * 2).min(keep.len());
    }
    let mut low = high / 2; // does not fit (or is 0, which was the failed load)
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if fits(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    high
}

/// The newest `resourceVersion` among `objects`: the largest number, as the API server gives
/// them (they are compared as text when one is not a number).
fn newest<'a>(objects: impl Iterator<Item = &'a Object>) -> Option<String> {
    objects
        .filter_map(|o| o.resource_version.as_deref())
        .max_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RuleSet;

    fn virtual_service(version: &str, weight: i64) -> DynamicObject {
        let mut object = DynamicObject::new("ratings", &kinds(false)[0])
            .within("shop")
            .data(serde_json::json!({"spec": {
                "hosts": ["ratings"],
                "http": [{"route": [{"destination": {"host": "ratings"}, "weight": weight}]}],
            }}));
        object.metadata.resource_version = Some(version.into());
        object
    }

    #[tokio::test]
    async fn what_is_reported_is_only_what_is_still_there() {
        let rules = MeshRules::new(RuleSet::empty());
        let shared = Shared::default();
        let mut store = Store::new(kinds(false));
        for version in ["1", "2", "3"] {
            store.on_event(0, Ok(Event::Apply(virtual_service(version, -1))), &shared);
            store.apply(&rules, &shared).await;
            store.apply(&rules, &shared).await;
            assert_eq!(store.reported.len(), 1, "version {version}");
        }
        assert_eq!(
            shared.left_out.load(Ordering::Relaxed),
            3,
            "once per version"
        );
        store.on_event(0, Ok(Event::Delete(virtual_service("4", -1))), &shared);
        store.apply(&rules, &shared).await;
        assert!(store.reported.is_empty());
    }
}
