use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors of the exporter library. Every message is one line and names the file (and the tensor)
/// it is about.
#[derive(Debug, Error)]
pub enum Error {
    #[error("run directory {} does not exist", .0.display())]
    MissingRunDir(PathBuf),

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A file that is not what the run-directory contract says (bad JSON, bad safetensors).
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },

    #[error("{}: missing tensor `{name}`", path.display())]
    MissingTensor { path: PathBuf, name: String },

    #[error("{}: tensor `{name}` has shape {got:?}, expected {expected}", path.display())]
    TensorShape { path: PathBuf, name: String, expected: String, got: Vec<usize> },

    #[error("{}: tensor `{name}` is {dtype}, expected float32", path.display())]
    TensorType { path: PathBuf, name: String, dtype: String },

    #[error("{}: tensor `{name}` is not a parameter of {model}", path.display())]
    UnexpectedTensor { path: PathBuf, name: String, model: String },

    #[error("opset {0} is not supported (supported: {min} to {max})", min = crate::MIN_OPSET, max = crate::MAX_OPSET)]
    UnsupportedOpset(i64),

    /// Files of one run that disagree (a PCA with other sizes than the model's input).
    #[error("{0}")]
    Inconsistent(String),

    #[error(transparent)]
    Model(#[from] prism_models::Error),

    #[error(transparent)]
    Runtime(#[from] prism_runtime::Error),

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
