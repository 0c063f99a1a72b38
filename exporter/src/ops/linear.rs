//! Fully connected layers as `Gemm` with `transB = 1`, reading PyTorch's `[out, in]` weight as is.

use prism_models::layers::Linear;
use prism_models::{Path, Result};

use crate::backend::{OnnxBackend, Value};
use crate::graph::attr;

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, cfg: &Linear, x: &Value) -> Result<Value> {
    let shape = cfg.output_shape(&p.to_string(), &x.shape)?;
    let weight = b.param_initializer(p, "weight", &[cfg.out_features, cfg.in_features])?;
    let mut inputs = vec![x.name.clone(), weight];
    if cfg.bias {
        inputs.push(b.param_initializer(p, "bias", &[cfg.out_features])?);
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let out = b.graph.node("Gemm", &super::name(p), &inputs, vec![attr::int("transB", 1)]);
    Ok(Value { name: out, shape })
}
