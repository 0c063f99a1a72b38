//! What an ONNX file says of itself (`prism_onnx::OnnxInfo::parse`, the runtime's `info` and
//! the metadata `Model::load` reads before any engine).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(info) = prism_onnx::OnnxInfo::parse(bytes.to_vec()) {
        // What `runtime info` prints of it.
        let _ = info.opset();
        let _ = info.inputs.iter().map(|i| i.shape.iter().map(ToString::to_string).count()).sum::<usize>();
    }
});
