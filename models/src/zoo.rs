//! The model zoo: every architecture behind one serde-tagged config, and the names users type.

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Path};
use crate::blocks::{MixedPooling, SeBlock, StripPooling};
use crate::hybridsn::{HybridSnConfig, HybridSnVariant, SpatialModule};
use crate::resnet::ResNetConfig;
use crate::{Error, Result};

/// What a model's input is, which decides how data reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Hyperspectral pixel classification from windows of a scene.
    Scene,
    /// Image classification.
    Image,
    /// A block alone: feature map in, feature map out.
    Features,
}

/// A reusable block on its own, for tests and export checks of the block itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "block", rename_all = "snake_case")]
pub enum BlockConfig {
    Se { channels: usize, size: usize },
    Spm { channels: usize, size: usize },
    Mpm { channels: usize, size: usize, pools: [usize; 2] },
}

impl BlockConfig {
    fn channels_and_size(&self) -> (usize, usize) {
        match *self {
            BlockConfig::Se { channels, size }
            | BlockConfig::Spm { channels, size }
            | BlockConfig::Mpm { channels, size, .. } => (channels, size),
        }
    }
}

/// Every architecture Prism knows, as saved in a run's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum ModelConfig {
    #[serde(rename = "hybridsn")]
    HybridSn(HybridSnConfig),
    #[serde(rename = "resnet")]
    ResNet(ResNetConfig),
    Block(BlockConfig),
}

/// Overrides of a named model's defaults, as given on a command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelOptions {
    pub classes: Option<usize>,
    /// Spectral components (HybridSN) or channels (blocks).
    pub bands: Option<usize>,
    /// Window side (HybridSN) or feature-map side (blocks).
    pub window: Option<usize>,
    /// Image side (ResNet).
    pub image_size: Option<usize>,
}

/// The largest class count, band count or side a configuration may name: far beyond any real
/// scene or photo, and small enough that shapes and parameter counts cannot overflow.
pub const MAX_DIM: usize = 1 << 16;

/// Every name [`ModelConfig::from_name`] accepts, as a pattern: for help texts and errors.
pub const MODEL_PATTERNS: &str = "hybridsn[-bn][-se][-sp|-mpm], [se-][sp-]resnet{18,34,50,101,152}, block-{se,spm,mpm}";

/// One name of each kind [`ModelConfig::from_name`] accepts: what the tests build.
pub const MODEL_NAMES: &[&str] = &[
    "hybridsn",
    "hybridsn-bn",
    "hybridsn-se",
    "hybridsn-bn-se",
    "hybridsn-sp",
    "hybridsn-bn-sp",
    "hybridsn-mpm",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "se-resnet18",
    "se-resnet50",
    "sp-resnet18",
    "sp-resnet50",
    "block-se",
    "block-spm",
    "block-mpm",
];

impl ModelConfig {
    /// Builds a model from its name (`hybridsn-bn-se`, `se-resnet50`, `block-mpm`...) and the
    /// options that override its defaults: Indian Pines for HybridSN (30 bands, 25 x 25 windows,
    /// 16 classes), ImageNet for ResNet (224 x 224, 1000 classes).
    ///
    /// # Errors
    /// An unknown name, an option that does not apply to the model, or a configuration that
    /// cannot work (zero classes, a window too small for the kernels).
    pub fn from_name(name: &str, options: &ModelOptions) -> Result<Self> {
        let unknown = || Error::UnknownModel { name: name.to_string(), known: MODEL_PATTERNS.to_string() };
        let lower = name.to_ascii_lowercase();
        let config = if let Some(rest) = lower.strip_prefix("hybridsn") {
            let mut variant = HybridSnVariant::default();
            for part in rest.split('-').filter(|p| !p.is_empty()) {
                match part {
                    "bn" if !variant.batch_norm => variant.batch_norm = true,
                    "se" if !variant.se => variant.se = true,
                    "sp" | "spm" if variant.spatial.is_none() => variant.spatial = Some(SpatialModule::Spm),
                    "mpm" if variant.spatial.is_none() => variant.spatial = Some(SpatialModule::Mpm),
                    _ => return Err(unknown()),
                }
            }
            if !rest.is_empty() && !rest.starts_with('-') {
                return Err(unknown());
            }
            let preset = HybridSnConfig::indian_pines();
            reject(name, "image size", options.image_size)?;
            ModelConfig::HybridSn(HybridSnConfig {
                bands: options.bands.unwrap_or(preset.bands),
                window: options.window.unwrap_or(preset.window),
                classes: options.classes.unwrap_or(preset.classes),
                variant,
                dropout: preset.dropout,
            })
        } else if let Some(rest) = lower.strip_prefix("block-") {
            reject(name, "classes", options.classes)?;
            reject(name, "image size", options.image_size)?;
            let channels = options.bands.unwrap_or(64);
            let size = options.window.unwrap_or(17);
            ModelConfig::Block(match rest {
                "se" => BlockConfig::Se { channels, size },
                "spm" | "sp" => BlockConfig::Spm { channels, size },
                "mpm" => BlockConfig::Mpm { channels, size, pools: [20, 12] },
                _ => return Err(unknown()),
            })
        } else {
            let mut rest = lower.as_str();
            let (mut se, mut spm) = (false, false);
            loop {
                if let Some(r) = rest.strip_prefix("se-").filter(|_| !se) {
                    se = true;
                    rest = r;
                } else if let Some(r) = rest.strip_prefix("sp-").filter(|_| !spm) {
                    spm = true;
                    rest = r;
                } else {
                    break;
                }
            }
            let depth = rest.strip_prefix("resnet").and_then(|d| d.parse::<usize>().ok()).ok_or_else(unknown)?;
            reject(name, "bands", options.bands)?;
            reject(name, "window", options.window)?;
            ModelConfig::ResNet(ResNetConfig {
                depth,
                classes: options.classes.unwrap_or(1000),
                image_size: options.image_size.unwrap_or(224),
                se,
                spm,
            })
        };
        config.validate()?;
        Ok(config)
    }

    /// The canonical name (`hybridsn-bn-se`, `se-resnet50`).
    pub fn name(&self) -> String {
        match self {
            ModelConfig::HybridSn(c) => c.name(),
            ModelConfig::ResNet(c) => c.name(),
            ModelConfig::Block(BlockConfig::Se { .. }) => "block-se".into(),
            ModelConfig::Block(BlockConfig::Spm { .. }) => "block-spm".into(),
            ModelConfig::Block(BlockConfig::Mpm { .. }) => "block-mpm".into(),
        }
    }

    pub fn task(&self) -> Task {
        match self {
            ModelConfig::HybridSn(_) => Task::Scene,
            ModelConfig::ResNet(_) => Task::Image,
            ModelConfig::Block(_) => Task::Features,
        }
    }

    /// Number of classes, `None` for a block alone.
    pub fn classes(&self) -> Option<usize> {
        match self {
            ModelConfig::HybridSn(c) => Some(c.classes),
            ModelConfig::ResNet(c) => Some(c.classes),
            ModelConfig::Block(_) => None,
        }
    }

    /// The scope of the final classifier layer (`fc` for ResNet, `fc3` for HybridSN), which
    /// fine-tuning replaces when the class count differs and trains alone with a frozen backbone.
    pub fn classifier(&self) -> Option<&'static str> {
        match self {
            ModelConfig::HybridSn(_) => Some("fc3"),
            ModelConfig::ResNet(_) => Some("fc"),
            ModelConfig::Block(_) => None,
        }
    }

    /// Input shape without the batch dimension.
    pub fn input_shape(&self) -> Vec<usize> {
        match self {
            ModelConfig::HybridSn(c) => c.input_shape(),
            ModelConfig::ResNet(c) => c.input_shape(),
            ModelConfig::Block(b) => {
                let (channels, size) = b.channels_and_size();
                vec![channels, size, size]
            }
        }
    }

    /// Checks that the configuration describes a model that can run, by walking its shapes.
    pub fn validate(&self) -> Result<()> {
        let dims = match self {
            ModelConfig::HybridSn(c) => vec![("classes", c.classes), ("bands", c.bands), ("window", c.window)],
            ModelConfig::ResNet(c) => vec![("classes", c.classes), ("image size", c.image_size)],
            ModelConfig::Block(b) => {
                let (channels, size) = b.channels_and_size();
                vec![("channels", channels), ("size", size)]
            }
        };
        if let Some((what, value)) = dims.into_iter().find(|&(_, value)| value > MAX_DIM) {
            return Err(Error::config(what, format!("{value} is more than Prism supports ({MAX_DIM})")));
        }
        match self {
            ModelConfig::HybridSn(c) => c.validate()?,
            ModelConfig::ResNet(c) => c.validate()?,
            ModelConfig::Block(b) => {
                let (channels, size) = b.channels_and_size();
                if channels == 0 || size == 0 {
                    return Err(Error::config("block", "channels and size must be positive"));
                }
                if let BlockConfig::Mpm { pools, .. } = b {
                    if pools.contains(&0) {
                        return Err(Error::config("pools", "pool sizes must be positive"));
                    }
                }
            }
        }
        let input: Vec<usize> = std::iter::once(1).chain(self.input_shape()).collect();
        self.forward(&mut crate::summary::ShapeWalker::new(), &input).map(|_| ())
    }

    /// The model's forward pass: logits for classifiers, the feature map for a block alone.
    pub fn forward<B: Backend>(&self, b: &mut B, x: &B::Tensor) -> Result<B::Tensor> {
        match self {
            ModelConfig::HybridSn(c) => c.forward(b, x),
            ModelConfig::ResNet(c) => c.forward(b, x),
            ModelConfig::Block(block) => {
                let p = Path::root() / "block";
                match *block {
                    BlockConfig::Se { channels, .. } => SeBlock::new(channels).forward(b, &p, x),
                    BlockConfig::Spm { channels, .. } => StripPooling { channels }.forward(b, &p, x),
                    BlockConfig::Mpm { channels, pools, .. } => MixedPooling { channels, pools }.forward(b, &p, x),
                }
            }
        }
    }
}

fn reject<T>(model: &str, option: &str, value: Option<T>) -> Result<()> {
    match value {
        Some(_) => Err(Error::config(option, format!("does not apply to {model}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_builds_and_round_trips() {
        for name in MODEL_NAMES {
            let config = ModelConfig::from_name(name, &ModelOptions::default()).unwrap();
            assert_eq!(config.name(), *name);
            let json = serde_json::to_string(&config).unwrap();
            let back: ModelConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, config);
        }
    }

    #[test]
    fn variant_order_does_not_matter() {
        let a = ModelConfig::from_name("hybridsn-se-bn", &ModelOptions::default()).unwrap();
        assert_eq!(a.name(), "hybridsn-bn-se");
    }

    #[test]
    fn bad_configs_are_errors() {
        let opts = |classes, window| ModelOptions { classes, window, ..Default::default() };
        let cases = [
            ("hybridsn", opts(Some(0), None), "invalid classes"),
            ("hybridsn", opts(None, Some(5)), "invalid window"),
            ("hybridsnx", opts(None, None), "unknown model"),
            ("hybridsn-bn-bn", opts(None, None), "unknown model"),
            ("resnet19", opts(None, None), "ResNet-19"),
            ("resnet18", opts(None, Some(25)), "does not apply"),
            ("hybridsn", opts(None, Some(usize::MAX)), "invalid window"),
            ("hybridsn", opts(Some(MAX_DIM + 1), None), "invalid classes"),
            ("hybridsn", ModelOptions { bands: Some(usize::MAX), ..Default::default() }, "invalid bands"),
            ("resnet18", ModelOptions { image_size: Some(usize::MAX), ..Default::default() }, "invalid image size"),
        ];
        for (name, options, message) in cases {
            let err = ModelConfig::from_name(name, &options).unwrap_err().to_string();
            assert!(err.contains(message), "{name}: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
