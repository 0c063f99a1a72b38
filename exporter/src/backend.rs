//! The ONNX interpreter of Prism's model descriptions: a [`Backend`] whose tensors are graph
//! value names with their static shapes. Every operation appends nodes through its emitter in
//! [`crate::ops`].
//!
//! # Shapes
//! The batch is symbolic in the graph (`batch`) and reported as 1 to the model code. In
//! [`Spatial::Symbolic`] mode (the whole-scene graph) height and width are symbolic too, and the
//! shapes reported are those of one reference window: operations whose result depends on the
//! actual spatial size (adaptive pooling to a size, resizing) refuse to run in that mode.

use std::collections::HashMap;

use prism_models::layers::{BatchNorm, Conv, Linear, Pool};
use prism_models::{Backend, Error as ModelError, Path, Result as ModelResult};

use crate::graph::Graph;
use crate::ops;
use crate::weights::{Param, TensorFile};

/// A value of the graph under construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub name: String,
    /// Static shape, batch first (reported as 1).
    pub shape: Vec<usize>,
}

/// Whether spatial dimensions are fixed (window and image graphs) or symbolic (whole scenes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spatial {
    Fixed,
    Symbolic,
}

/// A convolution the backend emitted, remembered so that a following batch norm can fold into it.
#[derive(Clone, Debug)]
pub(crate) struct ConvRecord {
    pub path: Path,
    pub weight: Param,
    pub bias: Option<Param>,
}

/// Emits ONNX nodes for the operations a model description calls.
pub struct OnnxBackend<'w> {
    pub(crate) graph: Graph,
    pub(crate) weights: &'w TensorFile,
    pub(crate) fold_bn: bool,
    pub(crate) spatial: Spatial,
    /// Convolutions by output value, for batch-norm folding.
    pub(crate) convs: HashMap<String, ConvRecord>,
}

impl<'w> OnnxBackend<'w> {
    pub fn new(opset: i64, weights: &'w TensorFile, fold_bn: bool, spatial: Spatial) -> Self {
        OnnxBackend { graph: Graph::new(opset), weights, fold_bn, spatial, convs: HashMap::new() }
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    pub fn into_graph(self) -> Graph {
        self.graph
    }

    pub fn opset(&self) -> i64 {
        self.graph.opset()
    }

    /// The parameter `p.leaf`, which must have `shape`.
    pub(crate) fn param(&self, p: &Path, leaf: &str, shape: &[usize]) -> ModelResult<Param> {
        let name = p.param(leaf);
        let param = self.weights.get(&name).ok_or_else(|| ModelError::MissingParam { name: name.clone() })?;
        if param.shape != shape {
            return Err(ModelError::ParamShape { name, expected: shape.to_vec(), got: param.shape.clone() });
        }
        Ok(param.clone())
    }

    /// The parameter `p.leaf` as an initializer under its PyTorch name.
    pub(crate) fn param_initializer(&mut self, p: &Path, leaf: &str, shape: &[usize]) -> ModelResult<String> {
        let param = self.param(p, leaf, shape)?;
        Ok(self.graph.initializer(&p.param(leaf), &param.shape, &param.data))
    }

    /// Errors for operations that bake the spatial size into the graph.
    pub(crate) fn require_fixed(&self, p: &Path, what: &str) -> ModelResult<()> {
        match self.spatial {
            Spatial::Fixed => Ok(()),
            Spatial::Symbolic => Err(ModelError::backend(
                p,
                format!("{what} depends on the input size and cannot run over a whole scene"),
            )),
        }
    }
}

impl Backend for OnnxBackend<'_> {
    type Tensor = Value;

    fn shape(&self, x: &Value) -> Vec<usize> {
        x.shape.clone()
    }

    fn conv(&mut self, p: &Path, cfg: &Conv, x: &Value) -> ModelResult<Value> {
        ops::conv::emit(self, p, cfg, x)
    }

    fn batch_norm(&mut self, p: &Path, cfg: &BatchNorm, x: &Value) -> ModelResult<Value> {
        ops::batch_norm::emit(self, p, cfg, x)
    }

    fn linear(&mut self, p: &Path, cfg: &Linear, x: &Value) -> ModelResult<Value> {
        ops::linear::emit(self, p, cfg, x)
    }

    fn relu(&mut self, p: &Path, x: &Value) -> ModelResult<Value> {
        ops::activation::relu(self, p, x)
    }

    fn sigmoid(&mut self, p: &Path, x: &Value) -> ModelResult<Value> {
        ops::activation::sigmoid(self, p, x)
    }

    /// Dropout is the identity at inference: no node at all.
    fn dropout(&mut self, p: &Path, prob: f64, x: &Value) -> ModelResult<Value> {
        if !(0.0..1.0).contains(&prob) {
            return Err(ModelError::shape(p, format!("dropout probability {prob} is not in [0, 1)")));
        }
        Ok(x.clone())
    }

    fn pool(&mut self, p: &Path, cfg: &Pool, x: &Value) -> ModelResult<Value> {
        ops::pool::emit(self, p, cfg, x)
    }

    fn adaptive_avg_pool(&mut self, p: &Path, size: [usize; 2], x: &Value) -> ModelResult<Value> {
        ops::adaptive_pool::emit(self, p, size, x)
    }

    fn reshape(&mut self, p: &Path, dims: &[usize], x: &Value) -> ModelResult<Value> {
        ops::reshape::emit(self, p, dims, x)
    }

    fn add(&mut self, p: &Path, a: &Value, b: &Value) -> ModelResult<Value> {
        ops::elementwise::emit(self, p, "Add", a, b)
    }

    fn mul(&mut self, p: &Path, a: &Value, b: &Value) -> ModelResult<Value> {
        ops::elementwise::emit(self, p, "Mul", a, b)
    }

    fn concat(&mut self, p: &Path, xs: &[&Value], axis: usize) -> ModelResult<Value> {
        ops::concat::emit(self, p, xs, axis)
    }

    fn resize_bilinear(&mut self, p: &Path, size: [usize; 2], x: &Value) -> ModelResult<Value> {
        ops::resize::emit(self, p, size, x)
    }
}
