//! The run's own pixels, read again for a lower-precision export: training windows to calibrate
//! the int8 activation ranges on, held-out windows and the scene itself to check the result on.
//!
//! A scene run records its data source in `config.json` (a built-in data set or the files it
//! was trained on) and its pixels in `split.json`; both are read here, the raw cube and ground
//! truth through `prism-data`. Windows are cut as `runtime infer` cuts them, pixels outside the
//! scene taking the PCA mean (zero after the projection, as training pads).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use prism_data::scene::{GroundTruth, Scene};
use prism_models::run::{self, Preprocessing, ScenePreprocessing};
use prism_onnx::pb;
use prism_runtime::engine::{self, EngineOptions, Source};
use prost::Message;
use serde::Deserialize;

use crate::quantize::Range;
use crate::rundir::RunDir;
use crate::{Error, Result};

/// Windows run through an engine at a time (25 x 25 windows of 200 bands: 31 MB).
const BATCH: usize = 64;

/// A scene run's data, read again.
pub struct RunScene {
    pub scene: Scene,
    pub truth: GroundTruth,
    pub pre: ScenePreprocessing,
    /// Training and test pixels, `(row, column)`, from `split.json`.
    pub train: Vec<(usize, usize)>,
    pub test: Vec<(usize, usize)>,
    /// Where the scene was read from, for reports.
    pub source: PathBuf,
}

#[derive(Deserialize)]
struct SceneSource {
    dataset: Option<String>,
    data: Option<PathBuf>,
    gt: Option<PathBuf>,
    key: Option<String>,
    gt_key: Option<String>,
}

#[derive(Deserialize)]
struct Split {
    train: Vec<[usize; 2]>,
    test: Vec<[usize; 2]>,
}

impl RunScene {
    /// Reads the scene, ground truth and split of a scene run.
    ///
    /// # Errors
    /// Not a scene run; a run without `split.json` (made before runs recorded it); a data source
    /// that cannot be found or read (a built-in data set not fetched names `trainer fetch`); a
    /// scene whose shape does not match the run.
    pub fn open(run: &RunDir) -> Result<RunScene> {
        let Some(Preprocessing::Scene(pre)) = &run.preprocessing else {
            return Err(Error::Inconsistent("calibration on the run's pixels needs a scene run".into()));
        };
        let split_path = run.dir.join(run::SPLIT);
        let text = std::fs::read_to_string(&split_path).map_err(|e| {
            Error::format(
                &split_path,
                format!(
                    "{e} (a lower-precision export calibrates on the run's training pixels, which runs record there)"
                ),
            )
        })?;
        let split: Split = serde_json::from_str(&text).map_err(|e| Error::format(&split_path, e.to_string()))?;
        let source: SceneSource = serde_json::from_value(run.config.data.clone())
            .map_err(|e| Error::format(run.dir.join(run::CONFIG), format!("`data` does not name a scene: {e}")))?;
        let (data, gt) = match (&source.dataset, &source.data, &source.gt) {
            (_, Some(data), Some(gt)) => (data.clone(), gt.clone()),
            (Some(name), _, _) => prism_data::builtin_files(name).ok_or_else(|| {
                Error::format(run.dir.join(run::CONFIG), format!("unknown built-in data set `{name}`"))
            })?,
            _ => return Err(Error::format(run.dir.join(run::CONFIG), "`data` names no scene file")),
        };
        let missing = |path: &Path| {
            let fetch = source.dataset.as_ref().map(|d| format!(" (run `trainer fetch {d}`)")).unwrap_or_default();
            Error::Inconsistent(format!("{}: the run's scene is not there{fetch}", path.display()))
        };
        for path in [&data, &gt] {
            if !path.is_file() {
                return Err(missing(path));
            }
        }
        let scene = Scene::read(&data, source.key.as_deref()).map_err(Error::from)?;
        let truth = GroundTruth::read(&gt, source.gt_key.as_deref()).map_err(Error::from)?;
        if scene.bands != pre.raw_bands || (truth.height, truth.width) != (scene.height, scene.width) {
            return Err(Error::format(
                &data,
                format!(
                    "the scene is {} x {} x {} and its ground truth {} x {}; the run was trained on {} bands",
                    scene.height, scene.width, scene.bands, truth.height, truth.width, pre.raw_bands
                ),
            ));
        }
        let pixels = |set: &[[usize; 2]]| -> Result<Vec<(usize, usize)>> {
            set.iter()
                .map(|&[y, x]| {
                    if y < scene.height && x < scene.width {
                        Ok((y, x))
                    } else {
                        Err(Error::format(&split_path, format!("pixel ({y}, {x}) is outside the scene")))
                    }
                })
                .collect()
        };
        let (train, test) = (pixels(&split.train)?, pixels(&split.test)?);
        Ok(RunScene { scene, truth, pre: pre.clone(), train, test, source: data })
    }

    /// The `[n, bands, window, window]` windows centred on `pixels`.
    pub fn windows(&self, pixels: &[(usize, usize)]) -> ArrayD<f32> {
        let (bands, w) = (self.scene.bands, self.pre.window);
        let mut out = vec![0f32; pixels.len() * bands * w * w];
        for (chunk, &(y, x)) in out.chunks_mut(bands * w * w).zip(pixels) {
            self.scene.window_into(y, x, w, &self.pre.pca.mean, chunk);
        }
        ArrayD::from_shape_vec(IxDyn(&[pixels.len(), bands, w, w]), out).unwrap_or_else(|_| ArrayD::zeros(IxDyn(&[0])))
    }

    /// The class index of pixel `(y, x)`, `None` when unlabelled or of a class the run does not know.
    pub fn class(&self, (y, x): (usize, usize)) -> Option<usize> {
        let value = self.truth.labels[y * self.truth.width + x];
        self.pre.class_values.iter().position(|&v| v == value)
    }
}

/// `count` of `items` spread evenly (all of them when there are fewer): deterministic, and
/// across the whole list rather than its first rows.
pub fn spread<T: Copy>(items: &[T], count: usize) -> Vec<T> {
    if count >= items.len() {
        return items.to_vec();
    }
    (0..count).map(|i| items[i * items.len() / count]).collect()
}

/// The range of every value in `activations` over `inputs`, measured by running `model` with
/// those values as extra outputs on the engine `options` pick, a batch at a time.
///
/// # Errors
/// An engine that cannot load or run the model.
pub fn ranges(
    model: &pb::ModelProto,
    activations: &[String],
    inputs: &ArrayD<f32>,
    options: &EngineOptions,
) -> Result<HashMap<String, Range>> {
    let mut probe = model.clone();
    if let Some(graph) = probe.graph.as_mut() {
        let known: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        for name in activations.iter().filter(|a| !known.contains(a)) {
            graph.output.push(float_output(name));
        }
    }
    let bytes = probe.encode_to_vec();
    let mut engine = engine::load_source(Source::Memory { name: Path::new("calibration"), bytes: &bytes }, options)?;
    let mut ranges: HashMap<String, Range> = activations.iter().map(|a| (a.clone(), Range::EMPTY)).collect();
    for start in (0..inputs.shape()[0]).step_by(BATCH) {
        let end = (start + BATCH).min(inputs.shape()[0]);
        let batch = inputs.slice_axis(ndarray::Axis(0), (start..end).into());
        for (name, value) in engine.run(batch)? {
            if let Some(range) = ranges.get_mut(&name) {
                value.iter().for_each(|v| range.include(*v));
            }
        }
    }
    Ok(ranges)
}

fn float_output(name: &str) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
