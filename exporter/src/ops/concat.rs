//! `Concat` along one axis.

use prism_models::{Error, Path, Result};

use crate::backend::{OnnxBackend, Value};
use crate::graph::attr;

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, xs: &[&Value], axis: usize) -> Result<Value> {
    let first = xs.first().ok_or_else(|| Error::shape(p, "nothing to concatenate"))?;
    let mut shape = first.shape.clone();
    for x in &xs[1..] {
        let same_rest = x.shape.len() == shape.len() && (0..shape.len()).all(|d| d == axis || x.shape[d] == shape[d]);
        if axis >= shape.len() || !same_rest {
            return Err(Error::shape(
                p,
                format!("cannot concatenate {:?} and {:?} on axis {axis}", first.shape, x.shape),
            ));
        }
        shape[axis] += x.shape[axis];
    }
    let inputs: Vec<&str> = xs.iter().map(|x| x.name.as_str()).collect();
    let out = b.graph.node("Concat", &super::name(p), &inputs, vec![attr::int("axis", axis as i64)]);
    Ok(Value { name: out, shape })
}
