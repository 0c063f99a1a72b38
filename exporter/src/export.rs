//! The whole export of a run directory: the window graph, the whole-scene graph where the model
//! has one, the parity report, and the Triton repository entry.

use std::path::{Path, PathBuf};

use prism_data::write_bytes_atomic;
use prism_models::Task;
use prism_models::run::Preprocessing;
pub use prism_onnx::TensorInfo;
use prism_onnx::pb;
use prism_runtime::engine::{EngineChoice, EngineOptions, Provider};
use prost::Message;
use serde::Serialize;

use crate::calibrate::RunData;
use crate::metadata::{input_name, task_name};
use crate::model::{ir_version, window_model};
use crate::parity::{self, EngineParity, Tolerance};
use crate::precision::{self, Agreement, LowerOptions, Lowering, Precision};
use crate::rundir::{RunDir, Sample};
use crate::scene_graph::{SceneCheck, check_scene, scene_graph_unavailable, scene_model};
use crate::triton;
use crate::{DEFAULT_OPSET, Error, Result};

/// What to export and check.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// ONNX opset, 13 to 18.
    pub opset: i64,
    /// Fold batch norms into the preceding convolutions (see [`crate::ops::batch_norm`]).
    pub fold_bn: bool,
    /// The window graph's path; default `<run>/model.onnx`. The whole-scene graph goes next to
    /// it as `<stem>.scene.onnx`.
    pub out: Option<PathBuf>,
    /// Write the whole-scene graph when the model has one.
    pub scene_graph: bool,
    /// Check the files on tract and ONNX Runtime against the run's sample (`None`: no check).
    pub parity: Option<Tolerance>,
    /// Also lay the window graph out as a Triton model repository entry here.
    pub triton_repo: Option<PathBuf>,
    /// The ONNX Runtime library for the parity check (default: found as the runtime finds it).
    pub ort_library: Option<PathBuf>,
    /// float32 (the default), or float16 or int8 checked against float32 on the run's pixels.
    pub lower: LowerOptions,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            opset: DEFAULT_OPSET,
            fold_bn: true,
            out: None,
            scene_graph: true,
            parity: Some(Tolerance::default()),
            triton_repo: None,
            ort_library: None,
            lower: LowerOptions::default(),
        }
    }
}

/// The whole-scene graph: written or why not, and its pixel-by-pixel check.
#[derive(Clone, Debug, Serialize)]
pub struct SceneGraphReport {
    pub written: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<SceneCheck>,
}

/// A float16 or int8 export: what was rewritten and how it compares with float32.
#[derive(Clone, Debug, Serialize)]
pub struct LoweredReport {
    #[serde(flatten)]
    pub lowering: Lowering,
    pub float32_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene_float32_bytes: Option<usize>,
    pub min_agreement: f64,
    pub agreement: Vec<Agreement>,
}

/// What [`export`] did, for people ([`ExportReport::summary`]) and machines (serde).
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    pub run_dir: PathBuf,
    pub model: String,
    pub task: String,
    pub onnx: PathBuf,
    pub bytes: usize,
    pub opset: i64,
    pub ir_version: i64,
    pub fold_bn: bool,
    pub nodes: usize,
    pub initializers: usize,
    /// Weights and biases stored in initializers, in whatever number type (shapes and the
    /// quantization's scales and zero points aside).
    pub parameters: usize,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    pub precision: Precision,
    /// Absent for float32.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lowered: Option<LoweredReport>,
    pub scene_graph: SceneGraphReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    /// One entry per engine; absent with `--no-parity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parity: Option<Vec<EngineParity>>,
    /// Every check passed (true when none ran).
    pub pass: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triton: Option<PathBuf>,
}

/// Exports a run directory.
///
/// ```no_run
/// use prism_exporter::{export, ExportOptions};
///
/// let report = export("runs/hybridsn".as_ref(), &ExportOptions::default())?;
/// eprintln!("{}", report.summary());
/// assert!(report.pass);
/// # Ok::<(), prism_exporter::Error>(())
/// ```
///
/// # Errors
/// An unsupported opset; a run directory that is missing, incomplete or inconsistent (named
/// file and tensor); a file that cannot be written; an engine that fails on the exported model.
/// Checks that run but find differences above tolerance are not errors: see
/// [`ExportReport::pass`].
pub fn export(run_dir: &Path, options: &ExportOptions) -> Result<ExportReport> {
    let ir = ir_version(options.opset)?;
    let run = RunDir::read(run_dir)?;
    let precision = options.lower.precision;
    // A lowered export is checked against float32 on the run's data, not the trainer's sample.
    let sample = match (options.parity, precision) {
        (Some(_), Precision::Fp32) => Some(run.sample()?),
        _ => None,
    };
    let default_name = match precision {
        Precision::Fp32 => "model.onnx".to_string(),
        other => format!("model.{other}.onnx"),
    };
    let out = options.out.clone().unwrap_or_else(|| run_dir.join(default_name));
    let window = window_model(&run, options.opset, options.fold_bn)?;
    let (scene_model, mut scene_graph) = scene_graph_for(&run, options)?;
    let (window, scene_model, lowered) = match precision {
        Precision::Fp32 => (window, scene_model, None),
        _ => lower_run(&run, window, scene_model, options)?,
    };
    let bytes = window.encode_to_vec();
    // The files are written and checked in a staging folder beside `out`, and moved into place
    // only when every check passed: a failed export leaves an earlier one as it was.
    let staging = Staging::new(&out)?;
    let staged = staging.0.join(out.file_name().unwrap_or("model.onnx".as_ref()));
    write_bytes_atomic(&staged, &bytes)?;
    if let Some(scene) = &scene_model {
        write_bytes_atomic(&scene_path(&staged), &scene.encode_to_vec())?;
        scene_graph.written = true;
        scene_graph.check = check_scene_graph(&run, options, &staged, sample.as_ref())?;
    }
    let parity = match (options.parity, &sample) {
        (Some(tol), Some(sample)) => Some(parity::check(&staged, sample, tol, options.ort_library.as_deref())),
        _ => None,
    };
    let pass = parity.iter().flatten().all(EngineParity::ok)
        && scene_graph.check.as_ref().is_none_or(|c| c.pass)
        && lowered.iter().flat_map(|l| &l.agreement).all(Agreement::ok);

    let graph = window.graph.as_ref();
    let infos = |values: &[pb::ValueInfoProto]| values.iter().map(TensorInfo::from_proto).collect::<Vec<_>>();
    let (inputs, outputs) = graph.map(|g| (infos(&g.input), infos(&g.output))).unwrap_or_default();
    let mut triton = None;
    if pass {
        if let Some(repo) = &options.triton_repo {
            let scene = scene_graph.written.then(|| scene_path(&staged));
            triton = Some(write_triton(repo, &run, &bytes, scene.as_deref())?);
        }
        if scene_graph.written {
            let path = scene_path(&out);
            std::fs::rename(scene_path(&staged), &path).map_err(|e| Error::io(&path, e))?;
            scene_graph.path = Some(path);
        }
        std::fs::rename(&staged, &out).map_err(|e| Error::io(&out, e))?;
    } else {
        (scene_graph.written, scene_graph.path) = (false, None);
    }
    Ok(ExportReport {
        run_dir: run_dir.to_path_buf(),
        model: run.model().name(),
        task: task_name(run.model().task()).into(),
        onnx: out,
        bytes: bytes.len(),
        opset: options.opset,
        ir_version: ir,
        fold_bn: options.fold_bn,
        nodes: graph.map_or(0, |g| g.node.len()),
        initializers: graph.map_or(0, |g| g.initializer.len()),
        parameters: graph.map_or(0, |g| g.initializer.iter().map(parameter_count).sum()),
        inputs,
        outputs,
        precision,
        lowered,
        scene_graph,
        tolerance: options.parity,
        parity,
        pass,
        triton,
    })
}

/// The values of a weight or bias initializer; 0 for shapes (int64) and quantization parameters.
fn parameter_count(t: &pb::TensorProto) -> usize {
    use pb::tensor_proto::DataType;
    if t.name.ends_with("/scale") || t.name.ends_with("/zero_point") {
        return 0;
    }
    match DataType::try_from(t.data_type) {
        Ok(DataType::Float | DataType::Int32) => t.raw_data.len() / 4,
        Ok(DataType::Float16) => t.raw_data.len() / 2,
        Ok(DataType::Int8) => t.raw_data.len(),
        _ => 0,
    }
}

/// A folder beside the output for the files of one export, removed with what is left in it.
struct Staging(PathBuf);

impl Staging {
    fn new(out: &Path) -> Result<Staging> {
        let dir = out.with_file_name(format!(".{}.export-{}", stem(out), std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(out, e))?;
        Ok(Staging(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `<dir>/<stem>.scene.onnx` for `<dir>/<stem>.onnx`.
pub fn scene_path(out: &Path) -> PathBuf {
    out.with_file_name(format!("{}.scene.onnx", stem(out)))
}

/// The output's name without its extension (`model` when it has none).
fn stem(out: &Path) -> String {
    out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
}

/// The whole-scene graph in float32 when the run has one and it is asked for, and the report
/// that says why not otherwise.
fn scene_graph_for(run: &RunDir, options: &ExportOptions) -> Result<(Option<pb::ModelProto>, SceneGraphReport)> {
    let mut report = SceneGraphReport { written: false, path: None, reason: None, check: None };
    if run.model().task() != Task::Scene {
        return Ok((None, report));
    }
    if let Some(reason) = scene_graph_unavailable(run) {
        report.reason = Some(reason);
        return Ok((None, report));
    }
    if !options.scene_graph {
        report.reason = Some("not asked for (--no-scene)".into());
        return Ok((None, report));
    }
    Ok((Some(scene_model(run, options.opset, options.fold_bn)?), report))
}

/// The float32 whole-scene graph written beside `out` against the window graph `out`, on a
/// random scene with the sample's value range.
fn check_scene_graph(
    run: &RunDir,
    options: &ExportOptions,
    out: &Path,
    sample: Option<&Sample>,
) -> Result<Option<SceneCheck>> {
    let (Some(tol), Some(sample), Some(Preprocessing::Scene(pre))) = (options.parity, sample, &run.preprocessing)
    else {
        return Ok(None);
    };
    let range = value_range(&sample.input);
    Ok(Some(check_scene(out, &scene_path(out), pre, (12, 9), range, tol, &cpu_engine(options))?))
}

/// ONNX Runtime when its library is found, else tract, on the CPU provider, as the parity check:
/// the checks are of the file's graph, and a GPU's arithmetic need not be float32's (on an H200
/// the CUDA provider was 0.2 off on a random scene with raw-band magnitudes, while the real
/// scene's labels matched the CPU's).
fn cpu_engine(options: &ExportOptions) -> EngineOptions {
    EngineOptions {
        engine: EngineChoice::Auto,
        provider: Provider::Cpu,
        ort_library: options.ort_library.clone(),
        ..Default::default()
    }
}

/// The float16 or int8 rewrite of both graphs, int8 calibrated on the run's training windows,
/// and both checked against float32 on its held-out pixels and its scene.
fn lower_run(
    run: &RunDir,
    window: pb::ModelProto,
    scene: Option<pb::ModelProto>,
    options: &ExportOptions,
) -> Result<(pb::ModelProto, Option<pb::ModelProto>, Option<LoweredReport>)> {
    let lower = &options.lower;
    let data = RunData::open(run)?;
    let inputs = match lower.precision {
        Precision::Int8 => Some(data.calibration(lower.calibration)?),
        _ => None,
    };
    let source = data.describe("training");
    let calibration = inputs.as_ref().map(|inputs| (inputs, source.as_str()));
    let (lowered, lowered_scene, lowering) =
        precision::lower(&window, scene.as_ref(), lower.precision, calibration, &cpu_engine(options))?;
    let agreement = if options.parity.is_some() {
        let scenes = scene.as_ref().zip(lowered_scene.as_ref());
        precision::check_run(&data, (&window, &lowered), scenes, lower, options.ort_library.as_deref())?
    } else {
        Vec::new()
    };
    let report = LoweredReport {
        lowering,
        float32_bytes: window.encoded_len(),
        scene_float32_bytes: scene.as_ref().map(Message::encoded_len),
        min_agreement: lower.min_agreement,
        agreement,
    };
    Ok((lowered, lowered_scene, Some(report)))
}

/// The sample's value range, so that the random test scene looks like real data.
fn value_range(x: &ndarray::ArrayD<f32>) -> (f32, f32) {
    let (low, high) = x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    if low.is_finite() && high > low { (low, high) } else { (0.0, 1.0) }
}

/// The window graph's repository entry, and the whole-scene graph's beside it
/// (`<model>_scene`, no batch dimension) when one was written.
fn write_triton(repo: &Path, run: &RunDir, bytes: &[u8], scene: Option<&Path>) -> Result<PathBuf> {
    let task = run.model().task();
    let signed = |dims: Vec<usize>| dims.into_iter().map(|d| i64::try_from(d).unwrap_or(-1)).collect::<Vec<_>>();
    let input = triton::Tensor { name: input_name(task).into(), dims: signed(run.graph_input_shape()) };
    let out_dims = signed(run.output_shape());
    let names: &[&str] = if task == Task::Features { &["features_out"] } else { &["logits", "probabilities"] };
    let outputs: Vec<triton::Tensor> =
        names.iter().map(|n| triton::Tensor { name: n.to_string(), dims: out_dims.clone() }).collect();
    let name = run.model().name();
    let dir = triton::write_repository(repo, &name, bytes, triton::MAX_BATCH_SIZE, &input, &outputs)?;
    if let Some(scene) = scene {
        let bytes = std::fs::read(scene).map_err(|e| Error::io(scene, e))?;
        let info = prism_onnx::OnnxInfo::parse(bytes.clone()).map_err(|e| Error::format(scene, e))?;
        let tensor = |t: &TensorInfo| triton::Tensor {
            name: t.name.clone(),
            dims: t
                .shape
                .iter()
                .map(|d| match d {
                    prism_onnx::Dim::Fixed(n) => i64::try_from(*n).unwrap_or(-1),
                    prism_onnx::Dim::Symbolic(_) => -1,
                })
                .collect(),
        };
        let (Some(input), outputs) =
            (info.inputs.first().map(tensor), info.outputs.iter().map(tensor).collect::<Vec<_>>())
        else {
            return Err(Error::format(scene, "the whole-scene graph has no input"));
        };
        triton::write_repository(repo, &format!("{name}_scene"), &bytes, 0, &input, &outputs)?;
    }
    Ok(dir)
}

impl ExportReport {
    /// A readable summary: files, sizes, and each check with its histogram.
    pub fn summary(&self) -> String {
        let shape = |t: &TensorInfo| {
            let dims: Vec<String> = t.shape.iter().map(ToString::to_string).collect();
            format!("{} [{}]", t.name, dims.join(", "))
        };
        let mut lines = vec![
            format!(
                "{} {} ({:.1} MB): {} ({}), opset {}, IR {}, {} nodes, {} initializers, {} parameters{}",
                if self.pass { "wrote" } else { "did not write" },
                self.onnx.display(),
                self.bytes as f64 / 1e6,
                self.model,
                self.task,
                self.opset,
                self.ir_version,
                self.nodes,
                self.initializers,
                prism_models::summary::group_digits(self.parameters),
                if self.fold_bn { ", batch norm folded" } else { "" }
            ),
            format!(
                "  inputs: {}; outputs: {}",
                self.inputs.iter().map(shape).collect::<Vec<_>>().join(", "),
                self.outputs.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
        ];
        match (&self.scene_graph.path, &self.scene_graph.reason) {
            (Some(path), _) if self.pass => lines.push(format!("wrote whole-scene graph {}", path.display())),
            (Some(_), _) => {}
            (None, Some(reason)) => lines.push(format!("no whole-scene graph: {reason}")),
            (None, None) => {}
        }
        if let Some(check) = &self.scene_graph.check {
            lines.push(format!(
                "  scene graph vs window graph on a random {}x{} scene ({}): largest difference {:.2e}, {} (scene {:.3} s, windows {:.3} s)",
                check.height,
                check.width,
                check.engine,
                check.max_abs,
                if check.pass { "pass" } else { "FAIL" },
                check.scene_seconds,
                check.window_seconds
            ));
        }
        if let (Some(parity), Some(tol)) = (&self.parity, &self.tolerance) {
            lines.push(format!("parity with the trainer's logits (atol {:e}, rtol {:e}):", tol.atol, tol.rtol));
            for p in parity {
                let mut line = format!("  {}/{}: {}", p.engine, p.provider, p.status.to_uppercase());
                if let Some(c) = &p.comparison {
                    line.push_str(&format!(
                        ", {} values, largest difference {:.2e} absolute, {:.2e} relative, {} out of tolerance",
                        c.count, c.max_abs, c.max_rel, c.outliers
                    ));
                }
                if let Some(s) = p.seconds {
                    line.push_str(&format!(", {:.3} s", s));
                }
                if let Some(note) = &p.note {
                    line.push_str(&format!(" ({note})"));
                }
                lines.push(line);
                if let Some(c) = &p.comparison {
                    lines.push(c.histogram_text());
                }
            }
        }
        if let Some(lowered) = &self.lowered {
            lines.extend(lowered.summary_lines(self.bytes));
        }
        if let Some(triton) = &self.triton {
            lines.push(format!("wrote Triton model {}", triton.display()));
        }
        lines.join("\n")
    }
}

impl LoweredReport {
    fn summary_lines(&self, bytes: usize) -> Vec<String> {
        let l = &self.lowering;
        let mut lines = vec![format!(
            "{}: {:.1} MB against {:.1} MB in float32 ({:.0} %)",
            l.precision,
            bytes as f64 / 1e6,
            self.float32_bytes as f64 / 1e6,
            100.0 * bytes as f64 / self.float32_bytes.max(1) as f64
        )];
        if !l.quantized.is_empty() {
            lines.push(format!("  in int8: {}", l.quantized.join(", ")));
        }
        let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for kept in &l.kept_float {
            match reasons.iter_mut().find(|(why, _)| *why == kept.why) {
                Some((_, nodes)) => nodes.push(&kept.node),
                None => reasons.push((&kept.why, vec![&kept.node])),
            }
        }
        for (why, nodes) in reasons {
            lines.push(format!("  float32: {} ({why})", nodes.join(", ")));
        }
        if let Some(calibration) = &l.calibration {
            lines.push(format!("  calibrated on {calibration}"));
        }
        if !self.agreement.is_empty() {
            lines.push(format!("against float32 (top-1 agreement at least {} %):", 100.0 * self.min_agreement));
        }
        if !self.agreement.is_empty() && self.agreement.iter().all(|a| a.status == "skipped") {
            lines.push("  no engine here could check this file (reasons below): it is written unchecked".into());
        }
        for a in &self.agreement {
            let what = match a.on.as_str() {
                "scene" => "scene pixels",
                "images" => "held-out photos",
                _ => "held-out windows",
            };
            let mut line = format!("  {} on {}: {}", a.on, a.engine, a.status.to_uppercase());
            if a.samples > 0 {
                line.push_str(&format!(
                    ", {} {what}, top-1 agreement {:.2} %, largest probability difference {:.3}",
                    a.samples,
                    100.0 * a.top1_agreement,
                    a.max_probability_difference
                ));
                if let (Some(acc), Some(acc32)) = (a.accuracy, a.accuracy_fp32) {
                    line.push_str(&format!(", OA {:.2} % (float32 {:.2} %)", 100.0 * acc, 100.0 * acc32));
                }
                line.push_str(&format!(", {:.2} s (float32 {:.2} s)", a.seconds, a.fp32_seconds));
            }
            if let Some(note) = &a.note {
                line.push_str(&format!(" ({note})"));
            }
            lines.push(line);
        }
        lines
    }
}
