//! `--precision int8|fp16`: the float32 graphs rewritten ([`crate::quantize`]), calibrated on
//! the run's training pixels, and checked against float32 on its held-out pixels and on the
//! scene itself ([`Agreement`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use ndarray::{ArrayD, Axis, IxDyn};
use prism_data::scene::SceneSource;
use prism_onnx::pb;
use prism_runtime::engine::{self, EngineOptions, Source};
use prost::Message;
use serde::Serialize;

use crate::calibrate::{self, RunData, RunScene};
use crate::parity;
use crate::quantize::{self, Int8Plan, KeptFloat};
use crate::{Error, Result};

/// The number type a graph computes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Int8,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "fp16" | "float16" => Ok(Precision::Fp16),
            "int8" => Ok(Precision::Int8),
            _ => Err(format!("unknown precision `{s}` (fp32, fp16 or int8)")),
        }
    }
}

/// How a lower-precision export is made and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct LowerOptions {
    pub precision: Precision,
    /// Training windows the int8 ranges are measured on.
    pub calibration: usize,
    /// Held-out windows the check runs on.
    pub check_samples: usize,
    /// Smallest share of held-out windows (and scene pixels) whose top-1 class must equal
    /// float32's.
    pub min_agreement: f64,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions { precision: Precision::Fp32, calibration: 256, check_samples: 1000, min_agreement: 0.99 }
    }
}

/// The rewrite's choices, for the report and the file's metadata.
#[derive(Clone, Debug, Serialize)]
pub struct Lowering {
    pub precision: Precision,
    /// How the activation ranges were measured (int8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    /// Convolutions and fully connected layers computed in int8.
    pub quantized: Vec<String>,
    pub kept_float: Vec<KeptFloat>,
}

/// The preprocessing at a graph's start, which always stays float32.
const PREPROCESSING: [(&str, &str); 3] = [
    ("pca", "the PCA projection of raw band values (int8 input would keep 256 levels of a 0..10000 range)"),
    ("normalize/center", "the input normalisation"),
    ("normalize", "the input normalisation"),
];

/// Rewrites the window graph and the whole-scene graph (when there is one) to `precision`,
/// int8 calibrated on `calibration` (inputs of the window graph).
///
/// # Errors
/// An engine that fails on the calibration run; a graph the rewrite cannot handle.
pub fn lower(
    window: &pb::ModelProto,
    scene: Option<&pb::ModelProto>,
    precision: Precision,
    calibration: Option<(&ArrayD<f32>, &str)>,
    engine: &EngineOptions,
) -> Result<(pb::ModelProto, Option<pb::ModelProto>, Lowering)> {
    let keep: Vec<&str> = PREPROCESSING.iter().map(|(n, _)| *n).collect();
    let graph = graph_of(window)?;
    let mut lowering = Lowering { precision, calibration: None, quantized: Vec::new(), kept_float: Vec::new() };
    let (window, scene) = match precision {
        Precision::Fp32 => (window.clone(), scene.cloned()),
        Precision::Fp16 => {
            lowering.kept_float = PREPROCESSING
                .iter()
                .filter(|(name, _)| graph.node.iter().any(|n| n.name == *name))
                .map(|(node, why)| KeptFloat { node: node.to_string(), why: why.to_string() })
                .collect();
            lowering.kept_float.push(KeptFloat { node: "probabilities".into(), why: "the softmax".into() });
            (quantize::to_fp16(window, &keep)?, scene.map(|s| quantize::to_fp16(s, &keep)).transpose()?)
        }
        Precision::Int8 => {
            let (inputs, source) =
                calibration.ok_or_else(|| Error::Inconsistent("an int8 export needs calibration inputs".into()))?;
            let plan = Int8Plan::new(graph, &PREPROCESSING);
            let ranges = calibrate::ranges(window, &plan.activations, inputs, engine)?;
            lowering.calibration = Some(format!(
                "{} {source}; activations uint8, asymmetric, over their minimum and maximum; weights int8, symmetric, per output channel",
                inputs.shape()[0]
            ));
            lowering.quantized = plan.quantized.clone();
            lowering.kept_float = plan.kept_float.clone();
            let scene = match scene {
                Some(s) => Some(quantize::to_int8(s, &Int8Plan::new(graph_of(s)?, &PREPROCESSING), &ranges)?),
                None => None,
            };
            (quantize::to_int8(window, &plan, &ranges)?, scene)
        }
    };
    let mark = |mut m: pb::ModelProto| {
        m.metadata_props.extend(metadata(&lowering));
        m
    };
    Ok((mark(window), scene.map(mark), lowering))
}

fn graph_of(model: &pb::ModelProto) -> Result<&pb::GraphProto> {
    model.graph.as_ref().ok_or_else(|| Error::Inconsistent("the model has no graph".into()))
}

fn metadata(lowering: &Lowering) -> Vec<pb::StringStringEntryProto> {
    let entry = |key: &str, value: String| pb::StringStringEntryProto { key: key.into(), value };
    let mut props = vec![entry("prism.precision", lowering.precision.to_string())];
    if lowering.precision != Precision::Fp32 {
        props.push(entry("prism.lowering", serde_json::to_string(lowering).unwrap_or_default()));
    }
    props
}

/// A lower-precision graph against float32 on one engine.
#[derive(Clone, Debug, Serialize)]
pub struct Agreement {
    /// `windows` (held-out pixels through the window graph), `images` (held-out photos) or
    /// `scene` (every pixel of the scene, or the part checked, through the whole-scene graph).
    pub on: String,
    pub engine: String,
    /// `pass`, `fail`, `skipped` (ONNX Runtime not found) or `error`.
    pub status: String,
    pub samples: usize,
    /// Share of samples whose top-1 class equals float32's.
    pub top1_agreement: f64,
    /// Largest difference of a class probability.
    pub max_probability_difference: f32,
    /// Overall accuracy of float32 and of the lower-precision graph on the labelled held-out
    /// pixels among the samples.
    pub accuracy_fp32: Option<f64>,
    pub accuracy: Option<f64>,
    pub fp32_seconds: f64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Agreement {
    pub fn ok(&self) -> bool {
        matches!(self.status.as_str(), "pass" | "skipped")
    }

    fn failed(on: &str, engine: &str, status: &str, note: String) -> Agreement {
        Agreement {
            on: on.into(),
            engine: engine.into(),
            status: status.into(),
            samples: 0,
            top1_agreement: 0.0,
            max_probability_difference: 0.0,
            accuracy_fp32: None,
            accuracy: None,
            fp32_seconds: 0.0,
            seconds: 0.0,
            note: Some(note),
        }
    }
}

/// Probabilities (`[n, classes]` or `[1, classes, h, w]`) of both graphs on `input`, and seconds.
type Run = (ArrayD<f32>, f64);

fn probabilities(bytes: &[u8], name: &str, input: &ArrayD<f32>, options: &EngineOptions) -> Result<Run> {
    let mut engine = engine::load_source(Source::Memory { name: Path::new(name), bytes }, options)?;
    let start = Instant::now();
    let mut parts = Vec::new();
    let batch = if input.ndim() == 4 && input.shape()[0] > 1 { 64 } else { 1 };
    for chunk in input.axis_chunks_iter(Axis(0), batch) {
        let outputs = engine.run(chunk)?;
        let (_, p) = outputs
            .into_iter()
            .find(|(n, _)| n == "probabilities")
            .ok_or_else(|| Error::Inconsistent(format!("{name} has no `probabilities` output")))?;
        parts.push(p);
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let all = ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Inconsistent(e.to_string()))?;
    Ok((all, start.elapsed().as_secs_f64()))
}

/// Checks `lowered` against `fp32` on held-out windows (`on = "windows"`, input `[n, ...]`, one
/// label per window) or on a scene (`"scene"`, input `[1, bands, h, w]`, a label per pixel in
/// row-major order), on every engine of [`parity::check_engines`].
pub fn agreement(
    on: &str,
    fp32: &pb::ModelProto,
    lowered: &pb::ModelProto,
    input: &ArrayD<f32>,
    labels: &[Option<usize>],
    min_agreement: f64,
    ort_library: Option<&Path>,
) -> Vec<Agreement> {
    let half = lowered.metadata_props.iter().any(|p| p.key == "prism.precision" && p.value == "fp16");
    let (fp32, lowered) = (&fp32.encode_to_vec(), &lowered.encode_to_vec());
    parity::check_engines(ort_library)
        .into_iter()
        .map(|(name, options)| {
            if half && name == "tract" && cfg!(target_arch = "x86_64") {
                return Agreement::failed(on, name, "skipped", TRACT_FP16.into());
            }
            let both = probabilities(fp32, "fp32", input, &options)
                .and_then(|a| Ok((a, probabilities(lowered, "lowered", input, &options)?)));
            match both {
                Ok(((p32, t32), (p, t))) => compare(on, name, (&p32, t32), (&p, t), labels, min_agreement),
                Err(e) => {
                    let missing = name == "ort" && e.to_string().contains("ONNX Runtime library");
                    Agreement::failed(on, name, if missing { "skipped" } else { "error" }, e.to_string())
                }
            }
        })
        .collect()
}

/// Why tract does not check float16 graphs on x86-64.
const TRACT_FP16: &str = "tract 0.23 computes float16 in software on x86-64 (the Indian Pines whole-scene graph: 528 s, against 2.4 s in float32, measured 2026-12-07): fp16 files are for ONNX Runtime and GPUs there";

/// Top-1 classes along the class axis (1) of `[n, classes]` or `[1, classes, h, w]`.
fn top1(p: &ArrayD<f32>) -> Vec<usize> {
    let classes = p.shape()[1];
    let moved = p.view().permuted_axes(if p.ndim() == 4 { IxDyn(&[0, 2, 3, 1]) } else { IxDyn(&[0, 1]) });
    let flat: Vec<f32> = moved.iter().copied().collect();
    flat.chunks(classes.max(1))
        .map(|row| row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0)
        .collect()
}

fn compare(
    on: &str,
    engine: &str,
    (p32, fp32_seconds): (&ArrayD<f32>, f64),
    (p, seconds): (&ArrayD<f32>, f64),
    labels: &[Option<usize>],
    min_agreement: f64,
) -> Agreement {
    let (a, b) = (top1(p32), top1(p));
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    let share = same as f64 / a.len().max(1) as f64;
    let max_diff = p32.iter().zip(p.iter()).fold(0f32, |m, (x, y)| if (x - y).abs() > m { (x - y).abs() } else { m });
    let accuracy = |pred: &[usize]| {
        let labelled: Vec<(usize, usize)> = pred.iter().zip(labels).filter_map(|(&p, l)| l.map(|l| (p, l))).collect();
        (!labelled.is_empty()).then(|| labelled.iter().filter(|(p, l)| p == l).count() as f64 / labelled.len() as f64)
    };
    Agreement {
        on: on.into(),
        engine: engine.into(),
        status: if share >= min_agreement { "pass" } else { "fail" }.into(),
        samples: a.len(),
        top1_agreement: share,
        max_probability_difference: max_diff,
        accuracy_fp32: accuracy(&a),
        accuracy: accuracy(&b),
        fp32_seconds,
        seconds,
        note: None,
    }
}

/// The scene (or its centred `limit x limit` part) as the whole-scene graph takes it, with the
/// classes of its test pixels (`None` elsewhere), row-major.
pub fn scene_input(scene: &RunScene, limit: usize) -> Result<(ArrayD<f32>, Vec<Option<usize>>)> {
    let s = &scene.scene;
    let (h, w) = (s.height.min(limit), s.width.min(limit));
    let (y0, x0) = ((s.height - h) / 2, (s.width - w) / 2);
    // Inside the scene throughout, so the fill is never used.
    let block = s.block(y0 as isize, x0 as isize, h, w, &scene.pre.pca.mean)?;
    let input =
        ArrayD::from_shape_vec(IxDyn(&[1, s.bands, h, w]), block).map_err(|e| Error::Inconsistent(e.to_string()))?;
    let test: std::collections::HashSet<(usize, usize)> = scene.test.iter().copied().collect();
    let labels = (0..h * w)
        .map(|i| (y0 + i / w, x0 + i % w))
        .map(|p| if test.contains(&p) { scene.class(p) } else { None })
        .collect();
    Ok((input, labels))
}

/// Checks a lowered export against float32: the window (or image) graphs on the run's held-out
/// inputs, and the whole-scene graphs, when there are some, on the run's scene.
///
/// # Errors
/// A held-out photo that no longer decodes.
pub fn check_run(
    data: &RunData,
    graphs: (&pb::ModelProto, &pb::ModelProto),
    scene_graphs: Option<(&pb::ModelProto, &pb::ModelProto)>,
    options: &LowerOptions,
    ort_library: Option<&Path>,
) -> Result<Vec<Agreement>> {
    let (inputs, labels) = data.heldout(options.check_samples)?;
    let on = if matches!(data, RunData::Images(_)) { "images" } else { "windows" };
    let mut all = agreement(on, graphs.0, graphs.1, &inputs, &labels, options.min_agreement, ort_library);
    if let (Some((fp32, lowered)), RunData::Scene(scene)) = (scene_graphs, data) {
        let (input, labels) = scene_input(scene, SCENE_CHECK_LIMIT)?;
        all.extend(agreement("scene", fp32, lowered, &input, &labels, options.min_agreement, ort_library));
    }
    Ok(all)
}

/// The largest square of a scene the whole-scene check runs on (Indian Pines, 145 x 145, whole).
pub const SCENE_CHECK_LIMIT: usize = 256;
