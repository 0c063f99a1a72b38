use std::path::PathBuf;

use anyhow::Result;
use prism_runtime::engine::ort_library;
use prism_runtime::model::{LoadOptions, ModelInfo, scene_graph_path};
use prism_runtime::onnx_info::TensorInfo;
use serde_json::json;

/// Describe an ONNX file: inputs, outputs, opset, producer, Prism metadata, engines available.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  runtime info hybridsn.onnx\n  runtime info resnet18.onnx --json")]
pub struct Args {
    /// The ONNX file.
    model: PathBuf,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn shape(t: &TensorInfo) -> String {
    let dims: Vec<String> = t.shape.iter().map(ToString::to_string).collect();
    format!("{} {} [{}]", t.name, t.elem_type, dims.join(", "))
}

pub fn run(args: Args) -> Result<()> {
    let info = ModelInfo::read(&args.model, &LoadOptions::default())?;
    let onnx = &info.onnx;
    let library = ort_library();
    let scene_graph = scene_graph_path(&args.model);
    let scene_graph = (info.graph == "window" && scene_graph.is_file()).then_some(scene_graph);
    if args.json {
        let value = json!({
            "file": args.model,
            "name": info.name,
            "task": info.task(),
            "graph": info.graph,
            "scene_graph": scene_graph,
            "class_names": info.class_names,
            "pipeline": info.pipeline,
            "onnx": onnx,
            "engines": {"ort_library": library, "tract": cfg!(feature = "tract"), "ort": cfg!(feature = "ort")},
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("file:      {}", args.model.display());
    println!("model:     {} ({:?}, {} graph)", info.name, info.task(), info.graph);
    if let Some(dense) = &scene_graph {
        println!("scene:     {} (whole-scene graph next to it)", dense.display());
    }
    println!("producer:  {} {}", onnx.producer_name, onnx.producer_version);
    let opsets: Vec<String> = onnx
        .opsets
        .iter()
        .map(|(d, v)| format!("{}{v}", if d.is_empty() { String::new() } else { format!("{d} ") }))
        .collect();
    println!("opset:     {} (IR version {})", opsets.join(", "), onnx.ir_version);
    for input in &onnx.inputs {
        println!("input:     {}", shape(input));
    }
    for output in &onnx.outputs {
        println!("output:    {}", shape(output));
    }
    if !info.class_names.is_empty() {
        println!("classes:   {} ({})", info.class_names.len(), info.class_names.join(", "));
    }
    let ops: Vec<String> = onnx.ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
    println!("nodes:     {} ({})", onnx.ops.values().sum::<usize>(), ops.join(", "));
    println!("weights:   {} initializers", onnx.initializers);
    if let Some(line) = precision_line(&onnx.metadata) {
        println!("precision: {line}");
    }
    for (key, value) in &onnx.metadata {
        let short: String = value.chars().take(100).collect();
        let more = if value.chars().count() > 100 { "..." } else { "" };
        println!("metadata:  {key} = {short}{more}");
    }
    match library {
        Some(path) => println!("engines:   ort ({}), tract", path.display()),
        None => println!("engines:   tract (no ONNX Runtime library found; see `scripts/setup.sh` or ORT_DYLIB_PATH)"),
    }
    Ok(())
}

/// `int8: conv4, fc1, fc2 in int8; float32: pca, conv1 ...; calibrated on ...` from the
/// exporter's `prism.precision` and `prism.lowering` metadata.
fn precision_line(metadata: &std::collections::BTreeMap<String, String>) -> Option<String> {
    let get = |key: &str| metadata.get(key).map(String::as_str);
    let precision = get("prism.precision")?;
    let Some(lowering) = get("prism.lowering").and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok()) else {
        return Some(precision.to_string());
    };
    let names = |key: &str, field: Option<&str>| -> Vec<String> {
        lowering[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| field.map_or(v.as_str(), |f| v[f].as_str())).map(String::from).collect())
            .unwrap_or_default()
    };
    let mut parts = vec![precision.to_string()];
    let quantized = names("quantized", None);
    if !quantized.is_empty() {
        parts.push(format!("{} in int8", quantized.join(", ")));
    }
    parts.push(format!("kept float32: {}", names("kept_float", Some("node")).join(", ")));
    if let Some(calibration) = lowering["calibration"].as_str() {
        parts.push(format!("calibrated on {calibration}"));
    }
    Some(parts.join("; "))
}
