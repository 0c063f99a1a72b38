//! Generates ONNX's message types from `proto/onnx.proto3` (protox parses it, prost-build writes
//! the Rust), into `OUT_DIR/onnx.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto3");
    let descriptors = protox::compile(["onnx.proto3"], ["proto"])?;
    // Weights decode as slices of the file read (`Bytes`), not copies, so reading what a large
    // model says of itself costs no second copy of its weights.
    prost_build::Config::new().bytes([".onnx.TensorProto.raw_data"]).compile_fds(descriptors)?;
    Ok(())
}
