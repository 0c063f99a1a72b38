//! Engines against a hand computation on tiny graphs built here with tract's prost ONNX types.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Dimension};

use super::*;

/// A graph `y = relu(conv(x))` with a 1x1 (or 1x1x1) kernel, plus `s = sigmoid(y)`: two outputs
/// whose order the engines must keep.
#[cfg(feature = "tract")]
fn tiny_model(dir: &Path, spatial: usize, weight: &[f32], bias: &[f32], cin: usize) -> PathBuf {
    use prism_onnx::pb;
    use prost::Message;

    let cout = bias.len();
    let float = pb::tensor_proto::DataType::Float as i32;
    let tensor = |name: &str, dims: Vec<i64>, data: &[f32]| pb::TensorProto {
        name: name.into(),
        dims,
        data_type: float,
        float_data: data.to_vec(),
        ..Default::default()
    };
    let ints = |name: &str, v: Vec<i64>| pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v,
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str, attribute: Vec<pb::AttributeProto>| pb::NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    };
    let value = |name: &str, dims: Vec<Option<i64>>| {
        use pb::tensor_shape_proto::{Dimension, dimension::Value};
        let dim = dims
            .into_iter()
            .map(|d| Dimension {
                value: Some(d.map_or(Value::DimParam("batch".into()), Value::DimValue)),
                ..Default::default()
            })
            .collect();
        pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: float,
                    shape: Some(pb::TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    };
    let side = 3i64;
    let mut wdims = vec![cout as i64, cin as i64];
    wdims.extend(std::iter::repeat_n(1, spatial));
    let mut xdims = vec![None, Some(cin as i64)];
    xdims.extend(std::iter::repeat_n(Some(side), spatial));
    let mut ydims = vec![None, Some(cout as i64)];
    ydims.extend(std::iter::repeat_n(Some(side), spatial));
    let graph = pb::GraphProto {
        name: "tiny".into(),
        node: vec![
            node("Conv", &["x", "w", "b"], "conv", vec![ints("kernel_shape", vec![1; spatial])]),
            node("Relu", &["conv"], "y", vec![]),
            node("Sigmoid", &["y"], "s", vec![]),
        ],
        initializer: vec![tensor("w", wdims, weight), tensor("b", vec![cout as i64], bias)],
        input: vec![value("x", xdims)],
        output: vec![value("y", ydims.clone()), value("s", ydims)],
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 17 }],
        producer_name: "prism-tests".into(),
        graph: Some(graph),
        ..Default::default()
    };
    let path = dir.join(format!("tiny{spatial}d.onnx"));
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-engine-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const WEIGHT: [f32; 6] = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5];
const BIAS: [f32; 3] = [0.1, -0.2, 0.3];

/// A deterministic input with positive and negative values, `[batch, 2, 3, 3(, 3)]`.
fn input(batch: usize, spatial: usize) -> ArrayD<f32> {
    let mut shape = vec![batch, 2];
    shape.extend(std::iter::repeat_n(3, spatial));
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(shape, (0..n).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect()).unwrap()
}

/// `relu(sum_c w[o, c] x[n, c, ...] + b[o])`, by hand.
fn by_hand(x: &ArrayD<f32>) -> ArrayD<f32> {
    let mut shape = x.shape().to_vec();
    shape[1] = 3;
    ArrayD::from_shape_fn(shape, |idx| {
        let mut at = idx.slice().to_vec();
        let o = at[1];
        let mut sum = BIAS[o];
        for c in 0..2 {
            at[1] = c;
            sum += WEIGHT[o * 2 + c] * x[at.as_slice()];
        }
        sum.max(0.0)
    })
}

fn assert_close(what: &str, got: &ArrayD<f32>, expected: &ArrayD<f32>) {
    assert_eq!(got.shape(), expected.shape(), "{what}");
    let worst = got.iter().zip(expected).map(|(g, e)| (g - e).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "{what}: largest difference {worst}");
}

fn check_outputs(what: &str, outputs: &[(String, ArrayD<f32>)], x: &ArrayD<f32>) {
    let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["y", "s"], "{what}: outputs in graph order");
    let y = by_hand(x);
    assert_close(&format!("{what} y"), &outputs[0].1, &y);
    assert_close(&format!("{what} s"), &outputs[1].1, &y.mapv(|v| 1.0 / (1.0 + (-v).exp())));
}

fn options(engine: EngineChoice, provider: Provider) -> EngineOptions {
    EngineOptions { engine, provider, ..Default::default() }
}

#[cfg(feature = "tract")]
#[test]
fn tract_equals_a_hand_computation_2d_and_3d() {
    let dir = temp_dir("tract");
    for spatial in [2, 3] {
        let model = tiny_model(&dir, spatial, &WEIGHT, &BIAS, 2);
        for threads in [None, Some(1), Some(3)] {
            let mut engine =
                load(&model, &EngineOptions { threads, ..options(EngineChoice::Tract, Provider::Auto) }).unwrap();
            assert_eq!((engine.engine(), engine.provider()), ("tract", "cpu"));
            for batch in [1, 4, 2] {
                let x = input(batch, spatial);
                check_outputs(
                    &format!("tract {spatial}-D batch {batch} threads {threads:?}"),
                    &engine.run(x.view()).unwrap(),
                    &x,
                );
            }
        }
        let mut engine = load(&model, &options(EngineChoice::Tract, Provider::Auto)).unwrap();
        let err = engine.run(input(1, spatial).remove_axis(ndarray::Axis(1)).view()).unwrap_err().to_string();
        assert!(err.contains("the model takes an input of shape [?, 2"), "{err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "tract")]
#[test]
fn convolution_graphs_are_detected() {
    use prost::Message;
    let dir = temp_dir("detect");
    for spatial in [2, 3] {
        let bytes = std::fs::read(tiny_model(&dir, spatial, &WEIGHT, &BIAS, 2)).unwrap();
        let mut proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = proto.graph.as_mut().unwrap();
        assert!(tract::has_conv(graph), "{spatial}-D");
        graph.node.retain(|n| n.op_type != "Conv");
        assert!(!tract::has_conv(graph), "{spatial}-D without its Conv");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The ONNX Runtime library of the project's environment; its absence fails the ort tests
/// unless `PRISM_SKIP_ORT=1` says this machine has none on purpose.
#[cfg(feature = "ort")]
fn ort_available() -> bool {
    if std::env::var_os("PRISM_SKIP_ORT").is_some_and(|v| v == "1") {
        eprintln!("PRISM_SKIP_ORT=1: ONNX Runtime tests skipped");
        return false;
    }
    assert!(ort_library().is_some(), "no ONNX Runtime library found: run scripts/setup.sh (or set PRISM_SKIP_ORT=1)");
    true
}

#[cfg(all(feature = "ort", feature = "tract"))]
#[test]
fn ort_equals_tract_and_the_hand_computation() {
    if !ort_available() {
        return;
    }
    let dir = temp_dir("ort");
    for spatial in [2, 3] {
        let model = tiny_model(&dir, spatial, &WEIGHT, &BIAS, 2);
        let mut ort = load(&model, &options(EngineChoice::Ort, Provider::Cpu)).unwrap();
        assert_eq!((ort.engine(), ort.provider()), ("ort", "cpu"));
        let mut tract = load(&model, &options(EngineChoice::Tract, Provider::Auto)).unwrap();
        let x = input(3, spatial);
        let a = ort.run(x.view()).unwrap();
        let b = tract.run(x.view()).unwrap();
        check_outputs("ort", &a, &x);
        for ((_, a), (_, b)) in a.iter().zip(&b) {
            assert_close("ort vs tract", a, b);
        }
        // Without the arena, the same answers.
        let low = EngineOptions { low_memory: true, ..options(EngineChoice::Ort, Provider::Cpu) };
        check_outputs("ort without its arena", &load(&model, &low).unwrap().run(x.view()).unwrap(), &x);
        // Auto picks ort when its library is there.
        let auto = load(&model, &options(EngineChoice::Auto, Provider::Cpu)).unwrap();
        assert_eq!(auto.engine(), "ort");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A provider that is not there is an error naming it, never a silent run on the CPU.
#[cfg(all(feature = "ort", feature = "tract"))]
#[test]
fn gpu_providers_fail_loudly_or_really_run() {
    if !ort_available() {
        return;
    }
    let dir = temp_dir("providers");
    let model = tiny_model(&dir, 2, &WEIGHT, &BIAS, 2);
    for (provider, name, label) in [(Provider::Cuda, "cuda", "CUDA"), (Provider::TensorRt, "tensorrt", "TensorRT")] {
        match load(&model, &options(EngineChoice::Ort, provider)) {
            Ok(engine) => assert_eq!(engine.provider(), name, "{provider} asked, {} registered", engine.provider()),
            Err(e) => {
                let e = e.to_string();
                eprintln!("{provider}: {e}");
                assert!(e.contains(&format!("{label} execution provider is not available")), "{e}");
                assert!(e.contains("onnxruntime-gpu 1.31.1") && !e.contains('\n'), "{e}");
            }
        }
    }
    let mut auto = load(&model, &options(EngineChoice::Ort, Provider::Auto)).unwrap();
    let x = input(2, 2);
    check_outputs("ort auto", &auto.run(x.view()).unwrap(), &x);
    if auto.provider() == "cpu" {
        let notes = auto.notes().join(" | ");
        assert!(notes.contains("TensorRT") && notes.contains("CUDA"), "fallbacks not reported: {notes}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Native messages become one line, without where in ONNX Runtime's sources they were raised.
#[test]
fn native_messages_are_one_line_and_say_what_happened() {
    let ort = "/onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:2043 onnxruntime::Provider& \
               onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load library \
               libonnxruntime_providers_tensorrt.so with error: libcublas.so.13: cannot open shared object file";
    assert_eq!(
        one_line(ort),
        "Failed to load library libonnxruntime_providers_tensorrt.so with error: libcublas.so.13: cannot open shared object file"
    );
    assert_eq!(one_line("first\n\n  second : with : colons\n"), "first; second : with : colons");
}

/// tract has no GPU provider: asking for one with it is an error, not a run on the CPU.
#[cfg(feature = "tract")]
#[test]
fn tract_with_a_gpu_provider_is_an_error() {
    let dir = temp_dir("tract-gpu");
    let model = tiny_model(&dir, 2, &WEIGHT, &BIAS, 2);
    for provider in [Provider::Cuda, Provider::TensorRt] {
        let err =
            load(&model, &options(EngineChoice::Tract, provider)).err().expect("tract with a GPU provider").to_string();
        assert!(err.contains(&format!("`{provider}` needs the ort engine")), "{err}");
    }
    assert_eq!(load(&model, &options(EngineChoice::Tract, Provider::Cpu)).unwrap().engine(), "tract");
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "ort")]
#[test]
fn a_missing_or_broken_library_is_an_error() {
    let dir = temp_dir("missing-lib");
    let model = dir.join("unused.onnx");
    std::fs::write(&model, b"not read").unwrap();
    let missing = dir.join("nowhere/libonnxruntime.so.1.31.1");
    let opts = EngineOptions { engine: EngineChoice::Ort, ort_library: Some(missing.clone()), ..Default::default() };
    let err = load(&model, &opts).err().expect("a missing library is an error").to_string();
    assert!(err.contains(&missing.display().to_string()) && err.contains("scripts/setup.sh"), "{err}");
    assert!(err.contains("ORT_DYLIB_PATH") && !err.contains('\n'), "{err}");

    // A file that is not a shared library: an error naming it (or, when another test of this
    // process already loaded ONNX Runtime, an error saying so), never a panic.
    let broken = dir.join("libonnxruntime.so");
    std::fs::write(&broken, b"not an ELF file").unwrap();
    let opts = EngineOptions { ort_library: Some(broken.clone()), ..opts };
    let err = load(&model, &opts).err().expect("a broken library is an error").to_string();
    assert!(err.contains(&broken.display().to_string()), "{err}");
    assert!(err.contains("does not load") || err.contains("already loaded"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn choices_parse_and_bad_ones_are_named() {
    assert_eq!("TRT".parse::<Provider>().unwrap(), Provider::TensorRt);
    assert_eq!("tract".parse::<EngineChoice>().unwrap(), EngineChoice::Tract);
    let err = "gpu".parse::<Provider>().unwrap_err().to_string();
    assert!(err.contains("`gpu`") && err.contains("tensorrt"), "{err}");
}

#[test]
fn a_missing_model_is_an_error() {
    let err = load(Path::new("/nonexistent/model.onnx"), &EngineOptions::default()).err().unwrap().to_string();
    assert!(err.contains("/nonexistent/model.onnx"), "{err}");
}

/// Found by the `onnx_tract` fuzz target (fuzz/): tract 0.23 panics ("no entry found for key")
/// on a graph output that no input, initializer or node defines. The front door refuses such a
/// model with a one-line error before tract sees it.
#[cfg(feature = "tract")]
#[test]
fn an_output_nothing_defines_is_an_error_not_a_panic() {
    use prism_onnx::pb;
    use prost::Message;

    let dir = temp_dir("undefined-output");
    let path = tiny_model(&dir, 2, &WEIGHT, &BIAS, 2);
    let mut model = pb::ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    let options = EngineOptions { engine: EngineChoice::Tract, threads: Some(1), ..EngineOptions::default() };
    let load_bytes = |name: &Path, bytes: &[u8]| load_source(Source::Memory { name, bytes }, &options);
    assert!(load_bytes(&path, &model.encode_to_vec()).is_ok());
    model.graph.as_mut().unwrap().output[1].name = "nowhere".into();
    let err = load_bytes(&path, &model.encode_to_vec()).err().unwrap().to_string();
    assert!(err.contains("graph output `nowhere` is not an input, an initializer or a node's output"), "{err}");
    // The same in a subgraph (an `If` branch whose output nothing defines).
    let branch = pb::GraphProto {
        name: "branch".into(),
        output: vec![pb::ValueInfoProto { name: "elsewhere".into(), ..Default::default() }],
        ..Default::default()
    };
    let graph = model.graph.as_mut().unwrap();
    graph.output[1].name = "s".into();
    graph.node.push(pb::NodeProto {
        op_type: "If".into(),
        input: vec!["y".into()],
        output: vec!["chosen".into()],
        attribute: vec![pb::AttributeProto { name: "then_branch".into(), g: Some(branch), ..Default::default() }],
        ..Default::default()
    });
    let err = load_bytes(&path, &model.encode_to_vec()).err().unwrap().to_string();
    assert!(err.contains("subgraph output `elsewhere`"), "{err}");
    // The file the fuzzer found: the image seed with the name of its output `probabilities` run
    // into the bytes after it.
    let found = include_bytes!("../../../fuzz/corpus/onnx_tract/found-undefined-output.onnx");
    let err = load_bytes(Path::new("found.onnx"), found).err().unwrap().to_string();
    assert!(err.contains("graph output `probabilities"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
