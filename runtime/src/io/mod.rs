//! Files in and out: arrays (MATLAB `.mat`, 5 and v7.3, NumPy `.npy`), and atomic writes.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::{Error, Result};

mod array;
mod hdf5;
mod mat;
mod mat73;
mod npy;

pub use array::{NumArray, NumData};
pub use mat::{list_mat_variables, open_mat_values, read_mat, unpack_mat, MatVariable};
pub use mat73::MatArray;
pub use npy::{read_npy, write_npy, write_npy_in_pieces, NpyFile};
#[cfg(test)]
pub(crate) use npy::tests::{expected_fixtures, fixtures as npy_fixtures, temp_dir};

/// Writes a file atomically: the content goes to a temporary file in the same folder, which
/// is renamed over `path` only once it is complete, so a crash or Ctrl-C never leaves a half
/// written file (nor destroys the previous one).
///
/// # Errors
/// Any I/O error, or the error `write` returns; the temporary file is removed in both cases.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    // Errors name `path`, the file asked for, rather than the temporary one.
    let result = (|| {
        let file = fs::File::create(&tmp).map_err(|e| Error::io(path, e))?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// [`write_atomic`] for content already in memory.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |out| out.write_all(bytes).map_err(|e| Error::io(path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_or_keeps() {
        let dir = std::env::temp_dir().join(format!("prism-atomic-{}", std::process::id()));
        let path = dir.join("out.txt");
        write_bytes_atomic(&path, b"first").unwrap();
        // A failing writer leaves the previous content and no temporary file behind.
        let err = write_atomic(&path, |out| {
            out.write_all(b"partial").map_err(|e| Error::io(&path, e))?;
            Err(Error::Invalid("interrupted".into()))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        write_bytes_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        fs::remove_dir_all(&dir).unwrap();
    }
}
