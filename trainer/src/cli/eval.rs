use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use prism_models::run::{self, Preprocessing};

use crate::cli::fit::read_fit_config;
use crate::data::{Data, DataSource};
use crate::fit::{make_split, resolve_device};
use crate::model::TchModel;
use crate::report::{self, evaluation_set};

/// Evaluate a trained run: OA, AA, kappa, per-class accuracy, and the maps.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  trainer eval --run runs/hybridsn-indian-pines            # its own test set
  trainer eval --run runs/hybridsn-indian-pines --json
  trainer eval --run runs/my-run --data scene.mat --gt scene_gt.mat   # every labelled pixel of another scene")]
pub struct Args {
    /// Run directory written by `trainer fit`.
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Another scene to evaluate on (every labelled pixel); the model's PCA is applied.
    #[arg(long, value_name = "FILE", requires = "gt")]
    data: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "data")]
    gt: Option<PathBuf>,
    #[arg(long)]
    key: Option<String>,
    #[arg(long)]
    gt_key: Option<String>,
    /// Another image folder to evaluate on (every image), with the model's classes.
    #[arg(long, value_name = "DIR", conflicts_with = "data")]
    images: Option<PathBuf>,
    /// Where the pictures go [default: the run directory, or RUN/eval for other data].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 128, value_parser = prism_cli::positive)]
    batch_size: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let config = read_fit_config(&args.run)?;
    let preprocessing_path = args.run.join(run::PREPROCESSING);
    let preprocessing: Preprocessing = serde_json::from_str(
        &std::fs::read_to_string(&preprocessing_path)
            .with_context(|| format!("{}: missing (did training finish?)", preprocessing_path.display()))?,
    )
    .with_context(|| format!("{}: unreadable", preprocessing_path.display()))?;
    let (source, other) = match (&args.data, &args.images, &config.data) {
        (Some(data), None, DataSource::Scene { components, window, .. }) => (
            DataSource::Scene {
                dataset: None,
                data: Some(data.clone()),
                gt: args.gt.clone(),
                key: args.key.clone(),
                gt_key: args.gt_key.clone(),
                components: *components,
                window: *window,
                class_names: None,
            },
            true,
        ),
        (None, Some(dir), DataSource::Images { resize, crop, .. }) => {
            (DataSource::Images { dir: dir.clone(), resize: *resize, crop: *crop }, true)
        }
        (None, None, source) => (source.clone(), false),
        _ => bail!("this run was trained on {}: give data of the same kind", config.data.display_name()),
    };
    let device = resolve_device(&args.device)?;
    let data = Data::load(&source, Some(&preprocessing))?;
    let model_config = config.model_config(data.class_names().len())?;
    let mut model = TchModel::new(model_config, device)?;
    model.load(&args.run.join(run::WEIGHTS))?;

    let indices: Vec<usize> = if other {
        (0..data.sample_classes().len()).collect()
    } else {
        let split = make_split(&config, &data)?;
        evaluation_set(&split).1.to_vec()
    };
    let (report, predictions) = report::evaluate(&model, &data, &indices, args.batch_size, device, config.scene_map)?;
    let out = args.out.clone().unwrap_or_else(|| if other { args.run.join("eval") } else { args.run.clone() });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    report::write_report_charts(&out, &report, &format!("{} - {}", model.config.name(), source.display_name()))?;
    if let Some(predictions) = predictions {
        let metrics_path = args.run.join(run::METRICS);
        let mut metrics: report::Metrics = serde_json::from_str(&std::fs::read_to_string(&metrics_path)?)
            .with_context(|| format!("{}: unreadable", metrics_path.display()))?;
        metrics.report = report.clone();
        metrics.data = source.display_name();
        report::write_maps(&out, &data, &predictions, &metrics)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} on {} ({} samples)\n{}",
            model.config.name(),
            source.display_name(),
            indices.len(),
            report.table()
        );
        println!("pictures: {}", out.display());
    }
    if let Some(warning) = report.chance_warning() {
        eprintln!("{warning}");
    }
    Ok(())
}
