//! The shape and parameter walker: a backend whose tensors are shapes. It needs no engine, so
//! it validates a configuration and describes a model (a Keras-style summary) in microseconds.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::backend::{Backend, Path};
use crate::layers::{BatchNorm, Conv, Init, Linear, ParamSpec, Pool, broadcast_shapes};
use crate::zoo::ModelConfig;
use crate::{Error, Result};

/// One operation of a model as the walker saw it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LayerRow {
    pub name: String,
    pub op: &'static str,
    /// Output shape; the batch dimension is -1.
    pub output_shape: Vec<i64>,
    /// Trainable parameters owned by this operation.
    pub params: usize,
}

/// A tensor of the model's state: a trainable parameter or a buffer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub trainable: bool,
    /// An int64 counter rather than a float32 tensor.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub integer: bool,
    /// How training from scratch initialises it.
    #[serde(skip)]
    pub init: Init,
}

/// A backend that tracks shapes and records every operation and tensor.
#[derive(Debug, Default)]
pub struct ShapeWalker {
    pub layers: Vec<LayerRow>,
    pub params: Vec<ParamInfo>,
    names: BTreeSet<String>,
}

impl ShapeWalker {
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&mut self, p: &Path, op: &'static str, shape: Vec<usize>, specs: &[ParamSpec]) -> Result<Vec<usize>> {
        for spec in specs {
            let name = p.param(spec.leaf);
            if !self.names.insert(name.clone()) {
                return Err(Error::shape(p, format!("parameter `{name}` is defined twice")));
            }
            self.params.push(ParamInfo {
                name,
                shape: spec.shape.clone(),
                trainable: spec.trainable,
                integer: spec.integer,
                init: spec.init,
            });
        }
        let params = specs.iter().filter(|s| s.trainable).map(ParamSpec::numel).sum();
        let output_shape = std::iter::once(-1).chain(shape[1..].iter().map(|&d| d as i64)).collect();
        self.layers.push(LayerRow { name: p.to_string(), op, output_shape, params });
        Ok(shape)
    }
}

impl Backend for ShapeWalker {
    type Tensor = Vec<usize>;

    fn shape(&self, x: &Vec<usize>) -> Vec<usize> {
        x.clone()
    }

    fn conv(&mut self, p: &Path, cfg: &Conv, x: &Vec<usize>) -> Result<Vec<usize>> {
        let shape = cfg.output_shape(&p.to_string(), x)?;
        let op = if cfg.spatial_dims() == 3 { "conv3d" } else { "conv2d" };
        self.record(p, op, shape, &cfg.params())
    }

    fn batch_norm(&mut self, p: &Path, cfg: &BatchNorm, x: &Vec<usize>) -> Result<Vec<usize>> {
        let shape = cfg.output_shape(&p.to_string(), x)?;
        let op = if x.len() == 5 { "batch_norm3d" } else { "batch_norm2d" };
        self.record(p, op, shape, &cfg.params())
    }

    fn linear(&mut self, p: &Path, cfg: &Linear, x: &Vec<usize>) -> Result<Vec<usize>> {
        let shape = cfg.output_shape(&p.to_string(), x)?;
        self.record(p, "linear", shape, &cfg.params())
    }

    fn relu(&mut self, p: &Path, x: &Vec<usize>) -> Result<Vec<usize>> {
        self.record(p, "relu", x.clone(), &[])
    }

    fn sigmoid(&mut self, p: &Path, x: &Vec<usize>) -> Result<Vec<usize>> {
        self.record(p, "sigmoid", x.clone(), &[])
    }

    fn dropout(&mut self, p: &Path, prob: f64, x: &Vec<usize>) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&prob) {
            return Err(Error::shape(p, format!("dropout probability {prob} is not in [0, 1)")));
        }
        self.record(p, "dropout", x.clone(), &[])
    }

    fn pool(&mut self, p: &Path, cfg: &Pool, x: &Vec<usize>) -> Result<Vec<usize>> {
        let shape = cfg.output_shape(&p.to_string(), x)?;
        let op = match cfg.kind {
            crate::layers::PoolKind::Max => "max_pool",
            crate::layers::PoolKind::Avg => "avg_pool",
        };
        self.record(p, op, shape, &[])
    }

    fn adaptive_avg_pool(&mut self, p: &Path, size: [usize; 2], x: &Vec<usize>) -> Result<Vec<usize>> {
        if x.len() != 4 || size.contains(&0) {
            return Err(Error::shape(p, format!("adaptive pooling of {x:?} to {size:?}")));
        }
        self.record(p, "adaptive_avg_pool", vec![x[0], x[1], size[0], size[1]], &[])
    }

    fn reshape(&mut self, p: &Path, dims: &[usize], x: &Vec<usize>) -> Result<Vec<usize>> {
        let from: usize = x[1..].iter().product();
        let to: usize = dims.iter().product();
        if from != to {
            return Err(Error::shape(p, format!("cannot reshape {:?} to {dims:?}", &x[1..])));
        }
        let shape = std::iter::once(x[0]).chain(dims.iter().copied()).collect();
        self.record(p, "reshape", shape, &[])
    }

    fn add(&mut self, p: &Path, a: &Vec<usize>, b: &Vec<usize>) -> Result<Vec<usize>> {
        let shape = broadcast_shapes(&p.to_string(), a, b)?;
        self.record(p, "add", shape, &[])
    }

    fn mul(&mut self, p: &Path, a: &Vec<usize>, b: &Vec<usize>) -> Result<Vec<usize>> {
        let shape = broadcast_shapes(&p.to_string(), a, b)?;
        self.record(p, "mul", shape, &[])
    }

    fn concat(&mut self, p: &Path, xs: &[&Vec<usize>], axis: usize) -> Result<Vec<usize>> {
        let first = xs.first().ok_or_else(|| Error::shape(p, "nothing to concatenate"))?;
        let mut shape = (*first).clone();
        for x in &xs[1..] {
            let same_rest = x.len() == shape.len() && (0..x.len()).all(|d| d == axis || x[d] == shape[d]);
            if axis >= x.len() || !same_rest {
                return Err(Error::shape(p, format!("cannot concatenate {first:?} and {x:?} on axis {axis}")));
            }
            shape[axis] += x[axis];
        }
        self.record(p, "concat", shape, &[])
    }

    fn resize_bilinear(&mut self, p: &Path, size: [usize; 2], x: &Vec<usize>) -> Result<Vec<usize>> {
        if x.len() != 4 {
            return Err(Error::shape(p, format!("bilinear resize needs [N, C, H, W], got {x:?}")));
        }
        self.record(p, "resize_bilinear", vec![x[0], x[1], size[0], size[1]], &[])
    }
}

/// A model's description: every operation with its output shape and parameters.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub model: String,
    pub config: ModelConfig,
    /// Input shape; the batch dimension is -1.
    pub input_shape: Vec<i64>,
    pub output_shape: Vec<i64>,
    pub total_params: usize,
    pub trainable_params: usize,
    /// Elements of non-trainable state (batch-norm running statistics).
    pub buffer_elements: usize,
    pub layers: Vec<LayerRow>,
    pub tensors: Vec<ParamInfo>,
}

impl Summary {
    pub fn of(config: &ModelConfig) -> Result<Summary> {
        let mut walker = ShapeWalker::new();
        let input: Vec<usize> = std::iter::once(1).chain(config.input_shape()).collect();
        let output = config.forward(&mut walker, &input)?;
        let trainable_params =
            walker.params.iter().filter(|p| p.trainable).map(|p| p.shape.iter().product::<usize>()).sum();
        let buffer_elements = walker
            .params
            .iter()
            .filter(|p| !p.trainable && !p.integer)
            .map(|p| p.shape.iter().product::<usize>())
            .sum();
        let batched = |s: &[usize]| std::iter::once(-1).chain(s[1..].iter().map(|&d| d as i64)).collect();
        Ok(Summary {
            model: config.name(),
            config: config.clone(),
            input_shape: batched(&input),
            output_shape: batched(&output),
            total_params: trainable_params,
            trainable_params,
            buffer_elements,
            layers: walker.layers,
            tensors: walker.params,
        })
    }

    /// A table in the manner of Keras' `summary()`.
    pub fn table(&self) -> String {
        let shape = |s: &[i64]| {
            format!(
                "[{}]",
                s.iter().map(|d| if *d < 0 { "B".into() } else { d.to_string() }).collect::<Vec<_>>().join(", ")
            )
        };
        let rows: Vec<[String; 4]> = self
            .layers
            .iter()
            .map(|l| [l.name.clone(), l.op.to_string(), shape(&l.output_shape), group_digits(l.params)])
            .collect();
        let header = ["Layer", "Op", "Output shape", "Params"];
        let mut width = header.map(str::len);
        for row in &rows {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let rule = "-".repeat(width.iter().sum::<usize>() + 6);
        let mut out = String::new();
        let _ = writeln!(out, "Model: {}    input {}", self.model, shape(&self.input_shape));
        let line = |out: &mut String, r: &[&str; 4]| {
            let _ = writeln!(
                out,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3]
            );
        };
        let _ = writeln!(out, "{rule}");
        line(&mut out, &header);
        let _ = writeln!(out, "{rule}");
        for row in &rows {
            line(&mut out, &[&row[0], &row[1], &row[2], &row[3]]);
        }
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, "Output shape: {}", shape(&self.output_shape));
        let _ = writeln!(out, "Total params: {}", group_digits(self.total_params));
        let _ = writeln!(out, "Trainable params: {}", group_digits(self.trainable_params));
        let _ = writeln!(out, "Buffers (batch-norm statistics): {}", group_digits(self.buffer_elements));
        let bytes = (self.total_params + self.buffer_elements) * 4;
        let _ = write!(out, "Weights size (float32): {:.2} MB", bytes as f64 / 1e6);
        out
    }
}

/// `5122176` -> `5,122,176`.
pub fn group_digits(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(5_122_176), "5,122,176");
        assert_eq!(group_digits(512), "512");
        assert_eq!(group_digits(0), "0");
    }

    #[test]
    fn a_name_used_twice_is_an_error() {
        let mut w = ShapeWalker::new();
        let p = Path::root() / "fc";
        let x = w.linear(&p, &Linear::new(4, 4), &vec![1, 4]).unwrap();
        let err = w.linear(&p, &Linear::new(4, 4), &x).unwrap_err();
        assert!(err.to_string().contains("`fc.weight` is defined twice"), "{err}");
    }
}

#[cfg(test)]
mod counts {
    use crate::{ModelConfig, ModelOptions, Summary};

    /// Totals that torchvision and the HybridSN paper print for these architectures (the full
    /// comparison against PyTorch, name by name, is in tests/).
    #[test]
    fn published_parameter_counts() {
        for (name, total) in
            [("hybridsn", 5_122_176), ("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032)]
        {
            let config = ModelConfig::from_name(name, &ModelOptions::default()).unwrap();
            assert_eq!(Summary::of(&config).unwrap().total_params, total, "{name}");
        }
    }
}
