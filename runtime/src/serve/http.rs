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
use prism_runtime::protocol::{BinaryOutputs, Fault, InferResponse, bytes_of, config, decode_http_body};
use serde_json::{Value, json};

use super::inference::Server;
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
    let metadata = model.metadata(server.versions(&param(&params, "name")));
    let tensors = |tensors: &[prism_runtime::protocol::proto::model_metadata_response::TensorMetadata]| -> Vec<Value> {
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
        Ok(body) => decode_http_body(headers.get(HEADER_LENGTH).map(HeaderValue::as_bytes), &body),
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

fn encode(response: InferResponse, binary: &BinaryOutputs) -> Response {
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
