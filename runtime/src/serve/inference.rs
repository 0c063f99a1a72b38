//! An inference request, decoded by a transport, answered: checked against the model it names,
//! queued, run, counted; faults that say what was wrong go back to the transport, which maps
//! them to HTTP statuses and gRPC codes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ndarray::ArrayD;
use prism_runtime::protocol::{Fault, InferRequest, InferResponse};

use super::metrics::Metrics;
use super::repository::Served;

/// A model's versions being served, by number.
pub type Versions = BTreeMap<u64, Arc<Served>>;

/// What the transports share: the models, the limits, the metrics.
pub struct Server {
    pub models: BTreeMap<String, Versions>,
    pub metrics: Arc<Metrics>,
    /// Largest request, in bytes.
    pub max_request: usize,
    pub timeout: Duration,
    pub verbose: bool,
    /// Inference requests answered and refused, for the last log line.
    pub answered: AtomicU64,
    pub refused: AtomicU64,
}

impl Server {
    /// The model `name` at `version` (empty: the highest version served, as Triton chooses).
    pub fn model(&self, name: &str, version: &str) -> Result<&Arc<Served>, Fault> {
        let versions = self.models.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.models.keys().map(String::as_str).collect();
            Fault::NotFound(format!("unknown model `{name}` (served: {})", known.join(", ")))
        })?;
        let found = if version.is_empty() {
            versions.values().next_back()
        } else {
            version.parse::<u64>().ok().and_then(|v| versions.get(&v))
        };
        found.ok_or_else(|| {
            Fault::NotFound(format!(
                "model `{name}` has no version {version} (served: {})",
                self.versions(name).join(", ")
            ))
        })
    }

    /// The versions of `name` served, in ascending order.
    pub fn versions(&self, name: &str) -> Vec<String> {
        self.models.get(name).map(|v| v.keys().map(ToString::to_string).collect()).unwrap_or_default()
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
        let wanted = model.signature.check_outputs(&request.outputs)?;
        let input = model.signature.check_input(request.inputs)?;
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
            model_name: model.signature.model.clone(),
            model_version: model.version.to_string(),
            id: request.id,
            outputs,
        })
    }
}
