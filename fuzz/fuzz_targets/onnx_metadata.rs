//! The metadata an ONNX file carries, as `Model::load` reads it before any engine
//! (`ModelInfo::parse`: `prism.task`, `prism.preprocessing`, `prism.input`, `prism.class_names`,
//! `prism.model`, `prism.graph`, JSON inside protobuf strings). Structure-aware: the graph is one
//! of the `onnx_info` seeds, kept valid, and the input writes its metadata.
#![no_main]

use std::path::Path;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use prism_onnx::Message;
use prism_onnx::pb::{ModelProto, StringStringEntryProto};
use prism_runtime::model::{LoadOptions, ModelInfo, Pipeline};

const KEYS: [&str; 7] =
    ["prism.task", "prism.preprocessing", "prism.input", "prism.class_names", "prism.model", "prism.graph", "other"];
/// The seeds' graphs and their number of classes.
const GRAPHS: [(&[u8], usize); 2] =
    [(include_bytes!("../corpus/onnx_info/image.onnx"), 3), (include_bytes!("../corpus/onnx_info/scene.onnx"), 4)];

#[derive(Arbitrary, Debug)]
struct Input {
    graph: bool,
    /// Keep the seed's own metadata and add these, or only these.
    keep: bool,
    entries: Vec<(u8, String)>,
    labels: Option<Vec<String>>,
}

fuzz_target!(|input: Input| {
    let (bytes, classes) = GRAPHS[usize::from(input.graph)];
    let mut model = ModelProto::decode(bytes).expect("the seed decodes");
    if !input.keep {
        model.metadata_props.clear();
    }
    for (key, value) in input.entries {
        let key = KEYS[usize::from(key) % KEYS.len()].to_string();
        model.metadata_props.push(StringStringEntryProto { key, value });
    }
    let options = LoadOptions { labels: input.labels, ..Default::default() };
    if let Ok(info) = ModelInfo::parse(Path::new("fuzz.onnx"), &model.encode_to_vec(), &options) {
        assert!(
            info.class_names.is_empty() || info.class_names.len() == classes,
            "labels for another number of classes"
        );
        if let Pipeline::Scene(scene) = &info.pipeline {
            assert!(scene.window > 0 && scene.pad_value.len() == scene.bands, "a scene pipeline that cannot pad");
        }
    }
});
