//! The tch interpretation of a model description: parameters in a `VarStore` under PyTorch's
//! names, and a [`Backend`] whose tensors are tch tensors.

use std::collections::HashMap;
use std::path::Path as FsPath;

use anyhow::{Context, Result, bail};
use prism_models::layers::{BatchNorm, Conv, Init, Linear, Pool, PoolKind};
use prism_models::summary::ShapeWalker;
use prism_models::{Backend, ModelConfig, Path};
use tch::{Device, Kind, Tensor, nn};

/// A model ready to train or evaluate: its config and its state (parameters and buffers).
pub struct TchModel {
    pub config: ModelConfig,
    pub vs: nn::VarStore,
    /// Every tensor of the state by its PyTorch name (shallow clones of the var store's).
    state: HashMap<String, Tensor>,
    /// Trainable parameter names in the order the architecture creates them.
    trainable: Vec<String>,
}

impl TchModel {
    /// Creates the model's state on `device`, initialised as PyTorch initialises the same
    /// layers (draws from tch's global generator: seed it with `tch::manual_seed` first).
    pub fn new(config: ModelConfig, device: Device) -> Result<Self> {
        let mut walker = ShapeWalker::new();
        let input: Vec<usize> = std::iter::once(1).chain(config.input_shape()).collect();
        config.forward(&mut walker, &input)?;
        let vs = nn::VarStore::new(device);
        let mut state = HashMap::new();
        let mut trainable = Vec::new();
        tch::no_grad(|| -> Result<()> {
            for info in &walker.params {
                let dims: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
                let options = (if info.integer { Kind::Int64 } else { Kind::Float }, device);
                let tensor = match info.init {
                    Init::Const(v) => Tensor::f_full(&dims, v, options)?,
                    Init::Uniform(bound) => Tensor::f_empty(&dims, options)?.f_uniform_(-bound, bound)?,
                    Init::Normal(std) => Tensor::f_empty(&dims, options)?.f_normal_(0.0, std)?,
                };
                let (scope, leaf) = info.name.rsplit_once('.').unwrap_or(("", &info.name));
                let path = scope.split('.').filter(|s| !s.is_empty()).fold(vs.root(), |p, part| p / part);
                let tensor = path.add(leaf, tensor, info.trainable);
                if info.trainable {
                    trainable.push(info.name.clone());
                }
                state.insert(info.name.clone(), tensor);
            }
            Ok(())
        })?;
        Ok(TchModel { config, vs, state, trainable })
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Trainable parameters by name, in creation order.
    pub fn parameters(&self) -> Vec<(&str, &Tensor)> {
        self.trainable.iter().map(|name| (name.as_str(), &self.state[name])).collect()
    }

    pub fn state(&self) -> &HashMap<String, Tensor> {
        &self.state
    }

    /// Logits (or the feature map of a block alone).
    ///
    /// # Shapes
    /// `x`: `[N, ...config.input_shape()]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut backend = TchBackend { state: &self.state, train };
        Ok(self.config.forward(&mut backend, x)?)
    }

    /// Saves the whole state as safetensors under PyTorch's names, atomically.
    pub fn save(&self, path: &FsPath) -> Result<()> {
        let tmp = path.with_extension("tmp.safetensors");
        let saved = self.vs.save(&tmp).map_err(anyhow::Error::from).and_then(|()| Ok(std::fs::rename(&tmp, path)?));
        if saved.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        saved.with_context(|| format!("writing {}", path.display()))
    }

    /// Loads every tensor of the state from a safetensors file (or PyTorch `.pt`) that holds
    /// this model and nothing else: weights of another model (say HybridSN-SE weights read as
    /// plain HybridSN) are refused rather than half-loaded.
    pub fn load(&mut self, path: &FsPath) -> Result<()> {
        let tensors = read_tensors(path)?;
        let mut extra: Vec<&String> = tensors.keys().filter(|name| !self.state.contains_key(*name)).collect();
        extra.sort();
        if let Some(name) = extra.first() {
            bail!(
                "{}: tensor `{name}` is not a parameter of {} (weights of another model?)",
                path.display(),
                self.config.name()
            );
        }
        self.load_tensors(&tensors, path, &[])
    }

    /// Copies `tensors` into the state. Every state tensor must be present with its shape,
    /// except those whose names start with a prefix in `skip` (a replaced classifier).
    pub fn load_tensors(&mut self, tensors: &HashMap<String, Tensor>, source: &FsPath, skip: &[&str]) -> Result<()> {
        let mut names: Vec<&String> = self.state.keys().collect();
        names.sort();
        tch::no_grad(|| -> Result<()> {
            for name in names {
                if skip.iter().any(|prefix| name.starts_with(prefix)) {
                    continue;
                }
                let dst = &self.state[name];
                let Some(src) = tensors.get(name) else {
                    bail!("{}: no tensor `{name}`", source.display());
                };
                if src.size() != dst.size() {
                    bail!(
                        "{}: tensor `{name}` has shape {:?}, the model needs {:?}",
                        source.display(),
                        src.size(),
                        dst.size()
                    );
                }
                let mut dst = dst.shallow_clone();
                dst.f_copy_(&src.f_to_kind(dst.kind())?)?;
            }
            Ok(())
        })
    }
}

/// Reads a safetensors or PyTorch file into named tensors on the CPU.
pub fn read_tensors(path: &FsPath) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    let tensors = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Tensor::read_safetensors(path).map_err(|e| anyhow::anyhow!("{}: not a readable safetensors file ({})", path.display(), first_line(&e.to_string()))),
        _ => Tensor::loadz_multi_with_device(path, Device::Cpu).map_err(|e| {
            let e = e.to_string();
            let hint = "save a plain dict, torch.save(dict(model.state_dict()), path), or safetensors";
            // libtorch reads a plain dict of tensors, not the OrderedDict `state_dict()` returns.
            if e.contains("Expected GenericDict") {
                anyhow::anyhow!("{}: holds no plain dict of tensors (an OrderedDict, as state_dict() returns, libtorch cannot read): {hint}", path.display())
            } else {
                anyhow::anyhow!("{}: not a readable weights file ({}); {hint}", path.display(), first_line(&e))
            }
        }),
    }?;
    Ok(tensors.into_iter().collect())
}

/// libtorch's messages carry a C++ backtrace after the first line.
pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}

struct TchBackend<'a> {
    state: &'a HashMap<String, Tensor>,
    train: bool,
}

type R<T> = prism_models::Result<T>;

impl TchBackend<'_> {
    fn param(&self, p: &Path, leaf: &str) -> R<&Tensor> {
        let name = p.param(leaf);
        self.state.get(&name).ok_or(prism_models::Error::MissingParam { name })
    }
}

fn err(p: &Path) -> impl Fn(tch::TchError) -> prism_models::Error + '_ {
    move |e| prism_models::Error::backend(p, first_line(&e.to_string()))
}

fn ints(values: &[usize]) -> Vec<i64> {
    values.iter().map(|&v| v as i64).collect()
}

impl Backend for TchBackend<'_> {
    type Tensor = Tensor;

    fn shape(&self, x: &Tensor) -> Vec<usize> {
        x.size().iter().map(|&d| d as usize).collect()
    }

    fn conv(&mut self, p: &Path, cfg: &Conv, x: &Tensor) -> R<Tensor> {
        cfg.output_shape(&p.to_string(), &self.shape(x))?;
        let weight = self.param(p, "weight")?;
        let bias = if cfg.bias { Some(self.param(p, "bias")?) } else { None };
        let zeros = vec![0; cfg.kernel.len()];
        x.f_convolution(
            weight,
            bias,
            ints(&cfg.stride),
            ints(&cfg.padding),
            ints(&cfg.dilation),
            false,
            zeros,
            cfg.groups as i64,
        )
        .map_err(err(p))
    }

    fn batch_norm(&mut self, p: &Path, cfg: &BatchNorm, x: &Tensor) -> R<Tensor> {
        let (w, b) = (self.param(p, "weight")?, self.param(p, "bias")?);
        let (mean, var) = (self.param(p, "running_mean")?, self.param(p, "running_var")?);
        if self.train {
            let mut count = self.param(p, "num_batches_tracked")?.shallow_clone();
            tch::no_grad(|| count.f_add_scalar_(1).map(drop)).map_err(err(p))?;
        }
        x.f_batch_norm(Some(w), Some(b), Some(mean), Some(var), self.train, cfg.momentum, cfg.eps, true).map_err(err(p))
    }

    fn linear(&mut self, p: &Path, cfg: &Linear, x: &Tensor) -> R<Tensor> {
        cfg.output_shape(&p.to_string(), &self.shape(x))?;
        let weight = self.param(p, "weight")?;
        let bias = if cfg.bias { Some(self.param(p, "bias")?) } else { None };
        x.f_linear(weight, bias).map_err(err(p))
    }

    fn relu(&mut self, p: &Path, x: &Tensor) -> R<Tensor> {
        x.f_relu().map_err(err(p))
    }

    fn sigmoid(&mut self, p: &Path, x: &Tensor) -> R<Tensor> {
        x.f_sigmoid().map_err(err(p))
    }

    fn dropout(&mut self, p: &Path, prob: f64, x: &Tensor) -> R<Tensor> {
        x.f_dropout(prob, self.train).map_err(err(p))
    }

    fn pool(&mut self, p: &Path, cfg: &Pool, x: &Tensor) -> R<Tensor> {
        cfg.output_shape(&p.to_string(), &self.shape(x))?;
        let (k, s, pad) = (ints(&cfg.kernel), ints(&cfg.stride), ints(&cfg.padding));
        let ones = vec![1; k.len()];
        match (cfg.kind, k.len()) {
            (PoolKind::Max, 2) => x.f_max_pool2d(k, s, pad, ones, false),
            (PoolKind::Max, _) => x.f_max_pool3d(k, s, pad, ones, false),
            (PoolKind::Avg, 2) => x.f_avg_pool2d(k, s, pad, false, true, None),
            (PoolKind::Avg, _) => x.f_avg_pool3d(k, s, pad, false, true, None),
        }
        .map_err(err(p))
    }

    fn adaptive_avg_pool(&mut self, p: &Path, size: [usize; 2], x: &Tensor) -> R<Tensor> {
        x.f_adaptive_avg_pool2d(ints(&size)).map_err(err(p))
    }

    fn reshape(&mut self, p: &Path, dims: &[usize], x: &Tensor) -> R<Tensor> {
        let shape: Vec<i64> = std::iter::once(x.size()[0]).chain(dims.iter().map(|&d| d as i64)).collect();
        x.f_reshape(shape).map_err(err(p))
    }

    fn add(&mut self, p: &Path, a: &Tensor, b: &Tensor) -> R<Tensor> {
        a.f_add(b).map_err(err(p))
    }

    fn mul(&mut self, p: &Path, a: &Tensor, b: &Tensor) -> R<Tensor> {
        a.f_mul(b).map_err(err(p))
    }

    fn concat(&mut self, p: &Path, xs: &[&Tensor], axis: usize) -> R<Tensor> {
        Tensor::f_cat(xs, axis as i64).map_err(err(p))
    }

    fn resize_bilinear(&mut self, p: &Path, size: [usize; 2], x: &Tensor) -> R<Tensor> {
        x.f_upsample_bilinear2d(ints(&size), true, None, None).map_err(err(p))
    }
}

#[cfg(test)]
mod tests {
    use prism_models::{MODEL_NAMES, ModelOptions, Summary};

    use super::*;

    /// Every model of the zoo runs a forward pass on the CPU with the output shape the
    /// description gives (at small inputs, so that ResNet-152 stays quick).
    #[test]
    fn every_model_runs_forward_on_cpu() {
        for name in MODEL_NAMES {
            let options = if name.contains("resnet") {
                ModelOptions { image_size: Some(64), classes: Some(6), ..Default::default() }
            } else {
                ModelOptions::default()
            };
            let config = ModelConfig::from_name(name, &options).unwrap();
            let expected = Summary::of(&config).unwrap();
            tch::manual_seed(0);
            let model = TchModel::new(config.clone(), Device::Cpu).unwrap();
            let dims: Vec<i64> = std::iter::once(2).chain(config.input_shape().iter().map(|&d| d as i64)).collect();
            let x = Tensor::randn(&dims, (Kind::Float, Device::Cpu));
            for train in [true, false] {
                let y = model.forward(&x, train).unwrap();
                let shape: Vec<i64> = std::iter::once(2).chain(expected.output_shape[1..].iter().copied()).collect();
                assert_eq!(y.size(), shape, "{name}");
                assert!(y.isfinite().all().int64_value(&[]) == 1, "{name}: non-finite output");
            }
            let numel: usize = model.parameters().iter().map(|(_, t)| t.numel()).sum();
            assert_eq!(numel, expected.total_params, "{name}");
        }
    }

    #[test]
    fn save_and_load_round_trip() {
        let config = ModelConfig::from_name("hybridsn-bn", &ModelOptions::default()).unwrap();
        tch::manual_seed(1);
        let a = TchModel::new(config.clone(), Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        a.save(&path).unwrap();
        tch::manual_seed(2);
        let mut b = TchModel::new(config, Device::Cpu).unwrap();
        b.load(&path).unwrap();
        for (name, t) in a.state() {
            assert!(t.equal(&b.state()[name]), "{name}");
        }
    }

    #[test]
    fn load_refuses_weights_of_another_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("se.safetensors");
        let se = TchModel::new(ModelConfig::from_name("hybridsn-se", &ModelOptions::default()).unwrap(), Device::Cpu)
            .unwrap();
        se.save(&path).unwrap();
        let mut plain =
            TchModel::new(ModelConfig::from_name("hybridsn", &ModelOptions::default()).unwrap(), Device::Cpu).unwrap();
        let error = plain.load(&path).unwrap_err().to_string();
        assert!(error.contains("is not a parameter of"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
}
