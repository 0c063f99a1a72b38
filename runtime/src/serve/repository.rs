//! The models served: found in a Triton repository (`<dir>/<model>/[config.pbtxt]`,
//! `<dir>/<model>/<version>/model.onnx`, the highest version) or named on the command line,
//! loaded, with their configuration in effect and their queue started.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use prism_runtime::model::{LoadOptions, Model, scene_graph_path};
use prism_runtime::protocol::config::{self, Defaults};
use prism_runtime::protocol::proto::{ModelConfig, ModelMetadataResponse, model_metadata_response::TensorMetadata};
use prism_runtime::protocol::{Signature, Spec};

use super::Args;
use super::batcher::Batcher;
use super::metrics::Metrics;

/// A model being served.
pub struct Served {
    /// Its name, input, outputs and largest batch.
    pub signature: Signature,
    pub version: String,
    pub config: ModelConfig,
    pub batcher: Batcher,
}

/// A model found, not yet loaded.
struct Entry {
    name: EntryName,
    version: String,
    file: PathBuf,
    config: Option<ModelConfig>,
}

/// The name clients use for an entry.
enum EntryName {
    /// The repository folder's.
    Folder(String),
    /// The model's own (metadata or file stem).
    Own,
    /// The model's own with `_scene`: a whole-scene graph beside a `--model` file.
    OwnScene,
}

/// Finds and loads the models `args` name, and starts their queues.
///
/// # Errors
/// A repository with no model or a malformed one, a model that does not load, two models with
/// one name.
pub fn load(args: &Args, metrics: &Arc<Metrics>) -> Result<Vec<Served>> {
    let entries = match &args.model_repository {
        Some(dir) => scan(dir)?,
        None => files(&args.model),
    };
    let defaults = Defaults {
        max_batch: args.max_batch_size,
        delay: Duration::from_micros(args.max_queue_delay),
        instances: args.engine.sessions,
    };
    let mut served: Vec<Served> = Vec::new();
    for entry in entries {
        let model = entry.load(args, &defaults, metrics)?;
        if served.iter().any(|s| s.signature.model == model.signature.model) {
            bail!("two models are named `{}`", model.signature.model);
        }
        served.push(model);
    }
    Ok(served)
}

fn scan(dir: &Path) -> Result<Vec<Entry>> {
    let read = std::fs::read_dir(dir).with_context(|| format!("cannot read the model repository {}", dir.display()))?;
    let mut folders: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    folders.retain(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')));
    folders.sort();
    let mut entries = Vec::new();
    for folder in folders {
        let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let config_file = folder.join("config.pbtxt");
        let config = if config_file.is_file() { Some(config::read(&config_file)?) } else { None };
        if let Some(config) = &config {
            if !config.name.is_empty() && config.name != name {
                bail!("{}: names the model `{}` but its folder is `{name}`", config_file.display(), config.name);
            }
        }
        let file_name = config
            .as_ref()
            .map(|c| c.default_model_filename.clone())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "model.onnx".into());
        let versions = std::fs::read_dir(&folder).with_context(|| format!("cannot read {}", folder.display()))?;
        let latest = versions
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.file_name().to_str()?.parse::<u64>().ok()?, e.path())))
            .filter(|(_, path)| path.join(&file_name).is_file())
            .max_by_key(|(version, _)| *version);
        let Some((version, path)) = latest else {
            bail!("{}: no <version>/{file_name} in this model's folder", folder.display());
        };
        entries.push(Entry {
            name: EntryName::Folder(name),
            version: version.to_string(),
            file: path.join(&file_name),
            config,
        });
    }
    if entries.is_empty() {
        bail!(
            "{}: no models in it (expected <model>/<version>/model.onnx, as `exporter --triton-repo` writes)",
            dir.display()
        );
    }
    Ok(entries)
}

/// The files named by `--model`, and the whole-scene graphs beside them.
fn files(models: &[PathBuf]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for file in models {
        entries.push(Entry { name: EntryName::Own, version: "1".into(), file: file.clone(), config: None });
        let scene = scene_graph_path(file);
        if scene != *file && scene.is_file() {
            entries.push(Entry { name: EntryName::OwnScene, version: "1".into(), file: scene, config: None });
        }
    }
    entries
}

impl Entry {
    fn load(self, args: &Args, defaults: &Defaults, metrics: &Arc<Metrics>) -> Result<Served> {
        let instances =
            config::instances(self.config.as_ref(), defaults).with_context(|| format!("{}", self.file.display()))?;
        let options = LoadOptions { sessions: instances, windows_only: true, ..args.engine.load_options() };
        let model =
            Model::load(&self.file, &options).with_context(|| format!("cannot load {}", self.file.display()))?;
        let own = model.info().name.clone();
        let name = match self.name {
            EntryName::Folder(name) => name,
            EntryName::Own => own,
            EntryName::OwnScene => format!("{own}_scene"),
        };
        let effective = config::effective(&name, self.config, &model.info().onnx, defaults)
            .with_context(|| format!("model `{name}` ({})", self.file.display()))?;
        let mut config = effective.config;
        config::set_instances(&mut config, instances, model.provider());
        let policy = effective.policy;
        eprintln!(
            "[serve] model `{name}` version {} from {}: {} on {}/{}, {instances} instance(s), {}",
            self.version,
            self.file.display(),
            spec_text(&effective.signature.input, policy.max_batch),
            model.engine(),
            model.provider(),
            match (policy.max_batch, policy.merge) {
                (0, _) => "no batch dimension".to_string(),
                (n, false) => format!("batches of up to {n} as sent (no dynamic_batching)"),
                (n, true) => format!("dynamic batching up to {n}, queue delay {} µs", policy.delay.as_micros()),
            }
        );
        for note in model.notes() {
            eprintln!("[serve] model `{name}`: {note}");
        }
        let batcher = Batcher::start(&name, Arc::new(model), policy, args.queue, Arc::clone(metrics))
            .with_context(|| format!("model `{name}`: cannot start its threads"))?;
        Ok(Served { signature: effective.signature, version: self.version, config, batcher })
    }
}

fn spec_text(spec: &Spec, max_batch: usize) -> String {
    let batch = if max_batch > 0 { "-1 x " } else { "" };
    let dims: Vec<String> = spec.dims.iter().map(ToString::to_string).collect();
    format!("input `{}` {batch}{}", spec.name, dims.join(" x "))
}

impl Served {
    /// The protocol's model metadata.
    pub fn metadata(&self) -> ModelMetadataResponse {
        let signature = &self.signature;
        let tensor = |spec: &Spec| TensorMetadata {
            name: spec.name.clone(),
            datatype: "FP32".into(),
            shape: signature.shape(spec),
        };
        ModelMetadataResponse {
            name: signature.model.clone(),
            versions: vec![self.version.clone()],
            platform: self.config.platform.clone(),
            inputs: vec![tensor(&signature.input)],
            outputs: signature.outputs.iter().map(tensor).collect(),
        }
    }
}
