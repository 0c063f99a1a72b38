//! The whole-scene graph of HybridSN: every layer of the plain and batch-norm variants slides
//! over the window, so the network can run densely over a scene. The PCA is a 1x1 convolution,
//! the scene is padded with zeros after it (as training pads each window), the 3-D and 2-D
//! convolutions run over the padded scene, and the fully connected layers become convolutions:
//! `fc1` `[256, 64 s s]` is `[256, 64, s, s]` (PyTorch's `flatten` is channel-major, then rows,
//! then columns: exactly a row-major reshape), `fc2` and `fc3` are 1x1 convolutions. Pixel
//! `(i, j)` of the result equals the window graph on the window centred on `(i, j)` (for an even
//! window: the window starting `window / 2` pixels before it).
//!
//! SE blocks and strip or mixed pooling average over the whole window, so those variants have no
//! dense form; they keep the window graph only.

use std::path::Path as FsPath;
use std::time::Instant;

use ndarray::{Array4, ArrayD, Axis, s};
use prism_models::layers::Conv;
use prism_models::run::{Preprocessing, ScenePreprocessing};
use prism_models::{Backend, ModelConfig, Path, Summary};
use prism_onnx::pb;
use prism_runtime::engine::{self, EngineOptions};
use serde::Serialize;

use crate::backend::{OnnxBackend, Spatial, Value};
use crate::graph::{Dim, attr};
use crate::metadata::{self, GraphKind};
use crate::model::{add_outputs, assemble, ir_version};
use crate::parity::Tolerance;
use crate::rundir::RunDir;
use crate::weights::Param;
use crate::{Error, Result, ops, preprocess};

/// Why a run has no whole-scene graph, or `None` when it can have one.
pub fn scene_graph_unavailable(run: &RunDir) -> Option<String> {
    match run.model() {
        ModelConfig::HybridSn(c) if c.variant.is_dense_capable() => None,
        ModelConfig::HybridSn(c) => Some(format!(
            "{} pools over the whole window (SE or strip pooling), so it has no whole-scene form; only the window graph is written",
            c.name()
        )),
        other => Some(format!("{} is not a scene model", other.name())),
    }
}

/// Builds the whole-scene graph.
///
/// # Shapes
/// `spectra` `[1, raw_bands, height, width]` (height and width symbolic) -> `logits`,
/// `probabilities` `[1, classes, height, width]`.
///
/// # Errors
/// A model without a dense form (see [`scene_graph_unavailable`]), an unsupported opset.
pub fn scene_model(run: &RunDir, opset: i64, fold_bn: bool) -> Result<pb::ModelProto> {
    ir_version(opset)?;
    if let Some(reason) = scene_graph_unavailable(run) {
        return Err(Error::Inconsistent(reason));
    }
    let (ModelConfig::HybridSn(config), Some(Preprocessing::Scene(pre))) = (run.model(), &run.preprocessing) else {
        return Err(Error::Inconsistent("a whole-scene graph needs a HybridSN scene run".into()));
    };
    let window = pre.window;
    let mut b = OnnxBackend::new(opset, &run.weights, fold_bn, Spatial::Symbolic);
    let dims = [Dim::Fixed(1), Dim::Fixed(pre.raw_bands), Dim::Named("height"), Dim::Named("width")];
    let name = b.graph_mut().input(metadata::input_name(run.model().task()), &dims);
    // Shapes seen by the model code are those of one window; the graph's are symbolic.
    let x = Value { name, shape: vec![1, pre.raw_bands, window, window] };
    let x = preprocess::pca(&mut b, &pre.pca, &x)?;
    let x = pad(&mut b, &x, window);
    let x = unsqueeze_volume(&mut b, &x);
    let features = config.features(&mut b, &x)?;
    let logits = classifier_as_convolutions(&mut b, run, features)?;
    let out_dims = [Dim::Fixed(1), Dim::Fixed(config.classes), Dim::Named("height"), Dim::Named("width")];
    add_outputs(&mut b, run.model().task(), logits, &out_dims)?;
    Ok(assemble(b.into_graph(), run, GraphKind::Scene, opset))
}

/// Zero padding of `window / 2` pixels before and `(window - 1) / 2` after, on both spatial axes.
fn pad(b: &mut OnnxBackend, x: &Value, window: usize) -> Value {
    let (before, after) = ((window / 2) as i64, ((window - 1) / 2) as i64);
    let pads = b.graph_mut().initializer_i64("pad.pads", &[0, 0, before, before, 0, 0, after, after]);
    let out = b.graph_mut().node("Pad", "pad", &[&x.name, &pads], vec![attr::string("mode", "constant")]);
    Value { name: out, shape: x.shape.clone() }
}

/// `[1, k, H, W] -> [1, 1, k, H, W]`, the single input channel of the 3-D convolutions.
fn unsqueeze_volume(b: &mut OnnxBackend, x: &Value) -> Value {
    let axes = b.graph_mut().initializer_i64("to_volume.axes", &[1]);
    let out = b.graph_mut().node("Unsqueeze", "to_volume", &[&x.name, &axes], vec![]);
    Value { name: out, shape: [x.shape[0], 1].into_iter().chain(x.shape[1..].iter().copied()).collect() }
}

/// The classifier after the feature map, replayed from the model's own layer list (the shape
/// walker's): each fully connected layer becomes a convolution (`fc1` over the whole feature map
/// of a window, the others 1x1), ReLU stays, dropout is the identity.
fn classifier_as_convolutions(b: &mut OnnxBackend, run: &RunDir, mut x: Value) -> Result<Value> {
    let summary = Summary::of(run.model())?;
    let after_flatten = summary.layers.iter().skip_while(|l| l.name != "flatten").skip(1);
    for layer in after_flatten {
        let p = Path::root() / &layer.name;
        match layer.op {
            "linear" => x = linear_as_conv(b, run, &p, &x)?,
            "relu" => x = b.relu(&p, &x)?,
            "dropout" => {}
            op => {
                return Err(Error::Inconsistent(format!(
                    "{}: `{op}` after the feature map has no whole-scene form",
                    layer.name
                )));
            }
        }
    }
    Ok(x)
}

fn linear_as_conv(b: &mut OnnxBackend, run: &RunDir, p: &Path, x: &Value) -> Result<Value> {
    let weight_name = p.param("weight");
    let weight = run
        .weights
        .get(&weight_name)
        .ok_or_else(|| Error::MissingTensor { path: run.weights.path.clone(), name: weight_name.clone() })?;
    let bias = run.weights.get(&p.param("bias"));
    let (out, inputs) = (weight.shape[0], weight.shape.get(1).copied().unwrap_or(0));
    let (channels, side) = (x.shape[1], x.shape[2]);
    if x.shape[3] != side || channels * side * side != inputs {
        return Err(Error::Inconsistent(format!(
            "{weight_name} takes {inputs} features, the feature map {:?} has {}",
            &x.shape[1..],
            channels * side * side
        )));
    }
    // PyTorch flattens [C, s, s] channel-major: a row-major reshape of the weight to
    // [out, C, s, s] lines every weight up with the pixel it multiplied.
    let kernel = Param { shape: vec![out, channels, side, side], data: weight.data.clone() };
    let conv = Conv::new(channels, out, &[side, side]);
    Ok(ops::conv::emit_with(b, p, &conv, x, &kernel, bias)?)
}

/// The whole-scene graph against the window graph on every pixel of a random scene.
#[derive(Clone, Debug, Serialize)]
pub struct SceneCheck {
    pub height: usize,
    pub width: usize,
    pub engine: String,
    pub max_abs: f32,
    pub pass: bool,
    /// Seconds for the whole scene in one run, and for all its windows in batches.
    pub scene_seconds: f64,
    pub window_seconds: f64,
}

/// A random raw scene `[raw_bands, height, width]` with values in `[low, high)` (a fixed
/// xorshift generator, so a seed gives the same scene everywhere).
pub fn random_scene(raw_bands: usize, height: usize, width: usize, (low, high): (f32, f32), seed: u64) -> Array4<f32> {
    let mut state = seed.max(1);
    Array4::from_shape_simple_fn((1, raw_bands, height, width), || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        low + (high - low) * ((state >> 40) as f32 / (1u64 << 24) as f32)
    })
}

/// Every window of a raw scene `[1, raw_bands, H, W]`, padded with the PCA mean (which the PCA
/// maps to zero): `[H * W, raw_bands, window, window]`, row-major over pixels.
pub fn scene_windows(scene: &Array4<f32>, pre: &ScenePreprocessing) -> Array4<f32> {
    let (bands, h, w) = (scene.shape()[1], scene.shape()[2], scene.shape()[3]);
    let win = pre.window;
    let before = win / 2;
    let mut padded = Array4::from_shape_fn((1, bands, h + win - 1, w + win - 1), |(_, c, _, _)| pre.pca.mean[c]);
    padded.slice_mut(s![.., .., before..before + h, before..before + w]).assign(scene);
    let mut windows = Array4::zeros((h * w, bands, win, win));
    for i in 0..h {
        for j in 0..w {
            windows.index_axis_mut(Axis(0), i * w + j).assign(&padded.slice(s![0, .., i..i + win, j..j + win]));
        }
    }
    windows
}

/// Runs both graphs on a random `height x width` scene and compares every pixel.
///
/// # Errors
/// An engine that cannot load or run either graph.
pub fn check_scene(
    window_model: &FsPath,
    scene_model: &FsPath,
    pre: &ScenePreprocessing,
    (height, width): (usize, usize),
    range: (f32, f32),
    tolerance: Tolerance,
    options: &EngineOptions,
) -> Result<SceneCheck> {
    let scene = random_scene(pre.raw_bands, height, width, range, 0x5eed);
    let mut dense = engine::load(scene_model, options)?;
    let start = Instant::now();
    let dense_out = first_output(dense.run(scene.view().into_dyn())?)?;
    let scene_seconds = start.elapsed().as_secs_f64();
    let mut windowed = engine::load(window_model, options)?;
    let start = Instant::now();
    let windows = scene_windows(&scene, pre);
    let mut per_pixel = Vec::new();
    for chunk in windows.axis_chunks_iter(Axis(0), 64) {
        per_pixel.push(first_output(windowed.run(chunk.into_dyn())?)?);
    }
    let window_seconds = start.elapsed().as_secs_f64();
    let views: Vec<_> = per_pixel.iter().map(|a| a.view()).collect();
    let per_pixel = ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Inconsistent(e.to_string()))?;
    // [1, C, H, W] -> [H * W, C]
    let classes = per_pixel.shape()[1];
    if dense_out.shape() != [1, classes, height, width] {
        return Err(Error::Inconsistent(format!(
            "the scene graph returned {:?} for a {height}x{width} scene",
            dense_out.shape()
        )));
    }
    let dense_out = dense_out
        .index_axis(Axis(0), 0)
        .permuted_axes(vec![1, 2, 0])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((height * width, classes))
        .map_err(|e| Error::Inconsistent(e.to_string()))?
        .into_dyn();
    let comparison = crate::parity::compare(&dense_out, &per_pixel, tolerance);
    Ok(SceneCheck {
        height,
        width,
        engine: format!("{}/{}", dense.engine(), dense.provider()),
        max_abs: comparison.max_abs,
        pass: comparison.pass,
        scene_seconds,
        window_seconds,
    })
}

fn first_output(outputs: Vec<(String, ArrayD<f32>)>) -> Result<ArrayD<f32>> {
    outputs.into_iter().next().map(|(_, v)| v).ok_or_else(|| Error::Inconsistent("the model returned no output".into()))
}
