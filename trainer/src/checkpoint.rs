//! Safetensors files with metadata, written atomically: model weights under PyTorch's names,
//! checkpoints (weights, optimiser state and the training position in one file, so a crash can
//! never leave them out of step), and the exporter's sample.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Device, Kind, Tensor};

/// Writes named tensors (moved to the CPU) and string metadata to `path` atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<()> {
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let (dtype, kind) = match t.kind() {
            Kind::Int64 => (Dtype::I64, Kind::Int64),
            Kind::Double => (Dtype::F64, Kind::Double),
            _ => (Dtype::F32, Kind::Float),
        };
        let t = t.to_kind(kind);
        let mut bytes = vec![0u8; t.numel() * kind.elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, t.numel()).with_context(|| format!("copying tensor `{name}`"))?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        buffers.push((name.clone(), dtype, shape, bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| Ok((name.as_str(), TensorView::new(*dtype, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let bytes =
        safetensors::serialize(views, Some(metadata)).with_context(|| format!("serialising {}", path.display()))?;
    prism_data::write_bytes_atomic(path, &bytes)?;
    Ok(())
}

/// Reads every tensor of a safetensors file onto the CPU, with the file's metadata.
///
/// # Errors
/// A missing file, or one that is not valid safetensors (named).
pub fn load(path: &Path) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e})", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F64 => Kind::Double,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::I64 => Kind::Int64,
            Dtype::I32 => Kind::Int,
            other => bail!("{}: tensor `{name}` has unsupported type {other:?}", path.display()),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .with_context(|| format!("{}: tensor `{name}`", path.display()))?;
        tensors.insert(name, t);
    }
    Ok((tensors, header.metadata().clone().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_values_types_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let a = Tensor::randn([2, 3], (Kind::Float, Device::Cpu));
        let n = Tensor::from_slice(&[7i64]).view([]);
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        save(&path, &[("a".into(), a.shallow_clone()), ("n".into(), n.shallow_clone())], meta.clone()).unwrap();
        let (tensors, metadata) = load(&path).unwrap();
        assert!(tensors["a"].equal(&a));
        assert_eq!(tensors["n"].kind(), Kind::Int64);
        assert_eq!(tensors["n"].int64_value(&[]), 7);
        assert_eq!(metadata, meta);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("not a safetensors file"));
    }
}
