use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use prism_models::run;
use serde::{Deserialize, Serialize};

use crate::data::DataSource;
use crate::fit::{fit, install_interrupt_handler, FitConfig};
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

/// An experiment file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sweep {
    pub name: String,
    pub dataset: String,
    pub models: Vec<String>,
    pub seeds: Vec<u64>,
    pub test_ratios: Vec<f64>,
    pub val_ratio: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
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
    pub train_seconds: f64,
    pub device: String,
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
    FitConfig {
        model: model.to_string(),
        data: DataSource::Scene {
            dataset: Some(sweep.dataset.clone()),
            data: None,
            gt: None,
            key: None,
            gt_key: None,
            components: sweep.bands,
            window: sweep.window,
            class_names: None,
        },
        test_ratio,
        val_ratio: sweep.val_ratio,
        seed,
        epochs: sweep.epochs,
        batch_size: sweep.batch_size,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr: sweep.lr,
            weight_decay: 0.0,
            momentum: 0.9,
            nesterov: false,
            betas: (0.9, 0.999),
            eps: 1e-8,
        },
        schedule: Schedule { kind: ScheduleKind::Constant, step_size: 30, gamma: 0.1, min_lr: 0.0, warmup_epochs: 0 },
        patience: None,
        device: device.to_string(),
        init: None,
        freeze_backbone: false,
        scene_map: false,
    }
}

fn read_metrics(dir: &Path) -> Option<Metrics> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(run::METRICS)).ok()?).ok()
}

pub fn run(args: Args) -> Result<bool> {
    let text = std::fs::read_to_string(&args.config).with_context(|| format!("{}: cannot read", args.config.display()))?;
    let sweep: Sweep = serde_json::from_str(&text).with_context(|| format!("{}: not a sweep file", args.config.display()))?;
    if sweep.models.is_empty() || sweep.seeds.is_empty() || sweep.test_ratios.is_empty() {
        bail!("{}: models, seeds and test_ratios must not be empty", args.config.display());
    }
    for model in &sweep.models {
        fit_config(&sweep, model, sweep.test_ratios[0], 0, &args.device).model_config(2)?;
    }
    let mut plan: Vec<(String, f64, u64)> = Vec::new();
    for &test_ratio in &sweep.test_ratios {
        for &seed in &sweep.seeds {
            plan.extend(sweep.models.iter().map(|m| (m.clone(), test_ratio, seed)));
        }
    }
    let started = Instant::now();
    let mut interrupted = false;
    if !args.report {
        install_interrupt_handler();
        let mut done_now = 0;
        for (i, (model, test_ratio, seed)) in plan.iter().enumerate() {
            let dir = run_dir(&sweep, model, *test_ratio, *seed);
            if read_metrics(&dir).is_some() {
                continue;
            }
            if args.max_runs.is_some_and(|m| done_now >= m) {
                break;
            }
            let config = fit_config(&sweep, model, *test_ratio, *seed, &args.device);
            let resume = dir.join(crate::fit::CHECKPOINTS).join("last.safetensors").exists();
            eprintln!("\n[{}/{}] {model}, test ratio {test_ratio}, seed {seed} -> {}", i + 1, plan.len(), dir.display());
            let trained = fit(&config, &dir, resume)?;
            if trained.interrupted {
                eprintln!("sweep stopped; run the same command again to continue");
                interrupted = true;
                break;
            }
            report::write_run(&dir, &config, &trained.model, &trained.data, &trained.split, &trained.state, trained.selected, trained.device)?;
            done_now += 1;
            write_results(&sweep, &plan)?;
        }
    }
    let records = write_results(&sweep, &plan)?;
    println!("{}", table(&sweep, &records));
    if !args.report {
        eprintln!("{} of {} runs finished; this invocation took {:.0} s", records.len(), plan.len(), started.elapsed().as_secs_f64());
    }
    Ok(!interrupted)
}

/// Collects the finished runs of the plan into the results file; returns them.
fn write_results(sweep: &Sweep, plan: &[(String, f64, u64)]) -> Result<Vec<Record>> {
    let records: Vec<Record> = plan
        .iter()
        .filter_map(|(model, test_ratio, seed)| {
            let dir = run_dir(sweep, model, *test_ratio, *seed);
            let m = read_metrics(&dir)?;
            Some(Record {
                variant: model.clone(),
                seed: *seed,
                test_ratio: *test_ratio,
                epochs: m.epochs_run,
                oa: m.report.oa,
                aa: m.report.aa,
                kappa: m.report.kappa,
                train_seconds: m.train_seconds,
                device: m.device,
                run_dir: dir,
            })
        })
        .collect();
    let results = Results { units: "fraction".into(), sweep: sweep.name.clone(), records: records.clone() };
    report::write_json(&sweep.results, &results)?;
    Ok(records)
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// A Markdown table: each model and training ratio, mean ± sample standard deviation over
/// seeds (percentages), beside the published figures.
pub fn table(sweep: &Sweep, records: &[Record]) -> String {
    let mut rows: BTreeMap<(u64, usize), Vec<&Record>> = BTreeMap::new();
    for r in records {
        let order = sweep.models.iter().position(|m| *m == r.variant).unwrap_or(usize::MAX);
        rows.entry((((1.0 - r.test_ratio) * 1000.0).round() as u64, order)).or_default().push(r);
    }
    let mut out = String::from(
        "| model | training | runs | OA % | AA % | Kappa % | published OA % |\n|---|---|---|---|---|---|---|\n",
    );
    for ((_, _), group) in rows {
        let first = group[0];
        let stat = |f: &dyn Fn(&Record) -> f64| {
            let (m, s) = mean_std(&group.iter().map(|r| f(r) * 100.0).collect::<Vec<_>>());
            format!("{m:.2} ± {s:.2}")
        };
        let published: Vec<String> = sweep
            .published
            .iter()
            .filter(|p| p.model == first.variant && (p.test_ratio - first.test_ratio).abs() < 1e-9)
            .map(|p| format!("{:.2} ({})", p.oa, p.source))
            .collect();
        out.push_str(&format!(
            "| {} | {:.0} % | {} | {} | {} | {} | {} |\n",
            first.variant,
            (1.0 - first.test_ratio) * 100.0,
            group.len(),
            stat(&|r| r.oa),
            stat(&|r| r.aa),
            stat(&|r| r.kappa),
            if published.is_empty() { "-".to_string() } else { published.join("; ") }
        ));
    }
    out
}
