//! The per-window (or per-image) graph: preprocessing, the model's forward, `logits` and
//! `probabilities`, with a symbolic batch.

use prism_models::run::Preprocessing;
use prism_models::{Backend, Path, Task};
use prism_onnx::pb;

use crate::backend::{OnnxBackend, Spatial, Value};
use crate::graph::{Dim, Graph};
use crate::metadata::{self, GraphKind};
use crate::rundir::RunDir;
use crate::{Error, Result, ops, preprocess};

/// The ONNX IR version that goes with an opset.
///
/// # Errors
/// [`Error::UnsupportedOpset`] outside [`crate::MIN_OPSET`]..=[`crate::MAX_OPSET`].
pub fn ir_version(opset: i64) -> Result<i64> {
    match opset {
        13 | 14 => Ok(7),
        15..=18 => Ok(8),
        _ => Err(Error::UnsupportedOpset(opset)),
    }
}

/// Builds the graph that takes batches of windows (scenes), images, or feature maps (blocks).
///
/// # Shapes
/// Scenes: `spectra` `[batch, raw_bands, window, window]` -> `logits`, `probabilities`
/// `[batch, classes]`. Images: `image` `[batch, 3, crop, crop]` -> the same. Blocks: `features`
/// `[batch, C, H, W]` -> `features_out` `[batch, C, H, W]`.
///
/// # Errors
/// An unsupported opset, or a model the ONNX backend cannot express.
pub fn window_model(run: &RunDir, opset: i64, fold_bn: bool) -> Result<pb::ModelProto> {
    ir_version(opset)?;
    let model = run.model();
    let task = model.task();
    let mut b = OnnxBackend::new(opset, &run.weights, fold_bn, Spatial::Fixed);
    let input_shape = run.graph_input_shape();
    let dims: Vec<Dim> =
        std::iter::once(Dim::Named("batch")).chain(input_shape.iter().map(|&d| Dim::Fixed(d))).collect();
    let name = b.graph_mut().input(metadata::input_name(task), &dims);
    let input = Value { name, shape: std::iter::once(1).chain(input_shape).collect() };
    let x = match &run.preprocessing {
        Some(Preprocessing::Scene(s)) => {
            let x = preprocess::pca(&mut b, &s.pca, &input)?;
            let volume: Vec<usize> = std::iter::once(1).chain(x.shape[1..].iter().copied()).collect();
            b.reshape(&(Path::root() / "to_volume"), &volume, &x)?
        }
        Some(Preprocessing::Image(i)) => preprocess::normalize(&mut b, i, &input),
        None => input,
    };
    let y = model.forward(&mut b, &x)?;
    let output_dims: Vec<Dim> =
        std::iter::once(Dim::Named("batch")).chain(y.shape[1..].iter().map(|&d| Dim::Fixed(d))).collect();
    add_outputs(&mut b, task, y, &output_dims)?;
    Ok(assemble(b.into_graph(), run, GraphKind::Window, opset))
}

/// Names the model's result `logits` and adds `probabilities` (softmax over axis 1), or names a
/// block's result `features_out`.
pub(crate) fn add_outputs(b: &mut OnnxBackend, task: Task, y: Value, dims: &[Dim]) -> Result<()> {
    if task == Task::Features {
        let out = b.graph_mut().rename(&y.name, "features_out")?;
        b.graph_mut().output(&out, dims);
        return Ok(());
    }
    let logits = Value { name: b.graph_mut().rename(&y.name, "logits")?, shape: y.shape };
    let probabilities = ops::activation::softmax(b, "probabilities", 1, &logits);
    b.graph_mut().output(&logits.name, dims);
    b.graph_mut().output(&probabilities.name, dims);
    Ok(())
}

/// The model proto around a finished graph: opset, IR version, producer and metadata.
pub(crate) fn assemble(graph: Graph, run: &RunDir, kind: GraphKind, opset: i64) -> pb::ModelProto {
    let doc = metadata::doc_string(run, kind);
    let name = format!("{}-{}", run.model().name(), kind.as_str());
    pb::ModelProto {
        ir_version: ir_version(opset).unwrap_or(8),
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: opset }],
        producer_name: "prism".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        model_version: 1,
        doc_string: doc.clone(),
        graph: Some(graph.finish(&name, &doc)),
        metadata_props: metadata::props(run, kind),
        ..Default::default()
    }
}
