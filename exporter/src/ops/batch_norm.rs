//! `BatchNormalization` with the running statistics, or, with `--fold-bn`, nothing at all: the
//! normalisation is folded into the convolution that produced its input,
//! `w' = w * gamma / sqrt(var + eps)`, `b' = (b - mean) * gamma / sqrt(var + eps) + beta`
//! (computed in f64). Folding removes a node per convolution and a pass over every feature map,
//! which every engine (tract, TensorRT, ONNX Runtime without its own fusion) runs faster, and it
//! is what the whole-scene graph's convolutions need to stay plain convolutions. A batch norm
//! whose input is not a convolution's output, or a convolution output something else already
//! reads, stays a `BatchNormalization` node.

use prism_models::layers::BatchNorm;
use prism_models::{Path, Result};

use crate::backend::{OnnxBackend, Value};
use crate::graph::attr;
use crate::weights::Param;

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, cfg: &BatchNorm, x: &Value) -> Result<Value> {
    let shape = cfg.output_shape(&p.to_string(), &x.shape)?;
    let c = [cfg.features];
    let stats = Stats {
        gamma: b.param(p, "weight", &c)?,
        beta: b.param(p, "bias", &c)?,
        mean: b.param(p, "running_mean", &c)?,
        var: b.param(p, "running_var", &c)?,
        eps: cfg.eps,
    };
    if b.fold_bn && b.graph.readers(&x.name) == 0 {
        if let Some(record) = b.convs.remove(&x.name) {
            let (weight, bias) = stats.fold(&record.weight, record.bias.as_ref());
            let conv = &record.path;
            let weight_name =
                b.graph.initializer(&format!("{}+{p}", conv.param("weight")), &weight.shape, &weight.data);
            let bias_name = b.graph.initializer(&format!("{}+{p}", conv.param("bias")), &bias.shape, &bias.data);
            b.graph.set_producer_input(&x.name, 1, &weight_name)?;
            b.graph.set_producer_input(&x.name, 2, &bias_name)?;
            let name = b.graph.rename(&x.name, &super::name(p))?;
            return Ok(Value { name, shape });
        }
    }
    let inputs: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .zip([&stats.gamma, &stats.beta, &stats.mean, &stats.var])
        .map(|(leaf, t)| b.graph.initializer(&p.param(leaf), &t.shape, &t.data))
        .collect();
    let out = b.graph.node(
        "BatchNormalization",
        &super::name(p),
        &[&x.name, &inputs[0], &inputs[1], &inputs[2], &inputs[3]],
        vec![attr::float("epsilon", cfg.eps as f32)],
    );
    Ok(Value { name: out, shape })
}

struct Stats {
    gamma: Param,
    beta: Param,
    mean: Param,
    var: Param,
    eps: f64,
}

impl Stats {
    /// The convolution's weight and bias with this normalisation applied to its output channels.
    fn fold(&self, weight: &Param, bias: Option<&Param>) -> (Param, Param) {
        let out = self.gamma.data.len();
        let per_channel = weight.data.len() / out.max(1);
        let scale: Vec<f64> =
            (0..out).map(|o| f64::from(self.gamma.data[o]) / (f64::from(self.var.data[o]) + self.eps).sqrt()).collect();
        let folded_weight =
            weight.data.iter().enumerate().map(|(i, w)| (f64::from(*w) * scale[i / per_channel]) as f32).collect();
        let folded_bias = (0..out)
            .map(|o| {
                let b = bias.map_or(0.0, |b| f64::from(b.data[o]));
                ((b - f64::from(self.mean.data[o])) * scale[o] + f64::from(self.beta.data[o])) as f32
            })
            .collect();
        (Param { shape: weight.shape.clone(), data: folded_weight }, Param { shape: vec![out], data: folded_bias })
    }
}
