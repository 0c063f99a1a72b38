use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use prism_models::run;
use serde::{Deserialize, Serialize};

use crate::data::DataSource;
use crate::fit::{FitConfig, PcaFit, SplitKind, fit, install_interrupt_handler};
use crate::optim::{OptimizerConfig, OptimizerKind, Schedule, ScheduleKind};
use crate::report::{self, Metrics};

/// Run an experiment: several models x seeds x training ratios, each an ordinary run
/// directory, summarised as mean and standard deviation beside published figures.
#[derive(clap::Args)]
#[command(after_help = "Example (the course's table on Indian Pines, 10 % training):
  trainer sweep results/hybridsn-indian-pines.sweep.json

Finished runs are skipped and interrupted ones resumed, so the command can be stopped (Ctrl-C)
and started again, in this session or a later one; `--report` only prints the table.")]
pub struct Args {
    /// The experiment (JSON; see results/hybridsn-indian-pines.sweep.json).
    config: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Only summarise the runs finished so far.
    #[arg(long)]
    report: bool,
    /// Run at most this many runs now, then stop.
    #[arg(long)]
    max_runs: Option<usize>,
}

/// An experiment file. The data is a built-in scene (`dataset`, with `bands` and `window`) or
/// an image folder (`images`, with `image_size` and `resize`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub name: String,
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub images: Option<PathBuf>,
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    #[serde(default = "default_resize")]
    pub resize: usize,
    pub models: Vec<String>,
    pub seeds: Vec<u64>,
    pub test_ratios: Vec<f64>,
    pub val_ratio: f64,
    /// `scene` (default) or `train`: the pixels the PCA is fitted on (`trainer fit --pca-fit`).
    #[serde(default)]
    pub pca_fit: PcaFit,
    /// `random` (default) or `blocks`, with `block_size` (`trainer fit --split`).
    #[serde(default)]
    pub split: SplitKind,
    #[serde(default = "crate::fit::default_block_size")]
    pub block_size: usize,
    /// `trainer fit --augment-windows` and `--label-smoothing`.
    #[serde(default)]
    pub augment_windows: bool,
    #[serde(default)]
    pub label_smoothing: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    #[serde(default = "default_optimizer")]
    pub optimizer: OptimizerKind,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "default_schedule")]
    pub schedule: ScheduleKind,
    #[serde(default)]
    pub warmup_epochs: usize,
    #[serde(default = "default_bands")]
    pub bands: usize,
    #[serde(default = "default_window")]
    pub window: usize,
    /// Where the run directories go: `<runs>/<model>-t<test ratio>-s<seed>`.
    pub runs: PathBuf,
    /// The raw results file (one record per run).
    pub results: PathBuf,
    /// Published figures, by row label, for the table.
    #[serde(default)]
    pub published: Vec<Published>,
}

fn default_bands() -> usize {
    30
}

fn default_image_size() -> usize {
    224
}

fn default_resize() -> usize {
    256
}

fn default_optimizer() -> OptimizerKind {
    OptimizerKind::Adam
}

fn default_schedule() -> ScheduleKind {
    ScheduleKind::Constant
}

fn default_window() -> usize {
    25
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Published {
    pub model: String,
    pub test_ratio: f64,
    /// Percentages.
    pub oa: f64,
    pub aa: Option<f64>,
    pub kappa: Option<f64>,
    pub source: String,
}

/// One finished run, as stored in the results file. Rates are fractions in [0, 1].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub variant: String,
    pub seed: u64,
    pub test_ratio: f64,
    pub epochs: usize,
    pub oa: f64,
    pub aa: f64,
    pub kappa: f64,
    /// How many classes the model predicts for at least one evaluated sample, and how many
    /// there are: 1 means the same answer for every input (absent in records made before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_classes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    pub train_seconds: f64,
    pub device: String,
    /// The CPU of the machine the run trained on (absent in records made before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    pub run_dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Results {
    /// How rates are expressed.
    units: String,
    sweep: String,
    records: Vec<Record>,
}

fn run_dir(sweep: &Sweep, model: &str, test_ratio: f64, seed: u64) -> PathBuf {
    sweep.runs.join(format!("{model}-t{:02}-s{seed}", (test_ratio * 100.0).round() as u32))
}

fn fit_config(sweep: &Sweep, model: &str, test_ratio: f64, seed: u64, device: &str) -> FitConfig {
    let data = match &sweep.images {
        Some(dir) => DataSource::Images { dir: dir.clone(), resize: sweep.resize, crop: sweep.image_size },
        None => DataSource::Scene {
            dataset: Some(sweep.dataset.clone().unwrap_or_else(|| "indian-pines".into())),
            data: None,
            gt: None,
            key: None,
            gt_key: None,
            components: sweep.bands,
            window: sweep.window,
            class_names: None,
        },
    };
    FitConfig {
        model: model.to_string(),
        data,
        test_ratio,
        val_ratio: sweep.val_ratio,
        seed,
        epochs: sweep.epochs,
        batch_size: sweep.batch_size,
        optimizer: OptimizerConfig {
            kind: sweep.optimizer,
            lr: sweep.lr,
            weight_decay: sweep.weight_decay,
            momentum: 0.9,
            nesterov: false,
            betas: (0.9, 0.999),
            eps: 1e-8,
        },
        schedule: Schedule {
            kind: sweep.schedule,
            step_size: 30,
            gamma: 0.1,
            min_lr: 0.0,
            warmup_epochs: sweep.warmup_epochs,
        },
        patience: None,
        device: device.to_string(),
        init: None,
        pca_fit: sweep.pca_fit,
        split: sweep.split,
        block_size: sweep.block_size,
        augment_windows: sweep.augment_windows,
        label_smoothing: sweep.label_smoothing,
        freeze_backbone: false,
        scene_map: false,
    }
}

fn read_metrics(dir: &Path) -> Option<Metrics> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(run::METRICS)).ok()?).ok()
}

/// The records already in the results file. They count as finished runs even when their run
/// directories are gone (a sweep continued on another machine or in a fresh checkout).
fn previous_records(sweep: &Sweep) -> Result<Vec<Record>> {
    match std::fs::read_to_string(&sweep.results) {
        Ok(text) => {
            let results: Results = serde_json::from_str(&text).with_context(|| {
                format!("{}: not a results file of this sweep (move it away to start afresh)", sweep.results.display())
            })?;
            Ok(results.records)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", sweep.results.display())),
    }
}

fn find<'a>(records: &'a [Record], model: &str, test_ratio: f64, seed: u64) -> Option<&'a Record> {
    records.iter().find(|r| r.variant == model && r.seed == seed && (r.test_ratio - test_ratio).abs() < 1e-9)
}

pub fn run(args: Args) -> Result<bool> {
    let sweep = read_sweep(&args.config, &args.device)?;
    let mut plan: Vec<(String, f64, u64)> = Vec::new();
    for &test_ratio in &sweep.test_ratios {
        for &seed in &sweep.seeds {
            plan.extend(sweep.models.iter().map(|m| (m.clone(), test_ratio, seed)));
        }
    }
    let previous = previous_records(&sweep)?;
    let started = Instant::now();
    let mut interrupted = false;
    if !args.report {
        install_interrupt_handler();
        let mut done_now = 0;
        for (i, (model, test_ratio, seed)) in plan.iter().enumerate() {
            let dir = run_dir(&sweep, model, *test_ratio, *seed);
            if read_metrics(&dir).is_some() || find(&previous, model, *test_ratio, *seed).is_some() {
                continue;
            }
            if args.max_runs.is_some_and(|m| done_now >= m) {
                break;
            }
            let config = fit_config(&sweep, model, *test_ratio, *seed, &args.device);
            let resume = crate::fit::last_checkpoint(&dir).exists();
            eprintln!(
                "\n[{}/{}] {model}, test ratio {test_ratio}, seed {seed} -> {}",
                i + 1,
                plan.len(),
                dir.display()
            );
            let trained = fit(&config, &dir, resume, false)?;
            if trained.interrupted {
                eprintln!("sweep stopped; run the same command again to continue");
                interrupted = true;
                break;
            }
            let metrics = report::write_run(
                &dir,
                &config,
                &trained.model,
                &trained.data,
                &trained.split,
                &trained.state,
                trained.selected,
                trained.device,
            )?;
            if let Some(warning) = metrics.report.chance_warning() {
                eprintln!("{warning}");
            }
            done_now += 1;
            let finished = write_results(&sweep, &args.config, &plan, &previous)?.len();
            let left = plan.len() - finished;
            if left > 0 {
                let pace = started.elapsed().as_secs_f64() / done_now as f64;
                eprintln!(
                    "{finished} of {} runs finished; {left} left, about {} at this invocation's pace",
                    plan.len(),
                    duration(pace * left as f64)
                );
            }
        }
    }
    let records = write_results(&sweep, &args.config, &plan, &previous)?;
    println!("{}", table(&sweep, &records));
    if args.report {
        eprintln!(
            "{} of {} runs finished; every run on its own line: {}",
            records.len(),
            plan.len(),
            sweep.results.with_extension("md").display()
        );
    } else {
        eprintln!(
            "{} of {} runs finished; this invocation took {:.0} s",
            records.len(),
            plan.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(!interrupted)
}

/// Reads a sweep file and checks every run's settings before the first one trains.
fn read_sweep(path: &Path, device: &str) -> Result<Sweep> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let sweep: Sweep = serde_json::from_str(&text).with_context(|| format!("{}: not a sweep file", path.display()))?;
    if sweep.models.is_empty() || sweep.seeds.is_empty() || sweep.test_ratios.is_empty() {
        bail!("{}: models, seeds and test_ratios must not be empty", path.display());
    }
    let repeated = |name: &str, n: usize, unique: usize| {
        if n == unique { Ok(()) } else { Err(anyhow::anyhow!("{}: {name} lists an entry twice", path.display())) }
    };
    repeated("models", sweep.models.len(), sweep.models.iter().collect::<BTreeSet<_>>().len())?;
    repeated("seeds", sweep.seeds.len(), sweep.seeds.iter().collect::<BTreeSet<_>>().len())?;
    repeated(
        "test_ratios",
        sweep.test_ratios.len(),
        sweep.test_ratios.iter().map(|r| r.to_bits()).collect::<BTreeSet<_>>().len(),
    )?;
    // Every run's settings are checked before the first one trains.
    for model in &sweep.models {
        for &test_ratio in &sweep.test_ratios {
            let config = fit_config(&sweep, model, test_ratio, 0, device);
            config
                .validate()
                .and_then(|()| config.model_config(2).map(drop))
                .with_context(|| format!("{}: {model} at test ratio {test_ratio}", path.display()))?;
        }
    }
    Ok(sweep)
}

/// Collects the finished runs of the plan into the results file (a run directory's metrics, else
/// the record kept from before); returns them.
fn write_results(
    sweep: &Sweep,
    config_path: &Path,
    plan: &[(String, f64, u64)],
    previous: &[Record],
) -> Result<Vec<Record>> {
    let records: Vec<Record> = plan
        .iter()
        .filter_map(|(model, test_ratio, seed)| {
            let dir = run_dir(sweep, model, *test_ratio, *seed);
            let kept = find(previous, model, *test_ratio, *seed);
            let Some(m) = read_metrics(&dir) else {
                return kept.cloned();
            };
            Some(Record {
                variant: model.clone(),
                seed: *seed,
                test_ratio: *test_ratio,
                epochs: m.epochs_run,
                oa: m.report.oa,
                aa: m.report.aa,
                kappa: m.report.kappa,
                predicted_classes: Some(m.report.predicted_classes()),
                classes: Some(m.report.confusion.len()),
                train_seconds: m.train_seconds,
                device: m.device,
                machine: m.machine.or_else(|| kept.and_then(|r| r.machine.clone())),
                run_dir: dir,
            })
        })
        .collect();
    let results = Results { units: "fraction".into(), sweep: sweep.name.clone(), records: records.clone() };
    report::write_json(&sweep.results, &results)?;
    let hours = records.iter().map(|r| r.train_seconds).sum::<f64>() / 3600.0 + 0.0;
    let devices: BTreeSet<&str> = records.iter().map(|r| r.device.as_str()).collect();
    let markdown = format!(
        "# {}\n\n\
         Command: `trainer sweep {}` ({} of {} runs finished).\n\n\
         Protocol: {}.\n\n\
         Machines: {}.\n\n\
         Devices: {}; training time of the finished runs: {hours:.1} h.\n\n\
         Rates in percent: mean ± sample standard deviation over seeds. Raw records (fractions): `{}`.\n\n{}\n\
         ## Runs\n\n{}",
        sweep.name,
        config_path.display(),
        records.len(),
        plan.len(),
        protocol(sweep),
        machines(&records),
        if devices.is_empty() { "-".to_string() } else { devices.into_iter().collect::<Vec<_>>().join(", ") },
        sweep.results.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        table(sweep, &records),
        runs_table(sweep, &records)
    );
    let md = sweep.results.with_extension("md");
    prism_data::write_bytes_atomic(&md, markdown.as_bytes())?;
    Ok(records)
}

/// `1 run`, `3 runs`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `95 s`, `42 min`, `3.5 h`.
fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// What every run of the sweep shares: the data, the split and the training settings.
fn protocol(sweep: &Sweep) -> String {
    let data = match &sweep.dataset {
        Some(_) => format!("PCA to {} components, {} x {} windows", sweep.bands, sweep.window, sweep.window),
        None => format!("images resized to {} px, cropped to {} px", sweep.resize, sweep.image_size),
    };
    let decay = if sweep.weight_decay > 0.0 { format!(", weight decay {}", sweep.weight_decay) } else { String::new() };
    let warmup = if sweep.warmup_epochs > 0 {
        format!(" after {}", count(sweep.warmup_epochs, "warm-up epoch"))
    } else {
        String::new()
    };
    let optimizer = match sweep.optimizer {
        OptimizerKind::Adam => "Adam",
        OptimizerKind::Adamw => "AdamW",
        OptimizerKind::Sgd => "SGD with momentum 0.9",
    };
    let schedule = format!("{:?}", sweep.schedule).to_lowercase();
    let validation = if sweep.val_ratio > 0.0 {
        format!(
            "{} % of the training share held out for validation, the best epoch's weights tested",
            100.0 * sweep.val_ratio
        )
    } else {
        "no validation split, the last epoch's weights tested".into()
    };
    format!(
        "{data}; {validation}; {}, batch {}, {optimizer} at learning rate {}{decay}, {schedule} schedule{warmup}{}",
        count(sweep.epochs, "epoch"),
        sweep.batch_size,
        sweep.lr,
        scene_options(sweep),
    )
}

/// The scene options a sweep sets away from the course's protocol, each as a clause (nothing when
/// none is set).
fn scene_options(sweep: &Sweep) -> String {
    let mut options = Vec::new();
    if sweep.split == SplitKind::Blocks {
        options.push(format!(
            "spatially disjoint split in blocks of {} x {} pixels, no training pixel within half a window of a held-out one",
            sweep.block_size, sweep.block_size
        ));
    }
    if sweep.pca_fit == PcaFit::Train {
        options.push("PCA fitted on the training pixels only".to_string());
    }
    if sweep.augment_windows {
        options.push("each training window flipped or turned at random (the square's eight symmetries)".to_string());
    }
    if sweep.label_smoothing > 0.0 {
        options.push(format!("label smoothing {}", sweep.label_smoothing));
    }
    options.iter().map(|o| format!("; {o}")).collect()
}

/// The machines the runs trained on, each with its number of runs (a sweep may be continued
/// on other machines).
fn machines(records: &[Record]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records {
        *counts.entry(r.machine.as_deref().unwrap_or("not recorded")).or_default() += 1;
    }
    if counts.is_empty() {
        return "-".into();
    }
    counts.into_iter().map(|(m, n)| format!("{m} ({})", count(n, "run"))).collect::<Vec<_>>().join("; ")
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The percentage of the labelled samples that trains: what neither the test nor the validation
/// split takes.
fn training_share(sweep: &Sweep, test_ratio: f64) -> f64 {
    (1.0 - test_ratio) * (1.0 - sweep.val_ratio) * 100.0
}

/// Every finished run on a line of its own, so that a seed which failed to learn is seen rather
/// than averaged away.
fn runs_table(sweep: &Sweep, records: &[Record]) -> String {
    let mut out = String::from(
        "Classes predicted: how many classes the model answers for at least one test sample; one means \
         the same answer for every input.\n\n\
         | model | training share | seed | epochs | OA % | AA % | Kappa % | classes predicted | training time | device | machine |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in records {
        let predicted = match (r.predicted_classes, r.classes) {
            (Some(p), Some(k)) => format!("{p} of {k}"),
            _ => "-".to_string(),
        };
        out.push_str(&format!(
            "| {} | {:.0} % | {} | {} | {:.2} | {:.2} | {:.2} | {predicted} | {:.1} min | {} | {} |\n",
            r.variant,
            training_share(sweep, r.test_ratio),
            r.seed,
            r.epochs,
            r.oa * 100.0,
            r.aa * 100.0,
            r.kappa * 100.0,
            r.train_seconds / 60.0,
            r.device,
            r.machine.as_deref().unwrap_or("-")
        ));
    }
    out
}

/// A Markdown table: each model and training ratio of the sweep, mean ± sample standard
/// deviation over the finished seeds (percentages), beside the published figures; published
/// rows outside the sweep are listed too, for reference.
pub fn table(sweep: &Sweep, records: &[Record]) -> String {
    let same = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let mut rows: Vec<(String, f64)> = Vec::new();
    for &test_ratio in &sweep.test_ratios {
        rows.extend(sweep.models.iter().map(|m| (m.clone(), test_ratio)));
    }
    for p in &sweep.published {
        if !rows.iter().any(|(m, t)| *m == p.model && same(*t, p.test_ratio)) {
            rows.push((p.model.clone(), p.test_ratio));
        }
    }
    let mut out = String::from(
        "| model | training share | runs | OA % | AA % | Kappa % | published OA / AA / Kappa % |\n|---|---|---|---|---|---|---|\n",
    );
    for (model, test_ratio) in rows {
        let group: Vec<&Record> =
            records.iter().filter(|r| r.variant == model && same(r.test_ratio, test_ratio)).collect();
        let stat = |f: &dyn Fn(&Record) -> f64| {
            if group.is_empty() {
                return "-".to_string();
            }
            let (m, s) = mean_std(&group.iter().map(|r| f(r) * 100.0).collect::<Vec<_>>());
            // One seed has no spread to speak of.
            if group.len() > 1 { format!("{m:.2} ± {s:.2}") } else { format!("{m:.2}") }
        };
        let figure = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let published: Vec<String> = sweep
            .published
            .iter()
            .filter(|p| p.model == model && same(p.test_ratio, test_ratio))
            .map(|p| format!("{} / {} / {} ({})", figure(Some(p.oa)), figure(p.aa), figure(p.kappa), p.source))
            .collect();
        out.push_str(&format!(
            "| {model} | {:.0} % | {} | {} | {} | {} | {} |\n",
            training_share(sweep, test_ratio),
            group.len(),
            stat(&|r| r.oa),
            stat(&|r| r.aa),
            stat(&|r| r.kappa),
            if published.is_empty() { "-".to_string() } else { published.join("; ") }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(extra: &str) -> Sweep {
        let json = format!(
            r#"{{"name": "t", "dataset": "indian-pines", "models": ["hybridsn"], "seeds": [0],
                "test_ratios": [0.9], "val_ratio": 0.0, "epochs": 100, "batch_size": 128, "lr": 0.001,
                "bands": 30, "window": 19, "runs": "runs/t", "results": "results/t.json"{extra}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn the_protocol_names_every_option_away_from_the_courses() {
        let course = protocol(&sweep(""));
        assert!(course.ends_with("constant schedule"), "{course}");
        let options = protocol(&sweep(
            r#", "split": "blocks", "block_size": 15, "pca_fit": "train", "augment_windows": true,
               "label_smoothing": 0.1, "schedule": "cosine", "warmup_epochs": 5"#,
        ));
        for clause in [
            "cosine schedule after 5 warm-up epochs",
            "blocks of 15 x 15 pixels",
            "PCA fitted on the training pixels only",
            "flipped or turned at random",
            "label smoothing 0.1",
        ] {
            assert!(options.contains(clause), "{clause:?} missing from {options:?}");
        }
    }
}
