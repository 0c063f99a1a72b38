//! Data sets the trainer reads: hyperspectral scenes and image folders, behind one [`Data`]
//! that hands out model-ready batches.

pub mod images;
pub mod indian_pines;
pub mod patches;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use prism_data::scene::{GroundTruth, Scene};
use prism_models::run::{ImagePreprocessing, Preprocessing};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use images::{ImageData, ImageFolder};
use patches::SceneData;

/// Where the data comes from, as recorded in the run's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// A hyperspectral scene: the built-in `indian-pines`, or files.
    Scene {
        #[serde(skip_serializing_if = "Option::is_none")]
        dataset: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<PathBuf>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gt: Option<PathBuf>,
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gt_key: Option<String>,
        /// PCA components kept.
        components: usize,
        window: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        class_names: Option<Vec<String>>,
    },
    /// An image folder in ImageFolder layout.
    Images { dir: PathBuf, resize: usize, crop: usize },
}

impl DataSource {
    /// A short human name: `Indian Pines`, the scene file name, or the image folder name.
    pub fn display_name(&self) -> String {
        match self {
            DataSource::Scene { dataset: Some(d), .. } if d == "indian-pines" => "Indian Pines".into(),
            DataSource::Scene { data: Some(p), .. } | DataSource::Images { dir: p, .. } => {
                p.file_stem().map_or_else(|| p.display().to_string(), |s| s.to_string_lossy().into_owned())
            }
            DataSource::Scene { .. } => "scene".into(),
        }
    }
}

/// A loaded data set.
pub enum Data {
    Scene { scene: Scene, data: SceneData },
    Images(ImageData),
}

impl Data {
    /// Reads and prepares the data described by `source`; with `trained`, the preprocessing of
    /// a trained model is reused (its PCA and classes) instead of fitted.
    ///
    /// # Errors
    /// Unreadable files, mismatched sizes, empty classes, corrupt images: each named.
    pub fn load(source: &DataSource, trained: Option<&Preprocessing>) -> Result<Data> {
        match source {
            DataSource::Scene { dataset, data, gt, key, gt_key, components, window, class_names } => {
                let (data_path, gt_path, names) = match (dataset.as_deref(), data, gt) {
                    (Some("indian-pines"), None, None) => {
                        let (cube, labels) = indian_pines::fetch()?;
                        let names = indian_pines::CLASS_NAMES.iter().map(|s| s.to_string()).collect();
                        (cube, labels, Some(names))
                    }
                    (Some(other), None, None) => bail!("unknown data set `{other}` (built in: indian-pines)"),
                    (None, Some(d), Some(g)) => (d.clone(), g.clone(), None),
                    (None, Some(_), None) => bail!("--data needs --gt (the ground-truth labels)"),
                    (None, None, Some(_)) => bail!("--gt needs --data (the scene)"),
                    _ => bail!("give either --dataset or --data with --gt"),
                };
                let scene = Scene::read(&data_path, key.as_deref()).with_context(|| "reading the scene".to_string())?;
                let truth = GroundTruth::read(&gt_path, gt_key.as_deref())
                    .with_context(|| "reading the ground truth".to_string())?;
                let data = match trained {
                    Some(Preprocessing::Scene(p)) => SceneData::with_preprocessing(&scene, &truth, p)?,
                    Some(Preprocessing::Image(_)) => bail!("an image model cannot evaluate a scene"),
                    None => SceneData::new(&scene, &truth, *components, *window, class_names.clone().or(names))?,
                };
                Ok(Data::Scene { scene, data })
            }
            DataSource::Images { dir, resize, crop } => {
                if crop > resize {
                    bail!("the crop ({crop}) cannot exceed the resize ({resize})");
                }
                let folder = ImageFolder::scan(dir)?;
                let preprocessing = match trained {
                    Some(Preprocessing::Image(p)) => {
                        if p.class_names != folder.class_names {
                            bail!(
                                "{}: classes {:?} differ from the model's {:?}",
                                dir.display(),
                                folder.class_names,
                                p.class_names
                            );
                        }
                        p.clone()
                    }
                    Some(Preprocessing::Scene(_)) => bail!("a scene model cannot evaluate images"),
                    None => ImagePreprocessing {
                        resize: *resize,
                        crop: *crop,
                        ..ImagePreprocessing::imagenet(folder.class_names.clone())
                    },
                };
                Ok(Data::Images(ImageData::load(&folder, preprocessing)?))
            }
        }
    }

    /// Fits the scene's PCA on the samples at `indices` only; see [`SceneData::refit_pca`].
    ///
    /// # Errors
    /// Image data (which has no PCA), and as [`SceneData::refit_pca`].
    pub fn refit_pca(&mut self, indices: &[usize]) -> Result<()> {
        match self {
            Data::Scene { scene, data } => data.refit_pca(scene, indices),
            Data::Images(_) => bail!("--pca-fit applies to scenes; images have no PCA"),
        }
    }

    pub fn class_names(&self) -> &[String] {
        match self {
            Data::Scene { data, .. } => &data.preprocessing.class_names,
            Data::Images(images) => &images.preprocessing.class_names,
        }
    }

    /// The class of every sample, for stratified splits.
    pub fn sample_classes(&self) -> Vec<usize> {
        match self {
            Data::Scene { data, .. } => data.samples.iter().map(|s| s.class).collect(),
            Data::Images(images) => images.labels.clone(),
        }
    }

    /// Scenes: the samples, the scene's height and width, and the window; images: nothing.
    pub fn scene_samples(&self) -> Option<(&[patches::Sample], (usize, usize), usize)> {
        match self {
            Data::Scene { data, .. } => Some((&data.samples, (data.height, data.width), data.preprocessing.window)),
            Data::Images(_) => None,
        }
    }

    pub fn preprocessing(&self) -> Preprocessing {
        match self {
            Data::Scene { data, .. } => Preprocessing::Scene(data.preprocessing.clone()),
            Data::Images(images) => Preprocessing::Image(images.preprocessing.clone()),
        }
    }

    /// Model inputs for the samples at `indices`, on `device`: PCA windows for scenes,
    /// normalised RGB (augmented when `augment` is given) for images.
    pub fn inputs(&self, indices: &[usize], augment: Option<&mut StdRng>, device: Device) -> Tensor {
        match self {
            Data::Scene { data, .. } => data.windows(indices).to_device(device),
            Data::Images(images) => normalise(&images.batch(indices, augment).to_device(device), &images.preprocessing),
        }
    }

    pub fn labels(&self, indices: &[usize], device: Device) -> Tensor {
        match self {
            Data::Scene { data, .. } => data.labels(indices),
            Data::Images(images) => images.labels_of(indices),
        }
        .to_device(device)
    }

    /// Inputs as the exported graph takes them (raw spectral windows; RGB in [0, 1]), on the CPU.
    pub fn graph_inputs(&self, indices: &[usize]) -> Tensor {
        match self {
            Data::Scene { scene, data } => {
                let pixels: Vec<(usize, usize)> =
                    indices.iter().map(|&i| (data.samples[i].y, data.samples[i].x)).collect();
                patches::raw_windows(scene, &data.preprocessing, &pixels)
            }
            Data::Images(images) => images.batch(indices, None),
        }
    }

    /// Model inputs computed from [`Data::graph_inputs`]: the trainer's own preprocessing of
    /// what the exported graph receives.
    pub fn inputs_from_graph_inputs(&self, raw: &Tensor, device: Device) -> Result<Tensor> {
        match self {
            Data::Scene { data, .. } => {
                let p = &data.preprocessing;
                let (weight, bias) = p.pca.affine();
                let k = p.pca.n_components() as i64;
                let w = Tensor::from_slice(&weight).view([k, p.raw_bands as i64, 1, 1]).to_kind(Kind::Double);
                let b = Tensor::from_slice(&bias).to_kind(Kind::Double);
                let y = raw.to_kind(Kind::Double).f_conv2d(&w, Some(&b), [1, 1], [0, 0], [1, 1], 1)?;
                Ok(y.to_kind(Kind::Float).unsqueeze(1).to_device(device))
            }
            Data::Images(images) => Ok(normalise(&raw.to_device(device), &images.preprocessing)),
        }
    }
}

/// `(x - mean) / std` per channel of `[N, 3, H, W]`.
pub fn normalise(x: &Tensor, p: &ImagePreprocessing) -> Tensor {
    let mean = Tensor::from_slice(&p.mean).view([1, 3, 1, 1]).to_device(x.device());
    let std = Tensor::from_slice(&p.std).view([1, 3, 1, 1]).to_device(x.device());
    (x - mean) / std
}
