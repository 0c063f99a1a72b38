//! The models served: found in a Triton repository (`<dir>/<model>/[config.pbtxt]`,
//! `<dir>/<model>/<version>/model.onnx`, the highest version) or named on the command line,
//! loaded, with their configuration in effect and their queue started.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use prism_runtime::engine::{EngineChoice, EngineOptions, Provider};
use prism_runtime::model::{LoadOptions, Model, scene_graph_path};
use prism_runtime::protocol::config::{self, Defaults, Device, Placement};
use prism_runtime::protocol::proto::{ModelConfig, ModelMetadataResponse, model_metadata_response::TensorMetadata};
use prism_runtime::protocol::{Signature, Spec};

use super::Args;
use super::batcher::Batcher;
use super::metrics::Metrics;

/// A model being served.
pub struct Served {
    /// Its name, input, outputs and largest batch.
    pub signature: Signature,
    pub version: u64,
    pub config: ModelConfig,
    pub batcher: Batcher,
}

/// A model found, not yet loaded.
struct Entry {
    name: EntryName,
    version: u64,
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
        if served.iter().any(|s| s.signature.model == model.signature.model && s.version == model.version) {
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
        let read = std::fs::read_dir(&folder).with_context(|| format!("cannot read {}", folder.display()))?;
        let available: Vec<u64> = read
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .filter(|version| folder.join(version.to_string()).join(&file_name).is_file())
            .collect();
        if available.is_empty() {
            bail!("{}: no <version>/{file_name} in this model's folder", folder.display());
        }
        let served = config::served_versions(config.as_ref(), &available)
            .with_context(|| format!("{}", config_file.display()))?;
        for version in served {
            entries.push(Entry {
                name: EntryName::Folder(name.clone()),
                version,
                file: folder.join(version.to_string()).join(&file_name),
                config: config.clone(),
            });
        }
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
        entries.push(Entry { name: EntryName::Own, version: 1, file: file.clone(), config: None });
        let scene = scene_graph_path(file);
        if scene != *file && scene.is_file() {
            entries.push(Entry { name: EntryName::OwnScene, version: 1, file: scene, config: None });
        }
    }
    entries
}

impl Entry {
    fn load(self, args: &Args, defaults: &Defaults, metrics: &Arc<Metrics>) -> Result<Served> {
        let file = self.file.display().to_string();
        let placements = config::placements(self.config.as_ref(), defaults).with_context(|| file.clone())?;
        // One pool of engines per placement; each instance's thread runs on its group's pool.
        let mut groups: Vec<(Placement, Arc<Model>, usize)> = Vec::with_capacity(placements.len());
        for placement in placements {
            let engine = engine_options(&args.engine.options(), placement.device).with_context(|| file.clone())?;
            let gpu = engine.gpu;
            let options = LoadOptions { engine, sessions: placement.count, windows_only: true, ..Default::default() };
            let model = Model::load(&self.file, &options).with_context(|| format!("cannot load {file}"))?;
            groups.push((placement, Arc::new(model), gpu));
        }
        let first = Arc::clone(&groups[0].1);
        let own = first.info().name.clone();
        let name = match self.name {
            EntryName::Folder(name) => name,
            EntryName::Own => own,
            EntryName::OwnScene => format!("{own}_scene"),
        };
        let effective = config::effective(&name, self.config, &first.info().onnx, defaults)
            .with_context(|| format!("model `{name}` ({file})"))?;
        let mut config = effective.config;
        let loaded: Vec<(Placement, &str, usize)> = groups.iter().map(|(p, m, gpu)| (*p, m.provider(), *gpu)).collect();
        config::set_instances(&mut config, &loaded);
        let policy = effective.policy;
        let engines: Vec<String> = groups
            .iter()
            .map(|(p, m, gpu)| {
                let device = if m.provider() == "cpu" { String::new() } else { format!(" (GPU {gpu})") };
                format!("{} on {}/{}{device}", p.count, m.engine(), m.provider())
            })
            .collect();
        eprintln!(
            "[serve] model `{name}` version {} from {file}: {}, instances: {}, {}",
            self.version,
            spec_text(&effective.signature.input, policy.max_batch),
            engines.join(" + "),
            match (policy.max_batch, policy.merge) {
                (0, _) => "no batch dimension".to_string(),
                (n, false) => format!("batches of up to {n} as sent (no dynamic_batching)"),
                (n, true) => format!("dynamic batching up to {n}, queue delay {} µs", policy.delay.as_micros()),
            }
        );
        for note in first.notes() {
            eprintln!("[serve] model `{name}`: {note}");
        }
        let instances = groups.iter().flat_map(|(p, m, _)| std::iter::repeat_n(m, p.count)).cloned().collect();
        let batcher = Batcher::start(&name, instances, policy, args.queue, Arc::clone(metrics))
            .with_context(|| format!("model `{name}`: cannot start its threads"))?;
        Ok(Served { signature: effective.signature, version: self.version, config, batcher })
    }
}

/// The engine flags for a group of instances: as given, on the CPU, or on a GPU (CUDA, or
/// TensorRT when the flags ask for it).
fn engine_options(flags: &EngineOptions, device: Device) -> Result<EngineOptions> {
    Ok(match device {
        Device::Flags => flags.clone(),
        Device::Cpu => EngineOptions { provider: Provider::Cpu, ..flags.clone() },
        Device::Gpu(gpu) => {
            if flags.engine == EngineChoice::Tract {
                bail!("instance_group asks for KIND_GPU, but tract runs on the CPU only (--engine tract)");
            }
            let provider = if flags.provider == Provider::TensorRt { Provider::TensorRt } else { Provider::Cuda };
            EngineOptions { provider, gpu: gpu.unwrap_or(flags.gpu), ..flags.clone() }
        }
    })
}

fn spec_text(spec: &Spec, max_batch: usize) -> String {
    let batch = if max_batch > 0 { "-1 x " } else { "" };
    let dims: Vec<String> = spec.dims.iter().map(ToString::to_string).collect();
    format!("input `{}` {batch}{}", spec.name, dims.join(" x "))
}

impl Served {
    /// The protocol's model metadata; `versions` are those of the model served.
    pub fn metadata(&self, versions: Vec<String>) -> ModelMetadataResponse {
        let signature = &self.signature;
        let tensor = |spec: &Spec| TensorMetadata {
            name: spec.name.clone(),
            datatype: "FP32".into(),
            shape: signature.shape(spec),
        };
        ModelMetadataResponse {
            name: signature.model.clone(),
            versions,
            platform: self.config.platform.clone(),
            inputs: vec![tensor(&signature.input)],
            outputs: signature.outputs.iter().map(tensor).collect(),
        }
    }
}
