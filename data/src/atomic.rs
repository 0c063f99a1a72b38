//! Atomic writes: the content goes to a temporary file in the target's folder (`tempfile`),
//! which replaces the target only once it is complete and flushed to disk, so a crash or Ctrl-C
//! never leaves a half-written file, nor destroys the previous one.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::{Error, Result};

/// Writes `path` atomically with `write`. Errors name `path`, the file asked for, not the
/// temporary one. `write` may fail with an error of its own type `E` (a caller's), which
/// passes through unchanged.
///
/// # Errors
/// Any I/O error, or the error `write` returns; the temporary file is removed in both cases.
pub fn write_atomic<F, E>(path: &Path, write: F) -> Result<(), E>
where
    F: FnOnce(&mut dyn Write) -> Result<(), E>,
    E: From<Error>,
{
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let temp =
        tempfile::Builder::new().prefix(".prism-").suffix(".tmp").tempfile_in(dir).map_err(|e| Error::io(path, e))?;
    let mut out = BufWriter::new(temp);
    write(&mut out)?;
    let temp = out.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    temp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// [`write_atomic`] for content already in memory.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |out| out.write_all(bytes).map_err(|e| Error::io(path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_or_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_bytes_atomic(&path, b"first").unwrap();
        // A failing writer leaves the previous content and no temporary file behind.
        let err: Result<()> = write_atomic(&path, |out| {
            out.write_all(b"partial").map_err(|e| Error::io(&path, e))?;
            Err(Error::Invalid("interrupted".into()))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        write_bytes_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
    }

    #[test]
    fn errors_name_the_file_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        // A folder in the way of the target: the rename fails, naming the target.
        let target = dir.path().join("sub");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        let message = write_bytes_atomic(&target, b"y").unwrap_err().to_string();
        assert!(message.starts_with(&target.display().to_string()), "{message}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2, "a temporary file was left behind");
    }
}
