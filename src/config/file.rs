//! Reading a rule file: bounded by `Limits::max_input_bytes` before anything is read, and never
//! taken while it is being written.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use super::error::{DocumentRef, ErrorKind, LoadError, ShownPath};

/// How often a file that changed while it was read is read again before the load gives up.
const TRIES: usize = 3;

/// What identifies one version of a file: its size, modification time and (on Unix) inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) len: u64,
    pub(crate) modified: Option<SystemTime>,
    pub(crate) inode: Option<(u64, u64)>,
}

impl Stamp {
    /// The stamp of the file at `path` (through symbolic links), if it can be read.
    #[cfg_attr(not(feature = "watch"), allow(dead_code))]
    pub(crate) fn at(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().map(|m| Stamp::of(&m))
    }

    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            Some((meta.dev(), meta.ino()))
        };
        #[cfg(not(unix))]
        let inode = None;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// Reads `path` as UTF-8 text of at most `max` bytes.
///
/// The file's size is checked before it is read, and no more than `max + 1` bytes are ever
/// read, so a huge file is refused at once. The file's size, modification time and identity
/// are taken before and after the read, from the path and from the open file: if they differ
/// (the file was written or replaced meanwhile), it is read again, up to three times, and then
/// the load fails. Writers should still replace rule files by renaming a complete file over
/// them; this catches the writers that do not.
pub(crate) fn read_text(path: &Path, max: usize) -> Result<String, LoadError> {
    read_settled(path, max, |file, bytes| {
        file.take(max as u64 + 1).read_to_end(bytes).map(drop)
    })
}

/// [`read_text`] with the read itself given, so that a test can change the file mid-read.
fn read_settled(
    path: &Path,
    max: usize,
    mut read: impl FnMut(&mut File, &mut Vec<u8>) -> std::io::Result<()>,
) -> Result<String, LoadError> {
    let in_file = DocumentRef {
        file: Some(path.to_path_buf()),
        ..DocumentRef::default()
    };
    let io = |e: std::io::Error| {
        LoadError::new(ErrorKind::Io, format!("{}: {e}", ShownPath(path)))
            .with_document(in_file.clone())
    };
    let too_large = |len: u64| {
        LoadError::new(
            ErrorKind::Limit,
            format!(
                "the file is {len} bytes or more; at most {max} bytes are accepted \
                 (Limits::max_input_bytes)"
            ),
        )
        .with_document(in_file.clone())
    };
    // Opening a FIFO blocks until something writes to it, and a device may never end: only
    // regular files (through symbolic links) are opened.
    let kind = std::fs::metadata(path).map_err(io)?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a folder"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(LoadError::new(
            ErrorKind::Io,
            format!(
                "{}: {what}; rules are read from regular files only",
                ShownPath(path)
            ),
        )
        .with_document(in_file));
    }
    for _ in 0..TRIES {
        let mut file = File::open(path).map_err(io)?;
        let before = Stamp::of(&file.metadata().map_err(io)?);
        if before.len > max as u64 {
            return Err(too_large(before.len));
        }
        let mut bytes = Vec::with_capacity(before.len as usize);
        read(&mut file, &mut bytes).map_err(io)?;
        if bytes.len() > max {
            return Err(too_large(bytes.len() as u64));
        }
        let after_open = Stamp::of(&file.metadata().map_err(io)?);
        let after_path = Stamp::of(&std::fs::metadata(path).map_err(io)?);
        let settled = before == after_open && before == after_path;
        if settled && bytes.len() as u64 == before.len {
            return String::from_utf8(bytes).map_err(|e| {
                let offset = e.utf8_error().valid_up_to();
                LoadError::new(
                    ErrorKind::Syntax,
                    format!("the file is not UTF-8 (invalid byte at offset {offset})"),
                )
                .with_document(in_file.clone())
            });
        }
    }
    Err(LoadError::new(
        ErrorKind::Io,
        format!(
            "{}: the file changed while it was read, {TRIES} times; write rule files to a \
             temporary file and rename it over the old one",
            ShownPath(path)
        ),
    )
    .with_document(in_file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tower-mesh-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A read that appends to the file after reading it, on the first `writes` reads.
    fn read_then_append(
        path: &Path,
        writes: usize,
    ) -> impl FnMut(&mut File, &mut Vec<u8>) -> std::io::Result<()> + '_ {
        let mut reads = 0;
        move |file, bytes| {
            file.read_to_end(bytes)?;
            reads += 1;
            if reads <= writes {
                let mut w = std::fs::OpenOptions::new().append(true).open(path)?;
                w.write_all(b"# more\n")?;
            }
            Ok(())
        }
    }

    #[test]
    fn a_file_written_during_the_read_is_read_again() {
        let path = temp_file("again.yaml", "a: 1\n");
        let text = read_settled(&path, 1 << 20, read_then_append(&path, 2)).unwrap();
        assert_eq!(
            text, "a: 1\n# more\n# more\n",
            "the third read saw the settled file"
        );
    }

    #[test]
    fn a_file_that_keeps_changing_is_refused() {
        let path = temp_file("busy.yaml", "a: 1\n");
        let err = read_settled(&path, 1 << 20, read_then_append(&path, TRIES)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(
            err.to_string()
                .contains("changed while it was read, 3 times"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_being_opened() {
        let dir = std::env::temp_dir().join(format!("tower-mesh-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("rules.yaml");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let err = read_text(&fifo, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = read_text(&dir, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("a folder"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_it_is_read() {
        let path = temp_file("big.yaml", &"#".repeat(100));
        let err = read_settled(&path, 10, |_, _| panic!("the file was read")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit);
        assert!(
            err.to_string().contains("100 bytes or more; at most 10"),
            "{err}"
        );
    }
}
