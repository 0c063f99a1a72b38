//! Reading a run directory (the contract in `prism_models::run`) and checking that its files
//! agree with each other.

use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use prism_models::run::{self, Preprocessing, RunConfig};
use prism_models::{ModelConfig, Task};
use serde::de::DeserializeOwned;

use crate::weights::TensorFile;
use crate::{Error, Result};

/// Everything the exporter reads from a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub dir: PathBuf,
    pub config: RunConfig,
    /// Absent for `Task::Features` (a block alone has no preprocessing).
    pub preprocessing: Option<Preprocessing>,
    /// `metrics.json` as written (free-form), when present.
    pub metrics: Option<serde_json::Value>,
    pub weights: TensorFile,
}

/// A batch of inputs as the exported graph takes them, and the trainer's outputs for it.
#[derive(Clone, Debug)]
pub struct Sample {
    pub path: PathBuf,
    pub input: ArrayD<f32>,
    pub logits: ArrayD<f32>,
}

/// The JSON files of a run directory, parsed and checked against each other as [`RunDir::read`]
/// checks them (the weights aside): `config.json`, `preprocessing.json` (scenes and images) and
/// `metrics.json` (optional).
#[derive(Clone, Debug)]
pub struct RunJson {
    pub config: RunConfig,
    pub preprocessing: Option<Preprocessing>,
    pub metrics: Option<serde_json::Value>,
}

impl RunJson {
    /// Parses the JSON files of the run directory `dir` (which names them in errors): `text`
    /// gives a file's content by its name, `None` for a file that is not there.
    ///
    /// # Errors
    /// What `text` returns; a missing `config.json` (or `preprocessing.json` for scenes and
    /// images); a file that does not parse; a model configuration that does not validate, or
    /// preprocessing that does not fit the model.
    pub fn parse(dir: &Path, mut text: impl FnMut(&str) -> Result<Option<String>>) -> Result<RunJson> {
        let config: RunConfig = parse_json(dir, run::CONFIG, required(dir, run::CONFIG, text(run::CONFIG)?)?)?;
        config.model.validate()?;
        let preprocessing = match config.model.task() {
            Task::Features => None,
            Task::Scene | Task::Image => {
                let found = required(dir, run::PREPROCESSING, text(run::PREPROCESSING)?)?;
                Some(parse_json(dir, run::PREPROCESSING, found)?)
            }
        };
        let metrics = text(run::METRICS)?.map(|found| parse_json(dir, run::METRICS, found)).transpose()?;
        let parsed = RunJson { config, preprocessing, metrics };
        parsed.check_preprocessing(dir)?;
        Ok(parsed)
    }

    fn check_preprocessing(&self, dir: &Path) -> Result<()> {
        let path = dir.join(run::PREPROCESSING);
        let bad = |reason: String| Err(Error::format(&path, reason));
        match (&self.preprocessing, &self.config.model) {
            (Some(Preprocessing::Scene(s)), ModelConfig::HybridSn(m)) => {
                let pca = &s.pca;
                if pca.n_components() != m.bands {
                    return bad(format!(
                        "the PCA has {} components, the model takes {} bands",
                        pca.n_components(),
                        m.bands
                    ));
                }
                if s.window != m.window {
                    return bad(format!("window {} differs from the model's window {}", s.window, m.window));
                }
                if pca.mean.len() != s.raw_bands || pca.components.iter().any(|c| c.len() != s.raw_bands) {
                    return bad(format!("the PCA mean and components need {} raw bands each", s.raw_bands));
                }
                if pca.explained_variance.len() != pca.n_components() {
                    return bad("the PCA needs one explained variance per component".into());
                }
                if pca.whiten && !pca.explained_variance.iter().all(|v| v.is_finite() && *v > 0.0) {
                    return bad("whitening needs positive explained variances".into());
                }
                check_classes(&path, s.class_names.len(), m.classes)?;
                if s.class_values.len() != s.class_names.len() {
                    return bad(format!(
                        "{} class values for {} class names",
                        s.class_values.len(),
                        s.class_names.len()
                    ));
                }
            }
            (Some(Preprocessing::Image(i)), ModelConfig::ResNet(m)) => {
                if i.crop != m.image_size {
                    return bad(format!("crop {} differs from the model's image size {}", i.crop, m.image_size));
                }
                if !i.std.iter().all(|s| s.is_finite() && *s > 0.0) {
                    return bad("the normalisation's std must be positive".into());
                }
                check_classes(&path, i.class_names.len(), m.classes)?;
            }
            (None, ModelConfig::Block(_)) => {}
            (Some(p), model) => {
                let kind = match p {
                    Preprocessing::Scene(_) => "scene",
                    Preprocessing::Image(_) => "image",
                };
                return bad(format!("{kind} preprocessing does not fit {}", model.name()));
            }
            (None, model) => {
                return Err(Error::Inconsistent(format!("{} needs a {}", model.name(), run::PREPROCESSING)));
            }
        }
        Ok(())
    }
}

fn check_classes(path: &Path, names: usize, classes: usize) -> Result<()> {
    if names != classes {
        return Err(Error::format(path, format!("{names} class names for a model of {classes} classes")));
    }
    Ok(())
}

/// The content of the run-directory file `name`, which must be there.
fn required(dir: &Path, name: &str, text: Option<String>) -> Result<String> {
    text.ok_or_else(|| Error::format(dir.join(name), "no such file"))
}

/// The content of the run-directory file `name` as the type it holds.
fn parse_json<T: DeserializeOwned>(dir: &Path, name: &str, text: String) -> Result<T> {
    serde_json::from_str(&text).map_err(|e| Error::format(dir.join(name), e.to_string()))
}

impl RunDir {
    /// Reads `config.json`, `preprocessing.json` (scenes and images), `metrics.json` (optional)
    /// and `model.safetensors`, and checks the weights against the model (names, shapes) and the
    /// preprocessing against the model's input ([`RunJson::parse`]).
    ///
    /// # Errors
    /// A missing directory or file, a file that does not parse, a missing, extra or wrongly
    /// shaped tensor, or preprocessing that does not fit the model.
    pub fn read(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::MissingRunDir(dir.to_path_buf()));
        }
        let RunJson { config, preprocessing, metrics } = RunJson::parse(dir, |name| {
            let path = dir.join(name);
            if name == run::METRICS && !path.exists() {
                return Ok(None);
            }
            std::fs::read_to_string(&path).map(Some).map_err(|e| Error::io(&path, e))
        })?;
        let weights = TensorFile::read(&dir.join(run::WEIGHTS))?;
        let run = RunDir { dir: dir.to_path_buf(), config, preprocessing, metrics, weights };
        run.weights.check_weights(&run.config.model)?;
        Ok(run)
    }

    pub fn model(&self) -> &ModelConfig {
        &self.config.model
    }

    pub fn class_names(&self) -> Vec<String> {
        self.preprocessing.as_ref().map(|p| p.class_names().to_vec()).unwrap_or_default()
    }

    /// The exported graph's input shape without the batch: raw bands for scenes, RGB for images.
    pub fn graph_input_shape(&self) -> Vec<usize> {
        match (&self.preprocessing, self.model()) {
            (Some(Preprocessing::Scene(s)), _) => vec![s.raw_bands, s.window, s.window],
            (_, model) => model.input_shape(),
        }
    }

    /// The model's output shape without the batch.
    pub fn output_shape(&self) -> Vec<usize> {
        match self.model().classes() {
            Some(classes) => vec![classes],
            None => self.model().input_shape(),
        }
    }

    /// Reads `sample.safetensors` and checks its shapes: `input` `[N, ...graph input]`,
    /// `logits` `[N, ...output]`.
    ///
    /// # Errors
    /// A missing file or tensor, or a tensor of the wrong shape.
    pub fn sample(&self) -> Result<Sample> {
        let path = self.dir.join(run::SAMPLE);
        let file = TensorFile::read(&path)?;
        let get = |name: &str, rest: &[usize]| -> Result<ArrayD<f32>> {
            let param = file.get(name).ok_or_else(|| Error::MissingTensor { path: path.clone(), name: name.into() })?;
            let fits = param.shape.len() == rest.len() + 1 && param.shape[0] > 0 && param.shape[1..] == *rest;
            if !fits {
                let expected: Vec<String> =
                    std::iter::once("N".to_string()).chain(rest.iter().map(|d| d.to_string())).collect();
                return Err(Error::TensorShape {
                    path: path.clone(),
                    name: name.into(),
                    expected: format!("[{}]", expected.join(", ")),
                    got: param.shape.clone(),
                });
            }
            Ok(param.to_array())
        };
        let input = get(run::SAMPLE_INPUT, &self.graph_input_shape())?;
        let logits = get(run::SAMPLE_LOGITS, &self.output_shape())?;
        if input.shape()[0] != logits.shape()[0] {
            return Err(Error::format(&path, format!("{} inputs but {} logits", input.shape()[0], logits.shape()[0])));
        }
        Ok(Sample { path, input, logits })
    }
}
