//! The run directory's artifacts: weights, preprocessing, metrics, the exporter's sample,
//! training curves, per-class accuracy, the confusion matrix and classification maps (see
//! `prism_models::run` for the layout).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use prism_data::metrics::Report;
use prism_data::pictures::{self as render, Panel, Series};
use prism_models::Task;
use prism_models::run::{self, RunConfig};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::checkpoint;
use crate::data::Data;
use crate::data::patches::Split;
use crate::fit::{EpochRecord, FitConfig, TrainState, describe_device, describe_machine, predict};
use crate::model::TchModel;

/// `metrics.json`: the held-out evaluation and the training history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metrics {
    pub task: Task,
    pub model: String,
    pub data: String,
    /// `test`, `validation` or `train` (when nothing was held out).
    pub evaluated_on: String,
    /// `best` (by validation accuracy) or `last`.
    pub selected: String,
    pub best_epoch: Option<usize>,
    /// Why the best epoch was kept (absent when the last one was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_because: Option<String>,
    pub epochs_run: usize,
    pub split: SplitSizes,
    #[serde(flatten)]
    pub report: Report,
    pub history: Vec<EpochRecord>,
    pub train_seconds: f64,
    pub device: String,
    /// The machine that finished the training (absent in runs made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SplitSizes {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

/// The set metrics are computed on: test, else validation, else (nothing held out) training.
pub fn evaluation_set(split: &Split) -> (&'static str, &[usize]) {
    if !split.test.is_empty() {
        ("test", &split.test)
    } else if !split.val.is_empty() {
        ("validation", &split.val)
    } else {
        ("train", &split.train)
    }
}

pub fn write_config(run_dir: &Path, config: &FitConfig, model: &prism_models::ModelConfig) -> Result<()> {
    let run = RunConfig {
        prism_version: env!("CARGO_PKG_VERSION").to_string(),
        model: model.clone(),
        data: serde_json::to_value(&config.data)?,
        train: serde_json::to_value(config)?,
    };
    write_json(&run_dir.join(run::CONFIG), &run)
}

/// `split.json`, the members of the training, validation and test sets, so that a run's
/// evaluation can be checked and repeated elsewhere (and the exporter can calibrate on them):
/// scenes `[row, column]` per pixel (and `split.png`), images `[path, class index]` per photo,
/// the path as the trainer read it.
pub fn write_split(run_dir: &Path, data: &Data, split: &Split) -> Result<()> {
    if let Data::Images(images) = data {
        let photos = |set: &[usize]| {
            set.iter().map(|&i| serde_json::json!([images.paths[i], images.labels[i]])).collect::<Vec<_>>()
        };
        let json = serde_json::json!({ "train": photos(&split.train), "validation": photos(&split.val), "test": photos(&split.test) });
        return write_json(&run_dir.join(run::SPLIT), &json);
    }
    let Some((samples, _, _)) = data.scene_samples() else { return Ok(()) };
    let pixels = |set: &[usize]| set.iter().map(|&i| [samples[i].y, samples[i].x]).collect::<Vec<_>>();
    let json = serde_json::json!({ "train": pixels(&split.train), "validation": pixels(&split.val), "test": pixels(&split.test) });
    write_json(&run_dir.join(run::SPLIT), &json)?;
    write_split_picture(run_dir, data, split)
}

/// `split.png`: each labelled pixel coloured by its set, training pixels dropped for a block
/// split's margin apart.
fn write_split_picture(run_dir: &Path, data: &Data, split: &Split) -> Result<()> {
    let Some((samples, (height, width), _)) = data.scene_samples() else { return Ok(()) };
    let mut map: Vec<Option<usize>> = vec![None; height * width];
    samples.iter().for_each(|s| map[s.y * width + s.x] = Some(3));
    for (set, members) in [&split.train, &split.val, &split.test].into_iter().enumerate() {
        members.iter().for_each(|&i| map[samples[i].y * width + samples[i].x] = Some(set));
    }
    let names: Vec<String> =
        ["training", "validation", "test", "in no set (margin)"].iter().map(|s| s.to_string()).collect();
    let path = run_dir.join("split.png");
    render::write_class_map(&path, height, width, &map, &names, "split")
        .with_context(|| format!("writing {}", path.display()))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    prism_data::write_bytes_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Saves the model's weights as `model.safetensors`, its config in the file's metadata.
pub fn save_weights(model: &TchModel, path: &Path) -> Result<()> {
    let named: Vec<(String, Tensor)> = model.state().iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
    let metadata = HashMap::from([("prism.model".to_string(), serde_json::to_string(&model.config)?)]);
    checkpoint::save(path, &named, metadata)
}

/// Everything after training: evaluation, weights, preprocessing, metrics, sample, pictures.
/// Returns the metrics.
#[allow(clippy::too_many_arguments)]
pub fn write_run(
    run_dir: &Path,
    config: &FitConfig,
    model: &TchModel,
    data: &Data,
    split: &Split,
    state: &TrainState,
    selected: &str,
    device: Device,
) -> Result<Metrics> {
    let (evaluated_on, indices) = evaluation_set(split);
    let (report, scene_predictions) = evaluate(model, data, indices, config.batch_size, device, config.scene_map)?;
    let metrics = Metrics {
        task: model.config.task(),
        model: model.config.name(),
        data: config.data.display_name(),
        evaluated_on: evaluated_on.to_string(),
        selected: selected.to_string(),
        best_epoch: state.best_epoch,
        selected_because: state
            .best_epoch
            .filter(|_| selected == "best")
            .and_then(|epoch| crate::fit::selection_reason(&state.history, epoch)),
        epochs_run: state.history.len(),
        split: SplitSizes { train: split.train.len(), val: split.val.len(), test: split.test.len() },
        report,
        history: state.history.clone(),
        train_seconds: state.train_seconds,
        device: describe_device(device),
        machine: Some(describe_machine()),
    };
    save_weights(model, &run_dir.join(run::WEIGHTS))?;
    write_json(&run_dir.join(run::PREPROCESSING), &data.preprocessing())?;
    write_json(&run_dir.join(run::METRICS), &metrics)?;
    write_sample(run_dir, model, data, indices, device)?;
    write_curves(&run_dir.join("curves.png"), &metrics)?;
    let caption = format!("{} - {} ({})", metrics.model, metrics.data, metrics.evaluated_on);
    write_report_charts(run_dir, &metrics.report, &caption)?;
    if let Some(predictions) = scene_predictions {
        write_maps(run_dir, data, &predictions, &metrics)?;
    }
    Ok(metrics)
}

/// Predictions per pixel of a scene: `None` where not predicted.
pub struct ScenePredictions {
    pub height: usize,
    pub width: usize,
    pub classes: Vec<Option<usize>>,
}

/// Scores the model on `indices`. For scenes, also predicts every labelled pixel, or with
/// `whole_scene` every pixel, for the maps.
pub fn evaluate(
    model: &TchModel,
    data: &Data,
    indices: &[usize],
    batch_size: usize,
    device: Device,
    whole_scene: bool,
) -> Result<(Report, Option<ScenePredictions>)> {
    let truth = data.sample_classes();
    match data {
        Data::Images(_) => {
            let (_, predicted) = predict(model, data, indices, batch_size, device)?;
            let expected: Vec<usize> = indices.iter().map(|&i| truth[i]).collect();
            Ok((Report::new(&expected, &predicted, data.class_names())?, None))
        }
        Data::Scene { data: scene, .. } => {
            let pixels: Vec<(usize, usize)> = if whole_scene {
                (0..scene.height).flat_map(|y| (0..scene.width).map(move |x| (y, x))).collect()
            } else {
                scene.samples.iter().map(|s| (s.y, s.x)).collect()
            };
            let bar = crate::progress::bar(pixels.len() as u64, "classifying pixels");
            let mut map = vec![None; scene.height * scene.width];
            tch::no_grad(|| -> Result<()> {
                for chunk in pixels.chunks(batch_size.max(1)) {
                    let logits = model.forward(&scene.windows_at(chunk).to_device(device), false)?;
                    let p: Vec<i64> = logits.argmax(1, false).to_device(Device::Cpu).try_into()?;
                    for (&(y, x), c) in chunk.iter().zip(p) {
                        map[y * scene.width + x] = Some(c as usize);
                    }
                    bar.inc(chunk.len() as u64);
                }
                Ok(())
            })?;
            bar.finish_and_clear();
            let expected: Vec<usize> = indices.iter().map(|&i| truth[i]).collect();
            let predicted: Vec<usize> = indices
                .iter()
                .map(|&i| {
                    let s = scene.samples[i];
                    map[s.y * scene.width + s.x].unwrap_or(usize::MAX)
                })
                .collect();
            let report = Report::new(&expected, &predicted, data.class_names())?;
            Ok((report, Some(ScenePredictions { height: scene.height, width: scene.width, classes: map })))
        }
    }
}

/// A few held-out inputs as the exported graph takes them, with the trainer's eval-mode logits
/// for them: the exporter's parity check. For scenes the pixel nearest the border is included,
/// so padding is checked too.
fn write_sample(run_dir: &Path, model: &TchModel, data: &Data, indices: &[usize], device: Device) -> Result<()> {
    let count = 8.min(indices.len());
    let mut chosen: Vec<usize> = (0..count).map(|i| indices[i * indices.len() / count.max(1)]).collect();
    if let Data::Scene { data: scene, .. } = data {
        let border = |i: &usize| {
            let s = scene.samples[*i];
            s.y.min(s.x).min(scene.height - 1 - s.y).min(scene.width - 1 - s.x)
        };
        if let Some(nearest) = indices.iter().min_by_key(|i| border(i)) {
            if !chosen.contains(nearest) && !chosen.is_empty() {
                chosen[0] = *nearest;
            }
        }
    }
    // On a GPU, cuDNN may run convolutions in TF32 (libtorch's default), about 1e-3 off the
    // float32 the exported graph computes: the reference logits come from a CPU copy.
    let on_cpu;
    let model = if device.is_cuda() {
        let mut copy = TchModel::new(model.config.clone(), Device::Cpu)?;
        copy.load_tensors(model.state(), Path::new("the trained model"), &[])?;
        on_cpu = copy;
        &on_cpu
    } else {
        model
    };
    let input = data.graph_inputs(&chosen);
    let logits = tch::no_grad(|| model.forward(&data.inputs_from_graph_inputs(&input, Device::Cpu)?, false))?;
    let named = vec![(run::SAMPLE_INPUT.to_string(), input), (run::SAMPLE_LOGITS.to_string(), logits)];
    checkpoint::save(&run_dir.join(run::SAMPLE), &named, HashMap::new())
}

fn write_curves(path: &Path, metrics: &Metrics) -> Result<()> {
    let series = |name: &str, f: &dyn Fn(&EpochRecord) -> Option<f64>| Series {
        name: name.to_string(),
        points: metrics.history.iter().filter_map(|r| f(r).map(|v| (r.epoch as f64, v))).collect(),
    };
    let panels = [
        Panel {
            title: "loss".into(),
            x_label: "epoch".into(),
            y_label: "cross-entropy".into(),
            series: vec![series("train", &|r| Some(r.train_loss)), series("validation", &|r| r.val_loss)],
        },
        Panel {
            title: "accuracy".into(),
            x_label: "epoch".into(),
            y_label: "%".into(),
            series: vec![
                series("train", &|r| Some(r.train_acc * 100.0)),
                series("validation", &|r| r.val_acc.map(|a| a * 100.0)),
            ],
        },
    ];
    render::write_chart(path, &panels).with_context(|| format!("writing {}", path.display()))
}

/// `per_class.png` (per-class accuracy as bars) and `confusion.png` (the confusion matrix as a
/// heat map) of `report`, titled `caption` and what each shows.
pub fn write_report_charts(dir: &Path, report: &Report, caption: &str) -> Result<()> {
    let path = dir.join("per_class.png");
    render::write_per_class_bars(&path, report, &format!("{caption} - per-class accuracy"))
        .with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join("confusion.png");
    render::write_confusion(&path, report, &format!("{caption} - confusion matrix"))
        .with_context(|| format!("writing {}", path.display()))
}

/// `map.png` (predictions on labelled pixels), `map_scene.png` (every pixel, when predicted)
/// and `ground_truth.png`.
pub fn write_maps(run_dir: &Path, data: &Data, predictions: &ScenePredictions, metrics: &Metrics) -> Result<()> {
    let Data::Scene { data: scene, .. } = data else { return Ok(()) };
    let (h, w) = (predictions.height, predictions.width);
    let mut labelled = vec![None; h * w];
    let mut truth = vec![None; h * w];
    for s in &scene.samples {
        labelled[s.y * w + s.x] = predictions.classes[s.y * w + s.x];
        truth[s.y * w + s.x] = Some(s.class);
    }
    let names = data.class_names();
    let title = format!("{} - {} - OA {:.2}%", metrics.model, metrics.data, metrics.report.oa * 100.0);
    render::write_class_map(&run_dir.join("map.png"), h, w, &labelled, names, &title)?;
    render::write_class_map(
        &run_dir.join("ground_truth.png"),
        h,
        w,
        &truth,
        names,
        &format!("{} - ground truth", metrics.data),
    )?;
    if predictions.classes.iter().all(Option::is_some) {
        render::write_class_map(
            &run_dir.join("map_scene.png"),
            h,
            w,
            &predictions.classes,
            names,
            &format!("{title} - every pixel"),
        )?;
    }
    Ok(())
}
