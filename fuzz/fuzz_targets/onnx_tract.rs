//! An ONNX model loaded on tract through prism-runtime's front door (`load_tract_bytes`, what
//! `engine::load` does with a file on the tract engine), in the lean tract-only build.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = prism_runtime::engine::load_tract_bytes(Path::new("fuzz.onnx"), bytes, Some(1));
});
