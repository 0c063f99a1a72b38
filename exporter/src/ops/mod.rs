//! One emitter per operation of the model description, each next to the ONNX operator it
//! writes. Emitters compute output shapes with the layer configs of `prism_models::layers`, so
//! the exporter and the shape walker agree by construction.

pub mod activation;
pub mod adaptive_pool;
pub mod batch_norm;
pub mod concat;
pub mod conv;
pub mod elementwise;
pub mod linear;
pub mod pool;
pub mod reshape;
pub mod resize;

/// The name of a node or value emitted for scope `p`.
pub(crate) fn name(p: &prism_models::Path) -> String {
    p.to_string()
}
