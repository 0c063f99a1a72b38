//! What `/metrics` answers, in Prometheus' text format (prometheus-client): requests by model,
//! protocol and outcome, and per model the sizes of the batches run, the time requests waited
//! in the queue, the time the engine took per batch, the time from request to answer.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    protocol: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

type Histograms = Family<ModelLabel, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 50 µs to about 26 s.
    Histogram::new(exponential_buckets(5e-5, 2.0, 20))
}

fn rows() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// The server's counters and histograms.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms,
    queue_seconds: Histograms,
    compute_seconds: Histograms,
    batch_size: Histograms,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("prism");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Histograms::new_with_constructor(seconds as fn() -> Histogram);
        let queue_seconds = Histograms::new_with_constructor(seconds as fn() -> Histogram);
        let compute_seconds = Histograms::new_with_constructor(seconds as fn() -> Histogram);
        let batch_size = Histograms::new_with_constructor(rows as fn() -> Histogram);
        registry.register("inference_requests", "Inference requests by outcome (ok or the fault)", requests.clone());
        registry.register("request_seconds", "Time from a request's arrival to its answer", request_seconds.clone());
        registry.register("queue_seconds", "Time a request waited for an engine", queue_seconds.clone());
        registry.register("compute_seconds", "Time an engine took for a batch", compute_seconds.clone());
        registry.register("batch_size", "Rows in each batch run", batch_size.clone());
        Metrics { registry, requests, request_seconds, queue_seconds, compute_seconds, batch_size }
    }
}

impl Metrics {
    /// One inference request answered (`outcome` "ok") or refused (the fault's kind).
    pub fn request(&self, model: &str, protocol: &str, outcome: &str, took: Duration) {
        let labels = RequestLabels { model: model.into(), protocol: protocol.into(), outcome: outcome.into() };
        self.requests.get_or_create(&labels).inc();
        if outcome == "ok" {
            self.request_seconds.get_or_create(&ModelLabel { model: model.into() }).observe(took.as_secs_f64());
        }
    }

    /// A request taken from the queue after waiting `waited`.
    pub fn queued(&self, model: &str, waited: Duration) {
        self.queue_seconds.get_or_create(&ModelLabel { model: model.into() }).observe(waited.as_secs_f64());
    }

    /// A batch of `rows` run in `took`.
    pub fn batch(&self, model: &str, rows: usize, took: Duration) {
        let label = ModelLabel { model: model.into() };
        self.batch_size.get_or_create(&label).observe(rows as f64);
        self.compute_seconds.get_or_create(&label).observe(took.as_secs_f64());
    }

    /// The text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
