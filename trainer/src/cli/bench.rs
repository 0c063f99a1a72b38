use std::time::Instant;

use anyhow::{Result, bail};
use prism_data::scene::{GroundTruth, Scene};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::json;

use crate::data::indian_pines;
use crate::data::patches::SceneData;
use crate::fit::{describe_device, resolve_device};
use crate::model::TchModel;
use crate::optim::{Optimizer, OptimizerConfig, OptimizerKind, zero_grad};

/// Time training steps (windows cut from the scene, forward, backward, Adam) on Indian Pines.
#[derive(clap::Args)]
#[command(after_help = "The peer is scripts/bench/train_pytorch.py (the same steps in PyTorch);
scripts/bench-trainer.sh runs both and prints the ratio.")]
pub struct Args {
    #[arg(long, default_value = "hybridsn")]
    model: String,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 25)]
    window: usize,
    #[arg(long, default_value_t = 30)]
    bands: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long, default_value = "auto")]
    device: String,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Peak resident memory of this process in MB (Linux), from /proc/self/status.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Waits for the GPU's queued work, so that timings cover it; nothing to wait for on CPU.
fn synchronize(device: tch::Device) {
    if let tch::Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.steps == 0 || args.batch_size == 0 {
        bail!("--steps and --batch-size must be positive");
    }
    let device = resolve_device(&args.device)?;
    let (cube, gt) = indian_pines::fetch()?;
    let scene = Scene::read(&cube, None)?;
    let truth = GroundTruth::read(&gt, None)?;
    let data = SceneData::new(&scene, &truth, args.bands, args.window, None)?;
    let options = prism_models::ModelOptions {
        classes: Some(data.classes()),
        bands: Some(args.bands),
        window: Some(args.window),
        ..Default::default()
    };
    let config = prism_models::ModelConfig::from_name(&args.model, &options)?;
    tch::manual_seed(0);
    let model = TchModel::new(config, device)?;
    let params = model.parameters();
    let mut optimizer = Optimizer::new(
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            momentum: 0.9,
            nesterov: false,
            betas: (0.9, 0.999),
            eps: 1e-8,
        },
        &params,
    );
    let mut order: Vec<usize> = (0..data.samples.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(0));
    let mut batches = order.chunks(args.batch_size).cycle();
    let mut started = Instant::now();
    for step in 0..args.warmup + args.steps {
        if step == args.warmup {
            synchronize(device);
            started = Instant::now();
        }
        let chunk = batches.next().unwrap_or(&[]);
        let x = data.windows(chunk).to_device(device);
        let y = data.labels(chunk).to_device(device);
        zero_grad(&params);
        let logits = model.forward(&x, true)?;
        let loss = logits.f_cross_entropy_loss(&y, None::<tch::Tensor>, tch::Reduction::Mean, -100, 0.0)?;
        loss.backward();
        optimizer.step(&params, 1e-3);
    }
    synchronize(device);
    let seconds = started.elapsed().as_secs_f64();
    let rate = (args.steps * args.batch_size) as f64 / seconds;
    let peak = peak_rss_mb();
    if args.json {
        println!(
            "{}",
            json!({"implementation": "prism", "model": args.model, "batch": args.batch_size, "steps": args.steps,
                   "samples_per_second": rate, "peak_rss_mb": peak, "device": describe_device(device)})
        );
    } else {
        println!(
            "prism {} batch {}: {rate:.1} samples/s over {} steps on {}; peak memory {:.0} MB",
            args.model,
            args.batch_size,
            args.steps,
            describe_device(device),
            peak.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
