//! ONNX as Prism writes and reads it, defined once: the protobuf messages ([`pb`], generated from
//! ONNX's own `onnx.proto` by prost-build, with protox in place of `protoc`), which the exporter
//! builds graphs with, and [`OnnxInfo`], what an ONNX file says of itself (inputs, outputs,
//! opsets, producer, metadata), which the runtime reads without an engine.

mod info;

pub use info::{Dim, OnnxInfo, TensorInfo};
pub use prost::Message;

/// ONNX's messages (`ModelProto`, `GraphProto`, `NodeProto`, `TensorProto`...), generated at
/// build time from `proto/onnx.proto3`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}
