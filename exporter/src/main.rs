//! `exporter`: a run directory in, a checked ONNX model out.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use prism_cli::{clap_error, one_line, quiet_on_closed_pipe};
use prism_exporter::precision::LowerOptions;
use prism_exporter::{DEFAULT_OPSET, ExportOptions, ExportReport, Tolerance, export};

/// Exports a Prism run directory to ONNX and checks the file against the trainer's outputs.
///
/// Writes the window (or image) graph, and for HybridSN without SE or strip pooling also a
/// whole-scene graph `<out stem>.scene.onnx`. Then runs the file with tract and, when its library
/// is found, ONNX Runtime on the run's sample and compares with the trainer's logits; exits with
/// status 2 when a difference is above tolerance. Information goes to stderr, `--json` to stdout.
#[derive(Debug, Parser)]
#[command(name = "exporter", version)]
struct Args {
    /// Run directory written by the trainer: config.json, model.safetensors, preprocessing.json,
    /// sample.safetensors (metrics.json optional).
    #[arg(long = "run", value_name = "RUN_DIR")]
    run: PathBuf,

    /// ONNX opset, 13 to 18.
    #[arg(long, default_value_t = DEFAULT_OPSET)]
    opset: i64,

    /// Output file [default: RUN_DIR/model.onnx].
    #[arg(long, value_name = "FILE.onnx")]
    out: Option<PathBuf>,

    /// Fold each batch norm into the convolution before it (the default): fewer nodes, faster
    /// on every engine, same results to float32 rounding.
    #[arg(long, overrides_with = "no_fold_bn")]
    fold_bn: bool,

    /// Keep batch norms as BatchNormalization nodes.
    #[arg(long, overrides_with = "fold_bn")]
    no_fold_bn: bool,

    /// Absolute tolerance of the parity check.
    #[arg(long, default_value_t = 1e-4)]
    atol: f32,

    /// Relative tolerance of the parity check: |ours - trainer's| <= atol + rtol * |trainer's|.
    #[arg(long, default_value_t = 1e-3)]
    rtol: f32,

    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// Also write a Triton model repository entry: DIR/<model>/config.pbtxt and
    /// DIR/<model>/1/model.onnx.
    #[arg(long, value_name = "DIR")]
    triton_repo: Option<PathBuf>,

    /// Skip the parity check (and the sample.safetensors it needs).
    #[arg(long)]
    no_parity: bool,

    /// Do not write the whole-scene graph.
    #[arg(long)]
    no_scene: bool,

    /// Number type of the exported graphs: fp32, fp16 (weights and compute in float16, inputs
    /// and outputs float32) or int8 (QDQ: int8 weights per output channel, uint8 activations
    /// calibrated on the run's training windows). The PCA projection and softmax stay float32.
    /// fp16 and int8 are checked against float32 on the run's held-out pixels or photos (and the
    /// scene, through the whole-scene graph) instead of the trainer's logits; they read the run's
    /// data again (config.json says where) and its split.json. Default output:
    /// RUN_DIR/model.<precision>.onnx.
    #[arg(long, default_value = "fp32", value_parser = ["fp32", "fp16", "int8"], help_heading = "Precision")]
    precision: String,

    /// Training windows (or photos) the int8 activation ranges are measured on, spread evenly
    /// over the training set, so the same run gives the same file.
    #[arg(long, default_value_t = 256, value_name = "N", help_heading = "Precision")]
    calibration: usize,

    /// Held-out windows (or photos) a fp16 or int8 export is checked on.
    #[arg(long, default_value_t = 1000, value_name = "N", help_heading = "Precision")]
    check_samples: usize,

    /// Smallest share of held-out samples and scene pixels, in percent, whose class must equal
    /// float32's; below it the check fails and nothing is written.
    #[arg(long, default_value_t = 99.0, value_name = "PERCENT", help_heading = "Precision")]
    min_agreement: f64,

    /// ONNX Runtime library for the check [default: ORT_DYLIB_PATH, then the project's .venv].
    #[arg(long, value_name = "PATH")]
    ort_library: Option<PathBuf>,
}

fn options(args: &Args) -> anyhow::Result<ExportOptions> {
    for (name, value) in [("--atol", args.atol), ("--rtol", args.rtol)] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{name} must be a non-negative number, got {value}");
        }
    }
    if !(0.0..=100.0).contains(&args.min_agreement) {
        bail!("--min-agreement is a percentage from 0 to 100, got {}", args.min_agreement);
    }
    if args.calibration == 0 || args.check_samples == 0 {
        bail!("--calibration and --check-samples need at least one window");
    }
    Ok(ExportOptions {
        opset: args.opset,
        fold_bn: !args.no_fold_bn,
        out: args.out.clone(),
        scene_graph: !args.no_scene,
        parity: (!args.no_parity).then_some(Tolerance { atol: args.atol, rtol: args.rtol }),
        triton_repo: args.triton_repo.clone(),
        ort_library: args.ort_library.clone(),
        lower: LowerOptions {
            precision: args.precision.parse().map_err(anyhow::Error::msg)?,
            calibration: args.calibration,
            check_samples: args.check_samples,
            min_agreement: args.min_agreement / 100.0,
        },
    })
}

fn run(args: &Args) -> anyhow::Result<ExportReport> {
    let options = options(args)?;
    let report = export(&args.run, &options)?;
    eprintln!("{}", report.summary());
    if args.json {
        println!("{}", serde_json::to_string(&report).context("serialising the report")?);
    }
    Ok(report)
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return clap_error(e),
    };
    match run(&args) {
        Ok(report) if report.pass => ExitCode::SUCCESS,
        Ok(report) if report.lowered.is_some() => {
            eprintln!(
                "error: the {} model disagrees with float32 beyond --min-agreement (see above); nothing was written (--no-parity writes it anyway)",
                report.precision
            );
            ExitCode::from(2)
        }
        Ok(_) => {
            eprintln!(
                "error: the exported model differs from the trainer's outputs beyond tolerance (see above); nothing was written (--no-parity writes it anyway)"
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}
