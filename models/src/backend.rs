//! The small set of operations every architecture is written against, and the scope helper that
//! names parameters exactly as PyTorch does.

use std::fmt;
use std::ops::Div;

use crate::Result;
use crate::layers::{BatchNorm, Conv, Linear, Pool};

/// A dotted scope such as `layer1.0.downsample.0`, built with `/` like tch's `nn::Path`:
///
/// ```
/// use prism_models::Path;
/// let conv = &(&Path::root() / "layer1" / 0) / "conv1";
/// assert_eq!(conv.param("weight"), "layer1.0.conv1.weight");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path {
    parts: Vec<String>,
}

impl Path {
    pub fn root() -> Self {
        Path::default()
    }

    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// The full name of a tensor owned by this scope.
    pub fn param(&self, leaf: &str) -> String {
        let mut parts = self.parts.clone();
        parts.push(leaf.to_string());
        parts.join(".")
    }

    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }
}

impl<T: ToString> Div<T> for &Path {
    type Output = Path;

    fn div(self, part: T) -> Path {
        let mut parts = self.parts.clone();
        parts.push(part.to_string());
        Path { parts }
    }
}

impl<T: ToString> Div<T> for Path {
    type Output = Path;

    fn div(self, part: T) -> Path {
        &self / part
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() { f.write_str("(model)") } else { f.write_str(&self.parts.join(".")) }
    }
}

/// The operations architectures are written with. Each interpreter implements it once:
/// [`crate::summary::ShapeWalker`] computes shapes and parameters, the trainer runs tch tensors,
/// the exporter emits ONNX nodes.
///
/// Every operation takes the scope that names it; operations that own parameters name them
/// `scope.leaf` with PyTorch's leaves (`weight`, `bias`, `running_mean`, `running_var`).
///
/// # Shapes
/// Tensors are batch-first. [`Backend::shape`] reports the batch too; a backend whose batch is
/// symbolic reports 1 for it. Models only read the other dimensions.
pub trait Backend {
    type Tensor;

    fn shape(&self, x: &Self::Tensor) -> Vec<usize>;

    /// 2-D or 3-D convolution on `[N, C, (D,) H, W]`.
    fn conv(&mut self, p: &Path, cfg: &Conv, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// Batch normalisation: batch statistics in training, running statistics in evaluation.
    fn batch_norm(&mut self, p: &Path, cfg: &BatchNorm, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// Fully connected layer on `[N, F]`.
    fn linear(&mut self, p: &Path, cfg: &Linear, x: &Self::Tensor) -> Result<Self::Tensor>;

    fn relu(&mut self, p: &Path, x: &Self::Tensor) -> Result<Self::Tensor>;

    fn sigmoid(&mut self, p: &Path, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// Inverted dropout with drop probability `prob` in training, the identity in evaluation.
    fn dropout(&mut self, p: &Path, prob: f64, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// Max or average pooling over a (possibly strip-shaped) window.
    fn pool(&mut self, p: &Path, cfg: &Pool, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// PyTorch's `adaptive_avg_pool2d` on `[N, C, H, W]` to `[N, C, size[0], size[1]]`.
    /// `[1, 1]` is global average pooling, `[H, 1]` and `[1, W]` are strip pooling.
    fn adaptive_avg_pool(&mut self, p: &Path, size: [usize; 2], x: &Self::Tensor) -> Result<Self::Tensor>;

    /// Reshape every dimension but the batch (which is kept) to `dims`.
    fn reshape(&mut self, p: &Path, dims: &[usize], x: &Self::Tensor) -> Result<Self::Tensor>;

    /// Element-wise sum with broadcasting.
    fn add(&mut self, p: &Path, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// Element-wise product with broadcasting.
    fn mul(&mut self, p: &Path, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// Concatenation along `axis` (batch is axis 0).
    fn concat(&mut self, p: &Path, xs: &[&Self::Tensor], axis: usize) -> Result<Self::Tensor>;

    /// Bilinear resize of `[N, C, H, W]` to `size` with `align_corners = True`.
    fn resize_bilinear(&mut self, p: &Path, size: [usize; 2], x: &Self::Tensor) -> Result<Self::Tensor>;

    /// Flatten every dimension but the batch.
    fn flatten(&mut self, p: &Path, x: &Self::Tensor) -> Result<Self::Tensor> {
        let n = self.shape(x)[1..].iter().product::<usize>();
        self.reshape(p, &[n], x)
    }
}
