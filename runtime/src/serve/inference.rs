//! The protocol without its transport: an inference request checked against the model it names,
//! queued, answered; faults that say what was wrong, mapped to HTTP statuses and gRPC codes by
//! the transports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ndarray::{ArrayD, IxDyn};

use super::metrics::Metrics;
use super::repository::Served;

/// What the transports share: the models, the limits, the metrics.
pub struct Server {
    pub models: BTreeMap<String, Arc<Served>>,
    pub metrics: Arc<Metrics>,
    /// Largest request, in bytes.
    pub max_request: usize,
    pub timeout: Duration,
    pub verbose: bool,
    /// Inference requests answered and refused, for the last log line.
    pub answered: AtomicU64,
    pub refused: AtomicU64,
}

/// Why a request was not answered.
#[derive(Debug)]
pub enum Fault {
    /// Malformed, or not what the model takes (HTTP 400, INVALID_ARGUMENT).
    Invalid(String),
    /// No such model or version (HTTP 404, NOT_FOUND).
    NotFound(String),
    /// The model's queue is full (HTTP 503, RESOURCE_EXHAUSTED).
    Busy(String),
    /// Waited and ran longer than `--timeout` (HTTP 504, DEADLINE_EXCEEDED).
    Timeout(String),
    /// Larger than `--max-request-size` (HTTP 413, RESOURCE_EXHAUSTED).
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

/// An input tensor as a transport decoded it.
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

impl Server {
    /// The model `name` at `version` (empty: the one served).
    pub fn model(&self, name: &str, version: &str) -> Result<&Arc<Served>, Fault> {
        let model = self.models.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.models.keys().map(String::as_str).collect();
            Fault::NotFound(format!("unknown model `{name}` (served: {})", known.join(", ")))
        })?;
        if !version.is_empty() && version != model.version {
            return Err(Fault::NotFound(format!(
                "model `{name}` has no version {version} (served: {})",
                model.version
            )));
        }
        Ok(model)
    }

    /// Checks, queues and answers one request, and counts it.
    pub async fn infer(
        &self,
        protocol: &str,
        name: &str,
        version: &str,
        request: InferRequest,
    ) -> Result<InferResponse, Fault> {
        let start = Instant::now();
        match self.infer_uncounted(name, version, request).await {
            Ok(response) => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                self.metrics.request(name, protocol, "ok", start.elapsed());
                if self.verbose {
                    eprintln!("[serve] {protocol} infer {name}: ok in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
                }
                Ok(response)
            }
            Err(fault) => Err(self.refuse(protocol, name, fault)),
        }
    }

    /// Counts and logs a request refused, and hands the fault back.
    pub fn refuse(&self, protocol: &str, name: &str, fault: Fault) -> Fault {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.metrics.request(name, protocol, fault.kind(), Duration::ZERO);
        eprintln!("[serve] {protocol} infer {name}: {} ({fault})", fault.kind());
        fault
    }

    async fn infer_uncounted(&self, name: &str, version: &str, request: InferRequest) -> Result<InferResponse, Fault> {
        let model = self.model(name, version)?;
        let wanted = model.check_outputs(&request.outputs)?;
        let input = model.check_input(request.inputs)?;
        let reply = model.batcher.submit(input)?;
        let outputs = match tokio::time::timeout(self.timeout, reply).await {
            Err(_) => {
                return Err(Fault::Timeout(format!("no answer within {:?} (--timeout)", self.timeout)));
            }
            Ok(Err(_)) => return Err(Fault::Stopping),
            Ok(Ok(outputs)) => outputs?,
        };
        let mut outputs: BTreeMap<String, ArrayD<f32>> = outputs.into_iter().collect();
        let outputs = wanted.into_iter().filter_map(|n| outputs.remove_entry(&n)).collect();
        Ok(InferResponse {
            model_name: model.name.clone(),
            model_version: model.version.clone(),
            id: request.id,
            outputs,
        })
    }
}

impl Served {
    /// The output names asked for, all of them when none are named.
    fn check_outputs(&self, asked: &[String]) -> Result<Vec<String>, Fault> {
        if asked.is_empty() {
            return Ok(self.outputs.iter().map(|o| o.name.clone()).collect());
        }
        for name in asked {
            if !self.outputs.iter().any(|o| &o.name == name) {
                let known: Vec<&str> = self.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(Fault::Invalid(format!(
                    "model `{}` has no output `{name}` (outputs: {})",
                    self.name,
                    known.join(", ")
                )));
            }
        }
        Ok(asked.to_vec())
    }

    /// The request's one input as the array the graph takes, or what is wrong with it.
    fn check_input(&self, inputs: Vec<InputTensor>) -> Result<ArrayD<f32>, Fault> {
        let name = &self.name;
        let [input] = <[InputTensor; 1]>::try_from(inputs).map_err(|inputs| {
            Fault::Invalid(format!(
                "model `{name}` takes 1 input (`{}`), the request has {}",
                self.input.name,
                inputs.len()
            ))
        })?;
        if input.name != self.input.name {
            return Err(Fault::Invalid(format!(
                "model `{name}` has no input `{}` (its input is `{}`)",
                input.name, self.input.name
            )));
        }
        if input.datatype != "FP32" {
            return Err(Fault::Invalid(format!(
                "input `{}`: datatype {} given, the model takes FP32",
                input.name, input.datatype
            )));
        }
        let expected = self.input_shape();
        let fits = input.shape.len() == expected.len()
            && input.shape.iter().zip(&expected).all(|(&given, &want)| given >= 1 && (want == -1 || given == want));
        let rows = input.shape.first().copied().unwrap_or(1);
        if !fits || (self.max_batch > 0 && rows > self.max_batch as i64) {
            return Err(Fault::Invalid(format!(
                "input `{}`: shape {:?} does not fit the model's {:?}{}",
                input.name,
                input.shape,
                expected,
                if self.max_batch > 0 { format!(" (batch at most {})", self.max_batch) } else { String::new() }
            )));
        }
        let shape: Vec<usize> = input.shape.iter().map(|&d| d as usize).collect();
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if count != Some(input.data.len()) {
            return Err(Fault::Invalid(format!(
                "input `{}`: {} values given for shape {:?}",
                input.name,
                input.data.len(),
                input.shape
            )));
        }
        ArrayD::from_shape_vec(IxDyn(&shape), input.data)
            .map_err(|e| Fault::Invalid(format!("input `{}`: {e}", input.name)))
    }
}
