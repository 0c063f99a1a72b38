//! Element-wise activations (`Relu`, `Sigmoid`) and the `Softmax` that turns logits into
//! probabilities.

use prism_models::{Path, Result};

use crate::backend::{OnnxBackend, Value};
use crate::graph::attr;

fn unary(b: &mut OnnxBackend, op: &str, p: &Path, x: &Value) -> Result<Value> {
    let out = b.graph.node(op, &super::name(p), &[&x.name], vec![]);
    Ok(Value { name: out, shape: x.shape.clone() })
}

pub(crate) fn relu(b: &mut OnnxBackend, p: &Path, x: &Value) -> Result<Value> {
    unary(b, "Relu", p, x)
}

pub(crate) fn sigmoid(b: &mut OnnxBackend, p: &Path, x: &Value) -> Result<Value> {
    unary(b, "Sigmoid", p, x)
}

/// Softmax over `axis` (opset 13 and later normalise along that one axis).
pub(crate) fn softmax(b: &mut OnnxBackend, name: &str, axis: i64, x: &Value) -> Value {
    let out = b.graph.node("Softmax", name, &[&x.name], vec![attr::int("axis", axis)]);
    Value { name: out, shape: x.shape.clone() }
}
