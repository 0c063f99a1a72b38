//! Prism's runtime: runs exported ONNX models on ONNX Runtime or tract, as a library that edge
//! applications embed and as the `runtime` CLI.
//!
//! The library is engines ([`engine`]: ONNX Runtime through `load-dynamic`, tract), a deployed
//! [`model::Model`] with typed predictions, the scene tiler that classifies a scene read block by
//! block through [`scene::SceneSource`], and what an ONNX file says of itself ([`onnx_info`]).
//! Features: `ort`, `tract` (the engines), `files` (reading images, `.npy` and MATLAB scenes
//! from files, through `prism-data`), `protocol` (the Open Inference Protocol's requests and
//! config.pbtxt, without a network: [`protocol`]), `cli` (the `runtime` binary). With
//! `default-features = false, features = ["tract"]` it compiles no file-format parser, no PNG
//! encoder and no command-line crate.

pub mod engine;
mod error;
pub mod model;
pub mod onnx_info;
#[cfg(feature = "protocol")]
pub mod protocol;

pub use error::{Error, Result};
/// Images: the resize, crop and scale a model's pipeline applies; with `files`, decoding.
pub use prism_data::images;
pub use prism_data::images::RgbImage;
/// Scenes: [`scene::SceneSource`] and the in-memory [`scene::Scene`]; with `files`, the
/// readers that keep a scene on disk ([`scene::open_scene`]).
pub use prism_data::scene;
