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
    parse(path, bytes)
}

/// The description of an ONNX file held in memory; `name` names it in messages.
///
/// # Errors
/// Bytes that are not a complete ONNX model.
pub fn parse(name: &Path, bytes: Vec<u8>) -> Result<OnnxInfo> {
    OnnxInfo::parse(bytes).map_err(|reason| Error::format(name, format!("not a valid ONNX model: {reason}")))
}
