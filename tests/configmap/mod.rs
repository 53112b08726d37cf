//! Folders for the tests that follow rule files: a temporary folder, a ConfigMap volume updated
//! as the kubelet updates it, an invalid rule set, and waiting for a condition.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A VirtualService for `reviews` that Istio's webhook would refuse (a negative weight).
pub(crate) const INVALID: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}, weight: -1}]\n";

/// A folder of its own under the system's temporary folder, removed when dropped.
pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    pub(crate) fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("tower-mesh-follow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A ConfigMap volume as the kubelet writes it: the files live in a timestamped hidden folder,
/// `..data` links to it, and the visible files link through `..data`.
pub(crate) struct Volume {
    pub(crate) dir: Dir,
    generation: usize,
}

impl Volume {
    pub(crate) fn new(name: &str, files: &[(&str, &str)]) -> Volume {
        let mut volume = Volume {
            dir: Dir::new(name),
            generation: 0,
        };
        let first = volume.write_generation(files);
        std::os::unix::fs::symlink(&first, volume.path("..data")).unwrap();
        for (file, _) in files {
            std::os::unix::fs::symlink(Path::new("..data").join(file), volume.path(file)).unwrap();
        }
        volume
    }

    /// A path inside the volume.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    fn write_generation(&mut self, files: &[(&str, &str)]) -> String {
        self.generation += 1;
        let name = format!(
            "..2026_12_02_00_00_{:02}.{}",
            self.generation % 60,
            self.generation
        );
        std::fs::create_dir(self.path(&name)).unwrap();
        for (file, text) in files {
            std::fs::write(self.path(&name).join(file), text).unwrap();
        }
        name
    }

    /// The kubelet's update: write the new folder, point `..data_tmp` at it, rename it over
    /// `..data`, remove the old folder.
    pub(crate) fn update(&mut self, files: &[(&str, &str)]) {
        let old = std::fs::read_link(self.path("..data")).unwrap();
        let new = self.write_generation(files);
        std::os::unix::fs::symlink(&new, self.path("..data_tmp")).unwrap();
        std::fs::rename(self.path("..data_tmp"), self.path("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.0.join(old)).unwrap();
    }
}

/// Waits (up to 10 s) until `check` holds; false if it never did.
pub(crate) fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    false
}
