//! Prism's runtime: runs exported ONNX models on ONNX Runtime or tract, as a library that edge
//! applications embed and as the `runtime` CLI. It also holds the data formats and the
//! preprocessing that the trainer shares, so what is trained is fed exactly as what is deployed.

pub mod engine;
mod error;
#[cfg(feature = "cli")]
pub mod exit;
pub mod io;
pub mod metrics;
pub mod model;
pub mod onnx_info;
pub mod preprocess;
pub mod render;
pub mod scene;

pub use error::{Error, Result};
