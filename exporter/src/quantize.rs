//! Lower-precision copies of an exported graph: int8 in ONNX's QDQ form, and float16.
//!
//! Both are rewrites of the float32 `ModelProto` the exporter built, so the window graph, the
//! whole-scene graph and ResNet go through the same code. The caller says which nodes must stay
//! float (the preprocessing at the graph's start); the rewrite keeps more float where
//! measurements showed it must (see [`Int8Plan::new`]).
//!
//! # int8
//! Weights of convolutions and fully connected layers are stored as int8, symmetric, one scale
//! per output channel (`DequantizeLinear` with `axis = 0`); biases as int32 with scale
//! `input scale x weight scale`, as ONNX Runtime's `QLinearConv` wants them. Every activation a
//! quantized node reads or writes gets one `QuantizeLinear -> DequantizeLinear` pair, uint8,
//! asymmetric, its range calibrated (see `crate::calibrate`). ONNX Runtime fuses the pattern into
//! integer kernels; tract runs it as written. Reshapes and max pools pass the scale of their
//! input on, so the pairs around them cancel.
//!
//! onnxruntime's Python `quantize_static` does the same job for a file it knows nothing of; it is
//! the benchmark's peer (scripts/bench/quantize.py), not a dependency: no Rust crate rewrites
//! ONNX graphs for quantization (checked: `ort` runs models only, `tract` quantizes its own
//! internal graphs, `onnx-rs`/`onnx-protobuf` are message types only).

use std::collections::{HashMap, HashSet};

use prism_onnx::pb;
use prism_onnx::pb::tensor_proto::DataType;

use crate::graph::{attr, tensor};
use crate::{Error, Result};

/// The range of one activation seen during calibration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

impl Range {
    pub const EMPTY: Range = Range { min: f32::INFINITY, max: f32::NEG_INFINITY };

    pub fn include(&mut self, value: f32) {
        if value.is_finite() {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
    }

    /// uint8 scale and zero point of a range widened to hold 0 (so that zero padding and ReLU's
    /// floor are exact); an empty or degenerate range gets scale 1.
    fn uint8(&self) -> (f32, u8) {
        let (low, high) = (self.min.min(0.0), self.max.max(0.0));
        let scale = (high - low) / 255.0;
        if !(scale.is_finite() && scale > 0.0) {
            return (1.0, 0);
        }
        (scale, (-low / scale).round().clamp(0.0, 255.0) as u8)
    }
}

/// A node left in float32 and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeptFloat {
    pub node: String,
    pub why: String,
}

/// What an int8 rewrite of a graph quantizes: the nodes, and the activations whose ranges the
/// calibration must measure.
#[derive(Clone, Debug)]
pub struct Int8Plan {
    /// Convolutions and fully connected layers computed in int8, by node name.
    pub quantized: Vec<String>,
    /// Activations that get a quantize/dequantize pair, in graph order.
    pub activations: Vec<String>,
    pub kept_float: Vec<KeptFloat>,
}

/// Why 3-D convolutions stay float: the numbers behind the rule.
const WHY_3D: &str = "3-D convolution: ONNX Runtime 1.31's int8 3-D kernel is slower than its float one (HybridSN conv1 on Indian Pines, 2 cores: 355 ms int8, 11 ms float)";

impl Int8Plan {
    /// Plans the rewrite of `graph`. Every `Conv` and `Gemm` with its weight in an initializer is
    /// quantized, except the nodes named in `keep_float` (with the reason given), 3-D
    /// convolutions, and the node that computes a graph output (the logits stay as exact as
    /// float allows; the layer is small).
    pub fn new(graph: &pb::GraphProto, keep_float: &[(&str, &str)]) -> Int8Plan {
        let initializers: HashMap<&str, &pb::TensorProto> =
            graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        let readers = readers(graph);
        let mut plan = Int8Plan { quantized: Vec::new(), activations: Vec::new(), kept_float: Vec::new() };
        for node in &graph.node {
            let weight = node.input.get(1).and_then(|w| initializers.get(w.as_str()));
            let (Some(weight), "Conv" | "Gemm") = (weight, node.op_type.as_str()) else { continue };
            let why = if let Some((_, why)) = keep_float.iter().find(|(name, _)| *name == node.name) {
                Some(why.to_string())
            } else if node.op_type == "Conv" && weight.dims.len() == 5 {
                Some(WHY_3D.to_string())
            } else if node.output.iter().any(|o| outputs.contains(o.as_str())) {
                Some("computes a graph output (the logits)".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                plan.kept_float.push(KeptFloat { node: node.name.clone(), why });
                continue;
            }
            plan.quantized.push(node.name.clone());
            plan.activations.push(node.input[0].clone());
            let output = activated_output(&node.output[0], &readers);
            if !outputs.contains(output.as_str()) {
                plan.activations.push(output);
            }
        }
        // Between quantized layers, residual additions and pools stay in integers too: ONNX
        // Runtime fuses `DequantizeLinear -> Add -> QuantizeLinear` into `QLinearAdd` and does
        // the same for pools, sparing a float round trip and a layout change each (ResNet-18's
        // last block and its global pool: 3 % of its time on 2 cores).
        for node in &graph.node {
            let read = node.input.iter().filter(|i| !i.is_empty());
            let all_quantized = read.clone().count() > 0 && read.clone().all(|i| plan.activations.contains(i));
            let output = match node.op_type.as_str() {
                "Add" if all_quantized => activated_output(&node.output[0], &readers),
                "GlobalAveragePool" | "AveragePool" | "MaxPool" if all_quantized => node.output[0].clone(),
                _ => continue,
            };
            if !outputs.contains(output.as_str()) {
                plan.activations.push(output);
            }
        }
        let mut seen = HashSet::new();
        plan.activations.retain(|a| seen.insert(a.clone()));
        plan
    }
}

/// The nodes that read each value.
fn readers(graph: &pb::GraphProto) -> HashMap<&str, Vec<&pb::NodeProto>> {
    let mut map: HashMap<&str, Vec<&pb::NodeProto>> = HashMap::new();
    for node in &graph.node {
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            map.entry(input.as_str()).or_default().push(node);
        }
    }
    map
}

/// A node's output, or the output of the `Relu` that is its only reader (so the pair comes after
/// the activation, and ONNX Runtime folds the `Relu` into the quantization).
fn activated_output(value: &str, readers: &HashMap<&str, Vec<&pb::NodeProto>>) -> String {
    match readers.get(value).map(Vec::as_slice) {
        Some([relu]) if relu.op_type == "Relu" => relu.output[0].clone(),
        _ => value.to_string(),
    }
}

/// Ops whose output holds values of their input and can share its scale.
const PASS_THROUGH: &[&str] = &["Reshape", "Flatten", "MaxPool", "Squeeze", "Unsqueeze"];

/// The int8 rewrite of `model` by `plan`, with the ranges the calibration measured.
///
/// # Errors
/// An activation of the plan without a range; a quantized node whose weight is not float32.
pub fn to_int8(model: &pb::ModelProto, plan: &Int8Plan, ranges: &HashMap<String, Range>) -> Result<pb::ModelProto> {
    let mut model = model.clone();
    let graph = model.graph.as_mut().ok_or_else(|| Error::Inconsistent("the model has no graph".into()))?;
    let params = activation_params(graph, plan, ranges)?;
    let mut initializers: HashMap<String, pb::TensorProto> =
        graph.initializer.drain(..).map(|t| (t.name.clone(), t)).collect();
    let mut front = Vec::new();
    let quantized: HashSet<&str> = plan.quantized.iter().map(String::as_str).collect();
    for node in graph.node.iter_mut().filter(|n| quantized.contains(n.name.as_str())) {
        let input_scale = params.get(&node.input[0]).map(|p| p.0).unwrap_or(1.0);
        let weight = take_float(&mut initializers, &node.input[1])?;
        let (q, scales) = quantize_weight(&weight);
        let w =
            dequantized(&mut initializers, &mut front, &weight.name, tensor_i8(&weight, q), &scales, DataType::Int8);
        node.input[1] = w;
        if let Some(bias_name) = node.input.get(2).filter(|b| initializers.contains_key(*b)).cloned() {
            let bias = take_float(&mut initializers, &bias_name)?;
            let bias_scales: Vec<f32> = scales.iter().map(|s| s * input_scale).collect();
            let q: Vec<i32> = floats(&bias)
                .iter()
                .zip(&bias_scales)
                .map(|(b, s)| (b / s).round().clamp(i32::MIN as f32, i32::MAX as f32) as i32)
                .collect();
            let raw: Vec<u8> = q.iter().flat_map(|v| v.to_le_bytes()).collect();
            let t = pb::TensorProto { raw_data: raw.into(), data_type: DataType::Int32 as i32, ..bias.clone() };
            node.input[2] = dequantized(&mut initializers, &mut front, &bias.name, t, &bias_scales, DataType::Int32);
        }
    }
    let mut nodes = front;
    let graph_inputs: Vec<String> = graph.input.iter().map(|i| i.name.clone()).collect();
    for input in graph_inputs.iter().filter(|i| params.contains_key(*i)) {
        nodes.extend(pair(&mut initializers, input, params[input]));
    }
    for mut node in std::mem::take(&mut graph.node) {
        for input in node.input.iter_mut().filter(|i| params.contains_key(i.as_str())) {
            *input = format!("{input}/dq");
        }
        let outputs: Vec<String> = node.output.iter().filter(|o| params.contains_key(o.as_str())).cloned().collect();
        nodes.push(node);
        for output in outputs {
            nodes.extend(pair(&mut initializers, &output, params[&output]));
        }
    }
    graph.node = nodes;
    let mut kept: Vec<pb::TensorProto> = initializers.into_values().collect();
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    graph.initializer = kept;
    Ok(model)
}

/// uint8 scale and zero point per activation; values after a pass-through op take the
/// parameters of the op's input.
fn activation_params(
    graph: &pb::GraphProto,
    plan: &Int8Plan,
    ranges: &HashMap<String, Range>,
) -> Result<HashMap<String, (f32, u8)>> {
    let producers: HashMap<&str, &pb::NodeProto> =
        graph.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let mut params = HashMap::new();
    for activation in &plan.activations {
        let mut source = activation.as_str();
        while let Some(node) = producers.get(source).filter(|n| PASS_THROUGH.contains(&n.op_type.as_str())) {
            if !ranges.contains_key(node.input[0].as_str()) {
                break;
            }
            source = &node.input[0];
        }
        let range = ranges
            .get(source)
            .ok_or_else(|| Error::Inconsistent(format!("the calibration measured no range for `{activation}`")))?;
        params.insert(activation.clone(), range.uint8());
    }
    Ok(params)
}

fn take_float(initializers: &mut HashMap<String, pb::TensorProto>, name: &str) -> Result<pb::TensorProto> {
    let tensor = initializers
        .remove(name)
        .ok_or_else(|| Error::Inconsistent(format!("`{name}` is not an initializer of the graph")))?;
    if tensor.data_type != DataType::Float as i32 || tensor.raw_data.len() % 4 != 0 {
        return Err(Error::Inconsistent(format!("`{name}` is not a float32 tensor stored as raw data")));
    }
    Ok(tensor)
}

pub(crate) fn floats(t: &pb::TensorProto) -> Vec<f32> {
    t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Symmetric int8 per output channel (axis 0): `q = round(w / s)`, `s = max |w| / 127`.
fn quantize_weight(weight: &pb::TensorProto) -> (Vec<i8>, Vec<f32>) {
    let values = floats(weight);
    let channels = weight.dims.first().copied().unwrap_or(1).max(1) as usize;
    let per = values.len() / channels;
    let mut q = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(channels);
    for channel in values.chunks(per.max(1)) {
        let largest = channel.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
        q.extend(channel.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    (q, scales)
}

fn tensor_i8(like: &pb::TensorProto, q: Vec<i8>) -> pb::TensorProto {
    pb::TensorProto {
        raw_data: q.into_iter().map(|v| v as u8).collect::<Vec<u8>>().into(),
        data_type: DataType::Int8 as i32,
        ..like.clone()
    }
}

/// Stores `quantized` as `<name>/q` with per-channel `scales` and a zero zero point, and adds the
/// `DequantizeLinear` that gives back `<name>` (in float) to `nodes`. Returns the float name.
fn dequantized(
    initializers: &mut HashMap<String, pb::TensorProto>,
    nodes: &mut Vec<pb::NodeProto>,
    name: &str,
    mut quantized: pb::TensorProto,
    scales: &[f32],
    kind: DataType,
) -> String {
    let q = format!("{name}/q");
    quantized.name = q.clone();
    initializers.insert(q.clone(), quantized);
    let scale = float_initializer(initializers, &format!("{name}/scale"), &[scales.len()], scales);
    let zeros = match kind {
        DataType::Int32 => vec![0u8; scales.len() * 4],
        _ => vec![0u8; scales.len()],
    };
    let zero_point = format!("{name}/zero_point");
    initializers.insert(zero_point.clone(), tensor(&zero_point, &[scales.len()], kind, zeros));
    let out = format!("{name}/dq");
    nodes.push(node("DequantizeLinear", &out, &[&q, &scale, &zero_point], &out, vec![attr::int("axis", 0)]));
    out
}

/// `QuantizeLinear -> DequantizeLinear` on `value`: readers read `<value>/dq`.
fn pair(
    initializers: &mut HashMap<String, pb::TensorProto>,
    value: &str,
    (scale, zero): (f32, u8),
) -> [pb::NodeProto; 2] {
    let scale_name = float_initializer(initializers, &format!("{value}/scale"), &[], &[scale]);
    let zero_name = format!("{value}/zero_point");
    initializers.insert(zero_name.clone(), tensor(&zero_name, &[], DataType::Uint8, vec![zero]));
    let (q, dq) = (format!("{value}/q"), format!("{value}/dq"));
    [
        node("QuantizeLinear", &q, &[value, &scale_name, &zero_name], &q, vec![]),
        node("DequantizeLinear", &dq, &[&q, &scale_name, &zero_name], &dq, vec![]),
    ]
}

fn float_initializer(
    initializers: &mut HashMap<String, pb::TensorProto>,
    name: &str,
    dims: &[usize],
    data: &[f32],
) -> String {
    let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    initializers.insert(name.to_string(), tensor(name, dims, DataType::Float, raw));
    name.to_string()
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, attribute: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.to_string(),
        name: name.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute,
        ..Default::default()
    }
}

/// The float16 rewrite of `model`: every float computation but the nodes named in `keep_float`
/// and the softmax runs in float16, with `Cast` nodes where float32 and float16 values meet. Inputs
/// and outputs stay float32.
///
/// # Errors
/// A model without a graph.
pub fn to_fp16(model: &pb::ModelProto, keep_float: &[&str]) -> Result<pb::ModelProto> {
    let mut model = model.clone();
    let graph = model.graph.as_mut().ok_or_else(|| Error::Inconsistent("the model has no graph".into()))?;
    gemm_to_matmul(graph);
    let float = float_values(graph);
    let half_node = |n: &pb::NodeProto| {
        !keep_float.contains(&n.name.as_str())
            && n.op_type != "Softmax"
            && n.output.first().is_some_and(|o| float.contains(o.as_str()))
    };
    let half: HashSet<String> =
        graph.node.iter().filter(|n| half_node(n)).flat_map(|n| n.output.iter().cloned()).collect();
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut initializers: HashMap<String, pb::TensorProto> =
        graph.initializer.drain(..).map(|t| (t.name.clone(), t)).collect();
    let initializer_names: HashSet<String> = initializers.keys().cloned().collect();
    let (mut nodes, mut cast) = (Vec::new(), HashSet::new());
    for mut node in std::mem::take(&mut graph.node) {
        let is_half = half_node(&node);
        for (slot, input) in node.input.iter_mut().enumerate() {
            if input.is_empty() || !float.contains(input.as_str()) || node.op_type == "Shape" {
                continue;
            }
            let input_is_half = half.contains(input.as_str());
            if is_half && !input_is_half {
                if node.op_type == "Resize" && slot > 0 {
                    continue;
                }
                if initializer_names.contains(input.as_str()) {
                    *input = half_initializer(&mut initializers, input);
                } else {
                    let to = format!("{input}/to_f16");
                    if cast.insert(to.clone()) {
                        nodes.push(node_cast(input, &to, DataType::Float16));
                    }
                    *input = to;
                }
            } else if is_half && outputs.contains(input.as_str()) {
                *input = format!("{input}/f16");
            } else if !is_half && input_is_half && !outputs.contains(input.as_str()) {
                let to = format!("{input}/to_f32");
                if cast.insert(to.clone()) {
                    nodes.push(node_cast(input, &to, DataType::Float));
                }
                *input = to;
            }
        }
        let renamed: Vec<String> =
            node.output.iter().filter(|o| is_half && outputs.contains(o.as_str())).cloned().collect();
        for output in node.output.iter_mut().filter(|o| renamed.contains(o)) {
            *output = format!("{output}/f16");
        }
        nodes.push(node);
        for output in renamed {
            nodes.push(node_cast(&format!("{output}/f16"), &output, DataType::Float));
        }
    }
    let read: HashSet<&str> = nodes.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let mut kept: Vec<pb::TensorProto> =
        initializers.into_values().filter(|t| read.contains(t.name.as_str())).collect();
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    graph.node = nodes;
    graph.initializer = kept;
    Ok(model)
}

/// Rewrites `Gemm(x, W, b)` with `transB = 1` (the exporter's fully connected layers) as
/// `MatMul(x, W^T) + b`: tract 0.23 plans a float16 `Gemm` with a float32 output and refuses the
/// graph ("Output mismatch after rewiring expansion"), while it runs `MatMul` and `Add` in
/// float16.
fn gemm_to_matmul(graph: &mut pb::GraphProto) {
    let mut initializers: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    let mut nodes = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let plain = node.attribute.iter().all(|a| match a.name.as_str() {
            "transB" => a.i == 1,
            "transA" => a.i == 0,
            "alpha" | "beta" => a.f == 1.0,
            _ => false,
        });
        let weight = node.input.get(1).and_then(|w| initializers.get(w)).map(|&i| graph.initializer[i].clone());
        let (Some(weight), true, "Gemm") = (weight, plain, node.op_type.as_str()) else {
            nodes.push(node);
            continue;
        };
        let [rows, cols] = [weight.dims[0] as usize, weight.dims.get(1).copied().unwrap_or(1) as usize];
        let values = floats(&weight);
        let transposed: Vec<f32> = (0..rows * cols).map(|i| values[(i % rows) * cols + i / rows]).collect();
        let name = format!("{}/t", weight.name);
        let raw: Vec<u8> = transposed.iter().flat_map(|v| v.to_le_bytes()).collect();
        initializers.insert(name.clone(), graph.initializer.len());
        graph.initializer.push(tensor(&name, &[cols, rows], DataType::Float, raw));
        let product = format!("{}/matmul", node.name);
        nodes.push(self::node("MatMul", &product, &[&node.input[0], &name], &product, vec![]));
        match node.input.get(2).filter(|b| !b.is_empty()) {
            Some(bias) => nodes.push(self::node("Add", &node.name, &[&product, bias], &node.output[0], vec![])),
            None => nodes.push(self::node("Identity", &node.name, &[&product], &node.output[0], vec![])),
        }
    }
    graph.node = nodes;
}

/// Values of float32 type: graph inputs, float initializers, and what nodes compute from them
/// (`Shape` gives int64, `Cast` what it says).
fn float_values(graph: &pb::GraphProto) -> HashSet<String> {
    let mut float: HashSet<String> = graph.input.iter().map(|i| i.name.clone()).collect();
    float.extend(graph.initializer.iter().filter(|t| t.data_type == DataType::Float as i32).map(|t| t.name.clone()));
    for node in &graph.node {
        let is_float = match node.op_type.as_str() {
            "Shape" => false,
            "Cast" => node.attribute.iter().any(|a| a.name == "to" && a.i == DataType::Float as i64),
            _ => node.input.first().is_some_and(|i| float.contains(i)),
        };
        if is_float {
            float.extend(node.output.iter().cloned());
        }
    }
    float
}

/// A float16 copy of the float32 initializer `name`, made once.
fn half_initializer(initializers: &mut HashMap<String, pb::TensorProto>, name: &str) -> String {
    let half = format!("{name}/f16");
    if !initializers.contains_key(&half) {
        if let Some(t) = initializers.get(name) {
            let raw: Vec<u8> = floats(t).iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
            let converted = pb::TensorProto {
                name: half.clone(),
                data_type: DataType::Float16 as i32,
                raw_data: raw.into(),
                ..t.clone()
            };
            initializers.insert(half.clone(), converted);
        }
    }
    half
}

fn node_cast(from: &str, to: &str, kind: DataType) -> pb::NodeProto {
    node("Cast", to, &[from], to, vec![attr::int("to", kind as i64)])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn weights_come_back_within_half_a_step_per_channel() {
        let values: Vec<f32> =
            (0..24).map(|i| ((i * 37 % 23) as f32 - 11.0) * if i < 12 { 0.01 } else { 3.0 }).collect();
        let weight = tensor("w", &[2, 12], DataType::Float, values.iter().flat_map(|v| v.to_le_bytes()).collect());
        let (q, scales) = quantize_weight(&weight);
        assert_eq!(scales.len(), 2);
        assert!(scales[1] / scales[0] > 100.0, "one scale per output channel: {scales:?}");
        for (i, (w, q)) in values.iter().zip(&q).enumerate() {
            let s = scales[i / 12];
            assert!((*q as f32 * s - w).abs() <= s / 2.0 + 1e-6, "{w} came back as {}", *q as f32 * s);
        }
        assert!(q.iter().any(|&v| v == 127 || v == -127), "the largest weight uses the whole range");
    }

    #[test]
    fn activation_ranges_hold_zero_exactly() {
        let (scale, zero) = Range { min: -1.0, max: 3.0 }.uint8();
        assert!((scale - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(zero, 64);
        // After a ReLU: zero point 0, so ONNX Runtime can drop the ReLU into the quantization.
        assert_eq!(Range { min: 0.0, max: 6.0 }.uint8().1, 0);
        assert_eq!(Range::EMPTY.uint8(), (1.0, 0));
        let mut r = Range::EMPTY;
        [2.0, f32::NAN, 5.0].into_iter().for_each(|v| r.include(v));
        assert_eq!(r, Range { min: 2.0, max: 5.0 });
    }
}
