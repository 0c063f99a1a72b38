//! What an ONNX file says about itself (inputs, outputs, opsets, producer, metadata), read
//! without an engine, so it works in builds without tract: `prism-onnx`'s [`OnnxInfo`] of a file.

use std::path::Path;

pub use prism_onnx::{Dim, OnnxInfo, TensorInfo};

use crate::{Error, Result};

/// Reads an ONNX file's description.
///
/// # Errors
/// A missing file, or one that is not a complete ONNX model (named: truncated, not protobuf, no
/// graph).
pub fn read(path: &Path) -> Result<OnnxInfo> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    OnnxInfo::parse(bytes).map_err(|reason| Error::format(path, format!("not a valid ONNX model: {reason}")))
}
