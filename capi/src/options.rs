//! `PrismOptions`: how a model is opened (engine, execution provider, threads, sessions, and for
//! models made elsewhere their preprocessing and labels). Every setter may be skipped; an
//! options handle can open any number of models and is freed on its own.

use std::ffi::c_char;
use std::sync::Mutex;

use prism_runtime::model::{ImagePipeline, LoadOptions};

use crate::handles;
use crate::status::{PrismStatus, Result, guard, invalid, slice, text};

/// Opaque: how to open a model.
pub struct PrismOptions {
    _opaque: [u8; 0],
}

/// What an options handle holds.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub load: LoadOptions,
    /// Windows (or images) per graph run.
    pub batch: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { load: LoadOptions::default(), batch: 32 }
    }
}

const WHAT: &str = "PrismOptions";

/// The options a handle holds, or the defaults for a null one.
pub(crate) fn read(options: *const PrismOptions) -> Result<Options> {
    if options.is_null() {
        return Ok(Options::default());
    }
    let options = handles::get::<_, Mutex<Options>>(options, WHAT)?;
    Ok(options.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
}

fn update(options: *mut PrismOptions, change: impl FnOnce(&mut Options) -> Result<()>) -> PrismStatus {
    guard(|| {
        let options = handles::get::<_, Mutex<Options>>(options, WHAT)?;
        let mut options = options.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut options)
    })
}

/// New options with the defaults: engine and provider `auto` (ONNX Runtime when its library is
/// found, else tract; TensorRT, else CUDA, else the CPU), every core, one session, batches of
/// 32. Free with `prism_options_free`.
///
/// # Safety
/// `out` is null or points to a writable handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_options_new(out: *mut *mut PrismOptions) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promise.
        let out = unsafe { crate::status::out(out, "out") }?;
        *out = handles::insert(Mutex::new(Options::default()));
        Ok(())
    })
}

/// Frees options (null is allowed). Models opened with them keep what they were given.
#[unsafe(no_mangle)]
pub extern "C" fn prism_options_free(options: *mut PrismOptions) -> PrismStatus {
    guard(|| handles::remove::<_, Mutex<Options>>(options, WHAT))
}

/// `"auto"`, `"ort"` (ONNX Runtime, loaded at run time) or `"tract"` (pure Rust, CPU).
///
/// # Safety
/// `engine` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_options_set_engine(options: *mut PrismOptions, engine: *const c_char) -> PrismStatus {
    // SAFETY: the caller's promise.
    let engine = unsafe { text(engine, "engine") };
    update(options, |o| {
        o.load.engine.engine = engine?.parse().map_err(|e: prism_runtime::Error| invalid(e.to_string()))?;
        Ok(())
    })
}

/// ONNX Runtime's execution provider: `"auto"`, `"cpu"`, `"cuda"` or `"tensorrt"`.
///
/// # Safety
/// `provider` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_options_set_provider(
    options: *mut PrismOptions,
    provider: *const c_char,
) -> PrismStatus {
    // SAFETY: the caller's promise.
    let provider = unsafe { text(provider, "provider") };
    update(options, |o| {
        o.load.engine.provider = provider?.parse().map_err(|e: prism_runtime::Error| invalid(e.to_string()))?;
        Ok(())
    })
}

/// Threads within one graph run (0: every core).
#[unsafe(no_mangle)]
pub extern "C" fn prism_options_set_threads(options: *mut PrismOptions, threads: usize) -> PrismStatus {
    update(options, |o| {
        o.load.engine.threads = (threads > 0).then_some(threads);
        Ok(())
    })
}

/// Engines per model, i.e. calls on one `PrismModel` that run at the same time (at least 1).
#[unsafe(no_mangle)]
pub extern "C" fn prism_options_set_sessions(options: *mut PrismOptions, sessions: usize) -> PrismStatus {
    update(options, |o| {
        if sessions == 0 {
            return Err(invalid("a model needs at least one session"));
        }
        o.load.sessions = sessions;
        Ok(())
    })
}

/// Windows or images per graph run when classifying (at least 1; default 32).
#[unsafe(no_mangle)]
pub extern "C" fn prism_options_set_batch(options: *mut PrismOptions, batch: usize) -> PrismStatus {
    update(options, |o| {
        if batch == 0 {
            return Err(invalid("the batch holds at least one window"));
        }
        o.batch = batch;
        Ok(())
    })
}

/// The ONNX Runtime library to load (`libonnxruntime.so...`), instead of `ORT_DYLIB_PATH` and
/// the usual places.
///
/// # Safety
/// `path` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_options_set_ort_library(options: *mut PrismOptions, path: *const c_char) -> PrismStatus {
    // SAFETY: the caller's promise.
    let path = unsafe { text(path, "path") };
    update(options, |o| {
        o.load.engine.ort_library = Some(path?.into());
        Ok(())
    })
}

/// Preprocessing for an image classifier made elsewhere (a Prism export carries its own):
/// resize the shorter side to `resize`, crop the centre `crop` x `crop`, scale to [0, 1], then,
/// when `mean` and `std` are not null, `(x - mean[c]) / std[c]` per channel. torchvision's
/// ImageNet models: 256, 224, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}.
///
/// # Safety
/// `mean` and `std` are null or point to 3 floats each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_options_set_image_preprocessing(
    options: *mut PrismOptions,
    resize: u32,
    crop: u32,
    mean: *const f32,
    std: *const f32,
) -> PrismStatus {
    // SAFETY: the caller's promise.
    let normalize = unsafe { (slice(mean, 3, "mean"), slice(std, 3, "std")) };
    let null = (mean.is_null(), std.is_null());
    update(options, |o| {
        if crop == 0 || resize < crop {
            return Err(invalid(format!("the crop ({crop}) must be at least 1 and at most the resize ({resize})")));
        }
        let normalize = match (null, normalize) {
            ((true, true), _) => None,
            ((false, false), (Ok(m), Ok(s))) if s.iter().all(|v| *v > 0.0) => {
                Some(([m[0], m[1], m[2]], [s[0], s[1], s[2]]))
            }
            ((false, false), _) => return Err(invalid("std must be three positive values")),
            _ => return Err(invalid("give both mean and std, or neither")),
        };
        o.load.image_pipeline = Some(ImagePipeline { resize, crop, normalize });
        Ok(())
    })
}

/// Class names for a model without Prism metadata: `count` NUL-terminated strings, copied.
///
/// # Safety
/// `labels` is null or points to `count` NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_options_set_labels(
    options: *mut PrismOptions,
    labels: *const *const c_char,
    count: usize,
) -> PrismStatus {
    // SAFETY: the caller's promise.
    let labels = unsafe { slice(labels, count, "labels") }.and_then(|labels| {
        // SAFETY: the caller's promise, for each of them.
        labels.iter().map(|&l| unsafe { text(l, "a label") }.map(str::to_string)).collect::<Result<Vec<_>>>()
    });
    update(options, |o| {
        o.load.labels = Some(labels?);
        Ok(())
    })
}
