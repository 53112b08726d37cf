//! Following rule files and folders (feature `watch`): the rules in force are reloaded when the
//! files change, including a Kubernetes ConfigMap or Secret mounted as a volume.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher};

use crate::config::{DocumentRef, ErrorKind, LoadError, Loader, RuleSet, Stamp};
use crate::reload::MeshRules;

/// How a [`Follower`] watches: the quiet time that ends a burst of changes, and whether to poll
/// instead of using the system's file events.
///
/// ```
/// use std::time::Duration;
/// use tower_mesh::FollowOptions;
///
/// let options = FollowOptions::default().debounce(Duration::from_millis(250));
/// assert_eq!(options.debounce_time(), Duration::from_millis(250));
/// ```
#[derive(Clone, Debug)]
pub struct FollowOptions {
    debounce: Duration,
    settle: Duration,
    poll: Option<Duration>,
}

impl Default for FollowOptions {
    /// A debounce of 100 ms, a settle time of 1 s, and the system's file events.
    fn default() -> Self {
        FollowOptions {
            debounce: Duration::from_millis(100),
            settle: Duration::from_secs(1),
            poll: None,
        }
    }
}

impl FollowOptions {
    /// Changes closer together than `quiet` make one reload, `quiet` after the last of them
    /// (default 100 ms). A burst that goes on longer than ten times `quiet` is reloaded then.
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.debounce = quiet;
        self
    }

    /// The quiet time that ends a burst of changes.
    pub fn debounce_time(&self) -> Duration {
        self.debounce
    }

    /// A file changed in place (the same file written again, rather than a new file renamed
    /// over it) is read only once it has not been modified for `quiet` (default 1 s), so that
    /// a file being written is not put in force truncated or half written. A file replaced by a
    /// rename, and a ConfigMap or Secret volume swap, are read at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mesh::FollowOptions;
    ///
    /// let options = FollowOptions::default().settle(Duration::from_secs(3));
    /// assert_eq!(options.settle_time(), Duration::from_secs(3));
    /// ```
    pub fn settle(mut self, quiet: Duration) -> Self {
        self.settle = quiet;
        self
    }

    /// How long a file changed in place must stay unchanged before it is read.
    pub fn settle_time(&self) -> Duration {
        self.settle
    }

    /// Polls the files every `interval` instead of using the system's file events (for file
    /// systems that send none, such as some network mounts).
    ///
    /// Without it the system's file events are used where they can be had; where they cannot
    /// (on Linux, when the user's inotify instances or watches are used up), the follower polls
    /// every second instead, with a WARN event saying why; [`Follower::is_polling`] tells.
    pub fn poll(mut self, interval: Duration) -> Self {
        self.poll = Some(interval);
        self
    }
}

/// What a [`Follower`] did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowStats {
    /// Changed rules put in force.
    pub applied: u64,
    /// Changes that did not load (the rules in force stayed).
    pub rejected: u64,
    /// Reloads put off because a file changed in place had not settled yet
    /// ([`FollowOptions::settle`]).
    pub deferred: u64,
}

#[derive(Default)]
struct Counts {
    applied: AtomicU64,
    rejected: AtomicU64,
    deferred: AtomicU64,
}

/// Reloads the rules of a [`MeshRules`] when the files and folders it follows change; stops
/// when dropped. Made by [`MeshRules::follow`].
///
/// Each reload reads every followed file, and in each followed folder every `.yaml`, `.yml` and
/// `.json` file whose name does not start with `.` (symbolic links followed), in name order.
/// Rules that load are put in force, unless their version is the one in force already; rules
/// that do not load leave the rules in force as they are, with a WARN event (and, with feature
/// `metrics`, `tower_mesh_rule_reloads_total{result="error"}`).
///
/// Nothing partial is put in force:
/// - a file changed in place is read only once it has stayed unchanged for the settle time
///   ([`FollowOptions::settle`], 1 s by default);
/// - an empty file, a followed folder that cannot be read, and a path that is not a regular
///   file (a FIFO, a device) are refused like a file that does not load;
/// - a followed file or folder that disappears leaves the rules in force, with a WARN event,
///   and is followed again when it comes back.
///
/// A ConfigMap or Secret mounted as a volume is a followed folder: the kubelet writes the new
/// files into a new hidden folder and then swaps the `..data` link that the visible files go
/// through, so a reload after the swap reads the new files whole, at once.
pub struct Follower {
    /// Tells the thread, which owns the watcher, to stop.
    stop: Sender<Signal>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
    polling: bool,
}

/// What the follower's thread is told: something changed, or stop.
enum Signal {
    Changed,
    Stop,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("stats", &self.stats())
            .field("polling", &self.polling)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// What the follower did so far.
    pub fn stats(&self) -> FollowStats {
        FollowStats {
            applied: self.counts.applied.load(Ordering::Relaxed),
            rejected: self.counts.rejected.load(Ordering::Relaxed),
            deferred: self.counts.deferred.load(Ordering::Relaxed),
        }
    }

    /// Whether the files are polled rather than followed through the system's file events:
    /// asked for with [`FollowOptions::poll`], or because the events were not available.
    pub fn is_polling(&self) -> bool {
        self.polling
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.stop.send(Signal::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why following could not start.
#[derive(Debug)]
pub struct FollowError(notify::Error);

impl std::fmt::Display for FollowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot follow the rule files: {}", self.0)
    }
}

impl std::error::Error for FollowError {}

/// A refusal of the follower's own, before the loader reads anything.
fn refusal(path: &Path, what: &str) -> LoadError {
    let shown = crate::config::ShownPath(path);
    LoadError::new(ErrorKind::Io, format!("{shown}: {what}")).with_document(DocumentRef {
        file: Some(path.to_path_buf()),
        ..DocumentRef::default()
    })
}

/// The files a reload reads: the followed files, and the rule files of the followed folders;
/// an error for a followed folder that cannot be read.
fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p).map_err(|e| {
            refusal(
                p,
                &format!("the followed folder cannot be read ({e}); the rules in force stay"),
            )
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !name.starts_with('.')
                    && ["yaml", "yml", "json"]
                        .iter()
                        .any(|x| f.extension().is_some_and(|e| e == *x))
                    && f.is_file()
            })
            .collect();
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

/// The state of a follower between reloads: the files as the last reload found them, and the
/// followed paths that were missing.
#[derive(Default)]
struct Seen {
    stamps: HashMap<PathBuf, Stamp>,
    missing: HashSet<PathBuf>,
}

impl Seen {
    /// How long to wait before the files can be read: `Some` while a file changed in place (same
    /// identity, other size or time) was modified less than `settle` ago.
    fn unsettled(&self, files: &[PathBuf], settle: Duration) -> Option<Duration> {
        let now = SystemTime::now();
        files
            .iter()
            .filter_map(|f| {
                let stamp = Stamp::at(f)?;
                let before = self.stamps.get(f)?;
                let in_place = before.inode == stamp.inode && *before != stamp;
                let age = now.duration_since(stamp.modified?).ok()?;
                (in_place && age < settle).then(|| settle - age)
            })
            .max()
    }

    fn remember(&mut self, files: &[PathBuf]) {
        self.stamps = files
            .iter()
            .filter_map(|f| Some((f.clone(), Stamp::at(f)?)))
            .collect();
    }
}

/// What a change gives: the rules to put in force, `None` when nothing changed, or the error.
fn load(files: &[PathBuf], current: &RuleSet) -> Result<Option<RuleSet>, LoadError> {
    for f in files {
        if f.is_file() && std::fs::metadata(f).is_ok_and(|m| m.len() == 0) {
            return Err(refusal(
                f,
                "the file is empty; an empty rule file never replaces the rules in force \
                 (delete it, or write a file with no routes, to remove its rules)",
            ));
        }
    }
    let loader = files
        .iter()
        .fold(Loader::new().options(current.options().clone()), |l, f| {
            l.file(f)
        });
    let fresh = loader.load()?;
    Ok((fresh.version() != current.version()).then_some(fresh))
}

impl MeshRules {
    /// Follows `paths` (files and folders) with [`FollowOptions::default`]: see
    /// [`follow_with`](MeshRules::follow_with).
    pub fn follow(
        &self,
        paths: impl IntoIterator<Item = impl Into<PathBuf>>,
    ) -> Result<Follower, FollowError> {
        self.follow_with(paths, FollowOptions::default())
    }

    /// Follows `paths` (files and folders) and reloads the rules in force from them when they
    /// change; the rules are read from them once now as well. See [`Follower`].
    ///
    /// ```no_run
    /// use tower_mesh::{MeshLayer, RuleSet};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A ConfigMap mounted at /etc/mesh-rules.
    /// let layer = MeshLayer::new(RuleSet::from_files(["/etc/mesh-rules/rules.yaml"])?);
    /// let follower = layer.rules().follow(["/etc/mesh-rules"])?;
    /// // ... serve; the rules follow `kubectl apply` of the ConfigMap.
    /// # drop(follower);
    /// # Ok(()) }
    /// ```
    pub fn follow_with(
        &self,
        paths: impl IntoIterator<Item = impl Into<PathBuf>>,
        options: FollowOptions,
    ) -> Result<Follower, FollowError> {
        let paths: Vec<PathBuf> = paths.into_iter().map(Into::into).collect();
        let (tx, rx) = channel();
        // The folders watched: a followed folder itself, a followed file's folder (so that a
        // rename over the file is seen), and the folder of each (so that a followed path that
        // is deleted and made again is seen).
        let watched: Vec<PathBuf> = paths.iter().map(|p| watched_dir(p)).collect();
        let handler = {
            let tx = tx.clone();
            let watched = watched.clone();
            move |event: notify::Result<notify::Event>| {
                if concerns(&event, &watched) {
                    let _ = tx.send(Signal::Changed);
                }
            }
        };
        let mut dirs: Vec<&Path> = watched.iter().map(PathBuf::as_path).collect();
        dirs.extend(
            watched
                .iter()
                .filter_map(|d| d.parent())
                .filter(|p| p.is_dir()),
        );
        let (watcher, polling) = open_watcher(&dirs, handler, options.poll, |h| {
            notify::recommended_watcher(h).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
        })?;
        let counts = Arc::new(Counts::default());
        let mut follow = Follow {
            rules: self.clone(),
            paths,
            watched,
            watcher,
            seen: Seen::default(),
            options,
            counts: counts.clone(),
        };
        follow.reload();
        let thread = std::thread::Builder::new()
            .name("tower-mesh-follow".into())
            .spawn(move || follow.run(&rx))
            .map_err(|e| FollowError(notify::Error::io(e)))?;
        Ok(Follower {
            stop: tx,
            polling,
            thread: Some(thread),
            counts,
        })
    }
}

/// The folder watched for a followed path: the folder itself, or a file's folder.
fn watched_dir(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.to_path_buf()
    } else {
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// Whether a file event may change the rules: a change (reading the files is an access event
/// too) in or of a watched folder. An error may mean lost events, so it counts.
fn concerns(event: &notify::Result<notify::Event>, watched: &[PathBuf]) -> bool {
    match event {
        Err(_) => true,
        Ok(e) if matches!(e.kind, notify::EventKind::Access(_)) => false,
        Ok(e) => {
            e.paths.is_empty()
                || e.paths
                    .iter()
                    .any(|p| watched.iter().any(|w| p.starts_with(w)))
        }
    }
}

/// How often the files are polled when the system's file events are not available.
const FALLBACK_POLL: Duration = Duration::from_secs(1);

/// A watcher on `dirs`, and whether it polls: the poll watcher when `poll` asks for it, else
/// the system's file events from `native`, or, when those cannot be had (no inotify instance
/// or watch left, an unsupported platform), the poll watcher every [`FALLBACK_POLL`].
fn open_watcher<H>(
    dirs: &[&Path],
    handler: H,
    poll: Option<Duration>,
    native: impl FnOnce(H) -> notify::Result<Box<dyn Watcher + Send>>,
) -> Result<(Box<dyn Watcher + Send>, bool), FollowError>
where
    H: notify::EventHandler + Clone,
{
    let watch_all = |mut watcher: Box<dyn Watcher + Send>| {
        for dir in dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        Ok::<_, notify::Error>(watcher)
    };
    let interval = match poll {
        Some(interval) => interval,
        None => match native(handler.clone()).and_then(watch_all) {
            Ok(watcher) => return Ok((watcher, false)),
            Err(e) => {
                tracing::warn!(
                    target: "tower_mesh",
                    error = %e,
                    "the system's file events are not available ({e}); polling the rule files every {FALLBACK_POLL:?}"
                );
                FALLBACK_POLL
            }
        },
    };
    // Comparing contents too: an edit within the file system's time resolution that keeps
    // the size would not be seen otherwise.
    let config = notify::Config::default()
        .with_poll_interval(interval)
        .with_compare_contents(true);
    let watcher = notify::PollWatcher::new(handler, config).map_err(FollowError)?;
    let watcher = watch_all(Box::new(watcher)).map_err(FollowError)?;
    Ok((watcher, true))
}

/// The follower's thread: the watcher, and what it needs to reload.
struct Follow {
    rules: MeshRules,
    paths: Vec<PathBuf>,
    watched: Vec<PathBuf>,
    watcher: Box<dyn Watcher + Send>,
    seen: Seen,
    options: FollowOptions,
    counts: Arc<Counts>,
}

impl Follow {
    /// Waits for changes, lets each burst settle, then reloads (again once files changed in
    /// place have settled); ends when told to stop.
    fn run(mut self, rx: &Receiver<Signal>) {
        let quiet = self.options.debounce;
        let mut retry: Option<Duration> = None;
        loop {
            let first = match retry {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => rx.recv_timeout(wait),
            };
            match first {
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Signal::Changed) => {
                    let started = Instant::now();
                    loop {
                        match rx.recv_timeout(quiet) {
                            Ok(Signal::Changed) if started.elapsed() < quiet * 10 => continue,
                            Ok(Signal::Changed) | Err(RecvTimeoutError::Timeout) => break,
                            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.watch_again();
            retry = self.reload();
        }
    }

    /// Watches again the followed folders that came back after they were gone, and says once
    /// when one is gone.
    fn watch_again(&mut self) {
        for (path, dir) in self.paths.iter().zip(&self.watched) {
            let present = path.exists();
            if !present && self.seen.missing.insert(path.clone()) {
                tracing::warn!(
                    target: "tower_mesh",
                    path = %crate::config::ShownPath(path),
                    "a followed rule path is gone; the rules in force stay, and it is followed again when it comes back"
                );
            } else if present && self.seen.missing.remove(path) {
                let _ = self.watcher.watch(dir, RecursiveMode::NonRecursive);
                tracing::info!(target: "tower_mesh", path = %crate::config::ShownPath(path), "a followed rule path is back");
            }
        }
    }

    /// Reads the followed files and puts their rules in force, or reports why not; `Some`
    /// (how long to wait) when a file changed in place has not settled yet.
    fn reload(&mut self) -> Option<Duration> {
        let files = match rule_files(&self.paths) {
            Ok(files) => files,
            Err(e) => {
                self.refuse(&e);
                return None;
            }
        };
        if let Some(wait) = self.seen.unsettled(&files, self.options.settle) {
            self.counts.deferred.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "tower_mesh", ?wait, "a rule file changed in place; waiting for it to settle");
            return Some(wait);
        }
        let loaded = load(&files, &self.rules.current());
        self.seen.remember(&files);
        match loaded {
            Ok(Some(fresh)) => {
                let version = fresh.version();
                self.rules.replace(fresh);
                self.counts.applied.fetch_add(1, Ordering::Relaxed);
                tracing::info!(target: "tower_mesh", version, "rules reloaded from the followed files");
            }
            Ok(None) => {}
            Err(e) => self.refuse(&e),
        }
        None
    }

    fn refuse(&self, e: &LoadError) {
        self.counts.rejected.fetch_add(1, Ordering::Relaxed);
        crate::reload::refused(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_systems_events_the_files_are_polled() {
        let dir = std::env::temp_dir().join(format!("tower-mesh-fallback-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, rx) = channel();
        let handler = move |_: notify::Result<notify::Event>| {
            let _ = tx.send(());
        };
        let no_inotify = |_| Err(notify::Error::generic("inotify instances used up"));
        let (watcher, polling) = open_watcher(&[&dir], handler, None, no_inotify).unwrap();
        assert!(polling, "fell back to polling");
        std::fs::write(dir.join("rules.yaml"), "a: 1").unwrap();
        let seen = rx.recv_timeout(FALLBACK_POLL * 10);
        drop(watcher);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(seen.is_ok(), "the poll watcher saw the new file");
    }
}
