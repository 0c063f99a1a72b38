//! `Add` and `Mul` with NumPy broadcasting (SE scaling, strip pooling's `[H, 1] + [1, W]`,
//! residual sums).

use prism_models::layers::broadcast_shapes;
use prism_models::{Path, Result};

use crate::backend::{OnnxBackend, Value};

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, op: &str, x: &Value, y: &Value) -> Result<Value> {
    let shape = broadcast_shapes(&p.to_string(), &x.shape, &y.shape)?;
    let out = b.graph.node(op, &super::name(p), &[&x.name, &y.name], vec![]);
    Ok(Value { name: out, shape })
}
