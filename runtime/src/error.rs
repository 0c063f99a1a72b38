use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors of the runtime library: reading models, feeding them, running engines.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A file that is not what its name or the caller says it is.
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },

    /// Data of a shape the model or the operation cannot take.
    #[error("{0}")]
    Shape(String),

    #[error(transparent)]
    Model(#[from] prism_models::Error),

    /// An engine or execution provider that failed or is not available.
    #[error("{0}")]
    Engine(String),

    #[error("{0}")]
    Invalid(String),

    /// Reading or checking data: images, scenes, array files.
    #[error(transparent)]
    Data(#[from] prism_data::Error),
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
