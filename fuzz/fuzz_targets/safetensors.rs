//! A run's weights as the exporter reads them (`TensorFile::parse`: the `safetensors` crate, then
//! Prism's checks: float32 only, values that fill the shape, no NaN), then checked against a
//! small model as `exporter` does before building a graph (`TensorFile::check_weights`).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prism_exporter::weights::TensorFile;
use prism_models::ModelConfig;

/// An MPM block of 4 channels: convolutions and batch norms, small.
fn model() -> &'static ModelConfig {
    static MODEL: OnceLock<ModelConfig> = OnceLock::new();
    MODEL.get_or_init(|| {
        serde_json::from_str(r#"{"arch": "block", "block": "mpm", "channels": 4, "size": 8, "pools": [4, 2]}"#)
            .expect("the model's configuration parses")
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(file) = TensorFile::parse(Path::new("model.safetensors"), bytes) else { return };
    let names: Vec<String> = file.names().map(String::from).collect();
    for name in &names {
        let param = file.get(name).expect("a listed tensor is there");
        assert_eq!(param.data.len(), param.shape.iter().product::<usize>(), "`{name}`: values and shape disagree");
        assert!(param.data.iter().all(|v| v.is_finite()), "`{name}`: a NaN was let through");
        assert_eq!(param.to_array().len(), param.data.len());
    }
    let _ = file.check_weights(model());
});
