//! Bad use through the C API comes back as a status and a one-line message, never as a crash:
//! null pointers, buffers of the wrong length, freed, foreign and doubly freed handles, missing
//! files, corrupt models, calls the model's task does not have. And good use works: a tiny
//! graph (`y = relu(x)`) from a file and from bytes, its description and its raw outputs.

#![allow(clippy::unwrap_used, clippy::undocumented_unsafe_blocks)] // tests call the C ABI as C does

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};

use prism::*;
use prism_onnx::pb;
use prost::Message;

/// `y = relu(x)`, x of shape [batch, 4], no Prism metadata.
fn relu_model() -> Vec<u8> {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let float = pb::tensor_proto::DataType::Float as i32;
    let value = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: float,
                shape: Some(pb::TensorShapeProto {
                    dim: vec![
                        Dimension { value: Some(Value::DimParam("batch".into())), ..Default::default() },
                        Dimension { value: Some(Value::DimValue(4)), ..Default::default() },
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let graph = pb::GraphProto {
        name: "relu".into(),
        node: vec![pb::NodeProto {
            op_type: "Relu".into(),
            input: vec!["x".into()],
            output: vec!["y".into()],
            ..Default::default()
        }],
        input: vec![value("x")],
        output: vec![value("y")],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 17 }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(prism_last_error()) }.to_str().unwrap().to_string()
}

/// Asserts a failure with `status` and a one-line message containing `expected`.
#[track_caller]
fn fails(got: PrismStatus, status: PrismStatus, expected: &str) {
    let message = last_error();
    assert_eq!(got, status, "message: {message}");
    assert!(message.contains(expected), "`{message}` does not say `{expected}`");
    assert!(!message.contains('\n'));
}

fn tract_options() -> *mut PrismOptions {
    let mut options = null_mut();
    assert_eq!(unsafe { prism_options_new(&mut options) }, PrismStatus::Ok);
    assert_eq!(unsafe { prism_options_set_engine(options, c"tract".as_ptr()) }, PrismStatus::Ok);
    options
}

#[test]
fn a_tiny_model_runs_from_a_file_and_from_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relu.onnx");
    let bytes = relu_model();
    std::fs::write(&path, &bytes).unwrap();
    let options = tract_options();
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let (mut from_file, mut from_bytes) = (null_mut(), null_mut());
    assert_eq!(unsafe { prism_model_open(c_path.as_ptr(), options, &mut from_file) }, PrismStatus::Ok);
    let status = unsafe { prism_model_open_bytes(bytes.as_ptr(), bytes.len(), null(), options, &mut from_bytes) };
    assert_eq!(status, PrismStatus::Ok);
    assert_eq!(prism_options_free(options), PrismStatus::Ok);

    for model in [from_file, from_bytes] {
        let mut info = std::mem::MaybeUninit::<PrismModelInfo>::uninit();
        assert_eq!(unsafe { prism_model_info(model, info.as_mut_ptr()) }, PrismStatus::Ok);
        let info = unsafe { info.assume_init() };
        assert_eq!(info.task, PrismTask::Tensor);
        assert_eq!(unsafe { CStr::from_ptr(info.engine) }, c"tract");
        assert_eq!((info.inputs, info.outputs, info.classes), (1, 1, 4));
        let mut input = std::mem::MaybeUninit::<PrismTensorInfo>::uninit();
        assert_eq!(unsafe { prism_model_input(model, 0, input.as_mut_ptr()) }, PrismStatus::Ok);
        let input = unsafe { input.assume_init() };
        assert_eq!(unsafe { CStr::from_ptr(input.name) }, c"x");
        assert_eq!(unsafe { std::slice::from_raw_parts(input.shape, input.rank) }, [-1, 4]);

        let x = [-1.0f32, 2.0, -3.0, 4.0, 5.0, -6.0, 7.0, -8.0];
        let mut outputs = null_mut();
        let status = unsafe { prism_model_run(model, x.as_ptr(), x.len(), [2usize, 4].as_ptr(), 2, &mut outputs) };
        assert_eq!(status, PrismStatus::Ok, "{}", last_error());
        let mut count = 0;
        assert_eq!(unsafe { prism_tensors_count(outputs, &mut count) }, PrismStatus::Ok);
        assert_eq!(count, 1);
        let mut y = std::mem::MaybeUninit::<PrismTensor>::uninit();
        assert_eq!(unsafe { prism_tensors_get(outputs, 0, y.as_mut_ptr()) }, PrismStatus::Ok);
        let y = unsafe { y.assume_init() };
        assert_eq!(unsafe { std::slice::from_raw_parts(y.shape, y.rank) }, [2, 4]);
        let expected: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
        assert_eq!(unsafe { std::slice::from_raw_parts(y.data, y.len) }, expected);
        let mut other = std::mem::MaybeUninit::<PrismTensor>::uninit();
        let status = unsafe { prism_tensors_get(outputs, 1, other.as_mut_ptr()) };
        fails(status, PrismStatus::InvalidArgument, "output 1 of 1");
        assert_eq!(prism_tensors_free(outputs), PrismStatus::Ok);
        assert_eq!(prism_model_free(model), PrismStatus::Ok);
    }
}

#[test]
fn bad_use_is_an_error_code_and_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = null_mut();
    let options = tract_options();

    // Files that are not there or not models; bytes that are not a model.
    fails(unsafe { prism_model_open(null(), options, &mut model) }, PrismStatus::InvalidArgument, "path is a null");
    let missing = CString::new(dir.path().join("missing.onnx").to_str().unwrap()).unwrap();
    fails(unsafe { prism_model_open(missing.as_ptr(), options, &mut model) }, PrismStatus::Io, "missing.onnx");
    let corrupt = dir.path().join("corrupt.onnx");
    let mut bytes = relu_model();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, &bytes).unwrap();
    let corrupt = CString::new(corrupt.to_str().unwrap()).unwrap();
    fails(unsafe { prism_model_open(corrupt.as_ptr(), options, &mut model) }, PrismStatus::Format, "not a valid ONNX");
    let status = unsafe { prism_model_open_bytes(bytes.as_ptr(), bytes.len(), c"half".as_ptr(), options, &mut model) };
    fails(status, PrismStatus::Format, "half");
    fails(
        unsafe { prism_model_open_bytes(null(), 10, null(), options, &mut model) },
        PrismStatus::InvalidArgument,
        "null",
    );
    assert!(model.is_null(), "no handle is written on failure");

    // Options that make no sense.
    fails(unsafe { prism_options_set_engine(options, c"warp".as_ptr()) }, PrismStatus::InvalidArgument, "warp");
    fails(prism_options_set_sessions(options, 0), PrismStatus::InvalidArgument, "one session");
    let mean = [0.5f32; 3];
    let status = unsafe { prism_options_set_image_preprocessing(options, 256, 224, mean.as_ptr(), null()) };
    fails(status, PrismStatus::InvalidArgument, "both mean and std");
    fails(
        unsafe { prism_options_set_image_preprocessing(options, 100, 224, null(), null()) },
        PrismStatus::InvalidArgument,
        "at most the resize",
    );

    // A good model, then calls it cannot take.
    let bytes = relu_model();
    let status = unsafe { prism_model_open_bytes(bytes.as_ptr(), bytes.len(), null(), options, &mut model) };
    assert_eq!(status, PrismStatus::Ok);
    let mut outputs = null_mut();
    let x = [1.0f32; 8];
    fails(
        unsafe { prism_model_run(model, x.as_ptr(), 7, [2usize, 4].as_ptr(), 2, &mut outputs) },
        PrismStatus::InvalidArgument,
        "not 7 values",
    );
    fails(unsafe { prism_model_run(model, x.as_ptr(), 8, [8usize].as_ptr(), 1, &mut outputs) }, PrismStatus::Shape, "");
    fails(
        unsafe { prism_model_run(model, null(), 8, [2usize, 4].as_ptr(), 2, &mut outputs) },
        PrismStatus::InvalidArgument,
        "input is a null",
    );
    let rgb = [0u8; 4 * 4 * 3];
    let mut top = [PrismPrediction { index: 0, label: null(), probability: 0.0 }; 3];
    let mut written = 0;
    let mut classify = |rgb: *const u8, len: usize, written: *mut usize| unsafe {
        prism_classify_rgb8(model, rgb, len, 4, 4, top.as_mut_ptr(), 3, written)
    };
    fails(classify(rgb.as_ptr(), 47, &mut written), PrismStatus::InvalidArgument, "is 48 bytes, got 47");
    fails(classify(null(), 48, &mut written), PrismStatus::InvalidArgument, "rgb is a null");
    fails(classify(rgb.as_ptr(), 48, null_mut()), PrismStatus::InvalidArgument, "written is a null");
    fails(classify(rgb.as_ptr(), 48, &mut written), PrismStatus::InvalidArgument, "not an image model");
    let scene = [0f32; 2 * 2 * 3];
    let mut labels = [0i64; 4];
    let status = unsafe {
        prism_classify_scene(model, scene.as_ptr().cast(), PrismElementType::F32, 12, 2, 2, 3, labels.as_mut_ptr(), 4)
    };
    fails(status, PrismStatus::InvalidArgument, "not a scene model");
    let status = unsafe {
        prism_classify_scene(model, scene.as_ptr().cast(), PrismElementType::F32, 12, 2, 2, 3, labels.as_mut_ptr(), 3)
    };
    fails(status, PrismStatus::InvalidArgument, "has 4 labels, not 3");
    let mut image = null_mut();
    fails(unsafe { prism_image_decode(rgb.as_ptr(), rgb.len(), &mut image) }, PrismStatus::Format, "not a JPEG or PNG");

    // Handles: of another kind, freed, freed twice, never made.
    fails(prism_model_free(options.cast()), PrismStatus::InvalidHandle, "not a live PrismModel");
    assert_eq!(prism_model_free(model), PrismStatus::Ok);
    let mut info = std::mem::MaybeUninit::<PrismModelInfo>::uninit();
    fails(unsafe { prism_model_info(model, info.as_mut_ptr()) }, PrismStatus::InvalidHandle, "already freed");
    fails(prism_model_free(model), PrismStatus::InvalidHandle, "PrismModel");
    fails(unsafe { prism_model_info(0xdead0 as *const PrismModel, info.as_mut_ptr()) }, PrismStatus::InvalidHandle, "");
    assert_eq!(prism_model_free(null_mut()), PrismStatus::Ok, "freeing null is nothing");
    assert_eq!(prism_options_free(options), PrismStatus::Ok);
    fails(prism_options_set_threads(options, 2), PrismStatus::InvalidHandle, "PrismOptions");
    assert_eq!(unsafe { CStr::from_ptr(prism_status_name(PrismStatus::InvalidHandle)) }, c"invalid handle");
}

/// One model handle shared by four threads (two sessions): each caller gets its own answer.
#[test]
fn threads_share_a_model() {
    let options = tract_options();
    assert_eq!(prism_options_set_sessions(options, 2), PrismStatus::Ok);
    let bytes = relu_model();
    let mut model = null_mut();
    let status = unsafe { prism_model_open_bytes(bytes.as_ptr(), bytes.len(), null(), options, &mut model) };
    assert_eq!(status, PrismStatus::Ok);
    prism_options_free(options);
    let handle = model as usize;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    let x: Vec<f32> = (0..4).map(|k| (t * 100 + i + k) as f32 - 150.0).collect();
                    let mut outputs = null_mut();
                    let model = handle as *const PrismModel;
                    let status =
                        unsafe { prism_model_run(model, x.as_ptr(), 4, [1usize, 4].as_ptr(), 2, &mut outputs) };
                    assert_eq!(status, PrismStatus::Ok, "{}", last_error());
                    let mut y = std::mem::MaybeUninit::<PrismTensor>::uninit();
                    assert_eq!(unsafe { prism_tensors_get(outputs, 0, y.as_mut_ptr()) }, PrismStatus::Ok);
                    let y = unsafe { y.assume_init() };
                    let expected: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
                    assert_eq!(unsafe { std::slice::from_raw_parts(y.data, y.len) }, expected, "thread {t}, run {i}");
                    assert_eq!(prism_tensors_free(outputs), PrismStatus::Ok);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(prism_model_free(model), PrismStatus::Ok);
}
