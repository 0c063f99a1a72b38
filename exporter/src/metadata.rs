//! `metadata_props` of exported models: what a runtime needs to feed the graph and to report on
//! it, as strings (JSON where structured).

use prism_models::Task;
use prism_models::run::Preprocessing;
use prism_onnx::pb::StringStringEntryProto;
use serde_json::json;

use crate::rundir::RunDir;

/// Which graph a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphKind {
    /// Batches of windows (scenes), images or feature maps.
    Window,
    /// A whole scene at once, `[1, raw_bands, H, W] -> [1, classes, H, W]`.
    Scene,
}

impl GraphKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GraphKind::Window => "window",
            GraphKind::Scene => "scene",
        }
    }
}

pub fn task_name(task: Task) -> &'static str {
    match task {
        Task::Scene => "scene",
        Task::Image => "image",
        Task::Features => "features",
    }
}

/// The name of the graph's input for a task.
pub fn input_name(task: Task) -> &'static str {
    match task {
        Task::Scene => "spectra",
        Task::Image => "image",
        Task::Features => "features",
    }
}

pub(crate) fn props(run: &RunDir, kind: GraphKind) -> Vec<StringStringEntryProto> {
    let model = run.model();
    let task = model.task();
    let shape = run.graph_input_shape();
    let (input, preprocessing) = match &run.preprocessing {
        Some(Preprocessing::Scene(s)) => {
            let (input, padding) = match kind {
                GraphKind::Window => (
                    json!({"name": input_name(task), "layout": "NCHW", "bands": s.raw_bands, "window": s.window}),
                    json!("pca_mean"),
                ),
                GraphKind::Scene => (
                    json!({"name": input_name(task), "layout": "NCHW", "bands": s.raw_bands, "height": "any", "width": "any", "batch": 1}),
                    json!("none: the graph pads with zeros after the PCA"),
                ),
            };
            let pre = json!({
                "window": s.window,
                "padding": padding,
                "pad_value": s.pca.mean,
                "pad_before": s.window / 2,
                "pad_after": (s.window - 1) / 2,
                "class_values": s.class_values,
                "in_graph": format!("PCA projection to {} components{}", s.pca.n_components(), if s.pca.whiten { " with whitening" } else { "" }),
                "input_values": "raw band values as read from the scene file",
            });
            (input, pre)
        }
        Some(Preprocessing::Image(i)) => (
            json!({"name": input_name(task), "layout": "NCHW", "channels": 3, "height": i.crop, "width": i.crop}),
            json!({
                "resize": i.resize,
                "crop": i.crop,
                "input": "RGB scaled to [0, 1]",
                "resize_mode": "shorter side to `resize`, then a centre square of `crop`",
                "in_graph": "normalisation (x - mean) / std",
                "mean": i.mean,
                "std": i.std,
            }),
        ),
        None => (
            json!({"name": input_name(task), "layout": "NCHW", "channels": shape[0], "height": shape[1], "width": shape[2]}),
            json!({}),
        ),
    };
    let training = json!({
        "prism_version": run.config.prism_version,
        "data": run.config.data,
        "train": run.config.train,
        "metrics": run.metrics,
    });
    let entries = [
        ("prism.task", task_name(task).to_string()),
        ("prism.model", model.name()),
        ("prism.config", serde_json::to_string(model).unwrap_or_default()),
        ("prism.class_names", json!(run.class_names()).to_string()),
        ("prism.input", input.to_string()),
        ("prism.preprocessing", preprocessing.to_string()),
        ("prism.training", training.to_string()),
        ("prism.graph", kind.as_str().to_string()),
    ];
    entries.into_iter().map(|(key, value)| StringStringEntryProto { key: key.into(), value }).collect()
}

pub(crate) fn doc_string(run: &RunDir, kind: GraphKind) -> String {
    let model = run.model();
    let what = match (model.task(), kind) {
        (Task::Scene, GraphKind::Window) => {
            "input `spectra` [batch, raw bands, window, window] of raw values (pad scenes with the PCA mean, see prism.preprocessing); outputs `logits` and `probabilities` [batch, classes] for each window's centre pixel"
        }
        (Task::Scene, GraphKind::Scene) => {
            "input `spectra` [1, raw bands, height, width], a whole raw scene; outputs `logits` and `probabilities` [1, classes, height, width], one class distribution per pixel"
        }
        (Task::Image, _) => {
            "input `image` [batch, 3, crop, crop], RGB in [0, 1] (resize and crop as prism.preprocessing says); outputs `logits` and `probabilities` [batch, classes]"
        }
        (Task::Features, _) => "input `features` [batch, C, H, W]; output `features_out` [batch, C, H, W]",
    };
    format!("{} exported by Prism {}: {what}.", model.name(), env!("CARGO_PKG_VERSION"))
}
