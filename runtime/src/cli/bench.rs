use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use ndarray::{ArrayD, IxDyn};
use prism_runtime::engine::EngineChoice;
use prism_runtime::model::Model;
use prism_runtime::onnx_info::Dim;
use serde::Serialize;

use super::EngineArgs;

/// Time a model: warm-up, timed runs, latency percentiles and throughput.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  runtime bench --model hybridsn.onnx --batch 1,64
  runtime bench --model resnet18.onnx --batch 1,32 --engines ort,tract --json
  runtime bench --model hybridsn.scene.onnx --size 145x145

--json prints one JSON object per configuration:
  {\"engine\", \"provider\", \"batch\", \"p50_ms\", \"p90_ms\", \"p99_ms\", \"throughput\", \"unit\", \"runs\"}
throughput is samples/s (pixels/s for whole-scene graphs).")]
pub struct Args {
    /// The ONNX model.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Batch sizes to time (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = super::positive)]
    batch: Vec<usize>,
    /// Engines to compare (comma-separated; overrides --engine).
    #[arg(long, value_delimiter = ',')]
    engines: Vec<EngineChoice>,
    /// Height x width of the input for whole-scene graphs.
    #[arg(long, value_name = "HxW", default_value = "145x145", value_parser = size)]
    size: (usize, usize),
    /// Untimed runs first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed runs per configuration.
    #[arg(long, default_value_t = 20, value_parser = super::positive)]
    runs: usize,
    /// One JSON object per configuration on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Serialize)]
struct Timing {
    engine: String,
    provider: String,
    batch: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    throughput: f64,
    unit: &'static str,
    runs: usize,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Parses `--size`: HEIGHTxWIDTH, both at least 1.
fn size(text: &str) -> Result<(usize, usize), String> {
    text.split_once('x')
        .and_then(|(h, w)| Some((h.parse::<usize>().ok()?, w.parse::<usize>().ok()?)))
        .filter(|&(h, w)| h > 0 && w > 0)
        .ok_or_else(|| "expected HEIGHTxWIDTH, both at least 1, e.g. 145x145".into())
}

pub fn run(args: Args) -> Result<()> {
    let engines = if args.engines.is_empty() { vec![args.engine.engine] } else { args.engines.clone() };
    let (sh, sw) = args.size;
    for choice in engines {
        let mut options = args.engine.load_options();
        options.engine.engine = choice;
        options.windows_only = true;
        let model = Model::load(&args.model, &options)?;
        let input = model.info().onnx.inputs.first().ok_or_else(|| anyhow::anyhow!("the model has no input"))?.clone();
        let scene = model.info().graph == "scene";
        for &batch in &args.batch {
            let batch = if scene { 1 } else { batch };
            let dims: Vec<usize> = input
                .shape
                .iter()
                .enumerate()
                .map(|(i, d)| match (i, d) {
                    (0, _) => batch,
                    (_, Dim::Fixed(n)) => *n as usize,
                    (2, Dim::Symbolic(_)) => sh,
                    (_, Dim::Symbolic(_)) => sw,
                })
                .collect();
            // A fixed pseudo-random input (values in [0, 1)).
            let n: usize = dims.iter().product();
            let data: Vec<f32> =
                (0..n).map(|i| ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f32 / 1000.0).collect();
            let x = ArrayD::from_shape_vec(IxDyn(&dims), data)?;
            for _ in 0..args.warmup {
                model.run(x.view())?;
            }
            let mut times = Vec::with_capacity(args.runs);
            for _ in 0..args.runs {
                let started = Instant::now();
                model.run(x.view())?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            times.sort_by(f64::total_cmp);
            let (units, unit) =
                if scene { ((dims[2] * dims[3]) as f64, "pixels/s") } else { (batch as f64, "samples/s") };
            let timing = Timing {
                engine: model.engine().to_string(),
                provider: model.provider().to_string(),
                batch,
                p50_ms: percentile(&times, 0.5),
                p90_ms: percentile(&times, 0.9),
                p99_ms: percentile(&times, 0.99),
                throughput: units / (mean / 1e3),
                unit,
                runs: args.runs,
            };
            if args.json {
                println!("{}", serde_json::to_string(&timing)?);
            } else {
                println!(
                    "{:<6} {:<9} batch {:>4}  p50 {:>9.2} ms  p90 {:>9.2} ms  p99 {:>9.2} ms  {:>10.1} {}",
                    timing.engine,
                    timing.provider,
                    batch,
                    timing.p50_ms,
                    timing.p90_ms,
                    timing.p99_ms,
                    timing.throughput,
                    unit
                );
            }
            if scene {
                break;
            }
        }
    }
    Ok(())
}
