//! Engines that run an exported ONNX model: ONNX Runtime through `ort` (feature `ort`, the
//! library is found and loaded at run time) and tract (feature `tract`, pure Rust, always
//! available when compiled in).
//!
//! [`load`] picks the engine and execution provider and reports honestly which ones it got
//! ([`Engine::engine`], [`Engine::provider`], [`Engine::notes`] for the fallbacks it took).
//!
//! ```no_run
//! use prism_runtime::engine::{load, EngineOptions};
//!
//! let mut engine = load("model.onnx".as_ref(), &EngineOptions::default())?;
//! let input = ndarray::ArrayD::<f32>::zeros(vec![1, 200, 25, 25]);
//! for (name, value) in engine.run(input.view())? {
//!     println!("{name}: {:?} on {}/{}", value.shape(), engine.engine(), engine.provider());
//! }
//! # Ok::<(), prism_runtime::Error>(())
//! ```
//!
//! # Concurrency
//! [`Engine::run`] takes `&mut self` (ONNX Runtime's `Session::run` does too, because some of its
//! allocators are not thread safe). An engine is `Send`: give each worker thread its own engine,
//! or share one behind a `Mutex`.
//!
//! # tract and batches
//! tract 0.23 runs convolutions slower per sample in batches than one sample at a time: a 3-D
//! convolution about 30 times slower at batch 8 (HybridSN exported by Prism, measured on 2 cores:
//! 258 ms per sample at batch 8, 11 ms at batch 1), ResNet-18 1.7 times at batch 8 (95 against
//! 55 ms per sample, 2 threads). This engine therefore splits every batch of a graph with a
//! `Conv` node into single samples (one cached batch-1 plan), so callers can hand it whole
//! batches.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ndarray::{ArrayD, ArrayViewD};

use crate::{Error, Result};

#[cfg(feature = "ort")]
mod ort;
mod ort_library;
#[cfg(test)]
mod tests;
#[cfg(feature = "tract")]
mod tract;

pub use ort_library::{ORT_HELP, ort_library};

/// A loaded model, ready to run.
pub trait Engine: Send {
    /// Runs the model's single input through the graph. ONNX Runtime reads a standard-layout
    /// input in place; tract copies it.
    ///
    /// # Shapes
    /// `input` has the shape of the graph's input with a concrete batch (and, for whole-scene
    /// graphs, concrete height and width). Outputs come back by name, in the graph's order.
    ///
    /// # Errors
    /// An input of the wrong rank or size, or a failure inside the engine.
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>>;

    /// `"ort"` or `"tract"`.
    fn engine(&self) -> &'static str;

    /// The execution provider that actually registered: `"cpu"`, `"cuda"` or `"tensorrt"` for
    /// ort, `"cpu"` for tract.
    fn provider(&self) -> &str;

    /// Fallbacks taken while loading (an execution provider or engine that was not available
    /// and why), for reports. Empty when everything asked for was used.
    fn notes(&self) -> &[String] {
        &[]
    }
}

/// Which engine runs the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineChoice {
    /// ONNX Runtime when its library is found, otherwise tract; a library named by
    /// [`EngineOptions::ort_library`] or `ORT_DYLIB_PATH` that fails to load is an error, and
    /// so is a missing library when a GPU provider is asked for by name.
    #[default]
    Auto,
    Ort,
    Tract,
}

/// Which ONNX Runtime execution provider runs the model (tract always runs on the CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Provider {
    /// TensorRT, else CUDA, else the CPU; [`Engine::provider`] says which one registered.
    #[default]
    Auto,
    TensorRt,
    Cuda,
    Cpu,
}

/// How [`load`] builds an engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineOptions {
    pub engine: EngineChoice,
    pub provider: Provider,
    /// Folder where TensorRT keeps the engines (and the timing cache) it builds, so that later
    /// loads skip the build.
    pub trt_cache: Option<PathBuf>,
    /// The GPU (CUDA device index) the CUDA and TensorRT providers run on.
    pub gpu: usize,
    /// Threads within one graph run: ONNX Runtime's intra-op threads, the size of tract's
    /// matrix-product pool. `None`: each engine's default (every core for both).
    pub threads: Option<usize>,
    /// The ONNX Runtime shared library; see [`ort_library`] for where it is looked for otherwise.
    pub ort_library: Option<PathBuf>,
    /// ONNX Runtime's CPU provider allocates each tensor as it goes instead of keeping an arena
    /// at its largest size (`runtime --low-memory`). Measured here with HybridSN's whole-scene
    /// graph on 580 x 580 and 1160 x 1160 scenes: peaks of 474 and 587 MB against 812 and 922
    /// MB, for 4-7 % more time.
    pub low_memory: bool,
    /// The CUDA provider may compute in TensorFloat-32 (`runtime --tf32`); by default it
    /// computes in full float32, as the CPU does.
    pub tf32: bool,
}

/// Where an engine reads a model from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    File(&'a Path),
    /// The bytes of an ONNX file held in memory, and a name for messages.
    Memory {
        name: &'a Path,
        bytes: &'a [u8],
    },
}

impl Source<'_> {
    /// The file's path, or the name given to the bytes.
    pub fn name(&self) -> &Path {
        match self {
            Source::File(path) => path,
            Source::Memory { name, .. } => name,
        }
    }

    /// The model's bytes, read from the file when it is one.
    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Source::File(path) => std::fs::read(path).map(Into::into).map_err(|e| Error::io(path, e)),
            Source::Memory { bytes, .. } => Ok((*bytes).into()),
        }
    }
}

/// Loads `model` on the engine and execution provider that `options` ask for.
///
/// # Errors
/// An unreadable or invalid model; an engine not compiled in; for ort, a library that cannot be
/// found or loaded (the message names the paths tried and how to install it) or an execution
/// provider that is not available (unless `Provider::Auto`, which falls back and says so); a
/// GPU provider with tract.
pub fn load(model: &Path, options: &EngineOptions) -> Result<Box<dyn Engine>> {
    load_source(Source::File(model), options)
}

/// [`load`] for a model in a file or in memory.
///
/// # Errors
/// As [`load`].
pub fn load_source(model: Source<'_>, options: &EngineOptions) -> Result<Box<dyn Engine>> {
    if let Source::File(path) = model {
        if !path.is_file() {
            return Err(Error::Engine(format!("{}: no such model file", path.display())));
        }
    }
    // A GPU provider asked for by name runs on ONNX Runtime or not at all.
    let gpu = matches!(options.provider, Provider::TensorRt | Provider::Cuda);
    match options.engine {
        EngineChoice::Tract if gpu => Err(Error::Invalid(format!(
            "execution provider `{}` needs the ort engine: tract runs on the CPU only",
            options.provider
        ))),
        EngineChoice::Tract => load_tract(model, options, Vec::new()),
        EngineChoice::Ort => load_ort(model, options),
        EngineChoice::Auto if gpu => load_ort(model, options),
        EngineChoice::Auto => load_auto(model, options),
    }
}

#[cfg(feature = "ort")]
fn load_auto(model: Source<'_>, options: &EngineOptions) -> Result<Box<dyn Engine>> {
    match ort::environment(options.ort_library.as_deref()) {
        Ok(_) => load_ort(model, options),
        // A library the user named that is missing or broken is an error, not a quiet tract.
        Err(e) if options.ort_library.is_some() || ort_library::env_library().is_some() => Err(e),
        Err(e) => load_tract(model, options, vec![format!("ort not used: {e}")]),
    }
}

#[cfg(not(feature = "ort"))]
fn load_auto(model: Source<'_>, options: &EngineOptions) -> Result<Box<dyn Engine>> {
    load_tract(model, options, vec!["ort not used: this build has no `ort` feature".into()])
}

#[cfg(feature = "ort")]
fn load_ort(model: Source<'_>, options: &EngineOptions) -> Result<Box<dyn Engine>> {
    Ok(Box::new(ort::OrtEngine::load(model, options)?))
}

#[cfg(not(feature = "ort"))]
fn load_ort(_model: Source<'_>, _options: &EngineOptions) -> Result<Box<dyn Engine>> {
    Err(Error::Engine(
        "this build of prism-runtime has no ONNX Runtime support (cargo feature `ort`); use tract".into(),
    ))
}

#[cfg(feature = "tract")]
fn load_tract(model: Source<'_>, options: &EngineOptions, notes: Vec<String>) -> Result<Box<dyn Engine>> {
    Ok(Box::new(tract::TractEngine::load(model, options.threads, notes)?))
}

#[cfg(not(feature = "tract"))]
fn load_tract(_model: Source<'_>, _options: &EngineOptions, notes: Vec<String>) -> Result<Box<dyn Engine>> {
    let why = notes.join("; ");
    let sep = if why.is_empty() { "" } else { "; " };
    Err(Error::Engine(format!("this build of prism-runtime has no tract support (cargo feature `tract`){sep}{why}")))
}

impl EngineChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineChoice::Auto => "auto",
            EngineChoice::Ort => "ort",
            EngineChoice::Tract => "tract",
        }
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EngineChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(EngineChoice::Auto),
            "ort" | "onnxruntime" => Ok(EngineChoice::Ort),
            "tract" => Ok(EngineChoice::Tract),
            _ => Err(Error::Invalid(format!("unknown engine `{s}` (auto, ort, tract)"))),
        }
    }
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Auto => "auto",
            Provider::TensorRt => "tensorrt",
            Provider::Cuda => "cuda",
            Provider::Cpu => "cpu",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Provider::Auto),
            "tensorrt" | "trt" => Ok(Provider::TensorRt),
            "cuda" => Ok(Provider::Cuda),
            "cpu" => Ok(Provider::Cpu),
            _ => Err(Error::Invalid(format!("unknown execution provider `{s}` (auto, tensorrt, cuda, cpu)"))),
        }
    }
}

/// Messages of native libraries may span lines; errors of this crate are one line.
#[cfg_attr(not(any(feature = "ort", feature = "tract")), allow(dead_code))]
fn one_line(message: impl fmt::Display) -> String {
    let message = message.to_string();
    // ONNX Runtime starts its messages with where in its sources they were raised:
    // `/onnxruntime_src/.../provider_bridge_ort.cc:2043 onnxruntime::Provider& ...::Get()
    // [ONNXRuntimeError] : 1 : FAIL : Failed to load library ...`; the part after the code says it.
    let message = match message.split_once("[ONNXRuntimeError] : ") {
        Some((_, rest)) => rest.splitn(3, " : ").nth(2).unwrap_or(rest),
        None => &message,
    };
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}
