//! Prism's model descriptions: every architecture written once, as plain configs and one
//! generic `forward` over a small [`Backend`] trait.
//!
//! Three interpreters run the same description: the [`summary::ShapeWalker`] here (shapes and
//! parameters, no engine), the trainer's tch backend, and the exporter's ONNX backend. Parameter
//! names and layouts follow PyTorch (`layer1.0.conv1.weight`, conv weights `[out, in, k...]`), so
//! a torchvision `state_dict` needs no adapter.
//!
//! ```
//! use prism_models::{ModelConfig, ModelOptions, Summary};
//!
//! let model = ModelConfig::from_name("hybridsn", &ModelOptions::default())?;
//! let summary = Summary::of(&model)?;
//! assert_eq!(summary.total_params, 5_122_176);
//! assert_eq!(summary.output_shape, vec![-1, 16]);
//! # Ok::<(), prism_models::Error>(())
//! ```

pub mod backend;
pub mod blocks;
mod error;
pub mod hybridsn;
pub mod layers;
pub mod resnet;
pub mod run;
pub mod summary;
pub mod zoo;

pub use backend::{Backend, Path};
pub use error::{Error, Result};
pub use hybridsn::{HybridSnConfig, HybridSnVariant, SpatialModule};
pub use resnet::ResNetConfig;
pub use summary::Summary;
pub use zoo::{BlockConfig, MODEL_NAMES, MODEL_PATTERNS, ModelConfig, ModelOptions, Task};
