//! A Triton Inference Server model repository entry: `<repo>/<model>/config.pbtxt` and
//! `<repo>/<model>/1/model.onnx`, served by Triton's ONNX Runtime backend (and `runtime serve`)
//! with dynamic batching; a whole-scene graph as `<repo>/<model>_scene`, one scene per request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prism_data::{write_atomic, write_bytes_atomic};

use crate::{Error, Result};

/// The largest batch Triton may assemble.
pub const MAX_BATCH_SIZE: usize = 64;

/// One input or output of the model, without the batch dimension when the model batches; -1
/// for a dimension of any size.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<i64>,
}

/// Writes the repository entry for `onnx` (the bytes of a graph) and returns the model's
/// folder. `max_batch`: the largest batch Triton may assemble, 0 for a graph without a batch
/// dimension (no dynamic batching).
///
/// # Errors
/// A folder or file that cannot be written.
pub fn write_repository(
    repo: &Path,
    model: &str,
    onnx: &[u8],
    max_batch: usize,
    input: &Tensor,
    outputs: &[Tensor],
) -> Result<PathBuf> {
    let dir = repo.join(model);
    let version = dir.join("1");
    std::fs::create_dir_all(&version).map_err(|e| Error::io(&version, e))?;
    write_bytes_atomic(&version.join("model.onnx"), onnx)?;
    let config = config_pbtxt(model, max_batch, input, outputs);
    let path = dir.join("config.pbtxt");
    write_atomic(&path, |out| out.write_all(config.as_bytes()).map_err(|e| prism_data::Error::io(&path, e)))?;
    Ok(dir)
}

fn config_pbtxt(model: &str, max_batch: usize, input: &Tensor, outputs: &[Tensor]) -> String {
    let tensor = |t: &Tensor| {
        let dims: Vec<String> = t.dims.iter().map(i64::to_string).collect();
        format!("  {{\n    name: \"{}\"\n    data_type: TYPE_FP32\n    dims: [ {} ]\n  }}", t.name, dims.join(", "))
    };
    let mut out = String::new();
    let _ = writeln!(out, "name: \"{model}\"");
    let _ = writeln!(out, "platform: \"onnxruntime_onnx\"");
    let _ = writeln!(out, "max_batch_size: {max_batch}");
    let _ = writeln!(out, "input [\n{}\n]", tensor(input));
    let _ = writeln!(out, "output [\n{}\n]", outputs.iter().map(tensor).collect::<Vec<_>>().join(",\n"));
    if max_batch > 0 {
        let _ = writeln!(out, "dynamic_batching {{ }}");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_tensors_without_the_batch() {
        let input = Tensor { name: "spectra".into(), dims: vec![200, 25, 25] };
        let outputs =
            [Tensor { name: "logits".into(), dims: vec![16] }, Tensor { name: "probabilities".into(), dims: vec![16] }];
        let text = config_pbtxt("hybridsn", MAX_BATCH_SIZE, &input, &outputs);
        assert!(text.starts_with("name: \"hybridsn\"\nplatform: \"onnxruntime_onnx\"\nmax_batch_size: 64\n"), "{text}");
        assert!(text.contains("name: \"spectra\"\n    data_type: TYPE_FP32\n    dims: [ 200, 25, 25 ]"), "{text}");
        assert!(text.contains("name: \"probabilities\"") && text.contains("dims: [ 16 ]"), "{text}");
        assert!(text.trim_end().ends_with("dynamic_batching { }"), "{text}");
        let scene = Tensor { name: "scene".into(), dims: vec![1, 200, -1, -1] };
        let text = config_pbtxt("hybridsn_scene", 0, &scene, &outputs);
        assert!(text.contains("max_batch_size: 0\n") && text.contains("dims: [ 1, 200, -1, -1 ]"), "{text}");
        assert!(!text.contains("dynamic_batching"), "{text}");
    }
}
