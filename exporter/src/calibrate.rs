//! The run's own data, read again for a lower-precision export: training inputs to calibrate
//! the int8 activation ranges on, held-out inputs (and a scene itself) to check the result on.
//!
//! A run records its data source in `config.json` (a built-in data set, the scene files, or the
//! image folder it was trained on) and its sets in `split.json` (pixels of a scene, photos of an
//! image folder); both are read here, files through `prism-data`. Windows are cut as `runtime
//! infer` cuts them, pixels outside the scene taking the PCA mean (zero after the projection, as
//! training pads); photos go through the evaluation resize and crop, as `runtime infer` does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use prism_data::images::{eval_transform, load_rgb};
use prism_data::scene::{GroundTruth, Scene};
use prism_models::run::{self, ImagePreprocessing, Preprocessing, ScenePreprocessing};
use prism_onnx::pb;
use prism_runtime::engine::{self, EngineOptions, Source};
use prost::Message;
use serde::Deserialize;

use crate::quantize::Range;
use crate::rundir::RunDir;
use crate::{Error, Result};

/// Windows run through an engine at a time (25 x 25 windows of 200 bands: 31 MB).
const BATCH: usize = 64;

/// A run's data, read again.
pub enum RunData {
    Scene(RunScene),
    Images(RunImages),
}

impl RunData {
    /// Reads the data of a scene or image run (see [`RunScene::open`], [`RunImages::open`]).
    ///
    /// # Errors
    /// As those; a run of blocks (no data of its own).
    pub fn open(run: &RunDir) -> Result<RunData> {
        match &run.preprocessing {
            Some(Preprocessing::Scene(_)) => Ok(RunData::Scene(RunScene::open(run)?)),
            Some(Preprocessing::Image(image)) => Ok(RunData::Images(RunImages::open(run, image)?)),
            None => Err(Error::Inconsistent("a block run has no data to calibrate or check on".into())),
        }
    }

    /// `count` training inputs spread over the training set, as the window (or image) graph
    /// takes them.
    ///
    /// # Errors
    /// A photo that no longer decodes.
    pub fn calibration(&self, count: usize) -> Result<ArrayD<f32>> {
        match self {
            RunData::Scene(s) => Ok(s.windows(&spread(&s.train, count))),
            RunData::Images(i) => i.inputs(&spread(&i.train, count)),
        }
    }

    /// `count` held-out inputs spread over the test set, and their classes.
    ///
    /// # Errors
    /// A photo that no longer decodes.
    pub fn heldout(&self, count: usize) -> Result<(ArrayD<f32>, Vec<Option<usize>>)> {
        match self {
            RunData::Scene(s) => {
                let pixels = spread(&s.test, count);
                Ok((s.windows(&pixels), pixels.iter().map(|&p| s.class(p)).collect()))
            }
            RunData::Images(i) => {
                let photos = spread(&i.test, count);
                Ok((i.inputs(&photos)?, photos.iter().map(|(_, c)| Some(*c)).collect()))
            }
        }
    }

    /// What the inputs are, for reports: `training windows of FILE`, `training photos of DIR`.
    pub fn describe(&self, set: &str) -> String {
        match self {
            RunData::Scene(s) => format!("{set} windows of {}", s.source.display()),
            RunData::Images(i) => format!("{set} photos of {}", i.source.display()),
        }
    }
}

/// An image run's photos, read again.
pub struct RunImages {
    pub pre: ImagePreprocessing,
    /// `(path, class)` of the training and test photos, from `split.json`.
    pub train: Vec<(PathBuf, usize)>,
    pub test: Vec<(PathBuf, usize)>,
    pub source: PathBuf,
}

#[derive(Deserialize)]
struct ImageSplit {
    train: Vec<(PathBuf, usize)>,
    test: Vec<(PathBuf, usize)>,
}

impl RunImages {
    /// Reads the split of an image run.
    ///
    /// # Errors
    /// A run without `split.json` (image runs record it since 2026-12-07); a class index the run
    /// does not have.
    pub fn open(run: &RunDir, pre: &ImagePreprocessing) -> Result<RunImages> {
        let split: ImageSplit = read_split(run)?;
        let classes = pre.class_names.len();
        if let Some((path, class)) = split.train.iter().chain(&split.test).find(|(_, c)| *c >= classes) {
            return Err(Error::format(
                run.dir.join(run::SPLIT),
                format!("{} has class {class}; the run has {classes}", path.display()),
            ));
        }
        let source =
            split.train.first().and_then(|(p, _)| p.parent()?.parent()).map(Path::to_path_buf).unwrap_or_default();
        Ok(RunImages { pre: pre.clone(), train: split.train, test: split.test, source })
    }

    /// `[n, 3, crop, crop]` RGB in [0, 1] after the evaluation resize and crop.
    ///
    /// # Errors
    /// A photo that is gone or no longer decodes, named.
    pub fn inputs(&self, photos: &[(PathBuf, usize)]) -> Result<ArrayD<f32>> {
        let crop = self.pre.crop;
        let mut out = Vec::with_capacity(photos.len() * 3 * crop * crop);
        for (path, _) in photos {
            let img = load_rgb(path)?;
            out.extend(eval_transform(&img, self.pre.resize as u32, crop as u32));
        }
        ArrayD::from_shape_vec(IxDyn(&[photos.len(), 3, crop, crop]), out)
            .map_err(|e| Error::Inconsistent(e.to_string()))
    }
}

/// `split.json`, parsed.
fn read_split<T: serde::de::DeserializeOwned>(run: &RunDir) -> Result<T> {
    let path = run.dir.join(run::SPLIT);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::format(
            &path,
            format!("{e} (a lower-precision export calibrates on the run's training set, which runs record there)"),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))
}

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
pub fn spread<T: Clone>(items: &[T], count: usize) -> Vec<T> {
    if count >= items.len() {
        return items.to_vec();
    }
    (0..count).map(|i| items[i * items.len() / count].clone()).collect()
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
