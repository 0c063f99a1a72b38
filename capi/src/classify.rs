//! The work: top-k labels of an RGB8 image, a label per pixel of a scene, raw tensors through
//! the graph.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use prism_data::{NumArray, NumData};
use prism_runtime::RgbImage;
use prism_runtime::model::Pipeline;
use prism_runtime::scene::Scene;

use crate::handles;
use crate::model::{PrismModel, get};
use crate::status::{PrismStatus, Result, c_string, guard, invalid, out, slice, slice_mut};

/// One label of a top-k answer. `label` belongs to the model.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PrismPrediction {
    /// The class's index in the model's output.
    pub index: usize,
    pub label: *const c_char,
    pub probability: f32,
}

/// The element type of a scene buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrismElementType {
    U16 = 1,
    F32 = 2,
}

/// Opaque: the outputs of `prism_model_run`.
pub struct PrismTensors {
    _opaque: [u8; 0],
}

/// One output of `prism_model_run`: row-major float32 values. Pointers belong to the
/// `PrismTensors` handle.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PrismTensor {
    pub name: *const c_char,
    pub rank: usize,
    pub shape: *const i64,
    pub data: *const f32,
    /// Values in `data`: the product of the shape.
    pub len: usize,
}

struct Output {
    name: CString,
    shape: Vec<i64>,
    data: Vec<f32>,
}

const TENSORS: &str = "PrismTensors";

/// Classifies one image, `width` x `height` pixels of 3 bytes (R, G, B), rows top to bottom,
/// `len` = `width * height * 3`, with the model's own preprocessing (or the one set with
/// `prism_options_set_image_preprocessing`). Writes the `k` most probable classes, most probable
/// first, to `top` (room for `k`) and how many it wrote to `written` (`k`, or fewer when the
/// model has fewer classes).
///
/// # Safety
/// `rgb` points to `len` bytes; `top` to `k` writable predictions; `written` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_classify_rgb8(
    model: *const PrismModel,
    rgb: *const u8,
    len: usize,
    width: u32,
    height: u32,
    top: *mut PrismPrediction,
    k: usize,
    written: *mut usize,
) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promises.
        let (rgb, top, written) =
            unsafe { (slice(rgb, len, "rgb")?, slice_mut(top, k, "top")?, out(written, "written")?) };
        let model = get(model)?;
        let expected = (width as usize).checked_mul(height as usize).and_then(|n| n.checked_mul(3));
        if width == 0 || height == 0 || expected != Some(len) {
            let bytes = expected.map_or_else(|| "too many".to_string(), |n| n.to_string());
            return Err(invalid(format!("an RGB8 image of {width} x {height} pixels is {bytes} bytes, got {len}")));
        }
        if k == 0 {
            return Err(invalid("k must be at least 1"));
        }
        let image = RgbImage::from_raw(width, height, rgb.to_vec()).ok_or_else(|| invalid("not an RGB8 buffer"))?;
        let answer = model.model.classify_images(&[image], k)?.pop().unwrap_or_default();
        for (slot, p) in top.iter_mut().zip(&answer) {
            let label = model.class_names.get(p.index).map_or(c"".as_ptr(), |n| n.as_ptr());
            *slot = PrismPrediction { index: p.index, label, probability: p.probability };
        }
        *written = answer.len().min(k);
        Ok(())
    })
}

/// Classifies every pixel of a scene: `values` is `height` x `width` x `bands` values of type
/// `dtype`, row-major (bands vary fastest, as numpy and MATLAB's `permute`d cubes hold them),
/// `len` of them. Writes the class label of each pixel, row-major, to `labels` (`labels_len` =
/// `height * width`): the ground truth's label values the model was trained with (1-based class
/// numbers for models without them). The scene is cut into tiles and runs through the
/// whole-scene graph when the model has one, as `runtime infer` does.
///
/// # Safety
/// `values` points to `len` values of `dtype`; `labels` to `labels_len` writable values.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // a C signature: buffers come with their lengths
pub unsafe extern "C" fn prism_classify_scene(
    model: *const PrismModel,
    values: *const c_void,
    dtype: PrismElementType,
    len: usize,
    height: usize,
    width: usize,
    bands: usize,
    labels: *mut i64,
    labels_len: usize,
) -> PrismStatus {
    guard(|| {
        let model = get(model)?;
        let expected = height.checked_mul(width).and_then(|n| n.checked_mul(bands));
        if height == 0 || width == 0 || bands == 0 || expected != Some(len) {
            return Err(invalid(format!("a {height} x {width} x {bands} scene is not {len} values")));
        }
        if labels_len != height * width {
            return Err(invalid(format!("a {height} x {width} scene has {} labels, not {labels_len}", height * width)));
        }
        let data = match dtype {
            // SAFETY: the caller's promise.
            PrismElementType::U16 => NumData::U16(unsafe { slice(values.cast::<u16>(), len, "values") }?.to_vec()),
            // SAFETY: the caller's promise.
            PrismElementType::F32 => NumData::F32(unsafe { slice(values.cast::<f32>(), len, "values") }?.to_vec()),
        };
        // SAFETY: the caller's promise.
        let labels = unsafe { slice_mut(labels, labels_len, "labels") }?;
        let Pipeline::Scene(pipeline) = &model.model.info().pipeline else {
            return Err(invalid(format!("{} is not a scene model", model.model.info().name)));
        };
        let array = NumArray::new(vec![height, width, bands], data).map_err(prism_runtime::Error::from)?;
        let scene = Scene::from_hwc(&array, "scene".as_ref()).map_err(prism_runtime::Error::from)?;
        let classes = model.model.classify_scene(&scene, None, model.batch, &|_, _| {})?;
        for (label, class) in labels.iter_mut().zip(classes) {
            *label = pipeline.label_value(class);
        }
        Ok(())
    })
}

/// Runs the graph on one float32 input of `rank` dimensions `shape` (`len` values, row-major)
/// and hands back every output in a `PrismTensors` (free with `prism_tensors_free`).
///
/// # Safety
/// `input` points to `len` floats; `shape` to `rank` sizes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_model_run(
    model: *const PrismModel,
    input: *const f32,
    len: usize,
    shape: *const usize,
    rank: usize,
    out_tensors: *mut *mut PrismTensors,
) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promises.
        let (input, shape, out_tensors) =
            unsafe { (slice(input, len, "input")?, slice(shape, rank, "shape")?, out(out_tensors, "out_tensors")?) };
        let model = get(model)?;
        let size = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if rank == 0 || size != Some(len) {
            return Err(invalid(format!("an input of shape {shape:?} is not {len} values")));
        }
        let view = ndarray::ArrayViewD::from_shape(shape, input).map_err(|e| invalid(e.to_string()))?;
        let outputs: Vec<Output> = model
            .model
            .run(view)?
            .into_iter()
            .map(|(name, array)| Output {
                name: c_string(&name),
                shape: array.shape().iter().map(|&d| d as i64).collect(),
                data: array.as_standard_layout().iter().copied().collect(),
            })
            .collect();
        *out_tensors = handles::insert(outputs);
        Ok(())
    })
}

fn tensors(handle: *const PrismTensors) -> Result<Arc<Vec<Output>>> {
    handles::get::<_, Vec<Output>>(handle, TENSORS)
}

/// How many tensors `outputs` holds.
///
/// # Safety
/// `count` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_tensors_count(outputs: *const PrismTensors, count: *mut usize) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promise.
        let count = unsafe { out(count, "count") }?;
        *count = tensors(outputs)?.len();
        Ok(())
    })
}

/// Output `index` of `outputs`, in the graph's order.
///
/// # Safety
/// `tensor` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_tensors_get(
    outputs: *const PrismTensors,
    index: usize,
    tensor: *mut PrismTensor,
) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promise.
        let tensor = unsafe { out(tensor, "tensor") }?;
        let all = tensors(outputs)?;
        let o = all.get(index).ok_or_else(|| invalid(format!("output {index} of {}", all.len())))?;
        *tensor = PrismTensor {
            name: o.name.as_ptr(),
            rank: o.shape.len(),
            shape: o.shape.as_ptr(),
            data: o.data.as_ptr(),
            len: o.data.len(),
        };
        Ok(())
    })
}

/// Frees the outputs of `prism_model_run` (null is allowed).
#[unsafe(no_mangle)]
pub extern "C" fn prism_tensors_free(outputs: *mut PrismTensors) -> PrismStatus {
    guard(|| handles::remove::<_, Vec<Output>>(outputs, TENSORS))
}
