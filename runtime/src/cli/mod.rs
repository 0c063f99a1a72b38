//! The command line: flags become library calls on `prism_runtime`.

use std::path::PathBuf;

use anyhow::Result;
use prism_runtime::engine::{EngineChoice, EngineOptions, Provider};
use prism_runtime::model::{ImagePipeline, LoadOptions};

pub mod bench;
pub mod infer;
pub mod info;

pub use prism_cli::{clap_error, one_line, positive, quiet_on_closed_pipe};

/// Engine and execution-provider flags shared by the commands.
#[derive(clap::Args, Clone)]
pub struct EngineArgs {
    /// auto (ONNX Runtime when its library is found, else tract), ort or tract.
    #[arg(long, default_value = "auto", help_heading = "Engine")]
    pub engine: EngineChoice,
    /// ONNX Runtime execution provider: auto (TensorRT, then CUDA, then CPU), tensorrt, cuda
    /// or cpu. Asking for one by name fails when it cannot be registered (tract runs on the CPU
    /// only).
    #[arg(long = "ep", default_value = "auto", help_heading = "Engine")]
    pub provider: Provider,
    /// Folder where TensorRT caches the engines it builds.
    #[arg(long, value_name = "DIR", help_heading = "Engine")]
    pub trt_cache: Option<PathBuf>,
    /// The GPU (CUDA device index) the CUDA and TensorRT providers run on.
    #[arg(long, value_name = "INDEX", default_value_t = 0, help_heading = "Engine")]
    pub gpu: usize,
    /// Threads within one graph run (ONNX Runtime's intra-op threads, tract's pool) [default:
    /// every core].
    #[arg(long, value_parser = positive, help_heading = "Engine")]
    pub threads: Option<usize>,
    /// The ONNX Runtime library to load [default: $ORT_DYLIB_PATH, the project's .venv, the
    /// system's].
    #[arg(long, value_name = "FILE", help_heading = "Engine")]
    pub ort_library: Option<PathBuf>,
    /// Engines in the pool (concurrent graph runs).
    #[arg(long, default_value_t = 1, value_parser = positive, help_heading = "Engine")]
    pub sessions: usize,
    /// ONNX Runtime's CPU provider without its memory arena: on large scenes about a third less
    /// memory for a few percent more time.
    #[arg(long, help_heading = "Engine")]
    pub low_memory: bool,
    /// Let the CUDA provider compute convolutions and matrix products in
    /// TensorFloat-32 (10-bit mantissas): faster on recent GPUs, answers further from the CPU's.
    #[arg(long, help_heading = "Engine")]
    pub tf32: bool,
}

impl EngineArgs {
    pub fn options(&self) -> EngineOptions {
        EngineOptions {
            engine: self.engine,
            provider: self.provider,
            trt_cache: self.trt_cache.clone(),
            gpu: self.gpu,
            threads: self.threads,
            ort_library: self.ort_library.clone(),
            low_memory: self.low_memory,
            tf32: self.tf32,
        }
    }

    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { engine: self.options(), sessions: self.sessions, ..Default::default() }
    }
}

/// Flags that supply what Prism's metadata would, for models made elsewhere.
#[derive(clap::Args, Clone)]
pub struct ForeignArgs {
    /// Preprocessing for image models without Prism metadata: `imagenet` (resize 256, centre
    /// crop 224, ImageNet mean and std applied before the graph), as torchvision models expect.
    #[arg(long, value_parser = ["imagenet"], help_heading = "Models made elsewhere")]
    pub preprocess: Option<String>,
    /// Class names, one per line, for models without Prism metadata.
    #[arg(long, value_name = "FILE", help_heading = "Models made elsewhere")]
    pub labels: Option<PathBuf>,
}

impl ForeignArgs {
    pub fn apply(&self, options: &mut LoadOptions) -> Result<()> {
        if self.preprocess.is_some() {
            options.image_pipeline = Some(ImagePipeline::imagenet());
        }
        if let Some(path) = &self.labels {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            options.labels = Some(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect());
        }
        Ok(())
    }
}
