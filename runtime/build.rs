//! With the `protocol` feature: the messages of `proto/inference.proto` (protox parses it,
//! tonic-prost-build writes the Rust) into `OUT_DIR/messages/inference.rs` for the library, and
//! their descriptors into `OUT_DIR/inference.bin` for reading config.pbtxt. With `serve`, the
//! gRPC service too, into `OUT_DIR/service/inference.rs`, on the library's messages.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "protocol")]
    {
        println!("cargo:rerun-if-changed=proto/inference.proto");
        let descriptors = protox::compile(["inference.proto"], ["proto"])?;
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
        std::fs::write(out.join("inference.bin"), prost::Message::encode_to_vec(&descriptors))?;
        let messages = out.join("messages");
        std::fs::create_dir_all(&messages)?;
        tonic_prost_build::configure()
            .build_client(false)
            .build_server(false)
            .out_dir(&messages)
            .compile_fds(descriptors.clone())?;
        #[cfg(feature = "serve")]
        {
            let service = out.join("service");
            std::fs::create_dir_all(&service)?;
            tonic_prost_build::configure()
                .build_client(false)
                .extern_path(".inference", "::prism_runtime::protocol::proto")
                .out_dir(&service)
                .compile_fds(descriptors)?;
        }
    }
    Ok(())
}
