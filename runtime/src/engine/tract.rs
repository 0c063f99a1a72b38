//! tract: pure Rust, no native library. A graph is parsed once; for every input shape seen
//! (batch size, and height and width for whole-scene graphs) the input is fixed with
//! `with_input_fact`, optimised and planned, and the plan is cached.
//!
//! tract runs on the calling thread unless it is given an executor: its matrix products (which
//! carry the convolutions) are spread over a rayon pool of `threads` threads, one pool per
//! thread count shared by every engine of the process.
//!
//! tract 0.23 runs convolutions slower per sample at batch > 1 (3-D ones about 30x at batch 8,
//! 2-D ones about 1.7x for ResNet-18), so graphs with a `Conv` are run one sample at a time
//! whatever batch the caller feeds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ndarray::{ArrayD, ArrayViewD, Axis};
use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::pb;
use tract_onnx::prelude::*;

use super::{Engine, Source, one_line};
use crate::{Error, Result};

type Plan = Arc<TypedRunnableModel>;

pub(super) struct TractEngine {
    model: InferenceModel,
    /// The input's dimensions as declared: `None` for symbolic ones (batch, height, width).
    input_dims: Vec<Option<usize>>,
    outputs: Vec<String>,
    plans: HashMap<Vec<usize>, Plan>,
    /// Run batches one sample at a time (the graph has a convolution).
    split_batches: bool,
    executor: Executor,
    notes: Vec<String>,
}

/// The process's executor for `threads` threads: one rayon pool per thread count, so that a pool
/// of engines does not start a pool of threads each.
fn executor(threads: usize) -> Executor {
    static POOLS: Mutex<Vec<(usize, Executor)>> = Mutex::new(Vec::new());
    if threads <= 1 {
        return Executor::SingleThread;
    }
    let mut pools = POOLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, executor)) = pools.iter().find(|(n, _)| *n == threads) {
        return executor.clone();
    }
    let executor = Executor::multithread_with_name(threads, "prism-tract");
    pools.push((threads, executor.clone()));
    executor
}

fn tract_error(what: impl std::fmt::Display, e: impl std::fmt::Debug + std::fmt::Display) -> Error {
    Error::Engine(format!("{what}: {}", one_line(format!("{e:#}"))))
}

impl TractEngine {
    /// `threads`: the size of the pool that runs the matrix products (`None` or 0: every core).
    pub(super) fn load(source: Source<'_>, threads: Option<usize>, notes: Vec<String>) -> Result<Self> {
        let path = source.name();
        let bytes = source.bytes()?;
        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| Error::format(path, format!("not an ONNX model: {}", one_line(format!("{e:#}")))))?;
        let graph = proto.graph.as_ref().ok_or_else(|| Error::format(path, "the ONNX model has no graph"))?;
        check_outputs(graph, 0).map_err(|reason| Error::format(path, reason))?;
        let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<&pb::ValueInfoProto> =
            graph.input.iter().filter(|i| !initializers.contains(&i.name.as_str())).collect();
        let [input] = inputs.as_slice() else {
            return Err(Error::Engine(format!(
                "{}: the model has {} inputs; Prism's engines run models with one input",
                path.display(),
                inputs.len()
            )));
        };
        let input_dims = declared_dims(input);
        let outputs = graph.output.iter().map(|o| o.name.clone()).collect();
        let split_batches = has_conv(graph);
        let model = onnx.model_for_proto_model(&proto).map_err(|e| tract_error(path.display(), e))?;
        let threads =
            threads.filter(|&n| n > 0).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Ok(TractEngine {
            model,
            input_dims,
            outputs,
            plans: HashMap::new(),
            split_batches,
            executor: executor(threads),
            notes,
        })
    }

    fn plan(&mut self, shape: &[usize]) -> Result<Plan> {
        if let Some(plan) = self.plans.get(shape) {
            return Ok(plan.clone());
        }
        let fact = InferenceFact::dt_shape(f32::datum_type(), shape);
        let plan = self
            .model
            .clone()
            .with_input_fact(0, fact)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| tract_error(format!("tract cannot plan the model for input {shape:?}"), e))?;
        self.plans.insert(shape.to_vec(), plan.clone());
        Ok(plan)
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        let fits = shape.len() == self.input_dims.len()
            && shape.iter().zip(&self.input_dims).all(|(got, want)| want.is_none_or(|w| w == *got));
        if fits {
            return Ok(());
        }
        let want: Vec<String> = self.input_dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
        Err(Error::Shape(format!("the model takes an input of shape [{}], got {shape:?}", want.join(", "))))
    }

    fn run_plan(&mut self, input: ArrayD<f32>) -> Result<Vec<ArrayD<f32>>> {
        let plan = self.plan(input.shape())?;
        let outputs = multithread_tract_scope(self.executor.clone(), || plan.run(tvec!(Tensor::from(input).into())))
            .map_err(|e| tract_error("tract", e))?;
        outputs
            .iter()
            .map(|v| v.to_plain_array_view::<f32>().map(|a| a.to_owned()).map_err(|e| tract_error("tract output", e)))
            .collect()
    }
}

impl Engine for TractEngine {
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>> {
        self.check_input(input.shape())?;
        let batch = input.shape().first().copied().unwrap_or(1);
        let values = if self.split_batches && batch > 1 {
            let mut per_sample: Vec<Vec<ArrayD<f32>>> = Vec::with_capacity(batch);
            for sample in input.axis_iter(Axis(0)) {
                per_sample.push(self.run_plan(sample.insert_axis(Axis(0)).to_owned())?);
            }
            (0..self.outputs.len())
                .map(|o| {
                    let views: Vec<_> = per_sample.iter().map(|outs| outs[o].view()).collect();
                    ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Engine(format!("tract output {o}: {e}")))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            self.run_plan(input.to_owned())?
        };
        Ok(self.outputs.iter().cloned().zip(values).collect())
    }

    fn engine(&self) -> &'static str {
        "tract"
    }

    fn provider(&self) -> &str {
        "cpu"
    }

    fn notes(&self) -> &[String] {
        &self.notes
    }
}

fn declared_dims(input: &pb::ValueInfoProto) -> Vec<Option<usize>> {
    use pb::tensor_shape_proto::dimension::Value;
    let Some(pb::type_proto::Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Vec::new();
    };
    let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
    dims.iter()
        .map(|d| match d.value {
            Some(Value::DimValue(v)) if v > 0 => Some(v as usize),
            _ => None,
        })
        .collect()
}

/// Subgraphs (of `If`, `Loop`, `Scan`) nested deeper than this are refused.
const MAX_GRAPH_DEPTH: usize = 16;

/// Checks that every output of `graph` and of its subgraphs is a name the graph defines (an
/// input, an initializer or a node's output): tract 0.23 panics on an output it cannot find.
fn check_outputs(graph: &pb::GraphProto, depth: usize) -> std::result::Result<(), String> {
    if depth > MAX_GRAPH_DEPTH {
        return Err(format!("subgraphs nested more than {MAX_GRAPH_DEPTH} deep"));
    }
    let defined: std::collections::HashSet<&str> = (graph.input.iter().map(|i| i.name.as_str()))
        .chain(graph.initializer.iter().map(|t| t.name.as_str()))
        // tract leaves out nodes' unnamed outputs (optional outputs not used).
        .chain(graph.node.iter().flat_map(|n| n.output.iter().map(String::as_str).filter(|o| !o.is_empty())))
        .collect();
    if let Some(output) = graph.output.iter().find(|o| !defined.contains(o.name.as_str())) {
        let which = if depth == 0 { "graph" } else { "subgraph" };
        return Err(format!("{which} output `{}` is not an input, an initializer or a node's output", output.name));
    }
    for attribute in graph.node.iter().flat_map(|n| &n.attribute) {
        for subgraph in attribute.g.iter().chain(&attribute.graphs) {
            check_outputs(subgraph, depth + 1)?;
        }
    }
    Ok(())
}

/// True when the graph has a `Conv` node.
pub(super) fn has_conv(graph: &pb::GraphProto) -> bool {
    graph.node.iter().any(|n| n.op_type == "Conv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_share_one_pool_per_thread_count() {
        assert!(matches!(executor(1), Executor::SingleThread));
        let (Executor::MultiThread(a), Executor::MultiThread(b), Executor::MultiThread(c)) =
            (executor(2), executor(2), executor(3))
        else {
            panic!("two or more threads run on a pool");
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!((a.current_num_threads(), c.current_num_threads()), (2, 3));
    }
}
