//! PyTorch's `interpolate(mode="bilinear", align_corners=True)` as `Resize` with
//! `mode = "linear"` and `coordinate_transformation_mode = "align_corners"`, given output sizes
//! (never scales, whose rounding could change the size). From opset 18 the `sizes` input covers
//! only axes 2 and 3 (`axes` attribute); before, `sizes` needs every dimension, so the batch and
//! channels are taken from the input's `Shape` at run time (the batch is symbolic).

use prism_models::{Error, Path, Result};

use crate::backend::{OnnxBackend, Value};
use crate::graph::attr;

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, size: [usize; 2], x: &Value) -> Result<Value> {
    if x.shape.len() != 4 || size.contains(&0) {
        return Err(Error::shape(p, format!("bilinear resize of {:?} to {size:?}", x.shape)));
    }
    b.require_fixed(p, "resizing to a size")?;
    let shape = vec![x.shape[0], x.shape[1], size[0], size[1]];
    if size == [x.shape[2], x.shape[3]] {
        // align_corners maps every pixel onto itself.
        return Ok(x.clone());
    }
    let name = super::name(p);
    let spatial = [size[0] as i64, size[1] as i64];
    let mut attributes =
        vec![attr::string("mode", "linear"), attr::string("coordinate_transformation_mode", "align_corners")];
    let sizes = if b.opset() >= 18 {
        attributes.push(attr::ints("axes", &[2, 3]));
        b.graph.initializer_i64(&format!("{name}.sizes"), &spatial)
    } else {
        let spatial = b.graph.initializer_i64(&format!("{name}.spatial_sizes"), &spatial);
        let starts = b.graph.initializer_i64(&format!("{name}.starts"), &[0]);
        let ends = b.graph.initializer_i64(&format!("{name}.ends"), &[2]);
        let input_shape = b.graph.node("Shape", &format!("{name}/input_shape"), &[&x.name], vec![]);
        let leading = b.graph.node("Slice", &format!("{name}/batch_channels"), &[&input_shape, &starts, &ends], vec![]);
        b.graph.node("Concat", &format!("{name}/sizes"), &[&leading, &spatial], vec![attr::int("axis", 0)])
    };
    let out = b.graph.node("Resize", &name, &[&x.name, "", "", &sizes], attributes);
    Ok(Value { name: out, shape })
}
