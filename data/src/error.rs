use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors of reading, checking and writing data.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A file that is not what its name or the caller says it is.
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },

    /// A MATLAB file without the variable asked for.
    #[error("{}: no variable `{key}` (variables: {available})", path.display())]
    MissingKey { path: PathBuf, key: String, available: String },

    /// Data of a shape the model or the operation cannot take.
    #[error("{0}")]
    Shape(String),

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }

    pub fn format(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Format { path: path.as_ref().to_path_buf(), reason: reason.into() }
    }
}
