//! Float32 tensors read from safetensors files (the run's weights and its sample), checked
//! against what the model needs before any graph is built, so that every problem is reported
//! with the file and the tensor it concerns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use prism_models::{ModelConfig, Summary};
use safetensors::{Dtype, SafeTensors};

use crate::{Error, Result};

/// A float32 tensor in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Param {
    pub fn to_array(&self) -> ArrayD<f32> {
        // The length was checked against the shape when the tensor was read.
        ArrayD::from_shape_vec(self.shape.clone(), self.data.clone()).unwrap_or_else(|_| ArrayD::zeros(vec![0]))
    }
}

/// The float32 tensors of one safetensors file, by name.
#[derive(Clone, Debug)]
pub struct TensorFile {
    pub path: PathBuf,
    tensors: BTreeMap<String, Param>,
}

/// PyTorch's batch-norm step counters: int64, part of the `state_dict`, unused by inference.
fn is_counter(name: &str) -> bool {
    name == "num_batches_tracked" || name.ends_with(".num_batches_tracked")
}

impl TensorFile {
    /// Tensors already in memory, as if read from `path` (errors name that path).
    pub fn new(path: impl Into<PathBuf>, tensors: BTreeMap<String, Param>) -> Self {
        TensorFile { path: path.into(), tensors }
    }

    /// Reads every tensor except batch-norm counters (`*.num_batches_tracked`).
    ///
    /// # Errors
    /// An unreadable file, a file that is not safetensors, a tensor that is not float32 or holds
    /// NaN or infinite values.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &bytes)
    }

    /// [`TensorFile::read`] for a file's bytes; `path` names it in errors.
    ///
    /// # Errors
    /// As [`TensorFile::read`], but for reading the file.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let file =
            SafeTensors::deserialize(bytes).map_err(|e| Error::format(path, format!("not a safetensors file: {e}")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in file.iter() {
            if is_counter(name) {
                continue;
            }
            if view.dtype() != Dtype::F32 {
                return Err(Error::TensorType {
                    path: path.into(),
                    name: name.into(),
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let data: Vec<f32> =
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if data.len() != view.shape().iter().product::<usize>() {
                return Err(Error::format(
                    path,
                    format!("tensor `{name}` holds {} values for shape {:?}", data.len(), view.shape()),
                ));
            }
            let broken = data.iter().filter(|v| !v.is_finite()).count();
            if broken > 0 {
                return Err(Error::format(
                    path,
                    format!("tensor `{name}` holds {broken} NaN or infinite values (did its training diverge?)"),
                ));
            }
            tensors.insert(name.to_string(), Param { shape: view.shape().to_vec(), data });
        }
        Ok(TensorFile { path: path.into(), tensors })
    }

    pub fn get(&self, name: &str) -> Option<&Param> {
        self.tensors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The tensor `name`, which must exist and have `shape`.
    ///
    /// # Errors
    /// [`Error::MissingTensor`], [`Error::TensorShape`].
    pub fn require(&self, name: &str, shape: &[usize]) -> Result<&Param> {
        let param =
            self.get(name).ok_or_else(|| Error::MissingTensor { path: self.path.clone(), name: name.into() })?;
        if param.shape != shape {
            return Err(Error::TensorShape {
                path: self.path.clone(),
                name: name.into(),
                expected: format!("{shape:?}"),
                got: param.shape.clone(),
            });
        }
        Ok(param)
    }

    /// Checks the file holds exactly the model's float tensors with the model's shapes, like
    /// PyTorch's strict `load_state_dict`.
    ///
    /// # Errors
    /// The first missing tensor, tensor of the wrong shape, or tensor the model does not have.
    pub fn check_weights(&self, model: &ModelConfig) -> Result<()> {
        let summary = Summary::of(model)?;
        for tensor in summary.tensors.iter().filter(|t| !t.integer) {
            self.require(&tensor.name, &tensor.shape)?;
        }
        if let Some(extra) = self.names().find(|n| !summary.tensors.iter().any(|t| t.name == *n)) {
            return Err(Error::UnexpectedTensor { path: self.path.clone(), name: extra.into(), model: model.name() });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prism_models::ModelOptions;

    fn write(path: &Path, tensors: &[(&str, Vec<usize>, Dtype)]) {
        let data: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = tensors
            .iter()
            .map(|(n, s, d)| {
                let size = d.bitsize() / 8;
                (n.to_string(), vec![0u8; s.iter().product::<usize>() * size], s.clone(), *d)
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = data
            .iter()
            .map(|(n, bytes, s, d)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), bytes).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, path).unwrap();
    }

    #[test]
    fn weights_are_checked_by_name_shape_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let model =
            ModelConfig::from_name("block-se", &ModelOptions { bands: Some(32), ..Default::default() }).unwrap();
        write(&path, &[("block.fc1.weight", vec![2, 32], Dtype::F32), ("block.fc2.weight", vec![32, 2], Dtype::F32)]);
        TensorFile::read(&path).unwrap().check_weights(&model).unwrap();

        write(&path, &[("block.fc1.weight", vec![2, 32], Dtype::F32)]);
        let err = TensorFile::read(&path).unwrap().check_weights(&model).unwrap_err().to_string();
        assert!(err.ends_with("w.safetensors: missing tensor `block.fc2.weight`"), "{err}");

        write(&path, &[("block.fc1.weight", vec![2, 32], Dtype::F32), ("block.fc2.weight", vec![32, 3], Dtype::F32)]);
        let err = TensorFile::read(&path).unwrap().check_weights(&model).unwrap_err().to_string();
        assert!(err.contains("tensor `block.fc2.weight` has shape [32, 3], expected [32, 2]"), "{err}");

        write(&path, &[("block.fc1.weight", vec![2, 32], Dtype::F16)]);
        let err = TensorFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("tensor `block.fc1.weight` is F16, expected float32"), "{err}");

        write(
            &path,
            &[
                ("block.fc1.weight", vec![2, 32], Dtype::F32),
                ("block.fc2.weight", vec![32, 2], Dtype::F32),
                ("bn.num_batches_tracked", vec![], Dtype::I64),
                ("head.weight", vec![1], Dtype::F32),
            ],
        );
        let err = TensorFile::read(&path).unwrap().check_weights(&model).unwrap_err().to_string();
        assert!(err.contains("tensor `head.weight` is not a parameter of block-se"), "{err}");

        // Weights of a run whose training diverged.
        let bytes: Vec<u8> = [1.0f32, f32::NAN, f32::INFINITY, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![2, 2], &bytes).unwrap();
        safetensors::serialize_to_file([("block.fc1.weight", view)], None, &path).unwrap();
        let err = TensorFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("tensor `block.fc1.weight` holds 2 NaN or infinite values"), "{err}");
    }
}
