//! Optimisers and learning-rate schedules with PyTorch's update rules, written on tch tensors
//! so that their state (moments, momentum buffers, step count) is ours to save: a resumed run
//! continues exactly where it stopped, which tch's built-in optimisers cannot do.

use std::collections::HashMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba), weight decay as an L2 term in the gradient.
    Adam,
    /// AdamW (Loshchilov & Hutter), decoupled weight decay.
    Adamw,
    /// SGD with (optionally Nesterov) momentum.
    Sgd,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub weight_decay: f64,
    /// SGD momentum.
    pub momentum: f64,
    pub nesterov: bool,
    pub betas: (f64, f64),
    pub eps: f64,
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("the learning rate must be positive, got {}", self.lr);
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            bail!("weight decay must be >= 0 and momentum in [0, 1)");
        }
        Ok(())
    }
}

/// Per-parameter state.
struct Slot {
    name: String,
    /// Adam: first moment; SGD: momentum buffer.
    first: Option<Tensor>,
    /// Adam: second moment.
    second: Option<Tensor>,
}

pub struct Optimizer {
    pub config: OptimizerConfig,
    slots: Vec<Slot>,
    /// Updates done so far (Adam's bias correction uses it).
    pub step: i64,
}

impl Optimizer {
    pub fn new(config: OptimizerConfig, params: &[(&str, &Tensor)]) -> Self {
        let slots = params.iter().map(|(name, _)| Slot { name: name.to_string(), first: None, second: None }).collect();
        Optimizer { config, slots, step: 0 }
    }

    /// Applies one update with learning rate `lr` to `params` (in the order given to `new`),
    /// skipping parameters without a gradient (frozen ones).
    pub fn step(&mut self, params: &[(&str, &Tensor)], lr: f64) {
        self.step += 1;
        let c = &self.config;
        let t = self.step as i32;
        tch::no_grad(|| {
            for ((_, param), slot) in params.iter().zip(&mut self.slots) {
                let grad = param.grad();
                if !grad.defined() {
                    continue;
                }
                let mut p = param.shallow_clone();
                match c.kind {
                    OptimizerKind::Adam | OptimizerKind::Adamw => {
                        let grad = if c.kind == OptimizerKind::Adam && c.weight_decay > 0.0 {
                            &grad + &p * c.weight_decay
                        } else {
                            grad
                        };
                        if c.kind == OptimizerKind::Adamw && c.weight_decay > 0.0 {
                            let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                        }
                        // In place, as torch.optim.Adam's single-tensor path: two temporaries
                        // the size of the parameter instead of eight.
                        let (b1, b2) = c.betas;
                        let m = slot.first.get_or_insert_with(|| grad.zeros_like());
                        let _ = m.lerp_(&grad, 1.0 - b1);
                        let v = slot.second.get_or_insert_with(|| grad.zeros_like());
                        let _ = v.g_mul_scalar_(b2).addcmul_(&grad, &(&grad * (1.0 - b2)));
                        let bias1 = 1.0 - b1.powi(t);
                        let bias2 = 1.0 - b2.powi(t);
                        // p -= lr / bias1 * m / (sqrt(v / bias2) + eps); tch's addcdiv_ has no
                        // scale, so the step's -lr / bias1 divides the denominator.
                        let mut denom = v.sqrt();
                        let _ = denom.g_div_scalar_(bias2.sqrt()).g_add_scalar_(c.eps).g_mul_scalar_(-bias1 / lr);
                        let _ = p.addcdiv_(m, &denom);
                    }
                    OptimizerKind::Sgd => {
                        let grad = if c.weight_decay > 0.0 { &grad + &p * c.weight_decay } else { grad };
                        let update = if c.momentum > 0.0 {
                            let buf = match &mut slot.first {
                                Some(buf) => {
                                    let _ = buf.g_mul_scalar_(c.momentum).g_add_(&grad);
                                    buf.shallow_clone()
                                }
                                None => slot.first.insert(grad.copy()).shallow_clone(),
                            };
                            if c.nesterov { &grad + buf * c.momentum } else { buf }
                        } else {
                            grad
                        };
                        let _ = p.g_sub_(&(update * lr));
                    }
                }
            }
        });
    }

    /// The state as named tensors (`optimizer.first.<param>`, `optimizer.second.<param>`) for a
    /// checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for slot in &self.slots {
            if let Some(t) = &slot.first {
                out.push((format!("optimizer.first.{}", slot.name), t.shallow_clone()));
            }
            if let Some(t) = &slot.second {
                out.push((format!("optimizer.second.{}", slot.name), t.shallow_clone()));
            }
        }
        out
    }

    /// Restores the state saved by [`Optimizer::state_tensors`], moved to `device`.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: i64, device: tch::Device) {
        self.step = step;
        for slot in &mut self.slots {
            slot.first = tensors.get(&format!("optimizer.first.{}", slot.name)).map(|t| t.to_device(device));
            slot.second = tensors.get(&format!("optimizer.second.{}", slot.name)).map(|t| t.to_device(device));
        }
    }
}

/// Zeroes the gradients of `params`.
pub fn zero_grad(params: &[(&str, &Tensor)]) {
    for (_, p) in params {
        let mut grad = p.grad();
        if grad.defined() {
            let _ = grad.detach_().zero_();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step,
    /// Cosine annealing from the base rate to `min_lr` over the epochs after warm-up.
    Cosine,
    /// Multiply by `gamma` every epoch.
    Exponential,
}

/// A learning-rate schedule: a pure function of the position in training, so resuming needs
/// no scheduler state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub step_size: usize,
    pub gamma: f64,
    pub min_lr: f64,
    /// Epochs of linear warm-up from `base / 10`... to the base rate (per batch).
    pub warmup_epochs: usize,
}

impl Schedule {
    pub fn validate(&self) -> Result<()> {
        if !(self.gamma > 0.0 && self.gamma.is_finite()) {
            bail!("--gamma must be positive, got {}", self.gamma);
        }
        if !(self.min_lr >= 0.0 && self.min_lr.is_finite()) {
            bail!("--min-lr must be >= 0, got {}", self.min_lr);
        }
        if self.step_size == 0 {
            bail!("--step-size must be positive");
        }
        Ok(())
    }

    /// The rate for batch `batch` of `batches` in epoch `epoch` (0-based) of `epochs`.
    pub fn lr(&self, base: f64, epoch: usize, batch: usize, batches: usize, epochs: usize) -> f64 {
        if epoch < self.warmup_epochs {
            let progress = (epoch * batches + batch + 1) as f64 / (self.warmup_epochs * batches.max(1)) as f64;
            return base * progress.min(1.0);
        }
        let e = (epoch - self.warmup_epochs) as f64;
        match self.kind {
            ScheduleKind::Constant => base,
            ScheduleKind::Step => base * self.gamma.powi(((epoch - self.warmup_epochs) / self.step_size.max(1)) as i32),
            ScheduleKind::Exponential => base * self.gamma.powf(e),
            ScheduleKind::Cosine => {
                let span = epochs.saturating_sub(self.warmup_epochs).max(1) as f64;
                self.min_lr + (base - self.min_lr) * (1.0 + (std::f64::consts::PI * e / span).cos()) / 2.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;

    fn config(kind: OptimizerKind) -> OptimizerConfig {
        OptimizerConfig {
            kind,
            lr: 0.1,
            weight_decay: 0.01,
            momentum: 0.9,
            nesterov: false,
            betas: (0.9, 0.999),
            eps: 1e-8,
        }
    }

    /// Two Adam steps on f(p) = sum(p^2) / 2 (gradient p), computed by hand.
    #[test]
    fn adam_follows_the_pytorch_update() {
        let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let mut c = config(OptimizerKind::Adam);
        c.weight_decay = 0.0;
        let mut opt = Optimizer::new(c, &[("p", &p)]);
        let mut expected = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=2 {
            zero_grad(&[("p", &p)]);
            (p.square().sum(Kind::Double) / 2.0).backward();
            opt.step(&[("p", &p)], 0.1);
            for i in 0..2 {
                let g = expected[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let mhat = m[i] / (1.0 - 0.9f64.powi(t));
                let vhat = v[i] / (1.0 - 0.999f64.powi(t));
                expected[i] -= 0.1 * mhat / (vhat.sqrt() + 1e-8);
            }
        }
        let got: Vec<f64> = p.detach().try_into().unwrap();
        for i in 0..2 {
            assert!((got[i] - expected[i]).abs() < 1e-12, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn sgd_momentum_and_state_round_trip() {
        let p = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let mut opt = Optimizer::new(config(OptimizerKind::Sgd), &[("p", &p)]);
        for _ in 0..2 {
            zero_grad(&[("p", &p)]);
            (p.square().sum(Kind::Float) / 2.0).backward();
            opt.step(&[("p", &p)], 0.1);
        }
        // g1 = 1 + 0.01 = 1.01, p1 = 1 - 0.101 = 0.899; g2 = 0.899 * 1.01, buf = 0.9 * 1.01 + g2
        let g2 = 0.899 * 1.01;
        let expected = 0.899 - 0.1 * (0.9 * 1.01 + g2);
        assert!((f64::try_from(p.detach()).unwrap() - expected).abs() < 1e-6);
        let saved: HashMap<String, Tensor> = opt.state_tensors().into_iter().collect();
        let mut restored = Optimizer::new(config(OptimizerKind::Sgd), &[("p", &p)]);
        restored.load_state(&saved, opt.step, Device::Cpu);
        assert!(restored.state_tensors()[0].1.equal(&saved["optimizer.first.p"]));
    }

    #[test]
    fn schedules() {
        let s = |kind| Schedule { kind, step_size: 2, gamma: 0.5, min_lr: 0.0, warmup_epochs: 0 };
        assert_eq!(s(ScheduleKind::Step).lr(1.0, 3, 0, 10, 10), 0.5);
        assert_eq!(s(ScheduleKind::Exponential).lr(1.0, 2, 0, 10, 10), 0.25);
        assert!((s(ScheduleKind::Cosine).lr(1.0, 5, 0, 10, 10) - 0.5).abs() < 1e-12);
        let warm = Schedule { warmup_epochs: 2, ..s(ScheduleKind::Constant) };
        assert!((warm.lr(1.0, 0, 4, 10, 10) - 0.25).abs() < 1e-12);
        assert_eq!(warm.lr(1.0, 2, 0, 10, 10), 1.0);
    }
}

#[cfg(test)]
mod learning {
    use prism_models::{ModelConfig, ModelOptions};
    use tch::{Device, Kind, Tensor};

    use super::*;
    use crate::model::TchModel;

    /// A small HybridSN memorises one batch of random windows: the whole chain (parameters,
    /// gradients, optimiser) learns. The loss is judged over the last ten steps, as dropout
    /// makes single steps noisy (and tests running alongside draw from the same global RNG).
    #[test]
    fn a_model_memorises_one_batch() {
        let options = ModelOptions { bands: Some(15), window: Some(9), classes: Some(4), ..Default::default() };
        let config = ModelConfig::from_name("hybridsn", &options).unwrap();
        tch::manual_seed(0);
        let model = TchModel::new(config, Device::Cpu).unwrap();
        let x = Tensor::randn([16, 1, 15, 9, 9], (Kind::Float, Device::Cpu));
        let y = Tensor::arange(16, (Kind::Int64, Device::Cpu)).remainder(4);
        let params = model.parameters();
        let mut opt = Optimizer::new(
            OptimizerConfig {
                kind: OptimizerKind::Adam,
                lr: 1e-3,
                weight_decay: 0.0,
                momentum: 0.9,
                nesterov: false,
                betas: (0.9, 0.999),
                eps: 1e-8,
            },
            &params,
        );
        let mut losses = Vec::new();
        for _ in 0..120 {
            zero_grad(&params);
            let loss = model.forward(&x, true).unwrap().cross_entropy_for_logits(&y);
            loss.backward();
            opt.step(&params, 1e-3);
            losses.push(f64::try_from(&loss).unwrap());
        }
        let last: f64 = losses[110..].iter().sum::<f64>() / 10.0;
        assert!(last < 0.1 * losses[0], "loss went from {} to {last} (mean of the last ten steps)", losses[0]);
    }
}
