use anyhow::{Context, Result};
use prism_models::{ModelConfig, ModelOptions, Summary};

/// Print a model's layers, output shapes and parameter counts (no engine needed).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  trainer summary --model hybridsn\n  trainer summary --model hybridsn-bn-se --bands 15 --window 19 --classes 9\n  trainer summary --model resnet50 --classes 6 --json"
)]
pub struct Args {
    /// Model name: hybridsn[-bn][-se][-sp|-mpm], [se-][sp-]resnet{18,34,50,101,152},
    /// block-{se,spm,mpm}.
    #[arg(long)]
    model: String,
    /// Number of classes [default: 16 for HybridSN, 1000 for ResNet].
    #[arg(long)]
    classes: Option<usize>,
    /// Spectral components after PCA (HybridSN) or channels (blocks) [default: 30, 64].
    #[arg(long)]
    bands: Option<usize>,
    /// Window side in pixels (HybridSN) or feature-map side (blocks) [default: 25, 17].
    #[arg(long)]
    window: Option<usize>,
    /// Input image side in pixels (ResNet) [default: 224].
    #[arg(long)]
    image_size: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let options =
        ModelOptions { classes: args.classes, bands: args.bands, window: args.window, image_size: args.image_size };
    let config = ModelConfig::from_name(&args.model, &options)?;
    let summary = Summary::of(&config).with_context(|| format!("describing {}", args.model))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{}", summary.table());
    }
    Ok(())
}
