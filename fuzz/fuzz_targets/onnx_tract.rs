//! An ONNX model in memory loaded on tract through prism-runtime's front door
//! (`engine::load_source`, what `engine::load` does with a file on the tract engine), in the lean
//! tract-only build.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prism_runtime::engine::{EngineChoice, EngineOptions, Source, load_source};

fuzz_target!(|bytes: &[u8]| {
    let options = EngineOptions { engine: EngineChoice::Tract, threads: Some(1), ..EngineOptions::default() };
    let _ = load_source(Source::Memory { name: Path::new("fuzz.onnx"), bytes }, &options);
});
