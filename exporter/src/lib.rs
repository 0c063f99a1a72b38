//! Prism's exporter: turns a run directory written by the trainer into a self-contained ONNX
//! model, the preprocessing's linear part included (PCA with whitening for hyperspectral
//! scenes, mean/std normalisation for images), and checks the file on tract and ONNX Runtime
//! against the trainer's own outputs. It sits between `prism-models` (whose architectures it
//! interprets through an ONNX [`backend::OnnxBackend`]) and `prism-runtime` (whose engines run
//! the parity check); it never links libtorch.
//!
//! ```no_run
//! use prism_exporter::{export, ExportOptions};
//!
//! let options = ExportOptions { opset: 17, ..Default::default() };
//! let report = export("runs/hybridsn-indian-pines".as_ref(), &options)?;
//! println!("{}", serde_json::to_string(&report).unwrap_or_default());
//! if !report.pass {
//!     eprintln!("{}", report.summary());
//! }
//! # Ok::<(), prism_exporter::Error>(())
//! ```
//!
//! The graphs use opsets 13 to 18 (default 17), name initializers as PyTorch does
//! (`conv1.weight`; `conv1.weight+bn1` when a batch norm is folded in), take a symbolic batch,
//! and carry `prism.*` metadata (task, model, classes, input layout, the preprocessing left to
//! the runtime, training data and metrics). HybridSN variants without window-wide pooling also
//! get a whole-scene graph ([`scene`]).

pub mod backend;
pub mod calibrate;
mod error;
mod export;
pub mod graph;
pub mod metadata;
pub mod model;
pub mod ops;
pub mod parity;
pub mod precision;
mod preprocess;
pub mod quantize;
pub mod rundir;
pub mod scene_graph;
pub mod triton;
pub mod weights;

#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use export::{ExportOptions, ExportReport, SceneGraphReport, TensorInfo, export, scene_path};
pub use model::{ir_version, window_model};
pub use parity::Tolerance;
pub use rundir::{RunDir, RunJson, Sample};
pub use scene_graph::scene_model;

/// The oldest opset the exporter writes.
pub const MIN_OPSET: i64 = 13;
/// The newest opset the exporter writes (tract 0.23 is tested up to 18).
pub const MAX_OPSET: i64 = 18;
pub const DEFAULT_OPSET: i64 = 17;
