//! With the `serve` feature: the gRPC service and the model configuration's messages from
//! `proto/inference.proto` (protox parses it, tonic-prost-build writes the Rust) into
//! `OUT_DIR/inference.rs`, and their descriptors into `OUT_DIR/inference.bin` for reading
//! config.pbtxt.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "serve")]
    {
        println!("cargo:rerun-if-changed=proto/inference.proto");
        let descriptors = protox::compile(["inference.proto"], ["proto"])?;
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
        std::fs::write(out.join("inference.bin"), prost::Message::encode_to_vec(&descriptors))?;
        tonic_prost_build::configure().build_client(false).compile_fds(descriptors)?;
    }
    Ok(())
}
