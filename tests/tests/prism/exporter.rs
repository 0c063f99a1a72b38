//! The exporter against peers no one here wrote: PyTorch's forward of the same weights (the
//! reference modules of tests/python/reference.py, preprocessing included, through
//! tests/python/make_run.py), ONNX's full checker and onnxruntime's Python package
//! (tests/python/check_onnx.py), `torch.onnx.export` of torchvision's ResNet-18, and the
//! runtime's tract and ort engines.
//!
//! Matrix: every zoo model but ResNet-101/152 (ResNets at 64 x 64 with 6 classes) at opset 17,
//! with and without batch-norm folding; opsets 13, 14, 15, 16 and 18 on a subset that covers
//! every emitter (3-D convolutions, SE, strip and mixed pooling with its adaptive pools and
//! resizes, ResNet's pooling); opset 13 without folding on the same subset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use prism_exporter::weights::TensorFile;
use prism_exporter::{ExportOptions, RunDir, export};
use prism_models::{MODEL_NAMES, ModelConfig, ModelOptions, Summary};
use prism_runtime::engine::{self, EngineChoice, EngineOptions, Provider};
use prism_tests::{Tolerance, assert_close, assert_one_line_error, run, run_python};
use serde_json::{Value, json};

/// Models whose whole opset range is exported.
const OPSET_SUBSET: &[&str] = &["hybridsn-bn", "hybridsn-mpm", "sp-resnet18", "block-se", "block-spm", "block-mpm-24"];

/// The synthetic run directories, made once per test binary by one Python process.
struct Runs {
    dir: PathBuf,
    configs: BTreeMap<String, ModelConfig>,
}

impl Runs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join("runs").join(name)
    }

    /// torch.onnx's export of the torchvision ResNet-18 run.
    fn torch_onnx(&self) -> PathBuf {
        self.dir.join("torchvision-resnet18.torch.onnx")
    }
}

fn small(name: &str) -> ModelOptions {
    if name.contains("resnet") {
        ModelOptions { classes: Some(6), image_size: Some(64), ..Default::default() }
    } else {
        ModelOptions::default()
    }
}

fn write_json(path: &Path, value: &Value) -> String {
    std::fs::write(path, value.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("exporter");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("runs")).unwrap();
        let mut configs = BTreeMap::new();
        for name in MODEL_NAMES.iter().filter(|n| !matches!(**n, "resnet101" | "resnet152")) {
            configs.insert(name.to_string(), ModelConfig::from_name(name, &small(name)).unwrap());
        }
        // 24 = 2 x 12: the 12 x 12 pyramid pool is a plain AveragePool, 20 x 20 is not.
        let mpm = ModelOptions { bands: Some(32), window: Some(24), ..Default::default() };
        configs.insert("block-mpm-24".into(), ModelConfig::from_name("block-mpm", &mpm).unwrap());
        configs.insert(
            "torchvision-resnet18".into(),
            ModelConfig::from_name("resnet18", &ModelOptions::default()).unwrap(),
        );
        let runs = Runs { dir, configs };
        let jobs: Vec<Value> = runs
            .configs
            .iter()
            .enumerate()
            .map(|(seed, (name, config))| {
                let mut job = json!({"config": config, "dir": runs.path(name), "seed": seed});
                if name == "torchvision-resnet18" {
                    job["torch_onnx"] = json!(runs.torch_onnx());
                }
                job
            })
            .collect();
        run_python("make_run.py", &[&write_json(&runs.dir.join("make_run.json"), &json!(jobs))]);
        runs
    })
}

/// Runs check_onnx.py on `jobs` and returns its reports.
fn check_onnx(dir: &Path, tag: &str, jobs: &[Value]) -> Vec<Value> {
    let out = run_python("check_onnx.py", &[&write_json(&dir.join(format!("{tag}.json")), &json!(jobs))]);
    serde_json::from_str(&out).unwrap()
}

fn tensors(path: &Path) -> TensorFile {
    TensorFile::read(path).unwrap_or_else(|e| panic!("{e}"))
}

fn values(file: &TensorFile, name: &str) -> Vec<f32> {
    file.get(name).unwrap_or_else(|| panic!("{}: no tensor {name}", file.path.display())).data.clone()
}

/// The first output of `model` on `input` with the runtime's engine.
fn on_engine(model: &Path, input: &ndarray::ArrayD<f32>, engine: EngineChoice) -> (String, Vec<f32>) {
    let options = EngineOptions { engine, provider: Provider::Cpu, ..Default::default() };
    let mut e = engine::load(model, &options).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let name = format!("{}/{}", e.engine(), e.provider());
    let out = e.run(input.view()).unwrap_or_else(|e| panic!("{}: {e}", model.display())).remove(0).1;
    (name, out.iter().copied().collect())
}

struct Case {
    run: &'static str,
    opset: i64,
    fold_bn: bool,
}

impl Case {
    fn id(&self) -> String {
        format!("{}-opset{}-{}", self.run, self.opset, if self.fold_bn { "fold" } else { "nofold" })
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for run in MODEL_NAMES.iter().filter(|n| !matches!(**n, "resnet101" | "resnet152")).copied().chain(["block-mpm-24"])
    {
        cases.extend([true, false].map(|fold_bn| Case { run, opset: 17, fold_bn }));
    }
    for &run in OPSET_SUBSET {
        cases.extend([13, 14, 15, 16, 18].map(|opset| Case { run, opset, fold_bn: true }));
        cases.push(Case { run, opset: 13, fold_bn: false });
    }
    cases
}

/// Every model, exported through the library API, passes ONNX's full checker, and its outputs
/// on onnxruntime (Python), tract and the Rust ort engine equal PyTorch's logits for the same
/// raw input (the PCA or the normalisation applied in PyTorch).
#[test]
fn every_model_matches_pytorch_on_every_engine() {
    let runs = runs();
    let dir = runs.dir.join("matrix");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = cases();
    let mut jobs = Vec::new();
    for case in &cases {
        let out = dir.join(format!("{}.onnx", case.id()));
        let options = ExportOptions {
            opset: case.opset,
            fold_bn: case.fold_bn,
            out: Some(out.clone()),
            scene_graph: false,
            parity: None,
            ..Default::default()
        };
        export(&runs.path(case.run), &options).unwrap_or_else(|e| panic!("{}: {e}", case.id()));
        jobs.push(json!({
            "onnx": out,
            "input": runs.path(case.run).join("sample.safetensors"),
            "output": dir.join(format!("{}.ort.safetensors", case.id())),
        }));
    }
    let reports = check_onnx(&dir, "matrix", &jobs);
    for (case, report) in cases.iter().zip(&reports) {
        let id = case.id();
        let config = &runs.configs[case.run];
        check_graph(&id, config, case, report);
        let run = RunDir::read(&runs.path(case.run)).unwrap();
        let sample = run.sample().unwrap();
        let expected: Vec<f32> = sample.logits.iter().copied().collect();
        let ort_python = tensors(&dir.join(format!("{id}.ort.safetensors")));
        let output = if config.classes().is_some() { "logits" } else { "features_out" };
        assert_close(
            &format!("{id} onnxruntime (Python) vs PyTorch"),
            &values(&ort_python, output),
            &expected,
            Tolerance::APPROX,
        );
        if config.classes().is_some() {
            let probabilities = values(&ort_python, "probabilities");
            let classes = sample.logits.shape()[1];
            for row in probabilities.chunks(classes) {
                assert!(
                    (row.iter().sum::<f32>() - 1.0).abs() < 1e-5,
                    "{id}: probabilities sum to {}",
                    row.iter().sum::<f32>()
                );
            }
        }
        let model = dir.join(format!("{id}.onnx"));
        for engine in [EngineChoice::Tract, EngineChoice::Ort] {
            let (name, got) = on_engine(&model, &sample.input, engine);
            assert_close(&format!("{id} {name} vs PyTorch"), &got, &expected, Tolerance::APPROX);
        }
    }
}

/// What check_onnx.py saw of a graph: checker passed (or Python failed), names, ops, metadata.
fn check_graph(id: &str, config: &ModelConfig, case: &Case, report: &Value) {
    let ops: BTreeMap<String, u64> = serde_json::from_value(report["ops"].clone()).unwrap();
    assert_eq!(report["opset"], case.opset, "{id}");
    assert_eq!(report["ir_version"], if case.opset <= 14 { 7 } else { 8 }, "{id}");
    assert_eq!(report["producer"][0], "prism", "{id}");
    assert_eq!(report["unused_initializers"], json!([]), "{id}");
    assert_eq!(report["node_names_unique"], true, "{id}");
    assert!(!ops.contains_key("Dropout") && !ops.contains_key("Identity"), "{id}: {ops:?}");
    let summary = Summary::of(config).unwrap();
    let norms = summary.layers.iter().filter(|l| l.op.starts_with("batch_norm")).count() as u64;
    let expected_norms = if case.fold_bn { 0 } else { norms };
    assert_eq!(ops.get("BatchNormalization").copied().unwrap_or(0), expected_norms, "{id}: {ops:?}");
    // PyTorch's names: every float tensor of the state is an initializer, unless folded, in
    // which case the folded weight is named `<conv>.weight+<bn>`.
    let initializers: Vec<String> = serde_json::from_value(report["initializers"].clone()).unwrap();
    for tensor in summary.tensors.iter().filter(|t| !t.integer) {
        let kept = initializers.contains(&tensor.name);
        let folded = case.fold_bn
            && (tensor.name.contains("bn")
                || tensor.name.contains("downsample.1")
                || initializers.iter().any(|i| i.starts_with(&format!("{}+", tensor.name))));
        assert!(kept || folded, "{id}: no initializer for {}", tensor.name);
    }
    let meta = &report["metadata"];
    let task = match config.task() {
        prism_models::Task::Scene => "scene",
        prism_models::Task::Image => "image",
        prism_models::Task::Features => "features",
    };
    assert_eq!(meta["prism.task"], task, "{id}");
    assert_eq!(meta["prism.model"], config.name(), "{id}");
    assert_eq!(meta["prism.graph"], "window", "{id}");
    let stored: ModelConfig = serde_json::from_str(meta["prism.config"].as_str().unwrap()).unwrap();
    assert_eq!(&stored, config, "{id}");
    let input = &report["inputs"][0];
    let outputs: Vec<&str> =
        report["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(input["shape"][0], "batch", "{id}");
    match config.classes() {
        Some(classes) => {
            assert_eq!(outputs, ["logits", "probabilities"], "{id}");
            assert_eq!(report["outputs"][0]["shape"], json!(["batch", classes]), "{id}");
        }
        None => assert_eq!(outputs, ["features_out"], "{id}"),
    }
}

/// The whole-scene graph equals the window graph on every pixel of a random 12 x 9 scene: the
/// windows cut and padded by numpy and run in onnxruntime (Python); the scene graph also on tract
/// and the Rust ort engine.
#[test]
fn whole_scene_graph_equals_window_graph_on_every_pixel() {
    let runs = runs();
    let dir = runs.dir.join("scene");
    std::fs::create_dir_all(&dir).unwrap();
    let mut jobs = Vec::new();
    let mut ids = Vec::new();
    for run in ["hybridsn", "hybridsn-bn"] {
        for fold_bn in [true, false] {
            let id = format!("{run}-{}", if fold_bn { "fold" } else { "nofold" });
            let out = dir.join(format!("{id}.onnx"));
            let options = ExportOptions { fold_bn, out: Some(out.clone()), parity: None, ..Default::default() };
            let report = export(&runs.path(run), &options).unwrap();
            assert_eq!(
                report.scene_graph.path.as_deref(),
                Some(dir.join(format!("{id}.scene.onnx")).as_path()),
                "{id}"
            );
            jobs.push(json!({
                "kind": "scene",
                "window_onnx": out,
                "scene_onnx": dir.join(format!("{id}.scene.onnx")),
                "preprocessing": runs.path(run).join("preprocessing.json"),
                "height": 12, "width": 9, "seed": 5,
                "output": dir.join(format!("{id}.scene.safetensors")),
            }));
            ids.push(id);
        }
    }
    check_onnx(&dir, "scene", &jobs);
    for id in ids {
        let out = tensors(&dir.join(format!("{id}.scene.safetensors")));
        let dense = out.get("dense").unwrap();
        let classes = dense.shape[1];
        assert_eq!(dense.shape, [1, classes, 12, 9], "{id}");
        // [1, C, H, W] -> [H * W, C], to line up with the windows, row-major over pixels.
        let per_pixel: Vec<f32> =
            (0..12 * 9).flat_map(|p| (0..classes).map(move |c| (c, p))).map(|(c, p)| dense.data[c * 108 + p]).collect();
        let windows = values(&out, "windows");
        assert_close(
            &format!("{id}: scene graph vs window graph (onnxruntime)"),
            &per_pixel,
            &windows,
            Tolerance::APPROX,
        );
        let scene = out.get("scene").unwrap().to_array();
        for engine in [EngineChoice::Tract, EngineChoice::Ort] {
            let (name, got) = on_engine(&dir.join(format!("{id}.scene.onnx")), &scene, engine);
            assert_close(&format!("{id}: scene graph on {name} vs onnxruntime"), &got, &dense.data, Tolerance::APPROX);
        }
    }
}

/// Prism's export of torchvision's ResNet-18 (random weights, 1000 classes, 224 x 224) gives
/// what `torch.onnx.export` of the same model gives, both in onnxruntime on the same raw images.
#[test]
fn torchvision_resnet18_matches_torch_onnx_export() {
    let runs = runs();
    let dir = runs.dir.join("torchvision");
    std::fs::create_dir_all(&dir).unwrap();
    let run = runs.path("torchvision-resnet18");
    let ours = dir.join("prism.onnx");
    export(&run, &ExportOptions { out: Some(ours.clone()), parity: None, ..Default::default() }).unwrap();
    let sample = run.join("sample.safetensors");
    let jobs = [
        json!({"onnx": ours, "input": sample, "output": dir.join("prism.out.safetensors")}),
        json!({"onnx": runs.torch_onnx(), "input": sample, "output": dir.join("torch.out.safetensors")}),
    ];
    let reports = check_onnx(&dir, "torchvision", &jobs);
    assert_eq!(reports[0]["outputs"][0]["shape"], json!(["batch", 1000]));
    let prism = values(&tensors(&dir.join("prism.out.safetensors")), "logits");
    let torch = values(&tensors(&dir.join("torch.out.safetensors")), "logits");
    assert_eq!(prism.len(), 4 * 1000);
    assert_close("Prism's ResNet-18 vs torch.onnx's", &prism, &torch, Tolerance::APPROX);
    assert_close("Prism's ResNet-18 vs PyTorch", &prism, &values(&tensors(&sample), "logits"), Tolerance::APPROX);
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `exporter` binary: files, JSON report, parity on tract and ort, Triton layout, and a
/// parity failure that exits with status 2.
#[test]
fn cli_exports_and_reports_parity() {
    let runs = runs();
    let dir = runs.dir.join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();

    let out = dir.join("hybridsn.onnx");
    let result = run("exporter", &["--run", &path(&runs.path("hybridsn")), "--out", &path(&out), "--json"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let report: Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(report["pass"], true, "{report}");
    assert_eq!(report["opset"], 17);
    assert_eq!(report["inputs"][0], json!({"name": "spectra", "elem_type": "float", "shape": ["batch", 60, 25, 25]}));
    let engines: Vec<(&str, &str)> = report["parity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["engine"].as_str().unwrap(), p["status"].as_str().unwrap()))
        .collect();
    assert_eq!(engines, [("tract", "pass"), ("ort", "pass")], "{report}");
    assert!(report["parity"][0]["comparison"]["max_abs"].as_f64().unwrap() < 1e-4);
    assert_eq!(report["scene_graph"]["written"], true);
    assert_eq!(report["scene_graph"]["check"]["pass"], true, "{report}");
    assert!(dir.join("hybridsn.scene.onnx").exists());
    assert!(stderr(&result).contains("parity with the trainer's logits"), "{}", stderr(&result));

    let result = run(
        "exporter",
        &[
            "--run",
            &path(&runs.path("block-spm")),
            "--out",
            &path(&dir.join("spm.onnx")),
            "--no-fold-bn",
            "--opset",
            "13",
            "--json",
        ],
    );
    assert!(result.status.success(), "{}", stderr(&result));
    let report: Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(
        (report["pass"].clone(), report["fold_bn"].clone(), report["ir_version"].clone()),
        (json!(true), json!(false), json!(7))
    );

    let repo = dir.join("triton");
    let result = run(
        "exporter",
        &[
            "--run",
            &path(&runs.path("hybridsn-se")),
            "--out",
            &path(&dir.join("se.onnx")),
            "--opset",
            "18",
            "--triton-repo",
            &path(&repo),
            "--json",
        ],
    );
    assert!(result.status.success(), "{}", stderr(&result));
    let report: Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(report["scene_graph"]["written"], false);
    assert!(report["scene_graph"]["reason"].as_str().unwrap().contains("no whole-scene form"), "{report}");
    assert!(stderr(&result).contains("no whole-scene graph"), "{}", stderr(&result));
    let config = std::fs::read_to_string(repo.join("hybridsn-se/config.pbtxt")).unwrap();
    assert!(config.contains("platform: \"onnxruntime_onnx\"") && config.contains("dims: [ 60, 25, 25 ]"), "{config}");
    assert_eq!(
        std::fs::read(repo.join("hybridsn-se/1/model.onnx")).unwrap(),
        std::fs::read(dir.join("se.onnx")).unwrap()
    );

    // Logits that the model does not produce: a failed parity check, status 2.
    let broken = dir.join("broken-run");
    copy_run(&runs.path("block-se"), &broken);
    let sample = broken.join("sample.safetensors");
    let mut tensors = tch::Tensor::read_safetensors(&sample).unwrap();
    for (name, t) in tensors.iter_mut() {
        if name == "logits" {
            *t = &*t + 0.01;
        }
    }
    let refs: Vec<(&str, &tch::Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::Tensor::write_safetensors(&refs, &sample).unwrap();
    std::fs::write(broken.join("model.onnx"), "an earlier export").unwrap();
    let result = run("exporter", &["--run", &path(&broken)]);
    assert_eq!(result.status.code(), Some(2), "{}", stderr(&result));
    assert!(stderr(&result).contains("tract/cpu: FAIL"), "{}", stderr(&result));
    // Nothing of the failed export is left: the earlier file stays, no staging folder remains.
    assert_eq!(std::fs::read_to_string(broken.join("model.onnx")).unwrap(), "an earlier export");
    let left: Vec<_> = std::fs::read_dir(&broken)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("export"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Rewrites a safetensors file through `edit` (tensors by name).
fn edit_safetensors(path: &Path, edit: impl FnOnce(&mut Vec<(String, tch::Tensor)>)) {
    let mut tensors = tch::Tensor::read_safetensors(path).unwrap();
    edit(&mut tensors);
    let refs: Vec<(&str, &tch::Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::Tensor::write_safetensors(&refs, path).unwrap();
}

/// Broken run directories and bad flags: one line naming the file and tensor, non-zero exit,
/// no panic.
#[test]
fn bad_runs_are_one_line_errors() {
    let runs = runs();
    let dir = runs.dir.join("errors");
    std::fs::create_dir_all(&dir).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let good = runs.path("hybridsn-bn");
    let broken = |name: &str, edit: &dyn Fn(&Path)| {
        let run = dir.join(name);
        copy_run(&good, &run);
        edit(&run);
        run
    };

    assert_one_line_error(&run("exporter", &["--run", &path(&good), "--opst", "17"]), "unexpected argument '--opst'");
    let missing = dir.join("no-such-run");
    assert_one_line_error(
        &run("exporter", &["--run", &path(&missing)]),
        &format!("run directory {} does not exist", missing.display()),
    );

    let run_dir = broken("no-weights", &|r| std::fs::remove_file(r.join("model.safetensors")).unwrap());
    assert_one_line_error(
        &run("exporter", &["--run", &path(&run_dir)]),
        &format!("{}: No such file", run_dir.join("model.safetensors").display()),
    );

    let run_dir = broken("wrong-shape", &|r| {
        edit_safetensors(&r.join("model.safetensors"), |ts| {
            for (name, t) in ts.iter_mut() {
                if name == "fc3.weight" {
                    *t = t.narrow(0, 0, 15).contiguous();
                }
            }
        })
    });
    assert_one_line_error(
        &run("exporter", &["--run", &path(&run_dir)]),
        &format!(
            "{}: tensor `fc3.weight` has shape [15, 128], expected [16, 128]",
            run_dir.join("model.safetensors").display()
        ),
    );

    let run_dir = broken("missing-tensor", &|r| {
        edit_safetensors(&r.join("model.safetensors"), |ts| ts.retain(|(n, _)| n != "bn2.running_var"))
    });
    assert_one_line_error(
        &run("exporter", &["--run", &path(&run_dir)]),
        &format!("{}: missing tensor `bn2.running_var`", run_dir.join("model.safetensors").display()),
    );

    let run_dir = broken("no-logits", &|r| {
        edit_safetensors(&r.join("sample.safetensors"), |ts| ts.retain(|(n, _)| n != "logits"))
    });
    assert_one_line_error(
        &run("exporter", &["--run", &path(&run_dir)]),
        &format!("{}: missing tensor `logits`", run_dir.join("sample.safetensors").display()),
    );
    // Without the parity check the sample is not needed.
    let result = run("exporter", &["--run", &path(&run_dir), "--no-parity", "--no-scene"]);
    assert!(result.status.success(), "{}", stderr(&result));

    for opset in ["12", "19"] {
        let result = run("exporter", &["--run", &path(&good), "--opset", opset, "--out", &path(&dir.join("x.onnx"))]);
        assert_one_line_error(&result, &format!("opset {opset} is not supported (supported: 13 to 18)"));
    }
    assert!(!dir.join("x.onnx").exists());
}

/// What an edge app compiles: a runtime built with tract alone depends on no native engine
/// (neither ort nor the loader it opens ONNX Runtime with), no file-format parser, no PNG
/// encoder and no command-line crate. tract itself uses anyhow (and prost's derive macro does
/// at build time); no Prism crate does in that build.
#[test]
fn tract_only_runtime_is_lean() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(prism_tests::root())
        .args(["tree", "--offline", "-p", "prism-runtime", "--no-default-features", "--features", "tract"])
        .args(["-e", "normal", "--prefix", "depth", "--format", "{p}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    // (parent, child) package names, from the depth printed before each line.
    let mut path: Vec<String> = Vec::new();
    let mut edges = Vec::new();
    for line in tree.lines() {
        let name_at = line.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        let (Ok(depth), Some(name)) = (line[..name_at].parse::<usize>(), line[name_at..].split(' ').next()) else {
            continue;
        };
        path.truncate(depth);
        if let Some(parent) = path.last() {
            edges.push((parent.clone(), name.to_string()));
        }
        path.push(name.to_string());
    }
    assert!(edges.iter().any(|(_, child)| child == "tract-onnx"), "{tree}");
    assert!(edges.iter().any(|(parent, child)| parent == "prism-runtime" && child == "prism-data"), "{tree}");
    let never = ["ort", "ort-sys", "libloading", "torch-sys", "png", "flate2", "ab_glyph", "clap", "indicatif", "zip"];
    let never = [
        &never[..],
        &["npyz", "plotters", "prism-cli", "tokio", "axum", "tonic", "prost-reflect", "prometheus-client"],
        &["tract-transformers"],
    ]
    .concat();
    let found: Vec<_> = edges.iter().filter(|(_, child)| never.contains(&child.as_str())).collect();
    assert!(found.is_empty(), "a tract-only runtime pulls in {found:?}");
    let prism_anyhow: Vec<_> = edges.iter().filter(|(p, c)| p.starts_with("prism-") && c == "anyhow").collect();
    assert!(prism_anyhow.is_empty(), "{prism_anyhow:?}");
}
