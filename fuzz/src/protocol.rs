//! `runtime serve`'s parsers of what clients send (the library's `protocol`): HTTP bodies, gRPC
//! messages, and the repository's `config.pbtxt`, with the model's signature check after them.

use prism_onnx::{Dim, Message, OnnxInfo, TensorInfo};
use prism_runtime::protocol::config::{self, Defaults};
use prism_runtime::protocol::proto::{InferTensorContents, ModelInferRequest};
use prism_runtime::protocol::{Fault, InferRequest, InputTensor, Signature, Spec, decode_grpc, decode_http_body};
use serde_json::json;

/// The model requests are checked against: input `x` of 2 x 3 in batches of up to 4, outputs
/// `y` and `z`.
fn signature() -> Signature {
    let spec = |name: &str, dims: Vec<i64>| Spec { name: name.into(), dims };
    Signature {
        model: "m".into(),
        input: spec("x", vec![2, 3]),
        outputs: vec![spec("y", vec![5]), spec("z", vec![-1])],
        max_batch: 4,
    }
}

/// A decoded request checked against [`signature`]: an array or a fault; an accepted input has
/// the shape the request gave, within the model's, and every value.
fn check(request: InferRequest) {
    let signature = signature();
    let _ = signature.check_outputs(&request.outputs);
    let given: Vec<(Vec<i64>, usize)> = request.inputs.iter().map(|i| (i.shape.clone(), i.data.len())).collect();
    if let Ok(array) = signature.check_input(request.inputs) {
        let (shape, values) = &given[0];
        let shape: Vec<usize> =
            shape.iter().map(|&d| usize::try_from(d).expect("an accepted dimension is positive")).collect();
        assert_eq!(array.shape(), shape.as_slice(), "the array's shape is not the request's");
        assert_eq!(array.len(), *values, "values were lost or made up");
        assert!(
            shape[0] >= 1 && shape[0] <= signature.max_batch && shape[1..] == [2, 3],
            "a shape the model does not take was accepted"
        );
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// An input sent the other two ways (binary data; JSON where every value is finite) decodes to
/// the same floats.
fn other_ways_agree(input: &InputTensor) {
    let bytes: Vec<u8> = input.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = json!({ "inputs": [{
        "name": input.name, "shape": input.shape, "datatype": "FP32",
        "parameters": { "binary_data_size": bytes.len() },
    }]})
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(&bytes);
    let (binary, _) = decode_http_body(Some(header.len().to_string().as_bytes()), &body)
        .expect("binary data of whole floats decodes");
    assert!(same_bits(&binary.inputs[0].data, &input.data), "the binary data extension changed values");
    if input.data.iter().all(|v| v.is_finite()) {
        let body = json!({ "inputs": [{
            "name": input.name, "shape": input.shape, "datatype": "FP32", "data": input.data,
        }]})
        .to_string();
        let (plain, _) = decode_http_body(None, body.as_bytes()).expect("JSON numbers decode");
        assert!(same_bits(&plain.inputs[0].data, &input.data), "JSON changed values");
    }
}

/// An HTTP inference body. An input that starts with digits and a newline gives them as the
/// `Inference-Header-Content-Length` header; otherwise the request has none.
pub fn http(bytes: &[u8]) {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let (header, body) = match bytes.get(digits) {
        Some(b'\n') if digits > 0 => (Some(&bytes[..digits]), &bytes[digits + 1..]),
        _ => (None, bytes),
    };
    match decode_http_body(header, body) {
        Ok((request, _)) => {
            request.inputs.iter().filter(|i| i.datatype == "FP32").for_each(other_ways_agree);
            check(request);
        }
        Err(fault) => assert!(matches!(fault, Fault::Invalid(_)), "a malformed body is not a client error: {fault:?}"),
    }
}

/// A gRPC `ModelInferRequest` as prost decodes it from the wire. Where every input is FP32 and
/// sent as raw contents, the same values sent as typed contents decode alike.
pub fn grpc(bytes: &[u8]) {
    let Ok(message) = ModelInferRequest::decode(bytes) else { return };
    let all_raw_fp32 = !message.raw_input_contents.is_empty() && message.inputs.iter().all(|i| i.datatype == "FP32");
    let mut typed = message.clone();
    match decode_grpc(message) {
        Ok(request) => {
            if all_raw_fp32 {
                typed.raw_input_contents.clear();
                for (tensor, decoded) in typed.inputs.iter_mut().zip(&request.inputs) {
                    tensor.contents =
                        Some(InferTensorContents { fp32_contents: decoded.data.clone(), ..Default::default() });
                }
                let again = decode_grpc(typed).expect("typed contents of the same values decode");
                for (a, b) in again.inputs.iter().zip(&request.inputs) {
                    assert!(same_bits(&a.data, &b.data), "raw and typed contents disagree");
                }
            }
            check(request);
        }
        Err(fault) => {
            assert!(matches!(fault, Fault::Invalid(_)), "a malformed message is not a client error: {fault:?}")
        }
    }
}

/// A `config.pbtxt`: parsed, answered as JSON (which must work for any configuration that
/// parses), completed against a graph with a free batch dimension and one without; its
/// instance groups placed (each at least one engine, at most 256 in all) and its version policy
/// applied to versions 1, 2 and 7 (some of those, in order, or an error).
pub fn config_pbtxt(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let Ok(given) = config::parse(text) else { return };
    config::to_json(&given).expect("a configuration that parses answers as JSON");
    let defaults = Defaults { max_batch: 8, delay: std::time::Duration::ZERO, instances: 1 };
    let tensor = |name: &str, shape: Vec<Dim>| TensorInfo { name: name.into(), elem_type: "float".into(), shape };
    let batch = || Dim::Symbolic("N".into());
    for first in [batch(), Dim::Fixed(1)] {
        let graph = OnnxInfo {
            inputs: vec![tensor("x", vec![first.clone(), Dim::Fixed(2), Dim::Fixed(3)])],
            outputs: vec![tensor("y", vec![first, Dim::Fixed(5)])],
            ..Default::default()
        };
        if let Ok(effective) = config::effective("m", Some(given.clone()), &graph, &defaults) {
            assert_eq!(effective.signature.max_batch, effective.policy.max_batch);
            config::to_json(&effective.config).expect("the configuration in effect answers as JSON");
        }
    }
    if let Ok(placements) = config::placements(Some(&given), &defaults) {
        let total: usize = placements.iter().map(|p| p.count).sum();
        assert!(placements.iter().all(|p| p.count >= 1) && total <= config::MAX_INSTANCES, "{placements:?}");
    }
    let available = [1, 2, 7];
    if let Ok(served) = config::served_versions(Some(&given), &available) {
        assert!(!served.is_empty() && served.iter().all(|v| available.contains(v)), "{served:?}");
        assert!(served.windows(2).all(|w| w[0] < w[1]), "versions out of order: {served:?}");
    }
}
