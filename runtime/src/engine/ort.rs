//! ONNX Runtime through `ort` with `load-dynamic`: the shared library is located at run time
//! (see [`super::ort_library`]) and loaded once per process. Every step that touches the library
//! goes through `ort::init_from`, which returns errors; nothing here calls the `ort` APIs that
//! panic when the library is missing before the library is loaded.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ::ort::environment::{Environment, EnvironmentBuilder};
use ::ort::ep;
use ::ort::session::Session;
use ::ort::value::TensorRef;
use ndarray::{ArrayD, ArrayViewD};

use super::ort_library::{SYSTEM_NAME, candidates, same_file};
use super::{Engine, EngineOptions, ORT_HELP, Provider, Source, one_line};
use crate::{Error, Result};

const CUDA_HELP: &str = "install onnxruntime-gpu 1.31.1 (built for CUDA 13) and the CUDA 13 and cuDNN 9 libraries, \
     then point ORT_DYLIB_PATH or --ort-library at its libonnxruntime.so";
const TENSORRT_HELP: &str = "install onnxruntime-gpu 1.31.1, CUDA 13 and TensorRT 10 (libnvinfer on the loader path), \
     then point ORT_DYLIB_PATH or --ort-library at its libonnxruntime.so";

/// The process's one ONNX Runtime library and environment: ONNX Runtime can be loaded once per
/// process, and `ort` allows one environment.
struct Loaded {
    path: PathBuf,
    env: Environment,
}

static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// Loads the ONNX Runtime library (once) and returns the process's environment and the library's
/// path.
///
/// # Errors
/// An explicit library that does not exist or does not load; no library anywhere; a request for
/// a library other than the one already loaded in this process.
pub(super) fn environment(explicit: Option<&Path>) -> Result<(Environment, PathBuf)> {
    if let Some(path) = explicit {
        if !path.is_file() {
            return Err(Error::Engine(format!("ONNX Runtime library {} does not exist ({ORT_HELP})", path.display())));
        }
    }
    let mut loaded =
        LOADED.lock().map_err(|_| Error::Engine("the ONNX Runtime loader was poisoned by an earlier panic".into()))?;
    if let Some(current) = loaded.as_ref() {
        if let Some(path) = explicit.filter(|p| !same_file(p, &current.path)) {
            return Err(Error::Engine(format!(
                "ONNX Runtime is already loaded from {} in this process; cannot load {} as well",
                current.path.display(),
                path.display()
            )));
        }
        return Ok((current.env.clone(), current.path.clone()));
    }
    let (path, builder) = load_library(explicit)?;
    let env = builder.with_name("prism").with_telemetry(false).build().map_err(|e| {
        Error::Engine(format!("ONNX Runtime ({}) could not create its environment: {}", path.display(), one_line(e)))
    })?;
    *loaded = Some(Loaded { path: path.clone(), env: env.clone() });
    Ok((env, path))
}

/// Tries the candidates in order and returns the path that loaded, with the environment builder
/// `ort::init_from` gave for it. A file that exists but does not load, or an `ORT_DYLIB_PATH`
/// that does not exist, is an error at once (a broken installation or a wrong path should not be
/// skipped silently); other missing files and a system loader that finds nothing lead to the
/// next candidate.
fn load_library(explicit: Option<&Path>) -> Result<(PathBuf, EnvironmentBuilder)> {
    let mut tried = Vec::new();
    let list = match explicit {
        Some(path) => candidates(Some(path)).into_iter().take(1).collect(),
        None => candidates(None),
    };
    for candidate in list {
        let path = absolute(&candidate.path);
        let is_bare_name = candidate.path.as_os_str() == SYSTEM_NAME;
        if !is_bare_name && !path.is_file() {
            // What the user named is not there: say so rather than load another library.
            if candidate.source == "ORT_DYLIB_PATH" {
                return Err(Error::Engine(format!(
                    "ONNX Runtime library {} (ORT_DYLIB_PATH) does not exist ({ORT_HELP})",
                    path.display()
                )));
            }
            tried.push(format!("{} {} (missing)", candidate.source, path.display()));
            continue;
        }
        match ::ort::init_from(&path) {
            Ok(builder) => return Ok((path, builder)),
            Err(e) if is_bare_name => tried.push(format!("{} {SYSTEM_NAME} ({})", candidate.source, one_line(e))),
            Err(e) => {
                return Err(Error::Engine(format!(
                    "ONNX Runtime library {} ({}) does not load: {} ({ORT_HELP})",
                    path.display(),
                    candidate.source,
                    one_line(e)
                )));
            }
        }
    }
    Err(Error::Engine(format!("ONNX Runtime library not found; tried {} ({ORT_HELP})", tried.join(", "))))
}

/// `ort` resolves relative paths against the executable's folder; ours are relative to the
/// working directory, as users expect.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() || path.as_os_str() == SYSTEM_NAME {
        return path.to_path_buf();
    }
    std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
}

/// A model on an ONNX Runtime session.
pub(super) struct OrtEngine {
    session: Session,
    provider: &'static str,
    notes: Vec<String>,
}

impl OrtEngine {
    pub(super) fn load(model: Source<'_>, options: &EngineOptions) -> Result<Self> {
        let (env, _) = environment(options.ort_library.as_deref())?;
        let (session, provider, notes) = match options.provider {
            Provider::Cpu => (session(&env, model, options, Ep::Cpu)?, "cpu", Vec::new()),
            Provider::Cuda => (session(&env, model, options, Ep::Cuda)?, "cuda", Vec::new()),
            Provider::TensorRt => (session(&env, model, options, Ep::TensorRt)?, "tensorrt", Vec::new()),
            Provider::Auto => {
                let mut notes = Vec::new();
                let mut chosen = None;
                for ep in [Ep::TensorRt, Ep::Cuda] {
                    match session(&env, model, options, ep) {
                        Ok(s) => {
                            chosen = Some((s, ep.name()));
                            break;
                        }
                        Err(e) => notes.push(e.to_string()),
                    }
                }
                let (session, provider) = match chosen {
                    Some(found) => found,
                    None => (session(&env, model, options, Ep::Cpu)?, "cpu"),
                };
                (session, provider, notes)
            }
        };
        if session.inputs().len() != 1 {
            return Err(Error::Engine(format!(
                "{}: the model has {} inputs; Prism's engines run models with one input",
                model.name().display(),
                session.inputs().len()
            )));
        }
        Ok(OrtEngine { session, provider, notes })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ep {
    Cpu,
    Cuda,
    TensorRt,
}

impl Ep {
    fn name(self) -> &'static str {
        match self {
            Ep::Cpu => "cpu",
            Ep::Cuda => "cuda",
            Ep::TensorRt => "tensorrt",
        }
    }
}

/// A session on one execution provider, registered with `error_on_failure` so that a missing
/// provider is an error rather than a silent fall back to the CPU.
fn session(env: &Environment, model: Source<'_>, options: &EngineOptions, ep: Ep) -> Result<Session> {
    let engine_error =
        |e: String| Error::Engine(format!("{}: ONNX Runtime cannot load it: {e}", model.name().display()));
    // Failures come back as errors, reported on one line: ONNX Runtime's own log of them would
    // only repeat them over several.
    let mut builder = Session::builder(env).map_err(|e| engine_error(one_line(e)))?;
    builder = builder.with_log_level(::ort::logging::LogLevel::Fatal).map_err(|e| engine_error(one_line(e)))?;
    if let Some(threads) = options.threads {
        builder = builder.with_intra_threads(threads).map_err(|e| engine_error(one_line(e)))?;
    }
    let gpu =
        i32::try_from(options.gpu).map_err(|_| Error::Engine(format!("GPU index {} is out of range", options.gpu)))?;
    let cuda = ep::CUDA::default().with_device_id(gpu).with_tf32(options.tf32);
    let providers = match ep {
        Ep::Cpu if options.low_memory => vec![ep::CPU::default().with_arena_allocator(false).build()],
        Ep::Cpu => Vec::new(),
        Ep::Cuda => vec![cuda.build().error_on_failure()],
        Ep::TensorRt => {
            let mut trt = ep::TensorRT::default().with_device_id(gpu);
            if let Some(cache) = &options.trt_cache {
                std::fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
                let cache = cache.display();
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(&cache)
                    .with_timing_cache(true)
                    .with_timing_cache_path(&cache);
            }
            // The nodes TensorRT does not take run on CUDA, as ONNX Runtime recommends, not on the CPU.
            vec![trt.build().error_on_failure(), cuda.build()]
        }
    };
    if !providers.is_empty() {
        builder = builder.with_execution_providers(providers).map_err(|e| unavailable(ep, one_line(e)))?;
    }
    let session = match model {
        Source::File(path) => builder.commit_from_file(path),
        Source::Memory { bytes, .. } => builder.commit_from_memory(bytes),
    };
    session.map_err(|e| {
        let message = one_line(e);
        // Some providers only fail once the session initialises them.
        if ep != Ep::Cpu && looks_like_provider_failure(&message) {
            unavailable(ep, message)
        } else {
            engine_error(message)
        }
    })
}

fn looks_like_provider_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["cuda", "tensorrt", "cudnn", "nvinfer", "provider"].iter().any(|k| m.contains(k))
}

fn unavailable(ep: Ep, reason: String) -> Error {
    let reason = reason.trim_end_matches('.');
    match ep {
        Ep::Cuda => Error::Engine(format!("CUDA execution provider is not available: {reason} ({CUDA_HELP})")),
        Ep::TensorRt => {
            Error::Engine(format!("TensorRT execution provider is not available: {reason} ({TENSORRT_HELP})"))
        }
        Ep::Cpu => Error::Engine(format!("CPU execution provider failed: {reason}")),
    }
}

impl Engine for OrtEngine {
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>> {
        // Borrowed as it is when already contiguous in row-major order.
        let input = input.as_standard_layout();
        let tensor =
            TensorRef::from_array_view(&input).map_err(|e| Error::Engine(format!("ort input: {}", one_line(e))))?;
        let names: Vec<String> = self.session.outputs().iter().map(|o| o.name().to_string()).collect();
        let outputs =
            self.session.run(::ort::inputs![tensor]).map_err(|e| Error::Engine(format!("ort: {}", one_line(e))))?;
        names
            .into_iter()
            .map(|name| {
                let value =
                    outputs.get(&name).ok_or_else(|| Error::Engine(format!("ort returned no output `{name}`")))?;
                let array = value
                    .try_extract_array::<f32>()
                    .map_err(|e| Error::Engine(format!("ort output `{name}`: {}", one_line(e))))?;
                Ok((name, array.to_owned()))
            })
            .collect()
    }

    fn engine(&self) -> &'static str {
        "ort"
    }

    fn provider(&self) -> &str {
        self.provider
    }

    fn notes(&self) -> &[String] {
        &self.notes
    }
}
