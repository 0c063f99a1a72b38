//! `MaxPool` and `AveragePool` (with `count_include_pad = 1`, PyTorch's default) over 2-D or 3-D
//! windows.

use prism_models::layers::{Pool, PoolKind};
use prism_models::{Path, Result};

use crate::backend::{OnnxBackend, Value};
use crate::graph::attr;

pub(crate) fn emit(b: &mut OnnxBackend, p: &Path, cfg: &Pool, x: &Value) -> Result<Value> {
    let shape = cfg.output_shape(&p.to_string(), &x.shape)?;
    let pads: Vec<usize> = cfg.padding.iter().chain(&cfg.padding).copied().collect();
    let mut attributes = vec![
        attr::usizes("kernel_shape", &cfg.kernel),
        attr::usizes("strides", &cfg.stride),
        attr::usizes("pads", &pads),
    ];
    let op = match cfg.kind {
        PoolKind::Max => "MaxPool",
        PoolKind::Avg => {
            attributes.push(attr::int("count_include_pad", 1));
            "AveragePool"
        }
    };
    let out = b.graph.node(op, &super::name(p), &[&x.name], attributes);
    Ok(Value { name: out, shape })
}
