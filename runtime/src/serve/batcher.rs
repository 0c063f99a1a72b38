//! Dynamic batching: a bounded queue per model, and one thread per engine instance that takes
//! the requests waiting (up to the largest batch, a preferred size, or the queue delay), runs
//! them as one batch and hands each its rows back.
//!
//! The queue is a `std::sync::mpsc::sync_channel`: a full one refuses at once (`try_send`), and
//! the threads block on it outside tokio. The answers go back through tokio's oneshot channels;
//! a request whose client has gone (or timed out) is dropped before it is run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use ndarray::{ArrayD, ArrayViewD, Axis, Slice, concatenate};
use prism_runtime::model::Model;
use prism_runtime::protocol::Fault;
use prism_runtime::protocol::config::Policy;
use tokio::sync::oneshot;

use super::metrics::Metrics;

type Outputs = Vec<(String, ArrayD<f32>)>;
type Reply = oneshot::Sender<Result<Outputs, Fault>>;

struct Job {
    input: ArrayD<f32>,
    reply: Reply,
    queued: Instant,
}

impl Job {
    fn rows(&self) -> usize {
        self.input.shape().first().copied().unwrap_or(1)
    }

    /// Two requests go in one batch when all but their first dimensions agree.
    fn stacks_with(&self, other: &Job) -> bool {
        self.input.shape().get(1..) == other.input.shape().get(1..)
    }
}

/// A model's queue and the threads that empty it.
pub struct Batcher {
    queue: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    capacity: usize,
}

impl Batcher {
    /// Starts one thread per instance, each running its model (instances of one group share a
    /// model, whose pool holds as many engines).
    ///
    /// # Errors
    /// The system refuses a thread.
    pub fn start(
        name: &str,
        instances: Vec<Arc<Model>>,
        policy: Policy,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Batcher> {
        let (sender, receiver) = sync_channel(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = instances
            .into_iter()
            .enumerate()
            .map(|(i, model)| {
                let worker = Worker {
                    name: name.to_string(),
                    model,
                    policy: policy.clone(),
                    queue: Arc::clone(&receiver),
                    metrics: Arc::clone(&metrics),
                };
                std::thread::Builder::new().name(format!("serve-{name}-{i}")).spawn(move || worker.work())
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Batcher { queue: Mutex::new(Some(sender)), threads: Mutex::new(threads), capacity })
    }

    /// Queues `input` (a checked request); the answer arrives on the returned channel.
    ///
    /// # Errors
    /// [`Fault::Busy`] when the queue is full, [`Fault::Stopping`] once closed.
    pub fn submit(&self, input: ArrayD<f32>) -> Result<oneshot::Receiver<Result<Outputs, Fault>>, Fault> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = queue.as_ref().ok_or(Fault::Stopping)?;
        match sender.try_send(Job { input, reply, queued: Instant::now() }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => {
                Err(Fault::Busy(format!("the model's queue is full ({} requests waiting, --queue)", self.capacity)))
            }
            Err(TrySendError::Disconnected(_)) => Err(Fault::Stopping),
        }
    }

    /// Refuses new requests, lets the threads answer those queued, and waits for them.
    pub fn close(&self) {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

struct Worker {
    name: String,
    model: Arc<Model>,
    policy: Policy,
    queue: Arc<Mutex<Receiver<Job>>>,
    metrics: Arc<Metrics>,
}

impl Worker {
    fn work(self) {
        // A request that arrived while a batch was gathered but does not stack with it starts
        // this thread's next batch.
        let mut held = None;
        while let Some(batch) = self.gather(&mut held) {
            self.run(batch);
        }
    }

    /// The next batch: the first live request, then those that stack with it while the batch
    /// is below its largest (or a preferred) size and the delay has not run out. `None` once the
    /// queue is closed and empty.
    fn gather(&self, held: &mut Option<Job>) -> Option<Vec<Job>> {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let first = loop {
            let job = match held.take() {
                Some(job) => job,
                None => queue.recv().ok()?,
            };
            if !job.reply.is_closed() {
                break job;
            }
        };
        let mut rows = first.rows();
        let deadline = first.queued + self.policy.delay;
        let mut batch = vec![first];
        let full = |rows: usize| rows >= self.policy.max_batch || self.policy.preferred.contains(&rows);
        while self.policy.merge && !full(rows) {
            let next = match deadline.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => queue.recv_timeout(wait),
                _ => queue.try_recv().map_err(|_| RecvTimeoutError::Timeout),
            };
            let Ok(job) = next else { break };
            if job.reply.is_closed() {
                continue;
            }
            if job.stacks_with(&batch[0]) && rows + job.rows() <= self.policy.max_batch {
                rows += job.rows();
                batch.push(job);
            } else {
                *held = Some(job);
                break;
            }
        }
        Some(batch)
    }

    fn run(&self, batch: Vec<Job>) {
        let started = Instant::now();
        for job in &batch {
            self.metrics.queued(&self.name, started - job.queued);
        }
        let rows: Vec<usize> = batch.iter().map(Job::rows).collect();
        let result = catch_unwind(AssertUnwindSafe(|| self.compute(&batch)))
            .unwrap_or_else(|_| Err(Fault::Internal("the engine panicked".into())));
        self.metrics.batch(&self.name, rows.iter().sum(), started.elapsed());
        match result {
            Ok(outputs) if batch.len() == 1 => {
                let _ = batch.into_iter().next().map(|job| job.reply.send(Ok(outputs)));
            }
            Ok(outputs) => {
                let mut start = 0;
                for (job, n) in batch.into_iter().zip(rows) {
                    let part = outputs
                        .iter()
                        .map(|(name, value)| {
                            (name.clone(), value.slice_axis(Axis(0), Slice::from(start..start + n)).to_owned())
                        })
                        .collect();
                    start += n;
                    let _ = job.reply.send(Ok(part));
                }
            }
            Err(fault) => {
                let message = fault.to_string();
                for job in batch {
                    let _ = job.reply.send(Err(Fault::Internal(message.clone())));
                }
            }
        }
    }

    fn compute(&self, batch: &[Job]) -> Result<Outputs, Fault> {
        let internal = |e: prism_runtime::Error| Fault::Internal(format!("model `{}`: {e}", self.name));
        if let [job] = batch {
            return self.model.run(job.input.view()).map_err(internal);
        }
        let views: Vec<ArrayViewD<'_, f32>> = batch.iter().map(|j| j.input.view()).collect();
        let input = concatenate(Axis(0), &views).map_err(|e| Fault::Internal(e.to_string()))?;
        let outputs = self.model.run(input.view()).map_err(internal)?;
        let rows = input.shape()[0];
        if let Some((name, value)) = outputs.iter().find(|(_, v)| v.shape().first() != Some(&rows)) {
            return Err(Fault::Internal(format!(
                "model `{}`: output `{name}` has shape {:?} for a batch of {rows}, so it cannot be split by request",
                self.name,
                value.shape()
            )));
        }
        Ok(outputs)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use ndarray::IxDyn;
    use prism_onnx::{Message, pb};
    use prism_runtime::engine::{EngineChoice, EngineOptions};
    use prism_runtime::model::LoadOptions;

    use super::*;

    /// `y = relu(x)` for `x` of shape `[batch, 4]`, on tract.
    fn relu() -> Model {
        use pb::tensor_shape_proto::{Dimension, dimension::Value};
        let value = |name: &str| pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
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
        let node = pb::NodeProto {
            op_type: "Relu".into(),
            input: vec!["x".into()],
            output: vec!["y".into()],
            ..Default::default()
        };
        let graph = pb::GraphProto {
            node: vec![node],
            input: vec![value("x")],
            output: vec![value("y")],
            ..Default::default()
        };
        let model = pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 17 }],
            graph: Some(graph),
            ..Default::default()
        };
        let options = LoadOptions {
            engine: EngineOptions { engine: EngineChoice::Tract, ..Default::default() },
            sessions: 1,
            ..Default::default()
        };
        Model::from_bytes("relu", &model.encode_to_vec(), &options).unwrap()
    }

    #[test]
    fn requests_run_together_get_their_own_rows_back() {
        let metrics = Arc::new(Metrics::default());
        // A long queue delay, so that the three requests below meet in one batch.
        let policy = Policy { max_batch: 8, merge: true, preferred: vec![], delay: Duration::from_millis(300) };
        let batcher = Batcher::start("relu", vec![Arc::new(relu())], policy, 16, Arc::clone(&metrics)).unwrap();
        let inputs: Vec<ArrayD<f32>> = [1usize, 2, 3]
            .iter()
            .enumerate()
            .map(|(i, &rows)| ArrayD::from_shape_fn(IxDyn(&[rows, 4]), |ix| (i * 100 + ix[0] * 4 + ix[1]) as f32 - 5.0))
            .collect();
        let answers: Vec<_> = inputs.iter().map(|x| batcher.submit(x.clone()).unwrap()).collect();
        for (x, answer) in inputs.iter().zip(answers) {
            let outputs = answer.blocking_recv().unwrap().unwrap();
            assert_eq!(outputs[0].0, "y");
            assert_eq!(outputs[0].1, x.mapv(|v| v.max(0.0)), "a request got rows that are not its own");
        }
        let text = metrics.encode();
        assert!(text.contains("prism_batch_size_count{model=\"relu\"} 1"), "not one batch:\n{text}");
        assert!(text.contains("prism_batch_size_sum{model=\"relu\"} 6"), "not 6 rows:\n{text}");
        batcher.close();
        assert!(matches!(batcher.submit(inputs[0].clone()), Err(Fault::Stopping)), "a closed queue took a request");
    }
}
