//! Model descriptions against PyTorch: names, shapes and counts of every tensor, output shapes,
//! and the tch forward against PyTorch's forward of the same weights.

use std::collections::BTreeMap;

use prism_models::{MODEL_NAMES, ModelConfig, ModelOptions, Summary};
use prism_tests::{Tolerance, assert_close, assert_one_line_error, run, run_python};
use prism_trainer::model::TchModel;
use tch::{Device, Kind, Tensor};

/// The zoo at its defaults, plus non-default sizes that exercise the configurable parts.
fn configs() -> Vec<ModelConfig> {
    let mut configs: Vec<ModelConfig> =
        MODEL_NAMES.iter().map(|n| ModelConfig::from_name(n, &ModelOptions::default()).unwrap()).collect();
    let custom = [
        ("hybridsn-bn", ModelOptions { bands: Some(15), window: Some(11), classes: Some(9), ..Default::default() }),
        ("hybridsn-bn-se", ModelOptions { bands: Some(20), window: Some(19), classes: Some(13), ..Default::default() }),
        ("sp-resnet18", ModelOptions { classes: Some(6), image_size: Some(96), ..Default::default() }),
        ("se-resnet34", ModelOptions { classes: Some(6), image_size: Some(64), ..Default::default() }),
        ("block-mpm", ModelOptions { bands: Some(32), window: Some(23), ..Default::default() }),
    ];
    configs.extend(custom.into_iter().map(|(n, o)| ModelConfig::from_name(n, &o).unwrap()));
    configs
}

fn write_json(path: &std::path::Path, value: &serde_json::Value) -> String {
    std::fs::write(path, value.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

/// Every tensor name and shape of the description equals PyTorch's `state_dict()` for the same
/// architecture (torchvision's for ResNet), and the parameter totals and output shapes agree.
#[test]
fn descriptions_match_pytorch_state_dicts() {
    let dir = tempfile::tempdir().unwrap();
    let configs = configs();
    let jobs = serde_json::to_value(&configs).unwrap();
    let references: Vec<serde_json::Value> = serde_json::from_str(&run_python(
        "reference.py",
        &["describe", &write_json(&dir.path().join("jobs.json"), &jobs)],
    ))
    .unwrap();
    for (config, reference) in configs.iter().zip(references) {
        let name = config.name();
        let summary = Summary::of(config).unwrap();
        let ours: BTreeMap<String, Vec<u64>> =
            summary.tensors.iter().map(|t| (t.name.clone(), t.shape.iter().map(|&d| d as u64).collect())).collect();
        let theirs: BTreeMap<String, Vec<u64>> = serde_json::from_value(reference["state"].clone()).unwrap();
        let missing: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
        let extra: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{name}: missing {missing:?}, extra {extra:?}");
        for (k, shape) in &ours {
            assert_eq!(shape, &theirs[k], "{name}: shape of {k}");
        }
        assert_eq!(summary.total_params as u64, reference["params"].as_u64().unwrap(), "{name}: parameter count");
        let out: Vec<i64> = serde_json::from_value(reference["output_shape"].clone()).unwrap();
        assert_eq!(out[1..], summary.output_shape[1..], "{name}: output shape");
    }
}

/// Randomises batch-norm statistics and affine parameters so that evaluation-mode batch norm
/// is not the identity.
fn randomise_batch_norm(model: &TchModel) {
    tch::no_grad(|| {
        for (name, t) in model.state() {
            let mut t = t.shallow_clone();
            if name.ends_with("running_var") {
                t.copy_(&(Tensor::rand_like(&t) + 0.5));
            } else if name.ends_with("running_mean") || (name.contains("bn") && name.ends_with("bias")) {
                t.copy_(&(Tensor::randn_like(&t) * 0.1));
            } else if name.contains("bn") && name.ends_with("weight") {
                t.copy_(&(Tensor::rand_like(&t) + 0.5));
            }
        }
    });
}

/// The tch forward of every model equals PyTorch's forward of the same weights on the same
/// input (evaluation mode).
#[test]
fn tch_forward_matches_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    for name in MODEL_NAMES.iter().filter(|n| !matches!(**n, "resnet101" | "resnet152")) {
        let options = if name.contains("resnet") {
            ModelOptions { classes: Some(6), image_size: Some(64), ..Default::default() }
        } else {
            ModelOptions::default()
        };
        let config = ModelConfig::from_name(name, &options).unwrap();
        tch::manual_seed(7);
        let model = TchModel::new(config.clone(), Device::Cpu).unwrap();
        randomise_batch_norm(&model);
        let dims: Vec<i64> = std::iter::once(3).chain(config.input_shape().iter().map(|&d| d as i64)).collect();
        let input = Tensor::randn(&dims, (Kind::Float, Device::Cpu));
        ours.push((name, tch::no_grad(|| model.forward(&input, false)).unwrap()));

        let file = |what: &str| dir.path().join(format!("{name}-{what}.safetensors"));
        model.save(&file("weights")).unwrap();
        Tensor::write_safetensors(&[("input", &input)], file("input")).unwrap();
        jobs.push(serde_json::json!({
            "config": config, "weights": file("weights"), "input": file("input"), "output": file("output"),
        }));
    }
    run_python("reference.py", &["forward", &write_json(&dir.path().join("jobs.json"), &jobs.into())]);
    for (name, ours) in ours {
        let theirs =
            Tensor::read_safetensors(dir.path().join(format!("{name}-output.safetensors"))).unwrap().remove(0).1;
        assert_eq!(ours.size(), theirs.size(), "{name}");
        let ours: Vec<f32> = ours.flatten(0, -1).try_into().unwrap();
        let theirs: Vec<f32> = theirs.flatten(0, -1).try_into().unwrap();
        assert_close(name, &ours, &theirs, Tolerance::CLOSE);
    }
}

/// Configurations that cannot work are one-line errors with a non-zero exit.
#[test]
fn summary_rejects_bad_configs() {
    let cases: [(&[&str], &str); 5] = [
        (&["summary", "--model", "hybridsn", "--window", "5"], "window"),
        (&["summary", "--model", "hybridsn", "--classes", "0"], "classes"),
        (&["summary", "--model", "hybridsn", "--bands", "8"], "bands"),
        (&["summary", "--model", "resnet51"], "ResNet-51"),
        (&["summary", "--model", "vgg16"], "unknown model `vgg16`"),
    ];
    for (args, expected) in cases {
        assert_one_line_error(&run("trainer", args), expected);
    }
    assert_one_line_error(&run("trainer", &["summary", "--modle", "hybridsn"]), "--modle");
    // A missing argument is named; a count of zero is refused.
    assert_one_line_error(&run("trainer", &["eval"]), "not provided: --run <DIR>");
    assert_one_line_error(&run("runtime", &["infer", "scene.npy"]), "not provided: --model <FILE>");
    assert_one_line_error(
        &run("runtime", &["bench", "--model", "m.onnx", "--sessions", "0"]),
        "'--sessions <SESSIONS>': must be at least 1",
    );
    assert_one_line_error(
        &run("runtime", &["bench", "--model", "m.onnx", "--batch", "1,0"]),
        "'--batch <BATCH>': must be at least 1",
    );
    assert_one_line_error(
        &run("runtime", &["bench", "--model", "m.onnx", "--size", "145x0"]),
        "'--size <HxW>': expected HEIGHTxWIDTH",
    );
}

/// `trainer summary --json` gives the walker's figures.
#[test]
fn summary_json_has_the_totals() {
    let out = run("trainer", &["summary", "--model", "resnet50", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["model"], "resnet50");
    assert_eq!(json["total_params"], 25_557_032);
    assert!(json["layers"].as_array().unwrap().len() > 100);
}

/// libtorch stays out of what edge applications embed.
#[test]
fn runtime_and_exporter_do_not_depend_on_libtorch() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for package in ["prism-runtime", "prism-exporter", "prism-models", "prism-data", "prism-cli"] {
        let out = std::process::Command::new(&cargo)
            .current_dir(prism_tests::root())
            .args(["tree", "--offline", "-p", package, "-e", "normal,build", "--prefix", "none", "--all-features"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(tree.contains(package), "cargo tree printed no tree for {package}");
        assert!(
            !tree.lines().any(|l| l.starts_with("torch-sys ") || l.starts_with("tch ")),
            "{package} depends on libtorch:\n{tree}"
        );
    }
}

/// The trainer reads data through `prism-data`, never through the runtime.
#[test]
fn trainer_does_not_depend_on_the_runtime() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(&cargo)
        .current_dir(prism_tests::root())
        .args(["tree", "--offline", "-p", "prism-trainer", "-e", "normal,build", "--prefix", "none"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.lines().any(|l| l.starts_with("prism-data ")), "{tree}");
    assert!(!tree.lines().any(|l| l.starts_with("prism-runtime ")), "the trainer depends on prism-runtime:\n{tree}");
}
