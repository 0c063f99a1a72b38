//! Reusable attention and pooling blocks.
//!
//! - Squeeze-and-Excitation: Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018.
//! - Strip pooling (SPM) and mixed pooling (MPM): Hou, Zhang, Cheng, Feng, "Strip Pooling:
//!   Rethinking Spatial Pooling for Scene Parsing", CVPR 2020.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::backend::{Backend, Path};
use crate::layers::{BatchNorm, Conv, Linear};

/// Convolution, then batch normalisation, then optionally ReLU: the unit most blocks are made of.
/// The convolution is `{conv}`, the norm `{bn}`, both under `p`.
pub fn conv_bn<B: Backend>(
    b: &mut B,
    p: &Path,
    (conv_name, bn_name): (&str, &str),
    conv: &Conv,
    relu: bool,
    x: &B::Tensor,
) -> Result<B::Tensor> {
    let y = b.conv(&(p / conv_name), conv, x)?;
    let y = b.batch_norm(&(p / bn_name), &BatchNorm::new(conv.out_channels), &y)?;
    if relu { b.relu(&(p / format!("{conv_name}_relu")), &y) } else { Ok(y) }
}

/// Squeeze-and-Excitation: global average pool, `fc1` (C -> C/r, no bias), ReLU, `fc2`
/// (C/r -> C, no bias), sigmoid, and the input scaled channel by channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeBlock {
    pub channels: usize,
    pub reduction: usize,
}

impl SeBlock {
    pub fn new(channels: usize) -> Self {
        SeBlock { channels, reduction: 16 }
    }

    pub fn hidden(&self) -> usize {
        (self.channels / self.reduction).max(1)
    }

    /// # Shapes
    /// `[N, C, H, W] -> [N, C, H, W]`.
    pub fn forward<B: Backend>(&self, b: &mut B, p: &Path, x: &B::Tensor) -> Result<B::Tensor> {
        let c = self.channels;
        let s = b.adaptive_avg_pool(&(p / "pool"), [1, 1], x)?;
        let s = b.reshape(&(p / "squeeze"), &[c], &s)?;
        let s = b.linear(&(p / "fc1"), &Linear::new(c, self.hidden()).no_bias(), &s)?;
        let s = b.relu(&(p / "relu"), &s)?;
        let s = b.linear(&(p / "fc2"), &Linear::new(self.hidden(), c).no_bias(), &s)?;
        let s = b.sigmoid(&(p / "sigmoid"), &s)?;
        let s = b.reshape(&(p / "excite"), &[c, 1, 1], &s)?;
        b.mul(&(p / "scale"), x, &s)
    }
}

/// The strip pooling module (SPM): average pools to `H x 1` and `1 x W`, a `(3, 1)` and a `(1, 3)`
/// convolution without bias each followed by batch norm, the two broadcast back to `H x W` and
/// summed, ReLU, a 1x1 convolution with bias, sigmoid, and the input multiplied by the result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StripPooling {
    pub channels: usize,
}

impl StripPooling {
    /// # Shapes
    /// `[N, C, H, W] -> [N, C, H, W]`.
    pub fn forward<B: Backend>(&self, b: &mut B, p: &Path, x: &B::Tensor) -> Result<B::Tensor> {
        let c = self.channels;
        let shape = b.shape(x);
        let (h, w) = (shape[2], shape[3]);
        let column = b.adaptive_avg_pool(&(p / "pool_h"), [h, 1], x)?;
        let column =
            conv_bn(b, p, ("conv1", "bn1"), &Conv::new(c, c, &[3, 1]).padding(&[1, 0]).no_bias(), false, &column)?;
        let row = b.adaptive_avg_pool(&(p / "pool_w"), [1, w], x)?;
        let row = conv_bn(b, p, ("conv2", "bn2"), &Conv::new(c, c, &[1, 3]).padding(&[0, 1]).no_bias(), false, &row)?;
        // [N, C, H, 1] + [N, C, 1, W] broadcasts to [N, C, H, W], as PyTorch's `expand` then add.
        let both = b.add(&(p / "fuse"), &column, &row)?;
        let both = b.relu(&(p / "relu"), &both)?;
        let gate = b.conv(&(p / "conv3"), &Conv::new(c, c, &[1, 1]), &both)?;
        let gate = b.sigmoid(&(p / "sigmoid"), &gate)?;
        b.mul(&(p / "scale"), x, &gate)
    }
}

/// The mixed pooling module (MPM): two 1x1 reductions to C/4; a pyramid branch (a 3x3
/// convolution, and adaptive average pools to `pools[0]` and `pools[1]` each followed by a 3x3
/// convolution and a bilinear resize back, summed, ReLU, 3x3 convolution) and a strip branch
/// (`1 x W` and `H x 1` pools with `(1, 3)` and `(3, 1)` convolutions, resized back, summed,
/// ReLU, 3x3 convolution); the two concatenated, a 1x1 convolution back to C, the input added,
/// ReLU. Every convolution is followed by batch norm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixedPooling {
    pub channels: usize,
    /// Output sizes of the two pyramid pools (20 and 12 in the paper).
    pub pools: [usize; 2],
}

impl MixedPooling {
    /// # Shapes
    /// `[N, C, H, W] -> [N, C, H, W]`.
    pub fn forward<B: Backend>(&self, b: &mut B, p: &Path, x: &B::Tensor) -> Result<B::Tensor> {
        let c = self.channels;
        let mid = (c / 4).max(1);
        let shape = b.shape(x);
        let (h, w) = (shape[2], shape[3]);
        let c3 = || Conv::new(mid, mid, &[3, 3]).pad(1).no_bias();

        let x1 = conv_bn(b, p, ("conv1_1", "bn1_1"), &Conv::new(c, mid, &[1, 1]).no_bias(), true, x)?;
        let x2 = conv_bn(b, p, ("conv1_2", "bn1_2"), &Conv::new(c, mid, &[1, 1]).no_bias(), true, x)?;

        // Pyramid branch on x1.
        let local = conv_bn(b, p, ("conv2_0", "bn2_0"), &c3(), false, &x1)?;
        let mut pyramid = local;
        for (i, size) in self.pools.iter().enumerate() {
            let name = |what: &str| format!("{what}2_{}", i + 1);
            let y = b.adaptive_avg_pool(&(p / name("pool")), [*size, *size], &x1)?;
            let y = conv_bn(b, p, (&name("conv"), &name("bn")), &c3(), false, &y)?;
            let y = b.resize_bilinear(&(p / name("resize")), [h, w], &y)?;
            pyramid = b.add(&(p / name("sum")), &pyramid, &y)?;
        }
        let pyramid = b.relu(&(p / "pyramid_relu"), &pyramid)?;
        let pyramid = conv_bn(b, p, ("conv2_5", "bn2_5"), &c3(), true, &pyramid)?;

        // Strip branch on x2.
        let row = b.adaptive_avg_pool(&(p / "pool2_3"), [1, w], &x2)?;
        let row =
            conv_bn(b, p, ("conv2_3", "bn2_3"), &Conv::new(mid, mid, &[1, 3]).padding(&[0, 1]).no_bias(), false, &row)?;
        let row = b.resize_bilinear(&(p / "resize2_3"), [h, w], &row)?;
        let column = b.adaptive_avg_pool(&(p / "pool2_4"), [h, 1], &x2)?;
        let column = conv_bn(
            b,
            p,
            ("conv2_4", "bn2_4"),
            &Conv::new(mid, mid, &[3, 1]).padding(&[1, 0]).no_bias(),
            false,
            &column,
        )?;
        let column = b.resize_bilinear(&(p / "resize2_4"), [h, w], &column)?;
        let strip = b.add(&(p / "strip_sum"), &row, &column)?;
        let strip = b.relu(&(p / "strip_relu"), &strip)?;
        let strip = conv_bn(b, p, ("conv2_6", "bn2_6"), &c3(), true, &strip)?;

        let both = b.concat(&(p / "concat"), &[&pyramid, &strip], 1)?;
        let out = conv_bn(b, p, ("conv3", "bn3"), &Conv::new(2 * mid, c, &[1, 1]).no_bias(), false, &both)?;
        let out = b.add(&(p / "residual"), x, &out)?;
        b.relu(&(p / "relu"), &out)
    }
}
