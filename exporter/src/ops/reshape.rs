//! `Reshape` of every dimension but the batch. The target shape is a constant whose first entry
//! is 0 ("copy the input's dimension"), which keeps the batch symbolic. Over a whole scene
//! (symbolic height and width) only the leading dimensions can be folded (HybridSN's
//! `[N, 32, d, H, W] -> [N, 32 d, H, W]`): the target is then assembled at run time from the
//! input's own `Shape`.

use prism_models::{Error, Path, Result};

use crate::backend::{OnnxBackend, Spatial, Value};
use crate::graph::attr;

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, dims: &[usize], x: &Value) -> Result<Value> {
    let from: usize = x.shape[1..].iter().product();
    let to: usize = dims.iter().product();
    if from != to {
        return Err(Error::shape(p, format!("cannot reshape {:?} to {dims:?}", &x.shape[1..])));
    }
    let shape: Vec<usize> = std::iter::once(x.shape[0]).chain(dims.iter().copied()).collect();
    let name = super::name(p);
    let target = match b.spatial {
        Spatial::Fixed => {
            let target: Vec<i64> = std::iter::once(0).chain(dims.iter().map(|&d| d as i64)).collect();
            b.graph.initializer_i64(&format!("{name}.shape"), &target)
        }
        Spatial::Symbolic => symbolic_target(b, p, &name, dims, x)?,
    };
    let out = b.graph.node("Reshape", &name, &[&x.name, &target], vec![]);
    Ok(Value { name: out, shape })
}

/// `Concat([0, leading dims...], Shape(x)[-2:])`.
fn symbolic_target(b: &mut OnnxBackend, p: &Path, name: &str, dims: &[usize], x: &Value) -> Result<String> {
    let rank = x.shape.len();
    let keeps_spatial = dims.len() >= 2 && rank >= 3 && dims[dims.len() - 2..] == x.shape[rank - 2..];
    if !keeps_spatial {
        return Err(Error::backend(p, "over a whole scene a reshape must keep the last two (spatial) dimensions"));
    }
    let lead: Vec<i64> = std::iter::once(0).chain(dims[..dims.len() - 2].iter().map(|&d| d as i64)).collect();
    let lead = b.graph.initializer_i64(&format!("{name}.leading"), &lead);
    let starts = b.graph.initializer_i64(&format!("{name}.starts"), &[rank as i64 - 2]);
    let ends = b.graph.initializer_i64(&format!("{name}.ends"), &[rank as i64]);
    let input_shape = b.graph.node("Shape", &format!("{name}/input_shape"), &[&x.name], vec![]);
    let spatial = b.graph.node("Slice", &format!("{name}/spatial"), &[&input_shape, &starts, &ends], vec![]);
    Ok(b.graph.node("Concat", &format!("{name}/shape"), &[&lead, &spatial], vec![attr::int("axis", 0)]))
}
