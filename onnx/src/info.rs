//! What an ONNX file says about itself, decoded from its `ModelProto`. The weights are not
//! copied (`raw_data` decodes as slices of the bytes read), so this is quick even for large
//! models, and it needs no engine.

use std::collections::BTreeMap;

use prost::Message;
use prost::bytes::Bytes;
use serde::Serialize;

use crate::pb;

/// A dimension of a graph input or output: a number or a symbolic name (`batch`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    Fixed(u64),
    Symbolic(String),
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) => f.write_str(s),
        }
    }
}

/// A graph input or output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    /// ONNX element type name (`float`, `int64`...).
    pub elem_type: String,
    pub shape: Vec<Dim>,
}

impl TensorInfo {
    /// The name, element type and shape a `ValueInfoProto` gives (a dimension with neither a
    /// value nor a name is `?`).
    pub fn from_proto(value: &pb::ValueInfoProto) -> TensorInfo {
        use pb::tensor_shape_proto::dimension::Value;
        let tensor = match value.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(pb::type_proto::Value::TensorType(t)) => Some(t),
            _ => None,
        };
        let dims = tensor.and_then(|t| t.shape.as_ref()).map(|s| s.dim.as_slice()).unwrap_or_default();
        let shape = dims
            .iter()
            .map(|d| match &d.value {
                Some(Value::DimValue(v)) => Dim::Fixed(u64::try_from(*v).unwrap_or(0)),
                Some(Value::DimParam(p)) => Dim::Symbolic(p.clone()),
                None => Dim::Symbolic("?".into()),
            })
            .collect();
        let elem_type = tensor.map_or("unknown", |t| elem_type_name(t.elem_type));
        TensorInfo { name: value.name.clone(), elem_type: elem_type.to_string(), shape }
    }
}

/// What an ONNX model says of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OnnxInfo {
    pub ir_version: u64,
    /// Operator-set versions by domain (`""` is the default ONNX domain).
    pub opsets: BTreeMap<String, u64>,
    pub producer_name: String,
    pub producer_version: String,
    pub doc_string: String,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    pub metadata: BTreeMap<String, String>,
    /// Graph nodes by operator type.
    pub ops: BTreeMap<String, usize>,
    pub initializers: usize,
}

impl OnnxInfo {
    /// The default-domain opset.
    pub fn opset(&self) -> Option<u64> {
        self.opsets.get("").or_else(|| self.opsets.get("ai.onnx")).copied()
    }

    /// Decodes the bytes of an ONNX `ModelProto`; the error is a short reason (empty, truncated,
    /// not protobuf, no graph).
    ///
    /// # Errors
    /// Bytes that are not a complete ONNX model.
    pub fn parse(bytes: impl Into<Bytes>) -> Result<OnnxInfo, String> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err("the file is empty".into());
        }
        let model = pb::ModelProto::decode(bytes).map_err(|e| e.to_string())?;
        let Some(graph) = model.graph.as_ref().filter(|_| model.ir_version > 0) else {
            return Err("no graph or IR version (is this an ONNX file?)".into());
        };
        let mut ops = BTreeMap::new();
        for node in &graph.node {
            *ops.entry(node.op_type.clone()).or_default() += 1;
        }
        Ok(OnnxInfo {
            ir_version: u64::try_from(model.ir_version).unwrap_or(0),
            opsets: model
                .opset_import
                .iter()
                .map(|o| (o.domain.clone(), u64::try_from(o.version).unwrap_or(0)))
                .collect(),
            producer_name: model.producer_name.clone(),
            producer_version: model.producer_version.clone(),
            doc_string: model.doc_string.clone(),
            inputs: graph.input.iter().map(TensorInfo::from_proto).collect(),
            outputs: graph.output.iter().map(TensorInfo::from_proto).collect(),
            metadata: model.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect(),
            ops,
            initializers: graph.initializer.len(),
        })
    }
}

/// ONNX's name of a `TensorProto.DataType`.
fn elem_type_name(t: i32) -> &'static str {
    pb::tensor_proto::DataType::try_from(t).map_or("other", |t| match t {
        pb::tensor_proto::DataType::Float => "float",
        pb::tensor_proto::DataType::Uint8 => "uint8",
        pb::tensor_proto::DataType::Int8 => "int8",
        pb::tensor_proto::DataType::Int16 => "int16",
        pb::tensor_proto::DataType::Int32 => "int32",
        pb::tensor_proto::DataType::Int64 => "int64",
        pb::tensor_proto::DataType::Bool => "bool",
        pb::tensor_proto::DataType::Float16 => "float16",
        pb::tensor_proto::DataType::Double => "double",
        pb::tensor_proto::DataType::Bfloat16 => "bfloat16",
        _ => "other",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::tensor_shape_proto::{Dimension, dimension::Value};

    fn dim(value: Value) -> Dimension {
        Dimension { value: Some(value), ..Default::default() }
    }

    /// A one-node model with a weight, a symbolic batch and Prism's metadata, encoded.
    fn model() -> Vec<u8> {
        let input = pb::ValueInfoProto {
            name: "image".into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto {
                        dim: vec![dim(Value::DimParam("batch".into())), dim(Value::DimValue(3))],
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let weight = pb::TensorProto { name: "w".into(), raw_data: vec![0u8; 40].into(), ..Default::default() };
        let node = pb::NodeProto {
            input: vec!["image".into()],
            output: vec!["y".into()],
            op_type: "Relu".into(),
            ..Default::default()
        };
        let graph =
            pb::GraphProto { node: vec![node], initializer: vec![weight], input: vec![input], ..Default::default() };
        pb::ModelProto {
            ir_version: 8,
            producer_name: "prism".into(),
            graph: Some(graph),
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 17 }],
            metadata_props: vec![pb::StringStringEntryProto { key: "prism.task".into(), value: "image".into() }],
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn reads_inputs_opset_ops_and_metadata() {
        let info = OnnxInfo::parse(model()).unwrap();
        assert_eq!(info.ir_version, 8);
        assert_eq!(info.opset(), Some(17));
        assert_eq!(info.producer_name, "prism");
        assert_eq!(info.inputs[0].name, "image");
        assert_eq!(info.inputs[0].elem_type, "float");
        assert_eq!(info.inputs[0].shape, vec![Dim::Symbolic("batch".into()), Dim::Fixed(3)]);
        assert_eq!(info.ops["Relu"], 1);
        assert_eq!(info.initializers, 1);
        assert_eq!(info.metadata["prism.task"], "image");
    }

    #[test]
    fn truncated_and_foreign_files_are_errors() {
        let bytes = model();
        // Protobuf has no end marker: a file cut exactly between two top-level fields after the
        // graph still decodes. Cut anywhere inside the graph (which holds the weights, so nearly
        // all of a real file), it is an error; nowhere is it a panic.
        let graph = pb::ModelProto::decode(bytes.as_slice()).unwrap().graph.unwrap();
        let graph_start = 2 + 2 + "prism".len(); // ir_version, then producer_name
        let graph_end = graph_start + 2 + graph.encoded_len();
        for cut in 1..bytes.len() {
            let parsed = OnnxInfo::parse(bytes[..cut].to_vec());
            if cut < graph_end {
                assert!(parsed.is_err(), "prefix of {cut} bytes accepted");
            }
        }
        assert!(OnnxInfo::parse(b"\x89PNG\r\n\x1a\n not onnx".to_vec()).is_err());
        assert!(OnnxInfo::parse(Vec::new()).is_err());
    }
}
