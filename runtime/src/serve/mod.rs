//! `runtime serve`: models behind the Open Inference Protocol (KServe v2, which Triton, KServe and
//! Seldon speak), over HTTP/REST and gRPC, with dynamic batching.
//!
//! - The protocol without its transport is in the library ([`prism_runtime::protocol`]): the
//!   messages, requests decoded from bytes and checked against the model, faults that name the
//!   problem, `config.pbtxt`.
//! - [`repository`] finds the models (Triton's repository layout, or files named on the command
//!   line), reads each `config.pbtxt` and fills in what it leaves out from the ONNX file itself.
//! - [`batcher`] queues each model's requests (bounded) and runs them in batches on a pool of
//!   engines, one thread per instance.
//! - [`inference`] answers a decoded request: the model it names, its queue, its deadline;
//!   [`http`] (axum) and [`grpc`] (tonic, service written from the protocol's documentation in
//!   `proto/inference.proto`) put it on the wire.
//! - [`metrics`] counts requests, batch sizes, queue and compute time (prometheus-client).
//!
//! Crates: tokio for the network, axum for HTTP (routing, body limits and graceful shutdown
//! without writing any of it), tonic and prost for gRPC, prost-reflect for config.pbtxt
//! (protobuf's text format) and for answering the configuration as JSON, prometheus-client for
//! the metrics' text format. The engines run on plain threads, outside tokio's workers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::cli::{EngineArgs, positive};

mod batcher;
mod grpc;
mod http;
mod inference;
mod metrics;
mod repository;

/// The gRPC service of `proto/inference.proto`, on the library's messages.
#[allow(clippy::all, clippy::pedantic, unreachable_pub)]
mod service {
    include!(concat!(env!("OUT_DIR"), "/service/inference.rs"));
}

use inference::Server;

const EXAMPLES: &str = "\
Examples:
  runtime serve --model runs/hybridsn/hybridsn.onnx
  runtime serve --model-repository triton-repo --http-port 8000 --grpc-port 8001
  curl localhost:8000/v2/models/hybridsn
  curl localhost:8000/metrics

The repository is Triton's layout, as `exporter --triton-repo` writes it:
  <DIR>/<model>/config.pbtxt          optional: max_batch_size, instance_group (KIND_CPU,
                                      KIND_GPU with gpus), dynamic_batching, version_policy
  <DIR>/<model>/<version>/model.onnx  the highest version, or those version_policy names
Ctrl-C or SIGTERM stops accepting, answers the requests in flight, then exits 0.";

/// Serve models over the Open Inference Protocol (KServe v2): HTTP/REST and gRPC, with dynamic
/// batching.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// A model repository in Triton's layout (see below).
    #[arg(long, value_name = "DIR", required_unless_present = "model")]
    pub model_repository: Option<PathBuf>,
    /// An ONNX file to serve, named by its metadata (`prism.model`) or its file stem; repeat for
    /// more. A whole-scene graph beside it (<stem>.scene.onnx) is served as <name>_scene.
    #[arg(long, value_name = "FILE", conflicts_with = "model_repository")]
    pub model: Vec<PathBuf>,
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// HTTP/REST port (0: any free port, printed at start-up).
    #[arg(long, default_value_t = 8000)]
    pub http_port: u16,
    /// gRPC port (0: any free port, printed at start-up).
    #[arg(long, default_value_t = 8001)]
    pub grpc_port: u16,
    /// Requests that may wait per model; the next one is refused at once (HTTP 503, gRPC
    /// RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = 256, value_parser = positive, help_heading = "Limits")]
    pub queue: usize,
    /// Largest request, in MiB: an HTTP body or a gRPC message.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = positive, help_heading = "Limits")]
    pub max_request_size: usize,
    /// Seconds a request may wait and run before it is answered HTTP 504 / DEADLINE_EXCEEDED.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = seconds, help_heading = "Limits")]
    pub timeout: f64,
    /// Largest batch for models without config.pbtxt (whose first dimension is free).
    #[arg(long, default_value_t = 64, value_parser = positive, help_heading = "Batching")]
    pub max_batch_size: usize,
    /// For models without config.pbtxt: how long a batch may wait for more requests, in
    /// microseconds (0: batch what is queued, wait for nothing).
    #[arg(long, value_name = "US", default_value_t = 0, help_heading = "Batching")]
    pub max_queue_delay: u64,
    /// A log line per request.
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(s),
        _ => Err("must be a positive number of seconds".into()),
    }
}

/// Loads the models, serves them until Ctrl-C or SIGTERM, then answers what is in flight.
///
/// # Errors
/// A repository or model that cannot be loaded, a port that cannot be bound.
pub fn run(args: Args) -> Result<()> {
    let metrics = Arc::new(metrics::Metrics::default());
    let models = repository::load(&args, &metrics)?;
    let server = Arc::new(Server {
        models: versions(models),
        metrics,
        max_request: args.max_request_size << 20,
        timeout: Duration::from_secs_f64(args.timeout),
        verbose: args.verbose,
        answered: 0.into(),
        refused: 0.into(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    runtime.block_on(listen(&args, Arc::clone(&server)))?;
    for model in server.models.values().flat_map(BTreeMap::values) {
        model.batcher.close();
    }
    let count = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("[serve] stopped: {} requests answered, {} refused", count(&server.answered), count(&server.refused));
    Ok(())
}

/// HTTP/2 flow-control windows of the gRPC server, per request and per connection.
const GRPC_STREAM_WINDOW: u32 = 8 << 20;
const GRPC_CONNECTION_WINDOW: u32 = 32 << 20;

/// The models by name, and each one's versions by number.
fn versions(models: Vec<repository::Served>) -> BTreeMap<String, inference::Versions> {
    let mut by_name: BTreeMap<String, inference::Versions> = BTreeMap::new();
    for model in models {
        by_name.entry(model.signature.model.clone()).or_default().insert(model.version, Arc::new(model));
    }
    by_name
}

async fn listen(args: &Args, server: Arc<Server>) -> Result<()> {
    let bind = |port: u16, what: &'static str| async move {
        TcpListener::bind((args.host, port))
            .await
            .with_context(|| format!("cannot listen for {what} on {}:{port}", args.host))
    };
    let http_listener = bind(args.http_port, "HTTP").await?;
    let grpc_listener = bind(args.grpc_port, "gRPC").await?;
    eprintln!(
        "[serve] HTTP on http://{}, gRPC on {}, {} model(s); Ctrl-C or SIGTERM to stop",
        http_listener.local_addr()?,
        grpc_listener.local_addr()?,
        server.models.len()
    );
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("[serve] stopping: no new requests, answering those in flight");
        let _ = stop.send(true);
    });
    let when = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // TCP_NODELAY on every connection: without it a small answer waits for the client's
    // delayed acknowledgement (measured: 44 ms per gRPC request from tritonclient, against 6.5
    // ms for the same model on KServe).
    let http_listener = http_listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let http =
        axum::serve(http_listener, http::router(Arc::clone(&server))).with_graceful_shutdown(when(stopping.clone()));
    let grpc_incoming = tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
    // HTTP/2's default 64 KiB window would make a client sending one HybridSN window (75 KB)
    // wait a round trip for more credit halfway through every request; windows that hold a
    // request of several MB whole avoid that.
    let grpc = tonic::transport::Server::builder()
        .initial_stream_window_size(GRPC_STREAM_WINDOW)
        .initial_connection_window_size(GRPC_CONNECTION_WINDOW)
        .add_service(grpc::service(Arc::clone(&server)))
        .serve_with_incoming_shutdown(grpc_incoming, when(stopping));
    let (http, grpc) = tokio::join!(http, grpc);
    http.context("HTTP server failed")?;
    grpc.context("gRPC server failed")?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
