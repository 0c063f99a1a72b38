//! The Open Inference Protocol (KServe v2, which Triton, KServe and Seldon speak) without its
//! transport: what `runtime serve` decodes from clients' bytes, kept in the library so that it
//! can be tested and fuzzed without a network.
//!
//! - [`proto`]: the protocol's messages, from `proto/inference.proto` (written here from the
//!   protocol's documentation; prost).
//! - [`decode_http_body`] and [`decode_grpc`]: an inference request from an HTTP body (JSON, or
//!   JSON followed by the binary tensor data extension's raw bytes) or from a gRPC message.
//! - [`Signature`]: what a served model takes and gives; it checks a decoded request.
//! - [`config`]: Triton's `config.pbtxt`, read (protobuf's text format, prost-reflect) and
//!   completed from the ONNX file.
//!
//! Every fault a client can cause is a [`Fault`] naming the problem; the transports map it to an
//! HTTP status or a gRPC code.

pub mod config;
mod request;
mod signature;

pub use request::{
    BinaryOutputs, Fault, InferRequest, InferResponse, InputTensor, bytes_of, decode_grpc, decode_http_body,
    floats_from_bytes,
};
pub use signature::{Signature, Spec};

/// The messages of `proto/inference.proto`.
#[allow(clippy::all, clippy::pedantic, unreachable_pub, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/messages/inference.rs"));

    /// The file's descriptors, for protobuf's text and JSON formats.
    pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/inference.bin"));
}
