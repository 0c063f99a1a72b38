//! PyTorch's `adaptive_avg_pool2d`, with the simplest exact ONNX form for each case:
//!
//! - `[1, 1]`: `GlobalAveragePool`;
//! - strips `[H, 1]` and `[1, W]`: `ReduceMean` over one axis (`axes` an attribute up to opset
//!   17, an input from opset 18);
//! - sizes that divide the input: `AveragePool` with kernel = stride = input / output;
//! - anything else: PyTorch's bins (`floor(i * in / out)` to `ceil((i + 1) * in / out)`, which
//!   overlap or repeat) are rectangular, so the 2-D average is separable: `P_h @ x @ P_w^T` with
//!   constant averaging matrices, as two `MatMul` nodes.

use prism_models::layers::adaptive_bin;
use prism_models::{Error, Path, Result};

use crate::backend::{OnnxBackend, Value};
use crate::graph::attr;

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, size: [usize; 2], x: &Value) -> Result<Value> {
    if x.shape.len() != 4 || size.contains(&0) {
        return Err(Error::shape(p, format!("adaptive pooling of {:?} to {size:?}", x.shape)));
    }
    let (h, w) = (x.shape[2], x.shape[3]);
    let shape = vec![x.shape[0], x.shape[1], size[0], size[1]];
    let name = super::name(p);
    if size == [1, 1] {
        let out = b.graph.node("GlobalAveragePool", &name, &[&x.name], vec![]);
        return Ok(Value { name: out, shape });
    }
    if size == [h, 1] || size == [1, w] {
        let axis = if size == [h, 1] { 3 } else { 2 };
        let out = reduce_mean(b, &name, &x.name, axis);
        return Ok(Value { name: out, shape });
    }
    b.require_fixed(p, "adaptive average pooling")?;
    if size == [h, w] {
        return Ok(x.clone());
    }
    if h % size[0] == 0 && w % size[1] == 0 {
        let kernel = [h / size[0], w / size[1]];
        let attributes = vec![
            attr::usizes("kernel_shape", &kernel),
            attr::usizes("strides", &kernel),
            attr::usizes("pads", &[0, 0, 0, 0]),
            attr::int("count_include_pad", 1),
        ];
        let out = b.graph.node("AveragePool", &name, &[&x.name], attributes);
        return Ok(Value { name: out, shape });
    }
    // [oh, h] @ [N, C, h, w] -> [N, C, oh, w];  [N, C, oh, w] @ [w, ow] -> [N, C, oh, ow].
    let rows = averaging_matrix(h, size[0]);
    let cols = transpose(&averaging_matrix(w, size[1]), size[1], w);
    let rows = b.graph.initializer(&format!("{name}.rows"), &[size[0], h], &rows);
    let cols = b.graph.initializer(&format!("{name}.cols"), &[w, size[1]], &cols);
    let y = b.graph.node("MatMul", &format!("{name}/rows"), &[&rows, &x.name], vec![]);
    let out = b.graph.node("MatMul", &name, &[&y, &cols], vec![]);
    Ok(Value { name: out, shape })
}

fn reduce_mean(b: &mut OnnxBackend, name: &str, x: &str, axis: i64) -> String {
    let keep = attr::int("keepdims", 1);
    if b.opset() >= 18 {
        let axes = b.graph.initializer_i64(&format!("{name}.axes"), &[axis]);
        b.graph.node("ReduceMean", name, &[x, &axes], vec![keep])
    } else {
        b.graph.node("ReduceMean", name, &[x], vec![attr::ints("axes", &[axis]), keep])
    }
}

/// `[output, input]`, row `i` averaging PyTorch's bin `i`.
pub(crate) fn averaging_matrix(input: usize, output: usize) -> Vec<f32> {
    let mut m = vec![0f32; output * input];
    for i in 0..output {
        let (start, end) = adaptive_bin(i, input, output);
        for j in start..end {
            m[i * input + j] = 1.0 / (end - start) as f32;
        }
    }
    m
}

fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols).flat_map(|c| (0..rows).map(move |r| m[r * cols + c])).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bins_overlap_as_in_pytorch() {
        // 5 -> 3: bins [0, 2), [1, 4), [3, 5).
        let m = averaging_matrix(5, 3);
        let third = 1.0 / 3.0;
        assert_eq!(m, vec![0.5, 0.5, 0.0, 0.0, 0.0, 0.0, third, third, third, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
        assert_eq!(transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
