//! ResNet: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, in
//! torchvision's form (stride on the 3x3 convolution of bottlenecks, "ResNet v1.5"), with
//! torchvision's parameter names, so torchvision `state_dict`s load without renaming.
//!
//! Options: SE blocks in every residual block (SE-ResNet, Hu et al., CVPR 2018), and strip
//! pooling modules placed as in SPNet (Hou et al., CVPR 2020): after the 3x3 convolution of every
//! `layer4` block and of the last block of `layer1`..`layer3`.

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Path};
use crate::blocks::{SeBlock, StripPooling};
use crate::layers::{BatchNorm, Conv, ConvInit, Linear, Pool, PoolKind};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34).
    Basic,
    /// 1x1, 3x3, 1x1 with four-fold expansion (ResNet-50 and deeper).
    Bottleneck,
}

impl BlockKind {
    fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// # Shapes
/// Input `[N, 3, image_size, image_size]` (normalised RGB), output logits `[N, classes]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    pub depth: usize,
    pub classes: usize,
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    #[serde(default)]
    pub se: bool,
    #[serde(default)]
    pub spm: bool,
}

fn default_image_size() -> usize {
    224
}

/// Smallest input for which every stage keeps at least one pixel (five halvings).
const MIN_IMAGE_SIZE: usize = 32;

impl ResNetConfig {
    pub fn new(depth: usize, classes: usize) -> Self {
        ResNetConfig { depth, classes, image_size: 224, se: false, spm: false }
    }

    pub fn resnet18(classes: usize) -> Self {
        Self::new(18, classes)
    }

    pub fn resnet34(classes: usize) -> Self {
        Self::new(34, classes)
    }

    pub fn resnet50(classes: usize) -> Self {
        Self::new(50, classes)
    }

    /// Block type and blocks per stage for the supported depths.
    pub fn layout(&self) -> Result<(BlockKind, [usize; 4])> {
        Ok(match self.depth {
            18 => (BlockKind::Basic, [2, 2, 2, 2]),
            34 => (BlockKind::Basic, [3, 4, 6, 3]),
            50 => (BlockKind::Bottleneck, [3, 4, 6, 3]),
            101 => (BlockKind::Bottleneck, [3, 4, 23, 3]),
            152 => (BlockKind::Bottleneck, [3, 8, 36, 3]),
            d => return Err(Error::config("depth", format!("ResNet-{d} does not exist (18, 34, 50, 101, 152)"))),
        })
    }

    pub fn name(&self) -> String {
        let mut prefix = String::new();
        if self.se {
            prefix.push_str("se-");
        }
        if self.spm {
            prefix.push_str("sp-");
        }
        format!("{prefix}resnet{}", self.depth)
    }

    pub fn input_shape(&self) -> Vec<usize> {
        vec![3, self.image_size, self.image_size]
    }

    pub fn validate(&self) -> Result<()> {
        self.layout()?;
        if self.classes < 2 {
            return Err(Error::config("classes", format!("{} classes: a classifier needs at least 2", self.classes)));
        }
        if self.image_size < MIN_IMAGE_SIZE {
            return Err(Error::config(
                "image size",
                format!("{} pixels: ResNet needs at least {MIN_IMAGE_SIZE}", self.image_size),
            ));
        }
        Ok(())
    }

    pub fn forward<B: Backend>(&self, b: &mut B, x: &B::Tensor) -> Result<B::Tensor> {
        self.validate()?;
        let (kind, blocks) = self.layout()?;
        let root = Path::root();
        let stem = Conv::new(3, 64, &[7, 7]).stride(2).pad(3).no_bias().init(ConvInit::KaimingFanOut);
        let mut x = b.conv(&(&root / "conv1"), &stem, x)?;
        x = b.batch_norm(&(&root / "bn1"), &BatchNorm::new(64), &x)?;
        x = b.relu(&(&root / "relu"), &x)?;
        x = b.pool(&(&root / "maxpool"), &Pool::new(PoolKind::Max, &[3, 3]).stride(2).pad(1), &x)?;

        let mut inplanes = 64;
        for (stage, &count) in blocks.iter().enumerate() {
            let planes = 64 << stage;
            let layer = &root / format!("layer{}", stage + 1);
            for i in 0..count {
                let block = Block {
                    kind,
                    inplanes,
                    planes,
                    stride: if stage > 0 && i == 0 { 2 } else { 1 },
                    se: self.se,
                    spm: self.spm && (stage == 3 || i == count - 1),
                };
                x = block.forward(b, &(&layer / i), &x)?;
                inplanes = planes * kind.expansion();
            }
        }
        x = b.adaptive_avg_pool(&(&root / "avgpool"), [1, 1], &x)?;
        x = b.flatten(&(&root / "flatten"), &x)?;
        b.linear(&(&root / "fc"), &Linear::new(inplanes, self.classes), &x)
    }
}

/// One residual block, named as torchvision names it.
struct Block {
    kind: BlockKind,
    inplanes: usize,
    planes: usize,
    stride: usize,
    se: bool,
    spm: bool,
}

impl Block {
    fn forward<B: Backend>(&self, b: &mut B, p: &Path, x: &B::Tensor) -> Result<B::Tensor> {
        let conv = |i, o, k: usize| Conv::new(i, o, &[k, k]).pad(k / 2).no_bias().init(ConvInit::KaimingFanOut);
        let out_channels = self.planes * self.kind.expansion();
        // (conv, batch norm) pairs; the strip pooling module follows the 3x3 convolution that
        // keeps the block's width: the first of a basic block, the second of a bottleneck.
        let units: Vec<Conv> = match self.kind {
            BlockKind::Basic => {
                vec![conv(self.inplanes, self.planes, 3).stride(self.stride), conv(self.planes, self.planes, 3)]
            }
            BlockKind::Bottleneck => vec![
                conv(self.inplanes, self.planes, 1),
                conv(self.planes, self.planes, 3).stride(self.stride),
                conv(self.planes, out_channels, 1),
            ],
        };
        let spm_after = match self.kind {
            BlockKind::Basic => 0,
            BlockKind::Bottleneck => 1,
        };
        let last = units.len() - 1;
        let mut y = b.conv(&(p / "conv1"), &units[0], x)?;
        for (i, unit) in units.iter().enumerate() {
            let n = i + 1;
            if i > 0 {
                y = b.conv(&(p / format!("conv{n}")), unit, &y)?;
            }
            y = b.batch_norm(&(p / format!("bn{n}")), &BatchNorm::new(unit.out_channels), &y)?;
            if i < last {
                y = b.relu(&(p / format!("relu{n}")), &y)?;
            }
            if self.spm && i == spm_after {
                y = StripPooling { channels: unit.out_channels }.forward(b, &(p / "spm"), &y)?;
            }
        }
        if self.se {
            y = SeBlock::new(out_channels).forward(b, &(p / "se"), &y)?;
        }
        let sum = if self.stride != 1 || self.inplanes != out_channels {
            let down = p / "downsample";
            let conv = conv(self.inplanes, out_channels, 1).stride(self.stride);
            let s = b.conv(&(&down / 0), &conv, x)?;
            let s = b.batch_norm(&(&down / 1), &BatchNorm::new(out_channels), &s)?;
            b.add(&(p / "add"), &y, &s)?
        } else {
            b.add(&(p / "add"), &y, x)?
        };
        b.relu(&(p / "relu"), &sum)
    }
}
