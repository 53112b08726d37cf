//! Following rule files and folders (feature `watch`): the rules in force are reloaded when the
//! files change, including a Kubernetes ConfigMap or Secret mounted as a volume.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::config::{Loader, RuleSet};
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
    poll: Option<Duration>,
}

impl Default for FollowOptions {
    /// A debounce of 100 ms, and the system's file events.
    fn default() -> Self {
        FollowOptions {
            debounce: Duration::from_millis(100),
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
}

#[derive(Default)]
struct Counts {
    applied: AtomicU64,
    rejected: AtomicU64,
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
/// A ConfigMap or Secret mounted as a volume is a followed folder: the kubelet writes the new
/// files into a new hidden folder and then swaps the `..data` link that the visible files go
/// through, so a reload after the swap reads the new files whole.
pub struct Follower {
    // Dropping the watcher closes the channel, which ends the thread.
    watcher: Option<Box<dyn Watcher + Send>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
    polling: bool,
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
        self.watcher = None;
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

/// The files a reload reads: the followed files, and the rule files of the followed folders.
fn rule_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let Ok(entries) = std::fs::read_dir(p) else {
            continue;
        };
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
    out
}

/// What a change gives: the rules to put in force, `None` when nothing changed, or the error.
fn load(paths: &[PathBuf], current: &RuleSet) -> Result<Option<RuleSet>, crate::LoadError> {
    let loader = rule_files(paths).into_iter().fold(
        Loader::new().options(current.options().clone()),
        Loader::file,
    );
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
        let handler = move |event: notify::Result<notify::Event>| {
            // Reading the files is an access event too: only changes count. An error may mean
            // lost events, so it counts as a change: the reload reads the files as they are.
            if !event.is_ok_and(|e| matches!(e.kind, notify::EventKind::Access(_))) {
                let _ = tx.send(());
            }
        };
        let dirs: Vec<&Path> = paths
            .iter()
            // A file is watched through its folder, so that a rename over it is seen.
            .map(|p| {
                if p.is_dir() {
                    p.as_path()
                } else {
                    p.parent().unwrap_or(Path::new("."))
                }
            })
            .collect();
        let (watcher, polling) = open_watcher(&dirs, handler, options.poll, |h| {
            notify::recommended_watcher(h).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
        })?;
        let counts = Arc::new(Counts::default());
        let rules = self.clone();
        let thread_counts = counts.clone();
        reload(&rules, &paths, &counts);
        let thread = std::thread::Builder::new()
            .name("tower-mesh-follow".into())
            .spawn(move || follow_loop(&rules, &paths, &rx, options.debounce, &thread_counts))
            .map_err(|e| FollowError(notify::Error::io(e)))?;
        Ok(Follower {
            watcher: Some(watcher),
            polling,
            thread: Some(thread),
            counts,
        })
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

/// Waits for changes, lets each burst settle, then reloads; ends when the watcher is dropped.
fn follow_loop(
    rules: &MeshRules,
    paths: &[PathBuf],
    rx: &Receiver<()>,
    quiet: Duration,
    counts: &Counts,
) {
    while rx.recv().is_ok() {
        let started = Instant::now();
        loop {
            match rx.recv_timeout(quiet) {
                Ok(()) if started.elapsed() < quiet * 10 => continue,
                Ok(()) | Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        reload(rules, paths, counts);
    }
}

/// Reads the followed files and puts their rules in force, or reports why not.
fn reload(rules: &MeshRules, paths: &[PathBuf], counts: &Counts) {
    match load(paths, &rules.current()) {
        Ok(Some(fresh)) => {
            let version = fresh.version();
            rules.replace(fresh);
            counts.applied.fetch_add(1, Ordering::Relaxed);
            tracing::info!(target: "tower_mesh", version, "rules reloaded from the followed files");
        }
        Ok(None) => {}
        Err(e) => {
            counts.rejected.fetch_add(1, Ordering::Relaxed);
            crate::reload::refused(&e);
        }
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
