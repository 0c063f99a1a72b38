//! A model's configuration: Triton's `config.pbtxt` (protobuf's text format, read against the
//! descriptors of `proto/inference.proto` by prost-reflect), completed from the ONNX file for
//! what it leaves out, checked against the ONNX file for what it says.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use prism_onnx::{Dim, OnnxInfo, TensorInfo};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use super::proto::{DataType, ModelConfig, ModelDynamicBatching, ModelInput, ModelOutput, model_instance_group};
use super::signature::{Signature, Spec};
use crate::{Error, Result};

/// Returns early with [`Error::Invalid`] and a formatted message.
macro_rules! bail {
    ($($message:tt)*) => {
        return Err(Error::Invalid(format!($($message)*)))
    };
}

/// What the command line sets for models without a config.pbtxt.
#[derive(Clone, Debug)]
pub struct Defaults {
    pub max_batch: usize,
    pub delay: Duration,
    pub instances: usize,
}

/// How a model's requests are run.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Largest batch (rows of the first dimension); 0: the model takes no batch dimension.
    pub max_batch: usize,
    /// Requests are merged into batches (config.pbtxt's `dynamic_batching`).
    pub merge: bool,
    /// Batch sizes to stop gathering at.
    pub preferred: Vec<usize>,
    /// How long the first request of a batch may wait for others.
    pub delay: Duration,
}

/// The configuration in effect, as `/config` answers it, and what the server takes from it.
#[derive(Clone, Debug)]
pub struct Effective {
    pub config: ModelConfig,
    pub signature: Signature,
    pub policy: Policy,
}

/// `inference.ModelConfig`'s descriptor, decoded once.
fn descriptor() -> Result<MessageDescriptor> {
    static DESCRIPTOR: OnceLock<Result<MessageDescriptor, String>> = OnceLock::new();
    let decoded = DESCRIPTOR.get_or_init(|| {
        let pool = DescriptorPool::decode(super::proto::DESCRIPTORS)
            .map_err(|e| format!("the compiled-in descriptors do not decode: {e}"))?;
        pool.get_message_by_name("inference.ModelConfig")
            .ok_or_else(|| "inference.ModelConfig is not compiled in".into())
    });
    decoded.clone().map_err(Error::Invalid)
}

/// Reads a config.pbtxt.
///
/// # Errors
/// An unreadable file, text that is not a model configuration, or fields this server does not
/// read (named in the message).
pub fn read(path: &Path) -> Result<ModelConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text).map_err(|e| Error::format(path, e.to_string()))
}

/// Parses the text of a config.pbtxt.
///
/// # Errors
/// As [`read`].
pub fn parse(text: &str) -> Result<ModelConfig> {
    let text = colon_before_lists(text);
    let message = DynamicMessage::parse_text_format(descriptor()?, &text).map_err(|e| {
        Error::Invalid(format!(
            "{e} (runtime serve reads name, platform, backend, version_policy, max_batch_size, input, output, \
             instance_group, default_model_filename, dynamic_batching and parameters)"
        ))
    })?;
    message.transcode_to().map_err(|e| Error::Invalid(format!("not a model configuration: {e}")))
}

/// `input [ ... ]` as `input: [ ... ]`. The text format lets the colon go before a list of
/// messages, and Triton's configs (the exporter's too) leave it out; prost-reflect 0.16 wants
/// it. Strings and `#` comments are copied as they are.
fn colon_before_lists(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' {
                        out.extend(chars.next());
                    } else if d == c {
                        break;
                    }
                }
            }
            '#' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '[' => {
                if out.trim_end().ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_') {
                    out.push(':');
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The configuration as protobuf's JSON mapping, with the field names of the .proto (as Triton
/// answers `/v2/models/<name>/config`).
///
/// # Errors
/// Only if the compiled-in descriptors are broken.
pub fn to_json(config: &ModelConfig) -> Result<serde_json::Value> {
    let broken = |e: &dyn std::fmt::Display| Error::Invalid(format!("the configuration does not encode: {e}"));
    let message = DynamicMessage::decode(descriptor()?, config.encode_to_vec().as_slice()).map_err(|e| broken(&e))?;
    let options = SerializeOptions::new().use_proto_field_name(true).stringify_64_bit_integers(false);
    message.serialize_with_options(serde_json::value::Serializer, &options).map_err(|e| broken(&e))
}

/// The most engines one model may ask for: each is a session with its own thread and memory,
/// so a count past this is a typing error, not a plan.
pub const MAX_INSTANCES: usize = 256;

/// Where a group of a model's engines runs: config.pbtxt's `instance_group` kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// Where the command line's engine flags say (`KIND_AUTO`, `KIND_MODEL`, no config).
    Flags,
    /// On the CPU (`KIND_CPU`): ONNX Runtime's CPU provider, or tract.
    Cpu,
    /// On a GPU (`KIND_GPU`): the CUDA device of this index, or the one `--gpu` names.
    Gpu(Option<usize>),
}

/// A group of engines on one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub device: Device,
    pub count: usize,
}

/// The engines to load and where: a group per `instance_group` entry (a `KIND_GPU` group once
/// per GPU it lists, as Triton does), or the default count where the flags say.
///
/// # Errors
/// An unknown kind, a negative GPU index, GPUs listed for a CPU group, more than
/// [`MAX_INSTANCES`] in all.
pub fn placements(given: Option<&ModelConfig>, defaults: &Defaults) -> Result<Vec<Placement>> {
    use model_instance_group::Kind;
    let groups = given.map_or(&[][..], |config| config.instance_group.as_slice());
    let mut placements = Vec::new();
    if groups.is_empty() {
        placements.push(Placement { device: Device::Flags, count: defaults.instances.max(1) });
    }
    for group in groups {
        // Triton's default count is 1.
        let count = usize::try_from(group.count).unwrap_or(0).max(1);
        let mut gpus = Vec::with_capacity(group.gpus.len());
        for &gpu in &group.gpus {
            gpus.push(usize::try_from(gpu).map_err(|_| {
                Error::Invalid(format!("instance_group `{}`: gpus lists {gpu}, not a device index", group.name))
            })?);
        }
        match Kind::try_from(group.kind) {
            Ok(Kind::Gpu) if gpus.is_empty() => placements.push(Placement { device: Device::Gpu(None), count }),
            Ok(Kind::Gpu) => {
                placements.extend(gpus.iter().map(|&gpu| Placement { device: Device::Gpu(Some(gpu)), count }))
            }
            Ok(_) if !gpus.is_empty() => {
                bail!("instance_group `{}`: gpus are listed but its kind is not KIND_GPU", group.name)
            }
            Ok(Kind::Cpu) => placements.push(Placement { device: Device::Cpu, count }),
            Ok(Kind::Auto | Kind::Model) => placements.push(Placement { device: Device::Flags, count }),
            Err(_) => bail!("instance_group `{}`: unknown kind {}", group.name, group.kind),
        }
    }
    let total: usize = placements.iter().map(|p| p.count).sum();
    if total > MAX_INSTANCES {
        bail!("instance_group asks for {total} instances; runtime serve loads at most {MAX_INSTANCES} per model");
    }
    Ok(placements)
}

/// The versions to serve of those a model's folder has (`available`): config.pbtxt's
/// `version_policy`, by default the highest, as Triton's `latest { num_versions: 1 }`. In
/// ascending order.
///
/// # Errors
/// No version available, `latest` of none, a `specific` version the folder does not have.
pub fn served_versions(given: Option<&ModelConfig>, available: &[u64]) -> Result<Vec<u64>> {
    use super::proto::model_version_policy::PolicyChoice;
    let mut available = available.to_vec();
    available.sort_unstable();
    available.dedup();
    if available.is_empty() {
        bail!("no version to serve");
    }
    let policy = given.and_then(|c| c.version_policy.as_ref()).and_then(|p| p.policy_choice.as_ref());
    let served = match policy {
        None => available.split_off(available.len() - 1),
        Some(PolicyChoice::Latest(latest)) => {
            if latest.num_versions == 0 {
                bail!("version_policy latest {{ num_versions: 0 }} serves no version");
            }
            let keep = available.len().min(latest.num_versions as usize);
            available.split_off(available.len() - keep)
        }
        Some(PolicyChoice::All(_)) => available,
        Some(PolicyChoice::Specific(specific)) => {
            let mut wanted = Vec::with_capacity(specific.versions.len());
            for &version in &specific.versions {
                match u64::try_from(version).ok().filter(|v| available.contains(v)) {
                    Some(v) => wanted.push(v),
                    None => bail!(
                        "version_policy names version {version}, which is not in the folder (versions: {})",
                        available.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    ),
                }
            }
            wanted.sort_unstable();
            wanted.dedup();
            if wanted.is_empty() {
                bail!("version_policy specific {{ }} names no version");
            }
            wanted
        }
    };
    Ok(served)
}

/// Completes `given` (a config.pbtxt, if any) from the ONNX file and checks one against the
/// other.
///
/// # Errors
/// A graph with several inputs or non-float tensors; a config.pbtxt whose tensors, dimensions
/// or batch size the graph contradicts.
pub fn effective(name: &str, given: Option<ModelConfig>, onnx: &OnnxInfo, defaults: &Defaults) -> Result<Effective> {
    let [input] = onnx.inputs.as_slice() else {
        bail!("the graph has {} inputs; runtime serve runs graphs with one", onnx.inputs.len());
    };
    for tensor in onnx.inputs.iter().chain(&onnx.outputs) {
        if tensor.elem_type != "float" {
            bail!(
                "`{}` is {}; runtime serve runs graphs whose tensors are float (FP32)",
                tensor.name,
                tensor.elem_type
            );
        }
    }
    let free_batch = matches!(input.shape.first(), Some(Dim::Symbolic(_)));
    let max_batch = match &given {
        Some(config) => {
            usize::try_from(config.max_batch_size).map_err(|_| Error::Invalid("max_batch_size is negative".into()))?
        }
        None if free_batch => defaults.max_batch,
        None => 0,
    };
    if max_batch > 0 && !free_batch {
        bail!(
            "max_batch_size is {max_batch} but the graph's input `{}` has no free first dimension ({})",
            input.name,
            input.shape.iter().map(ToString::to_string).collect::<Vec<_>>().join(" x ")
        );
    }
    let spec = |t: &TensorInfo| Spec {
        name: t.name.clone(),
        dims: t
            .shape
            .iter()
            .skip(usize::from(max_batch > 0))
            .map(|d| match d {
                Dim::Fixed(n) => i64::try_from(*n).unwrap_or(-1),
                Dim::Symbolic(_) => -1,
            })
            .collect(),
    };
    let input = spec(input);
    let outputs: Vec<Spec> = onnx.outputs.iter().map(spec).collect();
    let mut config = given.clone().unwrap_or_default();
    if let Some(given) = &given {
        let inputs = given.input.iter().map(|i| (&i.name, i.data_type, &i.dims));
        check_tensors("input", inputs, std::slice::from_ref(&input))?;
        check_tensors("output", given.output.iter().map(|o| (&o.name, o.data_type, &o.dims)), &outputs)?;
        let platform_ok = matches!(config.platform.as_str(), "" | "onnxruntime_onnx");
        let backend_ok = matches!(config.backend.as_str(), "" | "onnxruntime");
        if !platform_ok || !backend_ok {
            bail!("platform `{}` / backend `{}`: runtime serve runs ONNX models", config.platform, config.backend);
        }
    }
    let batching = match &given {
        Some(given) => given.dynamic_batching.clone(),
        None => Some(ModelDynamicBatching {
            max_queue_delay_microseconds: u64::try_from(defaults.delay.as_micros()).unwrap_or(u64::MAX),
            ..Default::default()
        }),
    };
    let policy = Policy {
        max_batch,
        merge: batching.is_some() && max_batch > 0,
        preferred: batching
            .as_ref()
            .map(|b| b.preferred_batch_size.iter().filter_map(|&n| usize::try_from(n).ok()).collect())
            .unwrap_or_default(),
        delay: Duration::from_micros(batching.as_ref().map_or(0, |b| b.max_queue_delay_microseconds)),
    };
    config.name = name.to_string();
    config.platform = "onnxruntime_onnx".into();
    config.backend = "onnxruntime".into();
    config.max_batch_size = i32::try_from(max_batch).unwrap_or(i32::MAX);
    let fp32 = DataType::TypeFp32 as i32;
    config.input =
        vec![ModelInput { name: input.name.clone(), data_type: fp32, dims: input.dims.clone(), ..Default::default() }];
    config.output = outputs
        .iter()
        .map(|o| ModelOutput { name: o.name.clone(), data_type: fp32, dims: o.dims.clone(), ..Default::default() })
        .collect();
    config.dynamic_batching = batching.filter(|_| policy.merge);
    let signature = Signature { model: name.to_string(), input, outputs, max_batch };
    Ok(Effective { config, signature, policy })
}

/// Records where the engines run, once they are loaded: a group per placement, `KIND_CPU` for
/// those on the CPU provider (or tract), `KIND_GPU` with its device for the others.
pub fn set_instances(config: &mut ModelConfig, loaded: &[(Placement, &str, usize)]) {
    use model_instance_group::Kind;
    config.instance_group = loaded
        .iter()
        .map(|&(placement, provider, gpu)| {
            let on_cpu = provider == "cpu";
            super::proto::ModelInstanceGroup {
                count: i32::try_from(placement.count).unwrap_or(i32::MAX),
                kind: if on_cpu { Kind::Cpu } else { Kind::Gpu } as i32,
                gpus: if on_cpu { Vec::new() } else { vec![i32::try_from(gpu).unwrap_or(i32::MAX)] },
                ..Default::default()
            }
        })
        .collect();
}

/// Checks the tensors a config.pbtxt lists against the graph's.
fn check_tensors<'a>(
    what: &str,
    listed: impl Iterator<Item = (&'a String, i32, &'a Vec<i64>)>,
    graph: &[Spec],
) -> Result<()> {
    for (name, data_type, dims) in listed {
        let Some(spec) = graph.iter().find(|s| &s.name == name) else {
            let names: Vec<&str> = graph.iter().map(|s| s.name.as_str()).collect();
            bail!("{what} `{name}` is not in the graph (its {what}s: {})", names.join(", "));
        };
        if !matches!(DataType::try_from(data_type), Ok(DataType::TypeFp32 | DataType::TypeInvalid)) {
            bail!("{what} `{name}`: data_type {} but the graph's is TYPE_FP32", type_name(data_type));
        }
        let fits =
            dims.len() == spec.dims.len() && dims.iter().zip(&spec.dims).all(|(&a, &b)| a == b || a == -1 || b == -1);
        if !fits {
            bail!("{what} `{name}`: dims {dims:?} but the graph's are {:?} (without the batch dimension)", spec.dims);
        }
    }
    Ok(())
}

fn type_name(data_type: i32) -> String {
    DataType::try_from(data_type).map_or_else(|_| data_type.to_string(), |t| t.as_str_name().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn onnx(input: Vec<Dim>, output: Vec<Dim>) -> OnnxInfo {
        let tensor = |name: &str, shape| TensorInfo { name: name.into(), elem_type: "float".into(), shape };
        OnnxInfo { inputs: vec![tensor("x", input)], outputs: vec![tensor("y", output)], ..Default::default() }
    }

    fn defaults() -> Defaults {
        Defaults { max_batch: 64, delay: Duration::ZERO, instances: 1 }
    }

    fn batch() -> Dim {
        Dim::Symbolic("N".into())
    }

    #[test]
    fn the_exporters_config_reads_back() {
        let text = "name: \"hybridsn\"\nplatform: \"onnxruntime_onnx\"\nmax_batch_size: 8\n\
                    input [\n  {\n    name: \"x\"\n    data_type: TYPE_FP32\n    dims: [ 3, 5 ]\n  }\n]\n\
                    output [\n  {\n    name: \"y\"\n    data_type: TYPE_FP32\n    dims: [ 16 ]\n  }\n]\n\
                    instance_group [ { count: 2 kind: KIND_CPU } ]\n\
                    dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 100 }\n";
        let config = parse(text).unwrap();
        assert_eq!((config.name.as_str(), config.max_batch_size), ("hybridsn", 8));
        let graph = onnx(vec![batch(), Dim::Fixed(3), Dim::Fixed(5)], vec![batch(), Dim::Fixed(16)]);
        let effective = effective("hybridsn", Some(config), &graph, &defaults()).unwrap();
        let policy = Policy { max_batch: 8, merge: true, preferred: vec![4], delay: Duration::from_micros(100) };
        assert_eq!(effective.policy, policy);
        assert_eq!(effective.signature.input, Spec { name: "x".into(), dims: vec![3, 5] });
        let json = to_json(&effective.config).unwrap();
        assert_eq!(json["input"][0]["dims"], serde_json::json!([3, 5]), "{json}");
        assert_eq!(json["dynamic_batching"]["max_queue_delay_microseconds"], 100, "{json}");
    }

    #[test]
    fn lists_of_messages_need_no_colon() {
        let text = "# a [comment]\nname: \"a[b\\\"\" input [ { dims: [ 2 ] } ] output: [ { name: \"y\" } ]";
        let expected = "# a [comment]\nname: \"a[b\\\"\" input :[ { dims: [ 2 ] } ] output: [ { name: \"y\" } ]";
        assert_eq!(colon_before_lists(text), expected);
        assert_eq!(parse(text).unwrap().name, "a[b\"");
    }

    #[test]
    fn without_a_config_the_graph_decides() {
        let free = effective("m", None, &onnx(vec![batch(), Dim::Fixed(4)], vec![batch()]), &defaults()).unwrap();
        assert_eq!((free.policy.max_batch, free.policy.merge, free.signature.input.dims.clone()), (64, true, vec![4]));
        let fixed = effective("m", None, &onnx(vec![Dim::Fixed(1), Dim::Fixed(4)], vec![]), &defaults()).unwrap();
        assert_eq!((fixed.policy.max_batch, fixed.policy.merge, fixed.signature.input.dims), (0, false, vec![1, 4]));
    }

    #[test]
    fn contradictions_are_named() {
        let graph = onnx(vec![batch(), Dim::Fixed(4)], vec![batch(), Dim::Fixed(2)]);
        let cases = [
            ("max_batch_size: 4 input [ { name: \"z\" dims: [ 4 ] } ]", "input `z` is not in the graph"),
            ("max_batch_size: 4 input [ { name: \"x\" dims: [ 5 ] } ]", "dims [5] but the graph's are [4]"),
            ("max_batch_size: 4 output [ { name: \"y\" data_type: TYPE_INT64 dims: [ 2 ] } ]", "TYPE_INT64"),
            ("max_batch_size: 4 platform: \"tensorflow_savedmodel\"", "runs ONNX models"),
            ("max_batch_size: -1", "negative"),
        ];
        for (text, expected) in cases {
            let error = effective("m", Some(parse(text).unwrap()), &graph, &defaults()).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let fixed = onnx(vec![Dim::Fixed(1), Dim::Fixed(4)], vec![]);
        let error = effective("m", Some(parse("max_batch_size: 8").unwrap()), &fixed, &defaults()).unwrap_err();
        assert!(error.to_string().contains("no free first dimension"), "{error}");
        let error = parse("max_batch_size: 8 optimization { }").unwrap_err().to_string();
        assert!(error.contains("optimization") && error.contains("runtime serve reads"), "{error}");
    }

    #[test]
    fn instance_groups_say_where_engines_run() {
        let placed = |text: &str| placements(Some(&parse(text).unwrap()), &defaults());
        let text = "instance_group [ { count: 2 kind: KIND_CPU }, { kind: KIND_GPU gpus: [ 0, 1 ] }, \
                    { count: 3 kind: KIND_GPU }, { count: 0 } ]";
        let expected = [
            Placement { device: Device::Cpu, count: 2 },
            Placement { device: Device::Gpu(Some(0)), count: 1 },
            Placement { device: Device::Gpu(Some(1)), count: 1 },
            Placement { device: Device::Gpu(None), count: 3 },
            Placement { device: Device::Flags, count: 1 },
        ];
        assert_eq!(placed(text).unwrap(), expected);
        let none = placements(None, &Defaults { instances: 3, ..defaults() }).unwrap();
        assert_eq!(none, [Placement { device: Device::Flags, count: 3 }]);
        let cases = [
            ("instance_group [ { count: 200 }, { count: 57 } ]", "257 instances"),
            ("instance_group [ { name: \"g\" kind: KIND_CPU gpus: [ 0 ] } ]", "`g`: gpus are listed"),
            ("instance_group [ { kind: KIND_GPU gpus: [ -1 ] } ]", "gpus lists -1"),
        ];
        for (text, expected) in cases {
            let error = placed(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn version_policies_choose_among_the_folders_versions() {
        let served = |text: &str, available: &[u64]| served_versions(Some(&parse(text).unwrap()), available);
        assert_eq!(served_versions(None, &[3, 1, 10]).unwrap(), [10]);
        assert_eq!(served("version_policy { latest { num_versions: 2 } }", &[3, 1, 10]).unwrap(), [3, 10]);
        assert_eq!(served("version_policy { latest { num_versions: 9 } }", &[3, 1]).unwrap(), [1, 3]);
        assert_eq!(served("version_policy { all { } }", &[2, 1]).unwrap(), [1, 2]);
        assert_eq!(served("version_policy { specific { versions: [ 1, 1 ] } }", &[2, 1]).unwrap(), [1]);
        let cases = [
            (
                "version_policy { specific { versions: [ 4 ] } }",
                "version 4, which is not in the folder (versions: 1, 2)",
            ),
            ("version_policy { latest { num_versions: 0 } }", "serves no version"),
            ("version_policy { specific { } }", "names no version"),
        ];
        for (text, expected) in cases {
            let error = served(text, &[1, 2]).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(served_versions(None, &[]).is_err());
    }
}
