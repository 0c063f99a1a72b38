//! The protocol's HTTP/REST endpoints (axum), with the binary tensor data extension that
//! Triton's clients use by default: a body of `Inference-Header-Content-Length` bytes of JSON
//! followed by the tensors' raw bytes, each input's size in its `binary_data_size` parameter.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config;
use super::inference::{Fault, InferRequest, InferResponse, InputTensor, Server, bytes_of, floats_from_bytes};
use super::repository::Served;

const HEADER_LENGTH: &str = "inference-header-content-length";

/// The routes, on `server`.
pub fn router(server: Arc<Server>) -> axum::Router {
    let limit = server.max_request;
    axum::Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(|| async { StatusCode::OK }))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready))
        .route("/v2/models/{name}/config", get(model_config))
        .route("/v2/models/{name}/versions/{version}/config", get(model_config))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            fault(Fault::NotFound("no such endpoint (see the Open Inference Protocol's HTTP/REST paths)".into()))
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(server)
}

/// The protocol's error answer: a status and `{"error": "..."}`.
fn fault(fault: Fault) -> Response {
    let status = match fault {
        Fault::Invalid(_) => StatusCode::BAD_REQUEST,
        Fault::NotFound(_) => StatusCode::NOT_FOUND,
        Fault::Busy(_) | Fault::Stopping => StatusCode::SERVICE_UNAVAILABLE,
        Fault::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        Fault::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Fault::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({ "error": fault.to_string() }))).into_response()
}

async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": "prism",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "model_configuration"],
    }))
}

/// The path's parameters: `{name}`, and `{version}` when the path has one.
type ModelPath = Path<HashMap<String, String>>;

fn param(params: &HashMap<String, String>, key: &str) -> String {
    params.get(key).cloned().unwrap_or_default()
}

/// The model a path names.
fn named<'a>(server: &'a Server, params: &HashMap<String, String>) -> Result<&'a Arc<Served>, Fault> {
    server.model(&param(params, "name"), &param(params, "version"))
}

async fn model_metadata(State(server): State<Arc<Server>>, Path(params): ModelPath) -> Response {
    let model = match named(&server, &params) {
        Ok(model) => model,
        Err(e) => return fault(e),
    };
    let metadata = model.metadata();
    let tensors = |tensors: &[super::proto::model_metadata_response::TensorMetadata]| -> Vec<Value> {
        tensors.iter().map(|t| json!({ "name": t.name, "datatype": t.datatype, "shape": t.shape })).collect()
    };
    Json(json!({
        "name": metadata.name,
        "versions": metadata.versions,
        "platform": metadata.platform,
        "inputs": tensors(&metadata.inputs),
        "outputs": tensors(&metadata.outputs),
    }))
    .into_response()
}

async fn model_ready(State(server): State<Arc<Server>>, Path(params): ModelPath) -> Response {
    match named(&server, &params) {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => fault(e),
    }
}

async fn model_config(State(server): State<Arc<Server>>, Path(params): ModelPath) -> Response {
    let json =
        named(&server, &params).and_then(|m| config::to_json(&m.config).map_err(|e| Fault::Internal(e.to_string())));
    match json {
        Ok(json) => Json(json).into_response(),
        Err(e) => fault(e),
    }
}

async fn metrics(State(server): State<Arc<Server>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], server.metrics.encode()).into_response()
}

async fn infer(
    State(server): State<Arc<Server>>,
    Path(params): ModelPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (name, version) = (param(&params, "name"), param(&params, "version"));
    let decoded = match body {
        Ok(body) => decode(&headers, &body),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Fault::TooLarge(format!(
            "the request is larger than {} MiB (--max-request-size)",
            server.max_request >> 20
        ))),
        Err(e) => Err(Fault::Invalid(format!("cannot read the request body: {e}"))),
    };
    let (request, binary) = match decoded {
        Ok(decoded) => decoded,
        Err(e) => return fault(server.refuse("http", &name, e)),
    };
    match server.infer("http", &name, &version, request).await {
        Ok(response) => encode(response, &binary),
        Err(e) => fault(e),
    }
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

/// Which outputs go back as binary data: all (`binary_data_output`), or those asked so.
struct Binary {
    all: bool,
    names: Vec<String>,
}

impl Binary {
    fn wants(&self, name: &str) -> bool {
        self.all || self.names.iter().any(|n| n == name)
    }
}

fn decode(headers: &HeaderMap, body: &[u8]) -> Result<(InferRequest, Binary), Fault> {
    let json_length = match headers.get(HEADER_LENGTH) {
        None => body.len(),
        Some(value) => {
            value.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n <= body.len()).ok_or_else(
                || Fault::Invalid(format!("{HEADER_LENGTH} is not a length within the body's {} bytes", body.len())),
            )?
        }
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
                if input.datatype != "FP32" {
                    Vec::new() // the datatype is refused by name when checked against the model
                } else {
                    floats_from_bytes(&input.name, bytes)?
                }
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
    let binary = Binary {
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

fn encode(response: InferResponse, binary: &Binary) -> Response {
    let mut blobs: Vec<u8> = Vec::new();
    let outputs: Vec<Value> = response
        .outputs
        .iter()
        .map(|(name, value)| {
            let mut tensor = json!({ "name": name, "datatype": "FP32", "shape": value.shape() });
            if binary.wants(name) {
                let bytes = bytes_of(value);
                tensor["parameters"] = json!({ "binary_data_size": bytes.len() });
                blobs.extend(bytes);
            } else {
                tensor["data"] = value.iter().copied().collect::<Vec<f32>>().into();
            }
            tensor
        })
        .collect();
    let mut header = json!({
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    });
    if !response.id.is_empty() {
        header["id"] = response.id.into();
    }
    let header = header.to_string();
    if blobs.is_empty() {
        return ([(header::CONTENT_TYPE, "application/json")], header).into_response();
    }
    let length = HeaderValue::from(header.len());
    let mut body = header.into_bytes();
    body.extend(blobs);
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::HeaderName::from_static(HEADER_LENGTH), length),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(length: usize) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_LENGTH, HeaderValue::from(length));
        headers
    }

    #[test]
    fn json_and_binary_inputs_decode_alike() {
        let json = br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4.5]]}]}"#;
        let (plain, _) = decode(&HeaderMap::new(), json).unwrap();
        let header = br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}],
                          "outputs":[{"name":"y","parameters":{"binary_data":true}}]}"#;
        let mut body = header.to_vec();
        body.extend([1.0f32, 2.0, 3.0, 4.5].iter().flat_map(|v| v.to_le_bytes()));
        let (binary, wants) = decode(&headers(header.len()), &body).unwrap();
        assert_eq!(plain.inputs[0].data, vec![1.0, 2.0, 3.0, 4.5]);
        assert_eq!(binary.inputs[0].data, plain.inputs[0].data);
        assert!(wants.wants("y") && !wants.wants("z"));
    }

    #[test]
    fn malformed_bodies_are_named() {
        let cases: [(&[u8], Option<usize>, &str); 5] = [
            (b"{", None, "not the protocol's JSON"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]}"#, None, "is not a number"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#, None, "neither data nor"),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":8}}]}abcd"#,
                Some(91),
                "exceeds",
            ),
            (br#"{"inputs":[]}"#, Some(99), "not a length"),
        ];
        for (body, length, expected) in cases {
            let headers = length.map(headers).unwrap_or_default();
            let error = decode(&headers, body).err().unwrap().to_string();
            assert!(error.contains(expected), "{}: {error}", String::from_utf8_lossy(body));
        }
    }
}
