use thiserror::Error;

/// Errors of model descriptions and of the backends that interpret them.
#[derive(Debug, Error)]
pub enum Error {
    /// A configuration that cannot describe a working model.
    #[error("invalid {what}: {reason}")]
    InvalidConfig { what: String, reason: String },

    /// A model name that is not in the zoo.
    #[error("unknown model `{name}` (known: {known})")]
    UnknownModel { name: String, known: String },

    /// A layer that received an input it cannot take (for instance a window too small for a kernel).
    #[error("{layer}: {reason}")]
    Shape { layer: String, reason: String },

    /// A parameter a backend needs but cannot find.
    #[error("missing parameter `{name}`")]
    MissingParam { name: String },

    /// A parameter whose stored shape differs from the one the architecture needs.
    #[error("parameter `{name}` has shape {got:?}, the model needs {expected:?}")]
    ParamShape { name: String, expected: Vec<usize>, got: Vec<usize> },

    /// An error raised by a backend while running an operation.
    #[error("{layer}: {message}")]
    Backend { layer: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig { what: what.into(), reason: reason.into() }
    }

    pub fn shape(layer: impl ToString, reason: impl Into<String>) -> Self {
        Error::Shape { layer: layer.to_string(), reason: reason.into() }
    }

    pub fn backend(layer: impl ToString, message: impl ToString) -> Self {
        Error::Backend { layer: layer.to_string(), message: message.to_string() }
    }
}
