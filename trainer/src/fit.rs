//! The training loop: epochs of shuffled batches, validation every epoch, best and last
//! checkpoints, early stopping, exact resumption, and a clean stop on Ctrl-C.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use prism_models::{ModelConfig, ModelOptions, Task};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::checkpoint;
use crate::data::patches::{Split, block_split, stratified_split};
use crate::data::{Data, DataSource};
use crate::model::TchModel;
use crate::optim::{Optimizer, OptimizerConfig, Schedule, zero_grad};
use crate::progress;

/// Everything that defines a training run; saved in `config.json` under `train`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    pub model: String,
    pub data: DataSource,
    pub test_ratio: f64,
    /// Fraction of the non-test samples held out for validation.
    pub val_ratio: f64,
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: Option<usize>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Weights to start from (safetensors or PyTorch `.pt`, PyTorch names).
    pub init: Option<PathBuf>,
    /// Train only the classifier.
    pub freeze_backbone: bool,
    /// For scenes, also classify every pixel of the scene for the map.
    pub scene_map: bool,
    /// For scenes, the pixels the PCA (and its whitening) is fitted on.
    #[serde(default)]
    pub pca_fit: PcaFit,
    /// How samples are divided into training, validation and test sets.
    #[serde(default)]
    pub split: SplitKind,
    /// With `split: blocks`, the side of the square blocks, in pixels.
    #[serde(default = "default_block_size")]
    pub block_size: usize,
    /// Scenes: each training window turned by a random multiple of 90 degrees and flipped at
    /// random (the eight symmetries of the square), drawn per window.
    #[serde(default)]
    pub augment_windows: bool,
    /// Label smoothing of the training loss (0: none); validation and test losses stay plain.
    #[serde(default)]
    pub label_smoothing: f64,
}

/// `block_size` when a config or sweep file leaves it out.
pub fn default_block_size() -> usize {
    10
}

/// How samples are divided into training, validation and test sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// Each class's samples drawn at random (the course's protocol): test windows overlap
    /// training pixels.
    #[default]
    Random,
    /// Scenes: whole spatial blocks per set, and no training pixel within half a window of a
    /// held-out one.
    Blocks,
}

/// Which pixels of a scene the PCA is fitted on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PcaFit {
    /// Every pixel of the scene, labelled or not, test pixels included (the HybridSN paper's
    /// and the course's protocol).
    #[default]
    Scene,
    /// The training pixels only: nothing of the validation or test pixels reaches the model.
    Train,
}

impl FitConfig {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.test_ratio) || !(0.0..1.0).contains(&self.val_ratio) {
            bail!("--test-ratio and --val-ratio must be in [0, 1)");
        }
        if self.epochs == 0 || self.batch_size == 0 {
            bail!("--epochs and --batch-size must be positive");
        }
        self.optimizer.validate()?;
        self.schedule.validate()
    }

    /// The model for `data`: its classes, and the scene's components and window.
    pub fn model_config(&self, classes: usize) -> Result<ModelConfig> {
        let named = ModelConfig::from_name(&self.model, &ModelOptions::default())?;
        let mut options = ModelOptions { classes: Some(classes), ..Default::default() };
        match (&self.data, named.task()) {
            (DataSource::Scene { components, window, .. }, Task::Scene) => {
                options.bands = Some(*components);
                options.window = Some(*window);
            }
            (DataSource::Images { crop, .. }, Task::Image) => options.image_size = Some(*crop),
            (_, Task::Image) => {
                bail!("{} is an image model: train it on an image folder with --images DIR", named.name())
            }
            (_, Task::Scene) => {
                bail!("{} is a scene model: train it on a scene (--dataset, or --data with --gt)", named.name())
            }
            (_, Task::Features) => bail!("{} is a block, not a classifier: it cannot be trained alone", named.name()),
        }
        Ok(ModelConfig::from_name(&self.model, &options)?)
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    pub seconds: f64,
}

/// Where training stands: saved in every checkpoint, restored by `--resume`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Next epoch to run (0-based) and the batches of it already done.
    pub epoch: usize,
    pub batch: usize,
    pub step: i64,
    /// Running sums of the interrupted epoch: loss sum, correct, seen.
    pub partial: (f64, usize, usize),
    /// Seconds already spent in the interrupted epoch.
    #[serde(default)]
    pub partial_seconds: f64,
    pub history: Vec<EpochRecord>,
    pub best_val_acc: Option<f64>,
    /// The validation loss of the best epoch, which breaks ties in accuracy.
    #[serde(default)]
    pub best_val_loss: Option<f64>,
    pub best_epoch: Option<usize>,
    pub epochs_without_improvement: usize,
    pub train_seconds: f64,
    pub finished: bool,
}

pub const CHECKPOINTS: &str = "checkpoints";
const LAST: &str = "last.safetensors";
const BEST: &str = "best.safetensors";
const STATE_KEY: &str = "prism.train_state";

/// The checkpoint `--resume` continues from: `<run_dir>/checkpoints/last.safetensors`.
pub fn last_checkpoint(run_dir: &Path) -> PathBuf {
    run_dir.join(CHECKPOINTS).join(LAST)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C stop training at the end of the current batch, after a checkpoint.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: stopping after this batch and saving a checkpoint (Ctrl-C again to exit now)");
    });
}

/// For tests of resumption: `PRISM_INTERRUPT_AFTER_STEPS=N` behaves as a Ctrl-C after N
/// optimiser steps of this process.
fn interrupt_requested(steps_this_process: usize) -> bool {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return true;
    }
    std::env::var("PRISM_INTERRUPT_AFTER_STEPS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| steps_this_process >= n)
}

/// Picks the device: `auto` is the first CUDA device when libtorch sees one, else the CPU.
pub fn resolve_device(spec: &str) -> Result<Device> {
    let cuda = tch::Cuda::is_available();
    match spec {
        "auto" => Ok(if cuda { Device::Cuda(0) } else { Device::Cpu }),
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let index: usize =
                s.strip_prefix("cuda:").map_or(Ok(0), str::parse).with_context(|| format!("bad device `{s}`"))?;
            if !cuda {
                bail!(
                    "CUDA is not available: libtorch sees no CUDA device (no NVIDIA driver, or a CPU-only libtorch); use --device cpu"
                );
            }
            let count = tch::Cuda::device_count() as usize;
            if index >= count {
                bail!("{s}: libtorch sees {count} CUDA device(s)");
            }
            Ok(Device::Cuda(index))
        }
        other => bail!("unknown device `{other}` (auto, cpu, cuda, cuda:N)"),
    }
}

/// `"<CPU model>, N logical cores"` from /proc/cpuinfo (Linux): where a run trained, beside
/// [`describe_device`].
pub fn describe_machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string()));
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    format!("{}, {cores} logical cores", model.unwrap_or_else(|| "unknown CPU".into()))
}

pub fn describe_device(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => format!("cpu ({} threads)", tch::get_num_threads()),
    }
}

/// The training, validation and test sets `config` asks for (`split`, `block_size`), the same
/// for `trainer fit` and `trainer eval`.
///
/// # Errors
/// A block split of images.
pub fn make_split(config: &FitConfig, data: &Data) -> Result<Split> {
    let classes = data.sample_classes();
    match (config.split, data.scene_samples()) {
        (SplitKind::Random, _) => Ok(stratified_split(&classes, config.test_ratio, config.val_ratio, config.seed)),
        (SplitKind::Blocks, None) => bail!("--split blocks applies to scenes; images have no place in a scene"),
        (SplitKind::Blocks, Some((samples, size, window))) => {
            let ratios = (config.test_ratio, config.val_ratio);
            let b = block_split(samples, size, config.block_size, window / 2, ratios, config.seed);
            Ok(b.split)
        }
    }
}

/// Says how a block split came out: set sizes, training pixels dropped for the margin, and
/// classes that a set lacks.
fn describe_block_split(config: &FitConfig, data: &Data, split: &Split) {
    let classes = data.sample_classes();
    let dropped = classes.len() - split.train.len() - split.val.len() - split.test.len();
    let margin = data.scene_samples().map_or(0, |(_, _, window)| window / 2);
    eprintln!(
        "block split: {} x {} pixel blocks; {} training, {} validation, {} test pixels; {dropped} training pixels \
         dropped within {margin} pixels of held-out ones",
        config.block_size,
        config.block_size,
        split.train.len(),
        split.val.len(),
        split.test.len()
    );
    let names = data.class_names();
    for (set, members) in [("training", &split.train), ("test", &split.test)] {
        let missing: Vec<&str> = (0..names.len())
            .filter(|&c| !members.iter().any(|&i| classes[i] == c))
            .map(|c| names[c].as_str())
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "warning: no {set} pixels of {} (no block of them went there, or the margin dropped them: try another --block-size or --seed)",
                missing.join(", ")
            );
        }
    }
}

/// What training produced.
pub struct Trained {
    pub model: TchModel,
    pub data: Data,
    pub split: Split,
    pub state: TrainState,
    pub interrupted: bool,
    /// "best" (by validation accuracy) or "last".
    pub selected: &'static str,
    pub device: Device,
}

/// Trains as `config` says, checkpointing into `run_dir/checkpoints`; with `resume`, continues
/// from the last checkpoint there; with `replace`, deletes what `run_dir` holds once the inputs
/// have been read and the model built (a bad input leaves the old run as it was).
pub fn fit(config: &FitConfig, run_dir: &Path, resume: bool, replace: bool) -> Result<Trained> {
    config.validate()?;
    let device = resolve_device(&config.device)?;
    // Read first, so that bad weights stop the run before anything is written; a resumed run
    // takes its weights from the checkpoint instead.
    let init = match &config.init {
        Some(path) if !resume => Some((path, crate::model::read_tensors(path)?)),
        _ => None,
    };
    let mut data = Data::load(&config.data, None)?;
    let model_config = config.model_config(data.class_names().len())?;
    let split = make_split(config, &data)?;
    if split.train.is_empty() {
        bail!(
            "no training samples left after the split (test ratio {}, validation ratio {})",
            config.test_ratio,
            config.val_ratio
        );
    }
    if config.split == SplitKind::Blocks {
        describe_block_split(config, &data, &split);
    }
    if config.pca_fit == PcaFit::Train {
        data.refit_pca(&split.train)?;
        eprintln!("PCA fitted on the {} training pixels only (--pca-fit train)", split.train.len());
    }

    tch::manual_seed(config.seed as i64);
    let mut model = TchModel::new(model_config.clone(), device)?;
    if let Some((path, tensors)) = &init {
        load_init(&mut model, path, tensors)?;
    }
    if config.freeze_backbone {
        let head = model_config.classifier().context("this model has no classifier to train alone")?;
        for (name, p) in model.parameters() {
            if !name.starts_with(&format!("{head}.")) {
                let _ = p.set_requires_grad(false);
            }
        }
    }
    let params = model.parameters();
    let mut optimizer = Optimizer::new(config.optimizer.clone(), &params);
    drop(params);

    let checkpoints = run_dir.join(CHECKPOINTS);
    let mut state = TrainState::default();
    if resume {
        let path = last_checkpoint(run_dir);
        let (tensors, metadata) = checkpoint::load(&path).context("reading the last checkpoint")?;
        model.load_tensors(&tensors, &path, &[])?;
        let saved = metadata.get(STATE_KEY).with_context(|| format!("{}: no training state", path.display()))?;
        state = serde_json::from_str(saved).with_context(|| format!("{}: bad training state", path.display()))?;
        optimizer.load_state(&tensors, state.step, device);
    } else if replace && run_dir.exists() {
        std::fs::remove_dir_all(run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
    }
    eprintln!(
        "{} on {}: {} classes, {} train / {} validation / {} test samples, device {}",
        model_config.name(),
        config.data.display_name(),
        data.class_names().len(),
        split.train.len(),
        split.val.len(),
        split.test.len(),
        describe_device(device)
    );
    if resume {
        eprintln!("resuming at epoch {} batch {} (step {})", state.epoch + 1, state.batch, state.step);
    }
    // Written once the checkpoint has been read: a resume that fails leaves the run unchanged.
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    crate::report::write_config(run_dir, config, &model_config)?;
    crate::report::write_split(run_dir, &data, &split)?;

    let interrupted = train_loop(config, &mut model, &mut optimizer, &data, &split, &mut state, &checkpoints, device)?;
    let selected = if !interrupted && state.best_epoch.is_some() && !split.val.is_empty() {
        let path = checkpoints.join(BEST);
        let (tensors, _) = checkpoint::load(&path)?;
        model.load_tensors(&tensors, &path, &[])?;
        "best"
    } else {
        "last"
    };
    Ok(Trained { model, data, split, state, interrupted, selected, device })
}

/// Loads `--init` weights; a classifier of another shape (another class count) is left at its
/// fresh initialisation.
fn load_init(model: &mut TchModel, path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let head = model.config.classifier().map(|h| format!("{h}."));
    let mut skip = Vec::new();
    if let Some(head) = &head {
        let differs = model.state().iter().any(|(name, t)| {
            name.starts_with(head.as_str()) && tensors.get(name).is_some_and(|src| src.size() != t.size())
        });
        if differs {
            eprintln!(
                "{}: the classifier `{}` has another class count: it starts fresh",
                path.display(),
                head.trim_end_matches('.')
            );
            skip.push(head.as_str());
        }
    }
    model.load_tensors(tensors, path, &skip)
}

#[allow(clippy::too_many_arguments)]
fn train_loop(
    config: &FitConfig,
    model: &mut TchModel,
    optimizer: &mut Optimizer,
    data: &Data,
    split: &Split,
    state: &mut TrainState,
    checkpoints: &Path,
    device: Device,
) -> Result<bool> {
    let batches = split.train.len().div_ceil(config.batch_size);
    let mut steps_here = 0;
    while state.epoch < config.epochs && !state.finished {
        let epoch = state.epoch;
        let started = Instant::now();
        // The order and the augmentation of an epoch depend on (seed, epoch) only, so that a
        // resumed epoch replays the same batches.
        let mut order = split.train.clone();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(
            config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        let bar = progress::bar(batches as u64, &format!("epoch {}/{}", epoch + 1, config.epochs));
        bar.set_position(state.batch as u64);
        let (mut loss_sum, mut correct, mut seen) = state.partial;
        let mut lr = config.optimizer.lr;
        for (b, chunk) in order.chunks(config.batch_size).enumerate().skip(state.batch) {
            let batch_seed = config.seed.wrapping_mul(1_000_003).wrapping_add((epoch * 100_003 + b) as u64);
            tch::manual_seed(batch_seed as i64);
            let mut rng = rand::rngs::StdRng::seed_from_u64(batch_seed);
            lr = config.schedule.lr(config.optimizer.lr, epoch, b, batches, config.epochs);
            let x = data.inputs(chunk, Some(&mut rng), device);
            let x = if config.augment_windows { turn_and_flip(&x, &mut rng) } else { x };
            let y = data.labels(chunk, device);
            let (logits, loss) = train_step(model, optimizer, (&x, &y), lr, config.label_smoothing)?;
            state.step += 1;
            steps_here += 1;

            let batch_loss = f64::try_from(&loss)?;
            if !batch_loss.is_finite() {
                bail!("the loss became {batch_loss} at epoch {} batch {}: lower --lr", epoch + 1, b + 1);
            }
            loss_sum += batch_loss * chunk.len() as f64;
            correct += logits.argmax(1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]) as usize;
            seen += chunk.len();
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} acc {:.1}%",
                epoch + 1,
                config.epochs,
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64
            ));
            bar.inc(1);
            if interrupt_requested(steps_here) {
                state.batch = b + 1;
                state.partial = (loss_sum, correct, seen);
                state.partial_seconds += started.elapsed().as_secs_f64();
                state.train_seconds += started.elapsed().as_secs_f64();
                bar.finish_and_clear();
                save_checkpoint(model, optimizer, state, &checkpoints.join(LAST))?;
                return Ok(true);
            }
        }
        bar.finish_and_clear();

        let (val_loss, val_acc) = validate(model, data, &split.val, config.batch_size, device)?;
        state.train_seconds += started.elapsed().as_secs_f64();
        let seconds = started.elapsed().as_secs_f64() + state.partial_seconds;
        let record = EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_acc,
            seconds,
        };
        progress::line(&bar, &format_epoch(&record, config.epochs, seen as f64 / seconds));
        state.history.push(record);
        state.epoch += 1;
        state.batch = 0;
        state.partial = (0.0, 0, 0);
        state.partial_seconds = 0.0;

        if let Some(acc) = val_acc {
            keep_best((acc, val_loss), epoch + 1, model, optimizer, state, &checkpoints.join(BEST))?;
        }
        if config.patience.is_some_and(|p| state.epochs_without_improvement >= p) {
            eprintln!("early stop: no better validation result for {} epochs", state.epochs_without_improvement);
            state.finished = true;
        }
        save_checkpoint(model, optimizer, state, &checkpoints.join(LAST))?;
        if interrupt_requested(steps_here) {
            return Ok(true);
        }
    }
    state.finished = true;
    save_checkpoint(model, optimizer, state, &checkpoints.join(LAST))?;
    Ok(false)
}

/// Validation loss and accuracy on the samples `val` (none without a validation split).
fn validate(
    model: &TchModel,
    data: &Data,
    val: &[usize],
    batch_size: usize,
    device: Device,
) -> Result<(Option<f64>, Option<f64>)> {
    if val.is_empty() {
        return Ok((None, None));
    }
    let (loss, predictions) = predict(model, data, val, batch_size, device)?;
    let truth = data.sample_classes();
    let hits = val.iter().zip(&predictions).filter(|(i, p)| truth[**i] == **p).count();
    Ok((Some(loss), Some(hits as f64 / val.len() as f64)))
}

/// Whether a validation result `(accuracy, loss)` beats the best so far: a higher accuracy, or
/// the same accuracy with a loss no higher (so that among tied epochs the lowest loss wins, and
/// among equal losses the later epoch). On a small validation set accuracy saturates early (100 %
/// from the first epoch), and accuracy alone would keep the first, least trained, weights.
pub fn beats(result: (f64, Option<f64>), best: Option<(f64, Option<f64>)>) -> bool {
    let Some((best_acc, best_loss)) = best else { return true };
    let (acc, loss) = result;
    acc > best_acc
        || (acc == best_acc
            && match (loss, best_loss) {
                (Some(loss), Some(best_loss)) => loss <= best_loss,
                _ => true,
            })
}

/// Keeps epoch `epoch`'s weights as the best (checkpoint `best`) when its validation result
/// [`beats`] the best so far; otherwise counts one more epoch without improvement.
fn keep_best(
    result: (f64, Option<f64>),
    epoch: usize,
    model: &TchModel,
    optimizer: &Optimizer,
    state: &mut TrainState,
    best: &Path,
) -> Result<()> {
    if beats(result, state.best_val_acc.map(|acc| (acc, state.best_val_loss))) {
        state.best_val_acc = Some(result.0);
        state.best_val_loss = result.1;
        state.best_epoch = Some(epoch);
        state.epochs_without_improvement = 0;
        save_checkpoint(model, optimizer, state, best)?;
    } else {
        state.epochs_without_improvement += 1;
    }
    Ok(())
}

/// Why the best epoch was kept, for the summary and metrics.json: its accuracy and, when other
/// epochs tied with it, its loss among theirs.
pub fn selection_reason(history: &[EpochRecord], best_epoch: usize) -> Option<String> {
    let best = history.iter().find(|r| r.epoch == best_epoch)?;
    let acc = best.val_acc?;
    let tied = history.iter().filter(|r| r.val_acc == Some(acc)).count();
    let reason = format!("the highest validation accuracy, {:.2} %", acc * 100.0);
    Some(match (tied, best.val_loss) {
        (1, _) | (_, None) => reason,
        (n, Some(loss)) => format!(
            "{reason}, reached by {n} epochs: of those the lowest validation loss, {loss:.4} (equal losses go to the later epoch)"
        ),
    })
}

fn format_epoch(r: &EpochRecord, epochs: usize, rate: f64) -> String {
    let val = match (r.val_loss, r.val_acc) {
        (Some(l), Some(a)) => format!("  val loss {l:.4} acc {:5.2}%", a * 100.0),
        _ => String::new(),
    };
    format!(
        "epoch {:>3}/{epochs}  lr {:.2e}  loss {:.4} acc {:5.2}%{val}  {:.1}s ({rate:.0} samples/s)",
        r.epoch,
        r.lr,
        r.train_loss,
        r.train_acc * 100.0,
        r.seconds
    )
}

/// One file: the model state, the optimiser state and the training position.
fn save_checkpoint(model: &TchModel, optimizer: &Optimizer, state: &TrainState, path: &Path) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = model.state().iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
    named.extend(optimizer.state_tensors());
    let metadata = HashMap::from([(STATE_KEY.to_string(), serde_json::to_string(state)?)]);
    checkpoint::save(path, &named, metadata).with_context(|| format!("saving checkpoint {}", path.display()))
}

/// One optimisation step on a batch, as PyTorch's loop writes it: zero the gradients, forward
/// in training mode, mean cross-entropy, backward, update with learning rate `lr`.
/// Returns the logits and the loss.
pub fn train_step(
    model: &TchModel,
    optimizer: &mut Optimizer,
    (x, y): (&Tensor, &Tensor),
    lr: f64,
    label_smoothing: f64,
) -> Result<(Tensor, Tensor)> {
    let params = model.parameters();
    zero_grad(&params);
    let logits = model.forward(x, true)?;
    let loss = logits.f_cross_entropy_loss(y, None::<Tensor>, tch::Reduction::Mean, -100, label_smoothing)?;
    loss.f_backward()?;
    optimizer.step(&params, lr);
    Ok((logits, loss))
}

/// Evaluation-mode predictions and mean cross-entropy for the samples at `indices`.
pub fn predict(
    model: &TchModel,
    data: &Data,
    indices: &[usize],
    batch_size: usize,
    device: Device,
) -> Result<(f64, Vec<usize>)> {
    let mut loss_sum = 0.0;
    let mut predictions = Vec::with_capacity(indices.len());
    tch::no_grad(|| -> Result<()> {
        for chunk in indices.chunks(batch_size) {
            let logits = model.forward(&data.inputs(chunk, None, device), false)?;
            let y = data.labels(chunk, device);
            loss_sum += f64::try_from(cross_entropy(&logits, &y)?)? * chunk.len() as f64;
            let p: Vec<i64> = logits.argmax(1, false).to_device(Device::Cpu).try_into()?;
            predictions.extend(p.into_iter().map(|v| v as usize));
        }
        Ok(())
    })?;
    Ok((loss_sum / indices.len().max(1) as f64, predictions))
}

/// Each window of `x` (`[N, 1, C, w, w]`, the last two dimensions spatial) under one of the eight
/// symmetries of the square, drawn from `rng` per window: a turn by k x 90 degrees, then a flip
/// or not. The spectra are untouched.
pub fn turn_and_flip(x: &Tensor, rng: &mut impl rand::Rng) -> Tensor {
    let n = x.size()[0];
    let windows: Vec<Tensor> = (0..n)
        .map(|i| {
            let window = x.get(i);
            let turned = window.rot90(rng.random_range(0..4), [-2, -1]);
            if rng.random_bool(0.5) { turned.flip([-1]) } else { turned }
        })
        .collect();
    Tensor::stack(&windows, 0)
}

/// Mean cross-entropy of logits `[N, K]` against class indices `[N]`.
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Ok(logits.f_cross_entropy_loss(labels, None::<Tensor>, tch::Reduction::Mean, -100, 0.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, acc: f64, loss: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            lr: 1e-3,
            train_loss: 1.0,
            train_acc: 0.5,
            val_loss: Some(loss),
            val_acc: Some(acc),
            seconds: 1.0,
        }
    }

    /// The epoch that a run with `history` keeps, by feeding [`beats`] epoch by epoch.
    fn kept(history: &[EpochRecord]) -> usize {
        let mut best: Option<(f64, Option<f64>, usize)> = None;
        for r in history {
            let result = (r.val_acc.unwrap_or(0.0), r.val_loss);
            if beats(result, best.map(|(a, l, _)| (a, l))) {
                best = Some((result.0, result.1, r.epoch));
            }
        }
        best.map_or(0, |(_, _, epoch)| epoch)
    }

    #[test]
    fn windows_are_turned_and_flipped_as_a_whole() {
        use rand::SeedableRng;
        // Two windows, 2 bands, 3 x 3 pixels, every value distinct.
        let x = Tensor::arange(36, (Kind::Float, tch::Device::Cpu)).view([2, 1, 2, 3, 3]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let y = turn_and_flip(&x, &mut rng);
            assert_eq!(y.size(), x.size());
            for i in 0..2 {
                let (a, b) = (x.get(i), y.get(i));
                // One of the eight symmetries, the same for every band.
                let symmetries: Vec<Tensor> = (0..4)
                    .flat_map(|k| {
                        let t = a.rot90(k, [-2, -1]);
                        [t.flip([-1]), t]
                    })
                    .collect();
                let which = symmetries.iter().position(|t| t.equal(&b));
                assert!(which.is_some(), "window {i} is not a symmetry of the input");
                seen.insert(which);
            }
        }
        assert_eq!(seen.len(), 8, "not every symmetry was drawn");
    }

    #[test]
    fn saturated_accuracy_keeps_the_lowest_loss_then_the_later_epoch() {
        // Validation accuracy at 100 % from the first epoch, as on a small validation set.
        let history = [
            record(1, 1.0, 0.9),
            record(2, 1.0, 0.05),
            record(3, 1.0, 0.009),
            record(4, 1.0, 0.009),
            record(5, 1.0, 0.02),
        ];
        assert_eq!(kept(&history), 4);
        let reason = selection_reason(&history, 4).unwrap_or_default();
        assert!(reason.contains("reached by 5 epochs") && reason.contains("0.0090"), "{reason}");
        // A higher accuracy wins whatever its loss.
        let history = [record(1, 0.8, 0.1), record(2, 0.9, 0.7), record(3, 0.85, 0.05)];
        assert_eq!(kept(&history), 2);
        assert_eq!(selection_reason(&history, 2).as_deref(), Some("the highest validation accuracy, 90.00 %"));
    }
}
