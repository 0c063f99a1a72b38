//! `PrismModel`: opening a model from a file or from bytes, and what it says of itself.

use std::ffi::{CString, c_char};
use std::path::Path;

use prism_runtime::model::{Model, Pipeline};
use prism_runtime::onnx_info::{Dim, TensorInfo};

use crate::handles;
use crate::options::{Options, PrismOptions, read as read_options};
use crate::status::{PrismStatus, Result, c_string, guard, invalid, out, slice, text};

/// Opaque: a loaded model.
pub struct PrismModel {
    _opaque: [u8; 0],
}

/// What a model is for.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrismTask {
    /// Photos in, top-k labels out: `prism_classify_rgb8`.
    Image = 1,
    /// Hyperspectral scenes in, a label per pixel out: `prism_classify_scene`.
    Scene = 2,
    /// Raw tensors in and out only: `prism_model_run`.
    Tensor = 3,
}

/// What `prism_model_info` tells. Strings belong to the model and live as long as it does.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PrismModelInfo {
    pub task: PrismTask,
    /// The model's name (its metadata's, or the file's stem).
    pub name: *const c_char,
    /// The engine that runs it: `"ort"` or `"tract"`.
    pub engine: *const c_char,
    /// The execution provider that registered: `"cpu"`, `"cuda"` or `"tensorrt"`.
    pub provider: *const c_char,
    /// Class names: `prism_model_class_name`.
    pub classes: usize,
    /// Graph inputs and outputs: `prism_model_input`, `prism_model_output`.
    pub inputs: usize,
    pub outputs: usize,
    /// Image models: the side of the square the model sees (its crop); 0 for the others.
    pub image_size: u32,
    /// Scene models: the bands a scene must have, and the window side; 0 for the others.
    pub bands: usize,
    pub window: usize,
    /// Scene models: whether whole tiles run through the whole-scene graph (opened from a file
    /// with `NAME.scene.onnx` beside it), rather than window by window.
    pub scene_graph: bool,
}

/// A graph input or output. Dimensions that are symbolic (a batch, a height) are -1.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PrismTensorInfo {
    pub name: *const c_char,
    pub rank: usize,
    pub shape: *const i64,
}

/// A graph input or output, kept as C reads it.
pub(crate) struct TensorDesc {
    name: CString,
    shape: Vec<i64>,
}

impl TensorDesc {
    fn new(info: &TensorInfo) -> TensorDesc {
        let shape = info
            .shape
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => i64::try_from(*n).unwrap_or(-1),
                Dim::Symbolic(_) => -1,
            })
            .collect();
        TensorDesc { name: c_string(&info.name), shape }
    }

    fn info(&self) -> PrismTensorInfo {
        PrismTensorInfo { name: self.name.as_ptr(), rank: self.shape.len(), shape: self.shape.as_ptr() }
    }
}

/// A model and the C strings it hands out.
pub(crate) struct Loaded {
    pub model: Model,
    pub batch: usize,
    name: CString,
    engine: CString,
    provider: CString,
    pub class_names: Vec<CString>,
    inputs: Vec<TensorDesc>,
    outputs: Vec<TensorDesc>,
}

const WHAT: &str = "PrismModel";

impl Loaded {
    fn new(model: Model, options: &Options) -> Loaded {
        let info = model.info();
        Loaded {
            batch: options.batch,
            name: c_string(&info.name),
            engine: c_string(model.engine()),
            provider: c_string(model.provider()),
            class_names: info.class_names.iter().map(|n| c_string(n)).collect(),
            inputs: info.onnx.inputs.iter().map(TensorDesc::new).collect(),
            outputs: info.onnx.outputs.iter().map(TensorDesc::new).collect(),
            model,
        }
    }

    fn info(&self) -> PrismModelInfo {
        let info = self.model.info();
        let (image_size, bands, window) = match &info.pipeline {
            Pipeline::Image(p) => (p.crop, 0, 0),
            Pipeline::Scene(p) => (0, p.bands, p.window),
            Pipeline::Tensor => (0, 0, 0),
        };
        let task = match info.pipeline {
            Pipeline::Image(_) => PrismTask::Image,
            Pipeline::Scene(_) => PrismTask::Scene,
            Pipeline::Tensor => PrismTask::Tensor,
        };
        PrismModelInfo {
            task,
            name: self.name.as_ptr(),
            engine: self.engine.as_ptr(),
            provider: self.provider.as_ptr(),
            classes: self.class_names.len(),
            inputs: self.inputs.len(),
            outputs: self.outputs.len(),
            image_size,
            bands,
            window,
            scene_graph: task == PrismTask::Scene && self.model.scene_graph().is_some(),
        }
    }
}

/// The model behind a live handle.
pub(crate) fn get(model: *const PrismModel) -> Result<std::sync::Arc<Loaded>> {
    handles::get::<_, Loaded>(model, WHAT)
}

/// Opens an ONNX model file (`options` may be null: the defaults). A Prism scene model finds
/// its whole-scene graph beside it (`NAME.scene.onnx`). Free with `prism_model_free`.
///
/// # Safety
/// `path` is null or a NUL-terminated string; `out` is null or points to a writable handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_model_open(
    path: *const c_char,
    options: *const PrismOptions,
    out_model: *mut *mut PrismModel,
) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promises.
        let (path, out_model) = unsafe { (text(path, "path")?, out(out_model, "out_model")?) };
        let options = read_options(options)?;
        let model = Model::load(Path::new(path), &options.load)?;
        *out_model = handles::insert(Loaded::new(model, &options));
        Ok(())
    })
}

/// Opens a model from the bytes of an ONNX file (copied; the caller may free them after the
/// call). `name` (may be null) names it in messages. Scene models opened so classify window by
/// window: their whole-scene graph is another file.
///
/// # Safety
/// `bytes` points to `len` bytes; `name` is null or a NUL-terminated string; `out` is null or
/// points to a writable handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_model_open_bytes(
    bytes: *const u8,
    len: usize,
    name: *const c_char,
    options: *const PrismOptions,
    out_model: *mut *mut PrismModel,
) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promises.
        let (bytes, out_model) = unsafe { (slice(bytes, len, "bytes")?, out(out_model, "out_model")?) };
        let name = match name.is_null() {
            true => "<memory>",
            // SAFETY: the caller's promise.
            false => unsafe { text(name, "name") }?,
        };
        if bytes.is_empty() {
            return Err(invalid("the model's bytes are empty"));
        }
        let options = read_options(options)?;
        let model = Model::from_bytes(name, bytes, &options.load)?;
        *out_model = handles::insert(Loaded::new(model, &options));
        Ok(())
    })
}

/// Frees a model (null is allowed). Calls running on it on other threads finish first.
#[unsafe(no_mangle)]
pub extern "C" fn prism_model_free(model: *mut PrismModel) -> PrismStatus {
    guard(|| handles::remove::<_, Loaded>(model, WHAT))
}

/// What the model is: task, engine, classes, inputs and outputs, what it expects.
///
/// # Safety
/// `out` is null or points to a writable `PrismModelInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_model_info(model: *const PrismModel, out_info: *mut PrismModelInfo) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promise.
        let out_info = unsafe { out(out_info, "out_info") }?;
        *out_info = get(model)?.info();
        Ok(())
    })
}

/// The name of class `index` (0-based, below `PrismModelInfo.classes`).
///
/// # Safety
/// `out` is null or points to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_model_class_name(
    model: *const PrismModel,
    index: usize,
    out_name: *mut *const c_char,
) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promise.
        let out_name = unsafe { out(out_name, "out_name") }?;
        let model = get(model)?;
        let names = &model.class_names;
        let name = names.get(index).ok_or_else(|| invalid(format!("class {index} of {}", names.len())))?;
        *out_name = name.as_ptr();
        Ok(())
    })
}

/// Graph input `index` (below `PrismModelInfo.inputs`).
///
/// # Safety
/// `out` is null or points to a writable `PrismTensorInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_model_input(
    model: *const PrismModel,
    index: usize,
    out_info: *mut PrismTensorInfo,
) -> PrismStatus {
    // SAFETY: the caller's promise.
    unsafe { tensor_info(model, index, out_info, |m| &m.inputs, "input") }
}

/// Graph output `index` (below `PrismModelInfo.outputs`).
///
/// # Safety
/// `out` is null or points to a writable `PrismTensorInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_model_output(
    model: *const PrismModel,
    index: usize,
    out_info: *mut PrismTensorInfo,
) -> PrismStatus {
    // SAFETY: the caller's promise.
    unsafe { tensor_info(model, index, out_info, |m| &m.outputs, "output") }
}

/// # Safety
/// `out_info` is null or points to a writable `PrismTensorInfo`.
unsafe fn tensor_info(
    model: *const PrismModel,
    index: usize,
    out_info: *mut PrismTensorInfo,
    list: fn(&Loaded) -> &Vec<TensorDesc>,
    what: &str,
) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promise.
        let out_info = unsafe { out(out_info, "out_info") }?;
        let model = get(model)?;
        let all = list(&model);
        *out_info = all.get(index).ok_or_else(|| invalid(format!("{what} {index} of {}", all.len())))?.info();
        Ok(())
    })
}
