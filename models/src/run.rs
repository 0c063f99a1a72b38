//! The run directory: the contract between the trainer, which writes it, and the exporter,
//! which builds the deployed model from it.
//!
//! ```text
//! runs/hybridsn-indian-pines/
//!   config.json            RunConfig: model, data and training configuration
//!   model.safetensors      the selected weights (best on validation, else last), PyTorch names
//!   preprocessing.json     Preprocessing: PCA (scenes) or normalisation (images), class names
//!   metrics.json           test metrics (oa, aa, kappa, per class, confusion) and curves
//!   sample.safetensors     `input` (what the ONNX graph takes) and the trainer's `logits`
//!   curves.png, per_class.png, confusion.png, map*.png   pictures
//!   checkpoints/           last.safetensors + last.json (resume), best.safetensors
//! ```

use serde::{Deserialize, Serialize};

use crate::zoo::ModelConfig;

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const PREPROCESSING: &str = "preprocessing.json";
pub const METRICS: &str = "metrics.json";
/// Scenes: the pixels (`[y, x]`) of the training, validation and test sets.
pub const SPLIT: &str = "split.json";
pub const SAMPLE: &str = "sample.safetensors";
/// Tensor of [`SAMPLE`] holding a batch of inputs as the exported graph takes them.
pub const SAMPLE_INPUT: &str = "input";
/// Tensor of [`SAMPLE`] holding the trainer's evaluation-mode logits for [`SAMPLE_INPUT`].
pub const SAMPLE_LOGITS: &str = "logits";

/// `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunConfig {
    /// The Prism version that trained the model.
    pub prism_version: String,
    pub model: ModelConfig,
    /// Where the data came from (free-form for reports: data set name, files, split).
    pub data: serde_json::Value,
    /// Optimiser, schedule, epochs, seed... (free-form for reports).
    pub train: serde_json::Value,
}

/// `preprocessing.json`: what turns a user's data into the model's input. The linear parts
/// (PCA, normalisation) go inside the exported graph; the rest (windows, resizing) stays with
/// the runtime and is described in the ONNX metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Preprocessing {
    Scene(ScenePreprocessing),
    Image(ImagePreprocessing),
}

impl Preprocessing {
    pub fn class_names(&self) -> &[String] {
        match self {
            Preprocessing::Scene(s) => &s.class_names,
            Preprocessing::Image(i) => &i.class_names,
        }
    }
}

/// Hyperspectral scenes: a window of `window x window` pixels around each pixel, every pixel
/// projected by the PCA. Outside the scene the windows hold zeros after the projection, that is
/// the PCA mean before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenePreprocessing {
    /// Bands of the scene as read from the file.
    pub raw_bands: usize,
    pub window: usize,
    pub pca: Pca,
    pub class_names: Vec<String>,
    /// The label value of each class in the ground-truth file (0 is unlabelled).
    pub class_values: Vec<i64>,
}

/// Principal component analysis with optional whitening, as scikit-learn's `PCA(whiten=True)`:
/// `y = (x - mean) @ components.T / sqrt(explained_variance)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// `[raw_bands]`
    pub mean: Vec<f32>,
    /// `[components][raw_bands]`, each of unit norm, its largest-magnitude entry positive.
    pub components: Vec<Vec<f32>>,
    /// `[components]`: variance along each component (divisor n - 1).
    pub explained_variance: Vec<f32>,
    pub whiten: bool,
}

impl Pca {
    pub fn n_components(&self) -> usize {
        self.components.len()
    }

    /// The projection as one affine map `y = W x + b`: `W` is `[components][raw_bands]`
    /// (row-major, flattened), `b` is `[components]`. Computed in f64.
    pub fn affine(&self) -> (Vec<f32>, Vec<f32>) {
        let mut weight = Vec::with_capacity(self.components.len() * self.mean.len());
        let mut bias = Vec::with_capacity(self.components.len());
        for (component, variance) in self.components.iter().zip(&self.explained_variance) {
            let scale = if self.whiten { 1.0 / f64::from(*variance).sqrt() } else { 1.0 };
            let mut b = 0f64;
            for (c, m) in component.iter().zip(&self.mean) {
                let w = f64::from(*c) * scale;
                weight.push(w as f32);
                b -= w * f64::from(*m);
            }
            bias.push(b as f32);
        }
        (weight, bias)
    }
}

/// Images: decoded to RGB, the shorter side resized to `resize`, a centre `crop x crop`
/// square, scaled to [0, 1], then normalised by `mean` and `std` per channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagePreprocessing {
    pub resize: usize,
    pub crop: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub class_names: Vec<String>,
}

impl ImagePreprocessing {
    /// ImageNet's preprocessing, which torchvision's pretrained weights expect.
    pub fn imagenet(class_names: Vec<String>) -> Self {
        ImagePreprocessing {
            resize: 256,
            crop: 224,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            class_names,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_affine_equals_the_definition() {
        let pca = Pca {
            mean: vec![1.0, 2.0, 3.0],
            components: vec![vec![0.6, 0.8, 0.0], vec![0.0, 0.0, 1.0]],
            explained_variance: vec![4.0, 0.25],
            whiten: true,
        };
        let (w, b) = pca.affine();
        let x = [2.0f32, 0.0, 5.0];
        let y: Vec<f32> = (0..2).map(|i| (0..3).map(|j| w[i * 3 + j] * x[j]).sum::<f32>() + b[i]).collect();
        // ((2-1)*0.6 + (0-2)*0.8) / 2 = -0.5 ; (5-3) / 0.5 = 4
        assert!((y[0] + 0.5).abs() < 1e-6 && (y[1] - 4.0).abs() < 1e-6, "{y:?}");
    }
}
