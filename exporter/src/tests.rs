//! Exports of synthetic run directories written here (no Python needed): batch-norm folding
//! against `BatchNormalization`, the whole-scene graph against the window graph on every pixel,
//! metadata, and refused opsets. Checks against PyTorch live in the workspace's tests/.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;
use prism_models::run::{ImagePreprocessing, Pca, Preprocessing, RunConfig, ScenePreprocessing};
use prism_models::{ModelConfig, ModelOptions, Summary};
use prism_onnx::pb;
use prism_runtime::engine::{self, EngineChoice, EngineOptions, Provider};
use prost::Message;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use crate::parity::compare;
use crate::scene_graph::{check_scene, scene_model};
use crate::weights::Param;
use crate::*;

/// Uniform values in [0, 1) from a fixed xorshift sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    fn signed(&mut self, bound: f32) -> f32 {
        bound * (2.0 * self.next() - 1.0)
    }
}

/// Weights for every float tensor of the model, batch-norm statistics away from the identity.
fn random_weights(model: &ModelConfig, rng: &mut Rng) -> BTreeMap<String, Param> {
    let summary = Summary::of(model).unwrap();
    summary
        .tensors
        .iter()
        .filter(|t| !t.integer)
        .map(|t| {
            let n: usize = t.shape.iter().product();
            let bound = 1.0 / (t.shape.iter().skip(1).product::<usize>().max(1) as f32).sqrt();
            let data = (0..n)
                .map(|_| match t.name.rsplit('.').next() {
                    Some("running_var") => 0.5 + rng.next(),
                    Some("running_mean") => rng.signed(0.1),
                    Some("weight") if t.shape.len() == 1 => 0.5 + rng.next(),
                    Some("bias") if !t.trainable || t.shape.len() == 1 => rng.signed(0.1),
                    _ => rng.signed(bound),
                })
                .collect();
            (t.name.clone(), Param { shape: t.shape.clone(), data })
        })
        .collect()
}

fn write_safetensors(path: &Path, tensors: &BTreeMap<String, Param>) {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, p)| (n.clone(), p.data.iter().flat_map(|v| v.to_le_bytes()).collect(), p.shape.clone()))
        .collect();
    let views: Vec<(String, TensorView)> =
        bytes.iter().map(|(n, b, s)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// A run directory with random weights and a random PCA; its sample's logits are zeros (these
/// tests compare graphs with each other, not with a trainer).
fn synthetic_run(dir: &Path, model: &ModelConfig, raw_bands: usize, seed: u64) {
    let mut rng = Rng(seed);
    std::fs::create_dir_all(dir).unwrap();
    write_safetensors(&dir.join("model.safetensors"), &random_weights(model, &mut rng));
    let config = RunConfig {
        prism_version: "0.1.0".into(),
        model: model.clone(),
        data: serde_json::json!({"name": "synthetic"}),
        train: serde_json::json!({"seed": seed}),
    };
    std::fs::write(dir.join("config.json"), serde_json::to_string(&config).unwrap()).unwrap();
    let mut input_shape = vec![2];
    if let ModelConfig::HybridSn(c) = model {
        let pca = Pca {
            mean: (0..raw_bands).map(|_| 0.1 + 0.4 * rng.next()).collect(),
            components: (0..c.bands).map(|_| (0..raw_bands).map(|_| rng.signed(0.3)).collect()).collect(),
            explained_variance: (0..c.bands).map(|_| 0.01 + 0.05 * rng.next()).collect(),
            whiten: true,
        };
        let pre = Preprocessing::Scene(ScenePreprocessing {
            raw_bands,
            window: c.window,
            pca,
            class_names: (0..c.classes).map(|i| format!("class {i}")).collect(),
            class_values: (1..=c.classes as i64).collect(),
        });
        std::fs::write(dir.join("preprocessing.json"), serde_json::to_string(&pre).unwrap()).unwrap();
        input_shape.extend([raw_bands, c.window, c.window]);
    } else {
        if let ModelConfig::ResNet(c) = model {
            let names = (0..c.classes).map(|i| format!("class {i}")).collect();
            let pre =
                Preprocessing::Image(ImagePreprocessing { crop: c.image_size, ..ImagePreprocessing::imagenet(names) });
            std::fs::write(dir.join("preprocessing.json"), serde_json::to_string(&pre).unwrap()).unwrap();
        }
        input_shape.extend(model.input_shape());
    }
    let mut sample = BTreeMap::new();
    let n: usize = input_shape.iter().product();
    sample.insert("input".to_string(), Param { shape: input_shape, data: (0..n).map(|_| 0.6 * rng.next()).collect() });
    let out = match model.classes() {
        Some(c) => vec![2, c],
        None => std::iter::once(2).chain(model.input_shape()).collect(),
    };
    sample.insert("logits".to_string(), Param { data: vec![0.0; out.iter().product()], shape: out });
    write_safetensors(&dir.join("sample.safetensors"), &sample);
}

fn config(name: &str, options: ModelOptions) -> ModelConfig {
    ModelConfig::from_name(name, &options).unwrap()
}

fn small_hybridsn(name: &str, window: usize) -> ModelConfig {
    config(name, ModelOptions { bands: Some(13), window: Some(window), classes: Some(5), ..Default::default() })
}

fn tract() -> EngineOptions {
    EngineOptions { engine: EngineChoice::Tract, ..Default::default() }
}

fn run_first(model: &Path, input: &ArrayD<f32>, options: &EngineOptions) -> ArrayD<f32> {
    let mut engine = engine::load(model, options).unwrap();
    engine.run(input.view()).unwrap().remove(0).1
}

fn ops(model: &pb::ModelProto) -> Vec<String> {
    model.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect()
}

fn no_parity(out: &Path) -> ExportOptions {
    ExportOptions { out: Some(out.to_path_buf()), parity: None, ..Default::default() }
}

/// Folding batch norms into convolutions gives the same outputs as `BatchNormalization` nodes
/// (on tract, whose batch norm is an independent implementation), and removes every one of them.
#[test]
fn folded_batch_norm_equals_batch_normalization_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let models = [
        small_hybridsn("hybridsn-bn", 11),
        config("sp-resnet18", ModelOptions { classes: Some(4), image_size: Some(32), ..Default::default() }),
        config("block-mpm", ModelOptions { bands: Some(16), window: Some(13), ..Default::default() }),
    ];
    for (i, model) in models.iter().enumerate() {
        let run = dir.path().join(format!("run{i}"));
        synthetic_run(&run, model, 20, 7 + i as u64);
        let sample = RunDir::read(&run).unwrap().sample().unwrap();
        let mut outputs = Vec::new();
        for fold_bn in [true, false] {
            let out = run.join(format!("fold-{fold_bn}.onnx"));
            let report = export(&run, &ExportOptions { fold_bn, ..no_parity(&out) }).unwrap();
            let proto = pb::ModelProto::decode(std::fs::read(&out).unwrap().as_slice()).unwrap();
            let norms = ops(&proto).iter().filter(|o| *o == "BatchNormalization").count();
            let expected = if fold_bn {
                0
            } else {
                Summary::of(model).unwrap().layers.iter().filter(|l| l.op.starts_with("batch_norm")).count()
            };
            assert_eq!(norms, expected, "{}: fold {fold_bn}", model.name());
            assert!(!ops(&proto).iter().any(|o| o == "Dropout"), "{}", model.name());
            assert_eq!(report.nodes, ops(&proto).len());
            outputs.push(run_first(&out, &sample.input, &tract()));
        }
        let c = compare(&outputs[0], &outputs[1], Tolerance::default());
        assert!(c.pass, "{}: folded vs not, largest difference {}", model.name(), c.max_abs);
        assert!(outputs[0].iter().any(|v| v.abs() > 1e-3), "{}: outputs are all tiny", model.name());
    }
}

/// A batch norm after something other than a convolution stays a `BatchNormalization` node.
#[test]
fn batch_norm_without_a_convolution_before_it_is_kept() {
    use crate::backend::{OnnxBackend, Spatial, Value};
    use prism_models::layers::{BatchNorm, Conv};
    use prism_models::{Backend, Path};

    let mut weights = BTreeMap::new();
    for leaf in ["weight", "bias", "running_mean", "running_var"] {
        weights.insert(format!("bn.{leaf}"), Param { shape: vec![2], data: vec![1.0, 2.0] });
        weights.insert(format!("bn2.{leaf}"), Param { shape: vec![2], data: vec![1.0, 2.0] });
    }
    weights.insert("conv.weight".into(), Param { shape: vec![2, 2, 1, 1], data: vec![1.0, 0.0, 0.0, 1.0] });
    weights.insert("conv.bias".into(), Param { shape: vec![2], data: vec![0.0, 0.0] });
    let file = weights::TensorFile::new("w.safetensors", weights);
    let mut b = OnnxBackend::new(17, &file, true, Spatial::Fixed);
    let x = Value { name: b.graph_mut().input("x", &[]), shape: vec![1, 2, 3, 3] };
    let root = Path::root();
    let y = b.batch_norm(&(&root / "bn"), &BatchNorm::new(2), &x).unwrap();
    let y = b.conv(&(&root / "conv"), &Conv::new(2, 2, &[1, 1]), &y).unwrap();
    let z = b.relu(&(&root / "relu"), &y).unwrap();
    // The convolution's output is already read by the ReLU: folding would change the ReLU's input.
    b.batch_norm(&(&root / "bn2"), &BatchNorm::new(2), &y).unwrap();
    let _ = z;
    let graph = b.into_graph().finish("g", "");
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["BatchNormalization", "Conv", "Relu", "BatchNormalization"]);
    assert_eq!(graph.node[0].input, ["x", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]);
}

/// Pixel by pixel, the whole-scene graph equals the window graph on the windows cut from the
/// scene padded with the PCA mean, on tract and on ONNX Runtime, for odd and even windows.
#[test]
fn scene_graph_equals_window_graph_on_every_pixel() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, window)) in [("hybridsn", 11), ("hybridsn-bn", 10)].into_iter().enumerate() {
        let run = dir.path().join(format!("run{i}"));
        let model = small_hybridsn(name, window);
        synthetic_run(&run, &model, 17, 3 + i as u64);
        let out = run.join("m.onnx");
        let report = export(&run, &no_parity(&out)).unwrap();
        let scene = report.scene_graph.path.clone().expect("a scene graph");
        assert_eq!(scene, run.join("m.scene.onnx"));
        let pre = match RunDir::read(&run).unwrap().preprocessing {
            Some(Preprocessing::Scene(s)) => s,
            _ => unreachable!(),
        };
        let ort = EngineOptions { engine: EngineChoice::Ort, provider: Provider::Cpu, ..Default::default() };
        for options in [tract(), ort] {
            let check = check_scene(&out, &scene, &pre, (7, 6), (0.0, 0.6), Tolerance::default(), &options).unwrap();
            assert!(check.pass, "{name} window {window} on {}: largest difference {}", check.engine, check.max_abs);
        }
    }
}

/// Variants that pool over the window keep the window graph only, and the report says why.
#[test]
fn pooled_variants_have_no_scene_graph() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    synthetic_run(&run, &small_hybridsn("hybridsn-se", 11), 15, 5);
    let report = export(&run, &no_parity(&run.join("m.onnx"))).unwrap();
    assert!(!report.scene_graph.written && !run.join("m.scene.onnx").exists());
    assert!(
        report.scene_graph.reason.as_deref().is_some_and(|r| r.contains("SE or strip pooling")),
        "{:?}",
        report.scene_graph
    );
    let err = scene_model(&RunDir::read(&run).unwrap(), 17, true).unwrap_err().to_string();
    assert!(err.contains("no whole-scene form"), "{err}");
}

#[test]
fn metadata_describes_the_model_and_its_preprocessing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let model = small_hybridsn("hybridsn", 9);
    synthetic_run(&run, &model, 16, 11);
    let proto = window_model(&RunDir::read(&run).unwrap(), 15, true).unwrap();
    assert_eq!((proto.ir_version, proto.opset_import[0].version), (8, 15));
    assert_eq!((proto.producer_name.as_str(), proto.producer_version.as_str()), ("prism", env!("CARGO_PKG_VERSION")));
    let props: BTreeMap<&str, &str> = proto.metadata_props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
    assert_eq!(props["prism.task"], "scene");
    assert_eq!(props["prism.model"], "hybridsn");
    assert_eq!(props["prism.graph"], "window");
    let config: ModelConfig = serde_json::from_str(props["prism.config"]).unwrap();
    assert_eq!(config, model);
    let names: Vec<String> = serde_json::from_str(props["prism.class_names"]).unwrap();
    assert_eq!(names.len(), 5);
    let input: serde_json::Value = serde_json::from_str(props["prism.input"]).unwrap();
    assert_eq!(input, serde_json::json!({"name": "spectra", "layout": "NCHW", "bands": 16, "window": 9}));
    let pre: serde_json::Value = serde_json::from_str(props["prism.preprocessing"]).unwrap();
    assert_eq!(pre["padding"], "pca_mean");
    assert_eq!(pre["pad_value"].as_array().unwrap().len(), 16);
    assert_eq!(pre["class_values"], serde_json::json!([1, 2, 3, 4, 5]));
    let training: serde_json::Value = serde_json::from_str(props["prism.training"]).unwrap();
    assert_eq!(training["train"]["seed"], 11);
    assert!(proto.doc_string.starts_with("hybridsn exported by Prism"), "{}", proto.doc_string);
}

#[test]
fn opsets_outside_13_to_18_are_refused() {
    for opset in [12, 19] {
        let err = ir_version(opset).unwrap_err().to_string();
        assert_eq!(err, format!("opset {opset} is not supported (supported: 13 to 18)"));
        let err = export(Path::new("/nonexistent"), &ExportOptions { opset, ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::UnsupportedOpset(o) if o == opset), "{err}");
    }
    assert_eq!((13..=18).map(|o| ir_version(o).unwrap()).collect::<Vec<_>>(), [7, 7, 8, 8, 8, 8]);
    let err = export(Path::new("/nonexistent/run"), &ExportOptions::default()).unwrap_err().to_string();
    assert_eq!(err, "run directory /nonexistent/run does not exist");
}

/// A Triton entry holds the very window graph and a config naming its tensors.
#[test]
fn triton_repository_entry() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    synthetic_run(
        &run,
        &config("block-se", ModelOptions { bands: Some(32), window: Some(5), ..Default::default() }),
        0,
        2,
    );
    let repo = dir.path().join("repo");
    let out = run.join("m.onnx");
    let report = export(&run, &ExportOptions { triton_repo: Some(repo.clone()), ..no_parity(&out) }).unwrap();
    assert_eq!(report.triton.as_deref(), Some(repo.join("block-se").as_path()));
    assert_eq!(std::fs::read(repo.join("block-se/1/model.onnx")).unwrap(), std::fs::read(&out).unwrap());
    let config = std::fs::read_to_string(repo.join("block-se/config.pbtxt")).unwrap();
    assert!(config.contains("name: \"features\"") && config.contains("dims: [ 32, 5, 5 ]"), "{config}");
    assert!(config.contains("name: \"features_out\""), "{config}");
}
