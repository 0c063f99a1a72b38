//! Layer configurations: plain data, serde-derived, with PyTorch's layouts and defaults.
//!
//! Each config knows the parameters it owns (names, shapes, initialisation) and the shape it
//! produces, so every backend (the shape walker, tch, ONNX) agrees on both without an engine.
//! Shapes always include the batch dimension first; a backend with a symbolic batch uses 1.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a parameter is initialised when a model is trained from scratch (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `U(-bound, bound)`: PyTorch's default for convolution and linear weights and biases,
    /// `bound = 1 / sqrt(fan_in)`.
    Uniform(f64),
    /// `N(0, std)`: Kaiming normal, as torchvision initialises ResNet convolutions.
    Normal(f64),
    Const(f64),
}

/// One tensor owned by a layer, named relative to the layer (`weight`, `running_mean`).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub leaf: &'static str,
    pub shape: Vec<usize>,
    /// Trainable parameters are counted in parameter totals; buffers (batch-norm statistics) are
    /// part of the state but not of the count, as in PyTorch's `parameters()`.
    pub trainable: bool,
    pub init: Init,
    /// An int64 counter (`num_batches_tracked`) rather than a float tensor.
    pub integer: bool,
}

impl ParamSpec {
    fn new(leaf: &'static str, shape: Vec<usize>, trainable: bool, init: Init) -> Self {
        ParamSpec { leaf, shape, trainable, init, integer: false }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// How a convolution's weight is initialised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvInit {
    /// PyTorch's default: Kaiming uniform with `a = sqrt(5)`.
    #[default]
    Default,
    /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, as torchvision's ResNet.
    KaimingFanOut,
}

/// A 2-D or 3-D convolution (the number of spatial dimensions is the kernel's length).
/// Weight layout `[out, in / groups, k...]` as in PyTorch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
    pub dilation: Vec<usize>,
    pub groups: usize,
    pub bias: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub init: ConvInit,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Conv {
    /// A convolution with stride 1, no padding, no dilation, one group and a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: &[usize]) -> Self {
        let ones = vec![1; kernel.len()];
        Conv {
            in_channels,
            out_channels,
            kernel: kernel.to_vec(),
            stride: ones.clone(),
            padding: vec![0; kernel.len()],
            dilation: ones,
            groups: 1,
            bias: true,
            init: ConvInit::Default,
        }
    }

    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = vec![stride; self.kernel.len()];
        self
    }

    pub fn padding(mut self, padding: &[usize]) -> Self {
        self.padding = padding.to_vec();
        self
    }

    /// The same padding on every side and every spatial dimension.
    pub fn pad(self, padding: usize) -> Self {
        let padding = vec![padding; self.kernel.len()];
        self.padding(&padding)
    }

    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }

    pub fn init(mut self, init: ConvInit) -> Self {
        self.init = init;
        self
    }

    pub fn spatial_dims(&self) -> usize {
        self.kernel.len()
    }

    fn fan_in(&self) -> usize {
        self.in_channels / self.groups * self.kernel.iter().product::<usize>()
    }

    pub fn params(&self) -> Vec<ParamSpec> {
        let mut shape = vec![self.out_channels, self.in_channels / self.groups];
        shape.extend(&self.kernel);
        let bound = 1.0 / (self.fan_in() as f64).sqrt();
        let weight_init = match self.init {
            ConvInit::Default => Init::Uniform(bound),
            ConvInit::KaimingFanOut => {
                let fan_out = self.out_channels * self.kernel.iter().product::<usize>();
                Init::Normal((2.0 / fan_out as f64).sqrt())
            }
        };
        let mut params = vec![ParamSpec::new("weight", shape, true, weight_init)];
        if self.bias {
            params.push(ParamSpec::new("bias", vec![self.out_channels], true, Init::Uniform(bound)));
        }
        params
    }

    pub fn validate(&self, layer: &str) -> Result<()> {
        let n = self.kernel.len();
        if !(1..=3).contains(&n) {
            return Err(Error::shape(layer, format!("convolutions have 1 to 3 spatial dimensions, got {n}")));
        }
        if [&self.stride, &self.padding, &self.dilation].iter().any(|v| v.len() != n) {
            return Err(Error::shape(layer, "kernel, stride, padding and dilation need the same length"));
        }
        if self.groups == 0 || self.in_channels % self.groups != 0 || self.out_channels % self.groups != 0 {
            return Err(Error::shape(
                layer,
                format!("{} groups do not divide {} -> {} channels", self.groups, self.in_channels, self.out_channels),
            ));
        }
        if self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err(Error::shape(layer, "kernel, stride and dilation must be positive"));
        }
        Ok(())
    }

    pub fn output_shape(&self, layer: &str, input: &[usize]) -> Result<Vec<usize>> {
        self.validate(layer)?;
        let n = self.kernel.len();
        expect_rank(layer, input, n + 2)?;
        if input[1] != self.in_channels {
            return Err(Error::shape(layer, format!("expects {} input channels, got {}", self.in_channels, input[1])));
        }
        let mut out = vec![input[0], self.out_channels];
        for d in 0..n {
            let size = window_output(input[d + 2], self.kernel[d], self.stride[d], self.padding[d], self.dilation[d])
                .ok_or_else(|| {
                Error::shape(layer, format!("input {:?} is smaller than the kernel {:?}", &input[2..], self.kernel))
            })?;
            out.push(size);
        }
        Ok(out)
    }
}

/// `floor((size + 2 pad - dilation (kernel - 1) - 1) / stride) + 1`, or `None` when the window
/// does not fit.
fn window_output(size: usize, kernel: usize, stride: usize, pad: usize, dilation: usize) -> Option<usize> {
    let span = dilation * (kernel - 1) + 1;
    let padded = size + 2 * pad;
    (padded >= span).then(|| (padded - span) / stride + 1)
}

fn expect_rank(layer: &str, input: &[usize], rank: usize) -> Result<()> {
    if input.len() != rank {
        return Err(Error::shape(layer, format!("expects a rank-{rank} input, got shape {input:?}")));
    }
    Ok(())
}

/// Batch normalisation over the channel dimension (axis 1) of a 2-D or 3-D feature map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    pub features: usize,
    pub eps: f64,
    pub momentum: f64,
}

impl BatchNorm {
    /// PyTorch's defaults: `eps = 1e-5`, `momentum = 0.1`.
    pub fn new(features: usize) -> Self {
        BatchNorm { features, eps: 1e-5, momentum: 0.1 }
    }

    pub fn params(&self) -> Vec<ParamSpec> {
        let c = vec![self.features];
        vec![
            ParamSpec::new("weight", c.clone(), true, Init::Const(1.0)),
            ParamSpec::new("bias", c.clone(), true, Init::Const(0.0)),
            ParamSpec::new("running_mean", c.clone(), false, Init::Const(0.0)),
            ParamSpec::new("running_var", c, false, Init::Const(1.0)),
            // PyTorch keeps this counter in the state dict; it only matters with momentum=None.
            ParamSpec { integer: true, ..ParamSpec::new("num_batches_tracked", vec![], false, Init::Const(0.0)) },
        ]
    }

    pub fn output_shape(&self, layer: &str, input: &[usize]) -> Result<Vec<usize>> {
        if input.len() < 3 || input[1] != self.features {
            return Err(Error::shape(
                layer,
                format!("expects {} channels on axis 1, got shape {input:?}", self.features),
            ));
        }
        Ok(input.to_vec())
    }
}

/// A fully connected layer, `y = x W^T + b`, weight layout `[out, in]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
}

impl Linear {
    pub fn new(in_features: usize, out_features: usize) -> Self {
        Linear { in_features, out_features, bias: true }
    }

    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }

    pub fn params(&self) -> Vec<ParamSpec> {
        let bound = 1.0 / (self.in_features as f64).sqrt();
        let mut params =
            vec![ParamSpec::new("weight", vec![self.out_features, self.in_features], true, Init::Uniform(bound))];
        if self.bias {
            params.push(ParamSpec::new("bias", vec![self.out_features], true, Init::Uniform(bound)));
        }
        params
    }

    pub fn output_shape(&self, layer: &str, input: &[usize]) -> Result<Vec<usize>> {
        expect_rank(layer, input, 2)?;
        if input[1] != self.in_features {
            return Err(Error::shape(layer, format!("expects {} features, got {}", self.in_features, input[1])));
        }
        Ok(vec![input[0], self.out_features])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    Max,
    Avg,
}

/// Max or average pooling over a window, 2-D or 3-D. Strip windows (`H x 1`, `1 x W`) are plain
/// windows with one side 1. Average pooling counts padding in its divisor, as PyTorch's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
}

impl Pool {
    /// A pool whose stride equals its kernel and without padding.
    pub fn new(kind: PoolKind, kernel: &[usize]) -> Self {
        Pool { kind, kernel: kernel.to_vec(), stride: kernel.to_vec(), padding: vec![0; kernel.len()] }
    }

    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = vec![stride; self.kernel.len()];
        self
    }

    pub fn pad(mut self, padding: usize) -> Self {
        self.padding = vec![padding; self.kernel.len()];
        self
    }

    pub fn output_shape(&self, layer: &str, input: &[usize]) -> Result<Vec<usize>> {
        let n = self.kernel.len();
        expect_rank(layer, input, n + 2)?;
        if self.kernel.contains(&0) || self.stride.contains(&0) {
            return Err(Error::shape(layer, "pooling kernel and stride must be positive"));
        }
        if self.padding.iter().zip(&self.kernel).any(|(p, k)| 2 * p > *k) {
            return Err(Error::shape(layer, "pooling padding must be at most half the kernel"));
        }
        let mut out = input[..2].to_vec();
        for d in 0..n {
            let size =
                window_output(input[d + 2], self.kernel[d], self.stride[d], self.padding[d], 1).ok_or_else(|| {
                    Error::shape(layer, format!("input {:?} is smaller than the window {:?}", &input[2..], self.kernel))
                })?;
            out.push(size);
        }
        Ok(out)
    }
}

/// The `[start, end)` input range that PyTorch's adaptive average pooling averages for output
/// index `i`: `floor(i * input / output)` to `ceil((i + 1) * input / output)`.
pub fn adaptive_bin(i: usize, input: usize, output: usize) -> (usize, usize) {
    (i * input / output, ((i + 1) * input).div_ceil(output))
}

/// Broadcasting of two shapes (NumPy rules, aligned at the right).
pub fn broadcast_shapes(layer: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(Error::shape(layer, format!("shapes {a:?} and {b:?} do not broadcast"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_output_follows_pytorch_formula() {
        let conv = Conv::new(3, 64, &[7, 7]).stride(2).pad(3).no_bias();
        assert_eq!(conv.output_shape("c", &[1, 3, 224, 224]).unwrap(), vec![1, 64, 112, 112]);
        let conv3d = Conv::new(1, 8, &[7, 3, 3]);
        assert_eq!(conv3d.output_shape("c", &[2, 1, 30, 25, 25]).unwrap(), vec![2, 8, 24, 23, 23]);
    }

    #[test]
    fn conv_rejects_inputs_smaller_than_kernel() {
        let err = Conv::new(1, 8, &[7, 3, 3]).output_shape("conv1", &[1, 1, 5, 25, 25]).unwrap_err();
        assert!(err.to_string().starts_with("conv1: input [5, 25, 25] is smaller"), "{err}");
    }

    #[test]
    fn max_pool_with_padding() {
        let pool = Pool::new(PoolKind::Max, &[3, 3]).stride(2).pad(1);
        assert_eq!(pool.output_shape("p", &[1, 64, 112, 112]).unwrap(), vec![1, 64, 56, 56]);
    }

    #[test]
    fn adaptive_bins_cover_the_input() {
        // 17 -> 12 overlaps, 17 -> 20 repeats: the bins must start at 0, end at 17 and never shrink.
        for output in [1, 5, 12, 17, 20] {
            let bins: Vec<_> = (0..output).map(|i| adaptive_bin(i, 17, output)).collect();
            assert_eq!(bins[0].0, 0);
            assert_eq!(bins[output - 1].1, 17);
            assert!(bins.iter().all(|(s, e)| e > s));
        }
        assert_eq!(adaptive_bin(1, 17, 12), (1, 3));
    }

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes("a", &[1, 8, 5, 1], &[1, 8, 1, 7]).unwrap(), vec![1, 8, 5, 7]);
        assert_eq!(broadcast_shapes("a", &[2, 8, 5, 5], &[8, 1, 1]).unwrap(), vec![2, 8, 5, 5]);
        assert!(broadcast_shapes("a", &[2, 3], &[4]).is_err());
    }
}
