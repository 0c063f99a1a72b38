//! Image folders in torchvision's ImageFolder layout (one sub-folder per class, JPEG or PNG
//! files), decoded once and kept in memory at the evaluation resize, with torchvision's
//! training augmentation (random resized crop, horizontal flip).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::RgbImage;
use prism_data::images as preprocess;
use prism_models::run::ImagePreprocessing;
use rand::Rng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use tch::Tensor;

/// The files of an image folder and their classes.
pub struct ImageFolder {
    pub root: PathBuf,
    pub class_names: Vec<String>,
    pub items: Vec<(PathBuf, usize)>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

impl ImageFolder {
    /// Lists `root/<class>/<image>`; classes in alphabetical order, as torchvision.
    ///
    /// # Errors
    /// A missing folder, fewer than two class folders, or a class folder without images.
    pub fn scan(root: &Path) -> Result<Self> {
        let entries =
            std::fs::read_dir(root).with_context(|| format!("{}: cannot read the image folder", root.display()))?;
        let mut classes: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        classes.sort();
        if classes.len() < 2 {
            bail!("{}: expected one sub-folder per class (at least 2), found {}", root.display(), classes.len());
        }
        let mut class_names = Vec::new();
        let mut items = Vec::new();
        for (index, dir) in classes.iter().enumerate() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("{}: cannot read", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            if files.is_empty() {
                bail!("{}: class folder without JPEG or PNG images", dir.display());
            }
            files.sort();
            items.extend(files.into_iter().map(|f| (f, index)));
            class_names.push(dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        }
        Ok(ImageFolder { root: root.to_path_buf(), class_names, items })
    }
}

/// Decoded images at the evaluation resize (shorter side `resize`), with their labels.
pub struct ImageData {
    pub preprocessing: ImagePreprocessing,
    images: Vec<RgbImage>,
    pub labels: Vec<usize>,
    pub paths: Vec<PathBuf>,
}

impl ImageData {
    /// Decodes every image of `folder` on all cores (rayon), showing progress.
    ///
    /// # Errors
    /// The first image that does not decode, named.
    pub fn load(folder: &ImageFolder, preprocessing: ImagePreprocessing) -> Result<Self> {
        let resize = preprocessing.resize as u32;
        let n = folder.items.len();
        let bar = crate::progress::bar(n as u64, "decoding images");
        // rayon keeps the results in the folder's order; the first failure, named, wins.
        let images = folder
            .items
            .par_iter()
            .map(|(path, _)| {
                let img = preprocess::load_rgb(path)?;
                bar.inc(1);
                Ok(preprocess::resize_shorter(&img, resize))
            })
            .collect::<Result<Vec<_>>>();
        bar.finish_and_clear();
        let images = images?;
        Ok(ImageData {
            preprocessing,
            images,
            labels: folder.items.iter().map(|(_, c)| *c).collect(),
            paths: folder.items.iter().map(|(p, _)| p.clone()).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// RGB in [0, 1], `[N, 3, crop, crop]`: centre crops, or with `augment` random resized
    /// crops (scale 0.08-1, aspect 3/4-4/3) and random horizontal flips.
    pub fn batch(&self, indices: &[usize], augment: Option<&mut StdRng>) -> Tensor {
        let crop = self.preprocessing.crop as u32;
        let mut data = Vec::with_capacity(indices.len() * 3 * (crop * crop) as usize);
        let mut rng = augment;
        for &i in indices {
            let img = &self.images[i];
            let chw = match rng.as_deref_mut() {
                None => preprocess::to_chw(&preprocess::center_crop(img, crop)),
                Some(rng) => preprocess::to_chw(&random_resized_crop(img, crop, rng)),
            };
            data.extend(chw);
        }
        Tensor::from_slice(&data).view([indices.len() as i64, 3, crop as i64, crop as i64])
    }

    pub fn labels_of(&self, indices: &[usize]) -> Tensor {
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i] as i64).collect();
        Tensor::from_slice(&labels)
    }
}

/// torchvision's `RandomResizedCrop(size)` followed by `RandomHorizontalFlip()`.
fn random_resized_crop(img: &RgbImage, size: u32, rng: &mut StdRng) -> RgbImage {
    let (w, h) = img.dimensions();
    let area = f64::from(w * h);
    let mut chosen = None;
    for _ in 0..10 {
        let target = area * rng.random_range(0.08..1.0);
        let ratio = rng.random_range((3f64 / 4.0).ln()..(4f64 / 3.0).ln()).exp();
        let cw = (target * ratio).sqrt().round() as u32;
        let ch = (target / ratio).sqrt().round() as u32;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            chosen = Some((rng.random_range(0..=w - cw), rng.random_range(0..=h - ch), cw, ch));
            break;
        }
    }
    // Fallback as torchvision: the largest centre crop within the aspect bounds.
    let (x, y, cw, ch) = chosen.unwrap_or_else(|| {
        let side = w.min(h);
        ((w - side) / 2, (h - side) / 2, side, side)
    });
    let cropped = image::imageops::crop_imm(img, x, y, cw, ch).to_image();
    let mut out = image::imageops::resize(&cropped, size, size, image::imageops::FilterType::Triangle);
    if rng.random_bool(0.5) {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    out
}
