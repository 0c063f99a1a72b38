//! A small builder of ONNX graphs over tract's prost-generated protobuf types: unique names,
//! initializers stored as little-endian `raw_data`, and a final pass that drops initializers no
//! node reads (weights replaced by batch-norm folding).

use std::collections::{HashMap, HashSet};

use prism_models::Error as ModelError;
use prism_onnx::pb;
use prism_onnx::pb::attribute_proto::AttributeType;
use prism_onnx::pb::tensor_proto::DataType;

/// One dimension of a graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    /// A symbolic dimension such as `batch`, `height`.
    Named(&'static str),
}

/// A graph under construction.
#[derive(Debug)]
pub struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    /// Every value name in use: inputs, initializers and node outputs share one namespace.
    values: HashSet<String>,
    node_names: HashSet<String>,
    /// How many nodes read each value.
    readers: HashMap<String, usize>,
    opset: i64,
}

impl Graph {
    pub fn new(opset: i64) -> Self {
        Graph {
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            values: HashSet::new(),
            node_names: HashSet::new(),
            readers: HashMap::new(),
            opset,
        }
    }

    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// `base`, or `base_1`, `base_2`... when taken.
    fn unique(taken: &HashSet<String>, base: &str) -> String {
        if !taken.contains(base) {
            return base.to_string();
        }
        (1..).map(|i| format!("{base}_{i}")).find(|n| !taken.contains(n)).unwrap_or_else(|| base.to_string())
    }

    fn claim_value(&mut self, base: &str) -> String {
        let name = Self::unique(&self.values, base);
        self.values.insert(name.clone());
        name
    }

    /// Declares a graph input of float32 elements.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        let name = self.claim_value(name);
        self.inputs.push(value_info(&name, dims));
        name
    }

    /// Declares `value` as a graph output of float32 elements.
    pub fn output(&mut self, value: &str, dims: &[Dim]) {
        self.outputs.push(value_info(value, dims));
    }

    /// A float32 initializer. Parameters keep their PyTorch names; a name already taken gets a
    /// suffix.
    pub fn initializer(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.claim_value(name);
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(tensor(&name, dims, DataType::Float, raw_data));
        name
    }

    /// An int64 initializer (shapes, axes, pads).
    pub fn initializer_i64(&mut self, name: &str, data: &[i64]) -> String {
        let name = self.claim_value(name);
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(tensor(&name, &[data.len()], DataType::Int64, raw_data));
        name
    }

    /// Adds a node with one output; the node and its output are both named after `name` (made
    /// unique). An empty input name is an omitted optional input.
    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], attributes: Vec<pb::AttributeProto>) -> String {
        let output = self.claim_value(name);
        let node_name = Self::unique(&self.node_names, name);
        self.node_names.insert(node_name.clone());
        for input in inputs.iter().filter(|i| !i.is_empty()) {
            *self.readers.entry(input.to_string()).or_default() += 1;
        }
        self.nodes.push(pb::NodeProto {
            op_type: op.to_string(),
            name: node_name,
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            attribute: attributes,
            ..Default::default()
        });
        output
    }

    /// How many nodes read `value` so far.
    pub fn readers(&self, value: &str) -> usize {
        self.readers.get(value).copied().unwrap_or(0)
    }

    /// The node that produces `value`.
    pub fn producer_mut(&mut self, value: &str) -> Option<&mut pb::NodeProto> {
        self.nodes.iter_mut().rev().find(|n| n.output.iter().any(|o| o == value))
    }

    /// Replaces input `index` of the node producing `value`.
    pub fn set_producer_input(&mut self, value: &str, index: usize, input: &str) -> Result<(), ModelError> {
        let node = self.producer_mut(value).ok_or_else(|| ModelError::backend(value, "no node produces this value"))?;
        let old = if index < node.input.len() {
            std::mem::replace(&mut node.input[index], input.to_string())
        } else {
            node.input.resize(index, String::new());
            node.input.push(input.to_string());
            String::new()
        };
        if let Some(count) = self.readers.get_mut(&old) {
            *count = count.saturating_sub(1);
        }
        *self.readers.entry(input.to_string()).or_default() += 1;
        Ok(())
    }

    /// Renames a node output that no node reads yet (to name graph outputs `logits`, or a
    /// convolution's output after the batch norm folded into it).
    pub fn rename(&mut self, value: &str, new: &str) -> Result<String, ModelError> {
        if self.readers(value) > 0 {
            return Err(ModelError::backend(value, "cannot rename a value that is already read"));
        }
        let name = Self::unique(&self.values, new);
        let node = self.producer_mut(value).ok_or_else(|| ModelError::backend(value, "no node produces this value"))?;
        for output in node.output.iter_mut().filter(|o| *o == value) {
            *output = name.clone();
        }
        self.values.remove(value);
        self.values.insert(name.clone());
        Ok(name)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The graph, without initializers that no node reads.
    pub fn finish(self, name: &str, doc: &str) -> pb::GraphProto {
        let read: HashSet<&str> = self.nodes.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
        let initializer = self.initializers.iter().filter(|t| read.contains(t.name.as_str())).cloned().collect();
        pb::GraphProto {
            name: name.to_string(),
            doc_string: doc.to_string(),
            node: self.nodes,
            initializer,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
    }
}

/// An initializer of `dims` holding `raw_data` (little-endian values of `data_type`).
pub(crate) fn tensor(name: &str, dims: &[usize], data_type: DataType, raw_data: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        raw_data: raw_data.into(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Dim]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => Value::DimValue(*v as i64),
                Dim::Named(n) => Value::DimParam(n.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Node attributes.
pub mod attr {
    use super::*;

    pub fn int(name: &str, value: i64) -> pb::AttributeProto {
        pb::AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: value, ..Default::default() }
    }

    pub fn ints(name: &str, values: &[i64]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::Ints as i32,
            ints: values.to_vec(),
            ..Default::default()
        }
    }

    pub fn usizes(name: &str, values: &[usize]) -> pb::AttributeProto {
        ints(name, &values.iter().map(|&v| v as i64).collect::<Vec<_>>())
    }

    pub fn float(name: &str, value: f32) -> pb::AttributeProto {
        pb::AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: value, ..Default::default() }
    }

    pub fn string(name: &str, value: &str) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::String as i32,
            s: value.as_bytes().to_vec(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_unused_initializers_dropped() {
        let mut g = Graph::new(17);
        let x = g.input("x", &[Dim::Named("batch"), Dim::Fixed(3)]);
        let w = g.initializer("w", &[3], &[1.0, 2.0, 3.0]);
        let unused = g.initializer("w", &[1], &[0.0]);
        assert_eq!(unused, "w_1");
        let a = g.node("Mul", "scale", &[&x, &w], vec![]);
        let b = g.node("Relu", "scale", &[&a], vec![]);
        assert_eq!((a.as_str(), b.as_str()), ("scale", "scale_1"));
        assert_eq!(g.readers(&a), 1);
        let out = g.rename(&b, "y").unwrap();
        g.output(&out, &[Dim::Named("batch"), Dim::Fixed(3)]);
        let graph = g.finish("g", "");
        assert_eq!(graph.initializer.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["w"]);
        assert_eq!(graph.node[1].output, ["y"]);
        assert_eq!(graph.node[1].name, "scale_1");
    }
}
