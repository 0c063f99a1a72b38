//! What an ONNX file says about itself (inputs, outputs, opsets, producer, metadata), read
//! straight from its protobuf encoding without an engine. Initializers are skipped, not
//! decoded, so this is instant even for large models, and works in builds without tract.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::{Error, Result};

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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    /// ONNX element type name (`float`, `int64`...).
    pub elem_type: String,
    pub shape: Vec<Dim>,
}

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

    /// Reads an ONNX file's description.
    ///
    /// # Errors
    /// A missing file, or one that is not a complete ONNX model (named: truncated, not protobuf,
    /// no graph).
    pub fn read(path: &Path) -> Result<OnnxInfo> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        OnnxInfo::parse(&bytes).map_err(|reason| Error::format(path, format!("not a valid ONNX model: {reason}")))
    }

    /// Parses the bytes of an ONNX `ModelProto`; the error is a short reason.
    pub fn parse(bytes: &[u8]) -> std::result::Result<OnnxInfo, String> {
        if bytes.is_empty() {
            return Err("the file is empty".into());
        }
        let mut info = OnnxInfo::default();
        let mut graph_seen = false;
        for field in Fields::new(bytes) {
            match field? {
                (1, Value::Varint(v)) => info.ir_version = v,
                (2, Value::Bytes(b)) => info.producer_name = text(b)?,
                (3, Value::Bytes(b)) => info.producer_version = text(b)?,
                (6, Value::Bytes(b)) => info.doc_string = text(b)?,
                (7, Value::Bytes(b)) => {
                    graph_seen = true;
                    parse_graph(b, &mut info)?;
                }
                (8, Value::Bytes(b)) => {
                    let (mut domain, mut version) = (String::new(), 0);
                    for f in Fields::new(b) {
                        match f? {
                            (1, Value::Bytes(d)) => domain = text(d)?,
                            (2, Value::Varint(v)) => version = v,
                            _ => {}
                        }
                    }
                    info.opsets.insert(domain, version);
                }
                (14, Value::Bytes(b)) => {
                    let (mut key, mut value) = (String::new(), String::new());
                    for f in Fields::new(b) {
                        match f? {
                            (1, Value::Bytes(k)) => key = text(k)?,
                            (2, Value::Bytes(v)) => value = text(v)?,
                            _ => {}
                        }
                    }
                    info.metadata.insert(key, value);
                }
                _ => {}
            }
        }
        if !graph_seen || info.ir_version == 0 {
            return Err("no graph or IR version (is this an ONNX file?)".into());
        }
        Ok(info)
    }
}

fn parse_graph(bytes: &[u8], info: &mut OnnxInfo) -> std::result::Result<(), String> {
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(node)) => {
                for f in Fields::new(node) {
                    if let (4, Value::Bytes(op)) = f? {
                        *info.ops.entry(text(op)?).or_default() += 1;
                    }
                }
            }
            (5, Value::Bytes(_)) => info.initializers += 1,
            (11, Value::Bytes(b)) => info.inputs.push(parse_value_info(b)?),
            (12, Value::Bytes(b)) => info.outputs.push(parse_value_info(b)?),
            _ => {}
        }
    }
    // Inputs that are initializers (old exporters list them) are not real inputs; they carry
    // no symbolic dimension and have initializer names, which we cannot tell here cheaply, so
    // keep them: Prism and torch.onnx files do not list them.
    Ok(())
}

fn parse_value_info(bytes: &[u8]) -> std::result::Result<TensorInfo, String> {
    let mut out = TensorInfo { name: String::new(), elem_type: "unknown".into(), shape: Vec::new() };
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(b)) => out.name = text(b)?,
            (2, Value::Bytes(type_proto)) => {
                for f in Fields::new(type_proto) {
                    if let (1, Value::Bytes(tensor)) = f? {
                        for g in Fields::new(tensor) {
                            match g? {
                                (1, Value::Varint(t)) => out.elem_type = elem_type_name(t).to_string(),
                                (2, Value::Bytes(shape)) => {
                                    for d in Fields::new(shape) {
                                        if let (1, Value::Bytes(dim)) = d? {
                                            out.shape.push(parse_dim(dim)?);
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn parse_dim(bytes: &[u8]) -> std::result::Result<Dim, String> {
    let mut dim = Dim::Symbolic("?".into());
    for f in Fields::new(bytes) {
        match f? {
            (1, Value::Varint(v)) => dim = Dim::Fixed(v),
            (2, Value::Bytes(p)) => dim = Dim::Symbolic(text(p)?),
            _ => {}
        }
    }
    Ok(dim)
}

fn elem_type_name(t: u64) -> &'static str {
    match t {
        1 => "float",
        2 => "uint8",
        3 => "int8",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        9 => "bool",
        10 => "float16",
        11 => "double",
        16 => "bfloat16",
        _ => "other",
    }
}

fn text(bytes: &[u8]) -> std::result::Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

/// A protobuf field value in wire format.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates over the fields of a protobuf message: `(field number, value)`.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields { bytes, pos: 0, failed: false }
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or("truncated (the file ends inside a field)")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("malformed varint".into())
    }

    fn next_field(&mut self) -> std::result::Result<(u32, Value<'a>), String> {
        let key = self.varint()?;
        let number = (key >> 3) as u32;
        if number == 0 {
            return Err("not protobuf (field number 0)".into());
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.skip(8)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflows")?;
                let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len()).ok_or("truncated (a field runs past the end of the file)")?;
                let slice = &self.bytes[self.pos..end];
                self.pos = end;
                Value::Bytes(slice)
            }
            5 => self.skip(4)?,
            other => return Err(format!("not protobuf (wire type {other})")),
        };
        Ok((number, value))
    }

    fn skip(&mut self, n: usize) -> std::result::Result<Value<'a>, String> {
        if self.pos + n > self.bytes.len() {
            return Err("truncated (the file ends inside a field)".into());
        }
        self.pos += n;
        Ok(Value::Fixed)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = std::result::Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let item = self.next_field();
        self.failed = item.is_err();
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a length-delimited field.
    fn bytes_field(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = varint(u64::from(number) << 3 | 2);
        out.extend(varint(payload.len() as u64));
        out.extend(payload);
        out
    }

    fn varint_field(number: u32, value: u64) -> Vec<u8> {
        let mut out = varint(u64::from(number) << 3);
        out.extend(varint(value));
        out
    }

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn model() -> Vec<u8> {
        let dim_batch = bytes_field(1, &bytes_field(2, b"batch"));
        let dim_3 = bytes_field(1, &varint_field(1, 3));
        let shape = [dim_batch, dim_3].concat();
        let tensor_type = [varint_field(1, 1), bytes_field(2, &shape)].concat();
        let value_info = [bytes_field(1, b"image"), bytes_field(2, &bytes_field(1, &tensor_type))].concat();
        let node = [bytes_field(1, b"image"), bytes_field(2, b"y"), bytes_field(4, b"Relu")].concat();
        let graph = [bytes_field(1, &node), bytes_field(5, &[0u8; 40]), bytes_field(11, &value_info)].concat();
        let meta = [bytes_field(1, b"prism.task"), bytes_field(2, b"image")].concat();
        [
            varint_field(1, 8),
            bytes_field(2, b"prism"),
            bytes_field(7, &graph),
            bytes_field(8, &[bytes_field(1, b""), varint_field(2, 17)].concat()),
            bytes_field(14, &meta),
        ]
        .concat()
    }

    #[test]
    fn reads_inputs_opset_ops_and_metadata() {
        let info = OnnxInfo::parse(&model()).unwrap();
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
        // graph still parses. Cut anywhere up to the end of the graph (which holds the weights,
        // so nearly all of a real file), it is an error; nowhere is it a panic.
        let graph_end = bytes.len() - bytes_field(8, &[bytes_field(1, b""), varint_field(2, 17)].concat()).len()
            - bytes_field(14, &[bytes_field(1, b"prism.task"), bytes_field(2, b"image")].concat()).len();
        for cut in 1..bytes.len() {
            let parsed = OnnxInfo::parse(&bytes[..cut]);
            if cut < graph_end {
                assert!(parsed.is_err(), "prefix of {cut} bytes accepted");
            }
        }
        assert!(OnnxInfo::parse(b"\x89PNG\r\n\x1a\n not onnx").is_err());
        assert!(OnnxInfo::parse(b"").is_err());
    }
}
