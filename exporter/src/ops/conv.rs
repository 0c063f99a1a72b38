//! `Conv` (2-D and 3-D) with PyTorch's weight layout `[out, in / groups, k...]`; ONNX `pads` list
//! every begin, then every end.

use prism_models::layers::Conv;
use prism_models::{Path, Result};

use crate::backend::{ConvRecord, OnnxBackend, Value};
use crate::graph::attr;
use crate::weights::Param;

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, cfg: &Conv, x: &Value) -> Result<Value> {
    let shape = cfg.output_shape(&p.to_string(), &x.shape)?;
    let specs = cfg.params();
    let weight = b.param(p, "weight", &specs[0].shape)?;
    let bias = match specs.get(1) {
        Some(spec) => Some(b.param(p, "bias", &spec.shape)?),
        None => None,
    };
    let weight_name = b.graph.initializer(&p.param("weight"), &weight.shape, &weight.data);
    let bias_name = bias.as_ref().map(|bias| b.graph.initializer(&p.param("bias"), &bias.shape, &bias.data));
    let out = node(b, &super::name(p), cfg, &x.name, &weight_name, bias_name.as_deref());
    b.convs.insert(out.clone(), ConvRecord { path: p.clone(), weight, bias });
    Ok(Value { name: out, shape })
}

/// A `Conv` node reading initializers already added.
pub(crate) fn node(b: &mut OnnxBackend, name: &str, cfg: &Conv, x: &str, weight: &str, bias: Option<&str>) -> String {
    let pads: Vec<usize> = cfg.padding.iter().chain(&cfg.padding).copied().collect();
    let attributes = vec![
        attr::usizes("kernel_shape", &cfg.kernel),
        attr::usizes("strides", &cfg.stride),
        attr::usizes("pads", &pads),
        attr::usizes("dilations", &cfg.dilation),
        attr::int("group", cfg.groups as i64),
    ];
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    b.graph.node("Conv", name, &inputs, attributes)
}

/// A convolution whose weights are given (not read under `p`'s PyTorch names): the whole-scene
/// graph's classifier, where fully connected layers become convolutions.
pub(crate) fn emit_with(
    b: &mut OnnxBackend,
    p: &Path,
    cfg: &Conv,
    x: &Value,
    weight: &Param,
    bias: Option<&Param>,
) -> Result<Value> {
    let shape = cfg.output_shape(&p.to_string(), &x.shape)?;
    let weight_name = b.graph.initializer(&p.param("weight"), &weight.shape, &weight.data);
    let bias_name = bias.map(|bias| b.graph.initializer(&p.param("bias"), &bias.shape, &bias.data));
    let out = node(b, &super::name(p), cfg, &x.name, &weight_name, bias_name.as_deref());
    Ok(Value { name: out, shape })
}
