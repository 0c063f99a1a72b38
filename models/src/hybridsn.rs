//! HybridSN: Roy, Krishna, Dubey, Chaudhuri, "HybridSN: Exploring 3-D-2-D CNN Feature Hierarchy
//! for Hyperspectral Image Classification", IEEE GRSL 17(2), 2020.
//!
//! Three 3-D convolutions learn joint spectral-spatial features, a reshape folds the spectral
//! depth into channels, a 2-D convolution refines them spatially, and three fully connected
//! layers classify the centre pixel of the window.

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Path};
use crate::blocks::{MixedPooling, SeBlock, StripPooling};
use crate::layers::{BatchNorm, Conv, Linear};
use crate::{Error, Result};

/// The attention or pooling module placed on the 2-D feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpatialModule {
    /// Strip pooling module (`-sp`).
    Spm,
    /// Mixed pooling module (`-mpm`).
    Mpm,
}

/// Which additions to the plain network are switched on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HybridSnVariant {
    /// Batch norm after each convolution, before its ReLU (`-bn`).
    #[serde(default)]
    pub batch_norm: bool,
    /// SE blocks (r = 16) after the 3-D -> 2-D reshape and after the 2-D convolution (`-se`).
    #[serde(default)]
    pub se: bool,
    /// A strip or mixed pooling module on the 2-D feature map (`-sp`, `-mpm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spatial: Option<SpatialModule>,
}

impl HybridSnVariant {
    /// The suffix of the model name: `""`, `"-bn"`, `"-bn-se"`, `"-sp"`...
    pub fn suffix(&self) -> String {
        let mut s = String::new();
        if self.batch_norm {
            s.push_str("-bn");
        }
        if self.se {
            s.push_str("-se");
        }
        match self.spatial {
            Some(SpatialModule::Spm) => s.push_str("-sp"),
            Some(SpatialModule::Mpm) => s.push_str("-mpm"),
            None => {}
        }
        s
    }

    /// True when every layer is translation-equivariant over the window (no pooling over it), so
    /// the fully connected layers can be rewritten as convolutions and run over a whole scene.
    pub fn is_dense_capable(&self) -> bool {
        !self.se && self.spatial.is_none()
    }
}

/// HybridSN for `bands` spectral components, `window x window` patches and `classes` classes.
///
/// # Shapes
/// Input `[N, 1, bands, window, window]`, output logits `[N, classes]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HybridSnConfig {
    pub bands: usize,
    pub window: usize,
    pub classes: usize,
    #[serde(default)]
    pub variant: HybridSnVariant,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

fn default_dropout() -> f64 {
    0.4
}

/// Output channels and kernels (depth, height, width) of the three 3-D convolutions.
const CONV3D: [(usize, [usize; 3]); 3] = [(8, [7, 3, 3]), (16, [5, 3, 3]), (32, [3, 3, 3])];
const CONV2D_CHANNELS: usize = 64;
const FC: [usize; 2] = [256, 128];
/// Pyramid pool sizes of the mixed pooling module on HybridSN's small (17 x 17) feature map; the
/// paper's 20 and 12 are meant for maps of about 96 x 96.
const MPM_POOLS: [usize; 2] = [6, 3];

impl HybridSnConfig {
    /// Indian Pines as in the paper: 30 PCA components, 25 x 25 windows, 16 classes.
    pub fn indian_pines() -> Self {
        HybridSnConfig { bands: 30, window: 25, classes: 16, variant: HybridSnVariant::default(), dropout: 0.4 }
    }

    pub fn name(&self) -> String {
        format!("hybridsn{}", self.variant.suffix())
    }

    pub fn input_shape(&self) -> Vec<usize> {
        vec![1, self.bands, self.window, self.window]
    }

    pub fn validate(&self) -> Result<()> {
        if self.classes < 2 {
            return Err(Error::config("classes", format!("{} classes: a classifier needs at least 2", self.classes)));
        }
        // The 3-D convolutions consume 6 + 4 + 2 spectral components; the four 3x3 convolutions
        // 8 pixels of the window.
        let min_bands = 1 + CONV3D.iter().map(|(_, k)| k[0] - 1).sum::<usize>();
        if self.bands < min_bands {
            return Err(Error::config(
                "bands",
                format!("{} bands: HybridSN's 3-D kernels need at least {min_bands}", self.bands),
            ));
        }
        let min_window = 1 + 2 * (CONV3D.len() + 1);
        if self.window < min_window {
            return Err(Error::config(
                "window",
                format!("{} pixels: HybridSN's kernels need a window of at least {min_window}", self.window),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", format!("{} is not in [0, 1)", self.dropout)));
        }
        Ok(())
    }

    /// The network up to the 2-D feature map `[N, 64, h, w]` (after its attention modules).
    pub fn features<B: Backend>(&self, b: &mut B, input: &B::Tensor) -> Result<B::Tensor> {
        self.validate()?;
        let root = Path::root();
        let v = self.variant;
        let shape = b.shape(input);
        if shape.len() != 5 || shape[1] != 1 {
            return Err(Error::shape("input", format!("HybridSN takes [N, 1, bands, window, window], got {shape:?}")));
        }
        let (first, kernel) = CONV3D[0];
        let mut x = self.conv_unit(b, &root, 1, &Conv::new(1, first, &kernel), input)?;
        for n in 2..=CONV3D.len() {
            let (out, kernel) = CONV3D[n - 1];
            x = self.conv_unit(b, &root, n, &Conv::new(CONV3D[n - 2].0, out, &kernel), &x)?;
        }
        let s = b.shape(&x);
        let folded = s[1] * s[2];
        x = b.reshape(&(&root / "reshape"), &[folded, s[3], s[4]], &x)?;
        if v.se {
            x = SeBlock::new(folded).forward(b, &(&root / "se1"), &x)?;
        }
        x = self.conv_unit(b, &root, 4, &Conv::new(folded, CONV2D_CHANNELS, &[3, 3]), &x)?;
        if v.se {
            x = SeBlock::new(CONV2D_CHANNELS).forward(b, &(&root / "se2"), &x)?;
        }
        match v.spatial {
            Some(SpatialModule::Spm) => StripPooling { channels: CONV2D_CHANNELS }.forward(b, &(&root / "spm"), &x),
            Some(SpatialModule::Mpm) => {
                MixedPooling { channels: CONV2D_CHANNELS, pools: MPM_POOLS }.forward(b, &(&root / "mpm"), &x)
            }
            None => Ok(x),
        }
    }

    /// The whole network: features, then `fc1`, `fc2` (each with ReLU and dropout) and `fc3`.
    pub fn forward<B: Backend>(&self, b: &mut B, x: &B::Tensor) -> Result<B::Tensor> {
        let root = Path::root();
        let x = self.features(b, x)?;
        let mut x = b.flatten(&(&root / "flatten"), &x)?;
        let mut features = b.shape(&x)[1];
        for (i, width) in FC.iter().enumerate() {
            let n = i + 1;
            x = b.linear(&(&root / format!("fc{n}")), &Linear::new(features, *width), &x)?;
            x = b.relu(&(&root / format!("fc{n}_relu")), &x)?;
            x = b.dropout(&(&root / format!("dropout{n}")), self.dropout, &x)?;
            features = *width;
        }
        b.linear(&(&root / "fc3"), &Linear::new(features, self.classes), &x)
    }

    /// Convolution `conv{n}`, batch norm `bn{n}` in the BN variants, ReLU.
    fn conv_unit<B: Backend>(&self, b: &mut B, root: &Path, n: usize, conv: &Conv, x: &B::Tensor) -> Result<B::Tensor> {
        let mut y = b.conv(&(root / format!("conv{n}")), conv, x)?;
        if self.variant.batch_norm {
            y = b.batch_norm(&(root / format!("bn{n}")), &BatchNorm::new(conv.out_channels), &y)?;
        }
        b.relu(&(root / format!("relu{n}")), &y)
    }
}
