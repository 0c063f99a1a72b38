use anyhow::{Result, bail};

use crate::data::indian_pines;

/// Download (once) and verify a built-in data set; print where its files are.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  trainer fetch indian-pines      # prints the scene and ground-truth paths")]
pub struct Args {
    /// The data set: indian-pines.
    #[arg(default_value = "indian-pines")]
    dataset: String,
}

pub fn run(args: Args) -> Result<()> {
    if args.dataset != "indian-pines" {
        bail!("unknown data set `{}` (built in: indian-pines)", args.dataset);
    }
    let (scene, gt) = indian_pines::fetch()?;
    println!("{}\n{}", scene.display(), gt.display());
    Ok(())
}
