//! Inference requests as clients send them, decoded: from an HTTP body (JSON, with or without
//! the binary tensor data extension that Triton's clients use by default) and from a gRPC
//! `ModelInferRequest`; and the faults that name what was wrong.

use ndarray::ArrayD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::proto::ModelInferRequest;

/// Why a request was not answered.
#[derive(Debug)]
pub enum Fault {
    /// Malformed, or not what the model takes (HTTP 400, INVALID_ARGUMENT).
    Invalid(String),
    /// No such model or version (HTTP 404, NOT_FOUND).
    NotFound(String),
    /// The model's queue is full (HTTP 503, RESOURCE_EXHAUSTED).
    Busy(String),
    /// Waited and ran longer than the server allows (HTTP 504, DEADLINE_EXCEEDED).
    Timeout(String),
    /// Larger than the server takes (HTTP 413, RESOURCE_EXHAUSTED).
    TooLarge(String),
    /// The server is stopping (HTTP 503, UNAVAILABLE).
    Stopping,
    /// The engine failed (HTTP 500, INTERNAL).
    Internal(String),
}

impl Fault {
    /// A short name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Invalid(_) => "invalid",
            Fault::NotFound(_) => "not_found",
            Fault::Busy(_) => "busy",
            Fault::Timeout(_) => "timeout",
            Fault::TooLarge(_) => "too_large",
            Fault::Stopping => "stopping",
            Fault::Internal(_) => "internal",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Invalid(m)
            | Fault::NotFound(m)
            | Fault::Busy(m)
            | Fault::Timeout(m)
            | Fault::TooLarge(m)
            | Fault::Internal(m) => f.write_str(m),
            Fault::Stopping => f.write_str("the server is stopping"),
        }
    }
}

impl std::error::Error for Fault {}

/// An input tensor as a transport decoded it. `data` holds the values of an FP32 tensor; for
/// any other datatype it is empty (the datatype is refused by name when checked against the
/// model).
#[derive(Debug)]
pub struct InputTensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// A request as a transport decoded it.
#[derive(Debug, Default)]
pub struct InferRequest {
    pub id: String,
    pub inputs: Vec<InputTensor>,
    /// Outputs asked for by name; empty: all of them.
    pub outputs: Vec<String>,
}

/// The answer: the outputs asked for, in the order asked (or the graph's).
#[derive(Debug)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    pub id: String,
    pub outputs: Vec<(String, ArrayD<f32>)>,
}

/// The bytes of a little-endian FP32 tensor, as floats.
///
/// # Errors
/// A length that is not a whole number of floats.
pub fn floats_from_bytes(name: &str, bytes: &[u8]) -> Result<Vec<f32>, Fault> {
    if bytes.len() % 4 != 0 {
        return Err(Fault::Invalid(format!(
            "input `{name}`: {} bytes of FP32 data is not a whole number of floats",
            bytes.len()
        )));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// The little-endian bytes of a tensor.
pub fn bytes_of(tensor: &ArrayD<f32>) -> Vec<u8> {
    tensor.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[derive(Deserialize)]
struct JsonRequest {
    #[serde(default)]
    id: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<JsonInput>,
    #[serde(default)]
    outputs: Vec<JsonOutput>,
}

#[derive(Deserialize)]
struct JsonInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    data: Option<Value>,
}

#[derive(Deserialize)]
struct JsonOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// Which outputs an HTTP client wants back as binary data: all (`binary_data_output`), or
/// those it asked so by name.
#[derive(Debug, Default)]
pub struct BinaryOutputs {
    pub all: bool,
    pub names: Vec<String>,
}

impl BinaryOutputs {
    pub fn wants(&self, name: &str) -> bool {
        self.all || self.names.iter().any(|n| n == name)
    }
}

/// Decodes an HTTP inference body. `header_length` is the `Inference-Header-Content-Length`
/// header's value when the request has one: the body is then that many bytes of JSON followed
/// by the inputs' raw bytes, each input's size in its `binary_data_size` parameter; without it
/// the whole body is JSON.
///
/// # Errors
/// [`Fault::Invalid`] naming the problem: a header length that is not a length within the body,
/// JSON that is not the protocol's, values that are not numbers, binary sizes that do not add
/// up to the bytes sent.
pub fn decode_http_body(header_length: Option<&[u8]>, body: &[u8]) -> Result<(InferRequest, BinaryOutputs), Fault> {
    const HEADER: &str = "Inference-Header-Content-Length";
    let json_length = match header_length {
        None => body.len(),
        Some(value) => std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n <= body.len())
            .ok_or_else(|| {
                Fault::Invalid(format!("{HEADER} is not a length within the body's {} bytes", body.len()))
            })?,
    };
    let (json, mut binary) = body.split_at(json_length);
    let request: JsonRequest = serde_json::from_slice(json)
        .map_err(|e| Fault::Invalid(format!("the request is not the protocol's JSON: {e}")))?;
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let data = match (input.parameters.get("binary_data_size"), &input.data) {
            (Some(size), _) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .filter(|&s| s <= binary.len())
                    .ok_or_else(|| {
                        Fault::Invalid(format!("input `{}`: binary_data_size exceeds the binary data sent", input.name))
                    })?;
                let (bytes, rest) = binary.split_at(size);
                binary = rest;
                if input.datatype == "FP32" { floats_from_bytes(&input.name, bytes)? } else { Vec::new() }
            }
            (None, Some(data)) => {
                let mut values = Vec::new();
                flatten(&input.name, data, &mut values)?;
                values
            }
            (None, None) => {
                return Err(Fault::Invalid(format!("input `{}` has neither data nor binary_data_size", input.name)));
            }
        };
        inputs.push(InputTensor { name: input.name, datatype: input.datatype, shape: input.shape, data });
    }
    if !binary.is_empty() {
        return Err(Fault::Invalid(format!(
            "{} bytes of binary data follow the inputs' binary_data_size",
            binary.len()
        )));
    }
    let binary = BinaryOutputs {
        all: request.parameters.get("binary_data_output").and_then(Value::as_bool).unwrap_or(false),
        names: request
            .outputs
            .iter()
            .filter(|o| o.parameters.get("binary_data").and_then(Value::as_bool).unwrap_or(false))
            .map(|o| o.name.clone())
            .collect(),
    };
    let outputs = request.outputs.into_iter().map(|o| o.name).collect();
    Ok((InferRequest { id: request.id, inputs, outputs }, binary))
}

/// The values of a JSON tensor, flat or nested, in row-major order.
fn flatten(name: &str, data: &Value, out: &mut Vec<f32>) -> Result<(), Fault> {
    match data {
        Value::Array(items) => items.iter().try_for_each(|item| flatten(name, item, out)),
        Value::Number(n) => {
            out.push(n.as_f64().unwrap_or(f64::NAN) as f32);
            Ok(())
        }
        other => Err(Fault::Invalid(format!("input `{name}`: `{other}` is not a number"))),
    }
}

/// Decodes a gRPC inference request: tensors in `raw_input_contents` (what Triton's clients
/// send) or in each input's `contents`.
///
/// # Errors
/// [`Fault::Invalid`]: raw contents that do not match the inputs one to one, an input without
/// contents, raw FP32 bytes that are not whole floats.
pub fn decode_grpc(request: ModelInferRequest) -> Result<InferRequest, Fault> {
    let raw = request.raw_input_contents;
    if !raw.is_empty() && raw.len() != request.inputs.len() {
        return Err(Fault::Invalid(format!(
            "{} inputs but {} raw_input_contents: there must be one per input, or none",
            request.inputs.len(),
            raw.len()
        )));
    }
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for (i, input) in request.inputs.into_iter().enumerate() {
        let data = match (raw.get(i), input.contents) {
            (Some(bytes), _) if input.datatype == "FP32" => floats_from_bytes(&input.name, bytes)?,
            (Some(_), _) => Vec::new(),
            (None, Some(contents)) => contents.fp32_contents,
            (None, None) => return Err(Fault::Invalid(format!("input `{}` has no contents", input.name))),
        };
        inputs.push(InputTensor { name: input.name, datatype: input.datatype, shape: input.shape, data });
    }
    let outputs = request.outputs.into_iter().map(|o| o.name).collect();
    Ok(InferRequest { id: request.id, inputs, outputs })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_and_binary_inputs_decode_alike() {
        let json = br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4.5]]}]}"#;
        let (plain, _) = decode_http_body(None, json).unwrap();
        let header = br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}],
                          "outputs":[{"name":"y","parameters":{"binary_data":true}}]}"#;
        let mut body = header.to_vec();
        body.extend([1.0f32, 2.0, 3.0, 4.5].iter().flat_map(|v| v.to_le_bytes()));
        let (binary, wants) = decode_http_body(Some(header.len().to_string().as_bytes()), &body).unwrap();
        assert_eq!(plain.inputs[0].data, vec![1.0, 2.0, 3.0, 4.5]);
        assert_eq!(binary.inputs[0].data, plain.inputs[0].data);
        assert!(wants.wants("y") && !wants.wants("z"));
    }

    #[test]
    fn malformed_bodies_are_named() {
        // A body, its Inference-Header-Content-Length, what the fault must say.
        type Case = (&'static [u8], Option<&'static [u8]>, &'static str);
        let cases: [Case; 6] = [
            (b"{", None, "not the protocol's JSON"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]}"#, None, "is not a number"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#, None, "neither data nor"),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":8}}]}abcd"#,
                Some(b"91"),
                "exceeds",
            ),
            (br#"{"inputs":[]}"#, Some(b"99"), "not a length"),
            (br#"{"inputs":[]}"#, Some(&[0xff, b'1']), "not a length"),
        ];
        for (body, length, expected) in cases {
            let error = decode_http_body(length, body).err().unwrap().to_string();
            assert!(error.contains(expected), "{}: {error}", String::from_utf8_lossy(body));
        }
    }
}
