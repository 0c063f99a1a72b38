//! Hyperspectral scenes prepared as in the HybridSN paper: PCA with whitening fitted on all
//! pixels (or, with `--pca-fit train`, on the training pixels only), zero padding (after the projection), windows around labelled pixels, labels
//! remapped to 0..K-1. Windows are cut per batch, so memory stays that of the padded scene
//! whatever the number of samples.

use anyhow::{Context, Result, bail};
use prism_data::scene::{GroundTruth, Scene};
use prism_models::run::{Pca, ScenePreprocessing};
use tch::{Device, Kind, Tensor};

/// A labelled pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub y: usize,
    pub x: usize,
    /// Class index in 0..K-1.
    pub class: usize,
}

/// Fits PCA on every pixel of the scene, as scikit-learn's `PCA(n_components, whiten)`:
/// the covariance (divisor n - 1) in float64, its leading eigenvectors with the sign that
/// makes each one's largest-magnitude entry positive.
///
/// # Errors
/// More components than bands, or a scene with a single pixel.
pub fn fit_pca(scene: &Scene, components: usize, whiten: bool) -> Result<Pca> {
    fit_pca_on(scene, None, components, whiten)
}

/// [`fit_pca`] on the pixels at `pixels` (flat indices, `y * width + x`), or on all of them.
///
/// # Errors
/// As [`fit_pca`], and fewer than 2 pixels given.
pub fn fit_pca_on(scene: &Scene, pixels: Option<&[usize]>, components: usize, whiten: bool) -> Result<Pca> {
    let bands = scene.bands;
    let n = pixels.map_or(scene.pixels(), <[usize]>::len);
    if components == 0 || components > bands {
        bail!("cannot keep {components} PCA components of a scene with {bands} bands");
    }
    if n < 2 {
        bail!("PCA needs at least 2 pixels");
    }
    let all = Tensor::from_slice(&scene.data).view([bands as i64, scene.pixels() as i64]);
    let x = match pixels {
        Some(pixels) => {
            let index: Vec<i64> = pixels.iter().map(|&p| p as i64).collect();
            all.index_select(1, &Tensor::from_slice(&index))
        }
        None => all,
    }
    .to_kind(Kind::Double);
    let mean = x.mean_dim(1, true, Kind::Double);
    let centred = &x - &mean;
    let cov = centred.matmul(&centred.tr()) / (n as f64 - 1.0);
    let (values, vectors) = cov.f_linalg_eigh("L").context("eigendecomposition of the covariance")?;
    // eigh sorts ascending: take the last `components` columns, largest first.
    let order = Tensor::arange_start_step(
        bands as i64 - 1,
        bands as i64 - 1 - components as i64,
        -1,
        (Kind::Int64, Device::Cpu),
    );
    let values = values.index_select(0, &order);
    let vectors = vectors.index_select(1, &order).tr().contiguous(); // [components, bands]
    let largest = vectors.abs().argmax(1, true);
    let signs = vectors.gather(1, &largest, false).sign();
    let vectors = (vectors * signs).to_kind(Kind::Float).contiguous();
    let values = values.clamp_min(f64::MIN_POSITIVE).to_kind(Kind::Float);
    let flat: Vec<f32> = vectors.view([-1]).try_into()?;
    Ok(Pca {
        mean: mean.to_kind(Kind::Float).view([-1]).try_into()?,
        components: flat.chunks(bands).map(<[f32]>::to_vec).collect(),
        explained_variance: values.try_into()?,
        whiten,
    })
}

/// Projects every pixel: `[components, height, width]`, computed in float64.
pub fn project(scene: &Scene, pca: &Pca) -> Result<Tensor> {
    let (bands, k) = (scene.bands, pca.n_components());
    if pca.mean.len() != bands {
        bail!("the PCA was fitted on {} bands, the scene has {bands}", pca.mean.len());
    }
    let (weight, bias) = pca.affine();
    let w = Tensor::from_slice(&weight).view([k as i64, bands as i64]).to_kind(Kind::Double);
    let b = Tensor::from_slice(&bias).view([k as i64, 1]).to_kind(Kind::Double);
    let x = Tensor::from_slice(&scene.data).view([bands as i64, scene.pixels() as i64]).to_kind(Kind::Double);
    Ok((w.matmul(&x) + b).to_kind(Kind::Float).view([k as i64, scene.height as i64, scene.width as i64]))
}

/// A scene ready for training: the projected, zero-padded cube and the labelled pixels.
pub struct SceneData {
    pub preprocessing: ScenePreprocessing,
    /// `[components, height + window - 1, width + window - 1]`, zeros around the scene.
    padded: Tensor,
    pub samples: Vec<Sample>,
    pub height: usize,
    pub width: usize,
}

impl SceneData {
    /// Prepares `scene` and its ground truth: PCA to `components` (fitted on all pixels),
    /// `window x window` windows, classes remapped to 0..K-1 in ascending label order.
    ///
    /// # Errors
    /// Sizes that differ, no labelled pixels, fewer than two classes, a window larger than the
    /// scene, or an even window.
    pub fn new(
        scene: &Scene,
        truth: &GroundTruth,
        components: usize,
        window: usize,
        class_names: Option<Vec<String>>,
    ) -> Result<Self> {
        let pca = fit_pca(scene, components, true)?;
        let values = truth.classes();
        Self::prepare(scene, truth, pca, values, window, class_names)
    }

    /// Prepares a scene with the preprocessing of a trained model (its PCA and its classes), to
    /// evaluate it on this scene.
    ///
    /// # Errors
    /// As [`SceneData::new`], and label values the model does not know.
    pub fn with_preprocessing(scene: &Scene, truth: &GroundTruth, p: &ScenePreprocessing) -> Result<Self> {
        if let Some(v) = truth.classes().iter().find(|v| !p.class_values.contains(v)) {
            bail!("the ground truth has label {v}, which the model was not trained on (labels {:?})", p.class_values);
        }
        Self::prepare(scene, truth, p.pca.clone(), p.class_values.clone(), p.window, Some(p.class_names.clone()))
    }

    fn prepare(
        scene: &Scene,
        truth: &GroundTruth,
        pca: Pca,
        values: Vec<i64>,
        window: usize,
        class_names: Option<Vec<String>>,
    ) -> Result<Self> {
        truth.check_matches(scene)?;
        if window % 2 == 0 {
            bail!("the window must be odd to have a centre pixel, got {window}");
        }
        if window > scene.height.min(scene.width) {
            bail!("a {window} x {window} window is larger than the {} x {} scene", scene.height, scene.width);
        }
        if values.len() < 2 {
            bail!("the ground truth has {} labelled class(es); at least 2 are needed", values.len());
        }
        let class_names = match class_names {
            Some(names) if names.len() != values.len() => {
                bail!("{} class names given for {} classes (label values {values:?})", names.len(), values.len())
            }
            Some(names) => names,
            None => values.iter().map(|v| format!("class {v}")).collect(),
        };
        let samples = (0..scene.height)
            .flat_map(|y| (0..scene.width).map(move |x| (y, x)))
            .filter_map(|(y, x)| {
                let v = truth.labels[y * scene.width + x];
                (v != 0).then(|| Sample { y, x, class: values.binary_search(&v).unwrap_or(0) })
            })
            .collect();
        let half = (window / 2) as i64;
        let padded = project(scene, &pca)?.constant_pad_nd([half, half, half, half]);
        Ok(SceneData {
            preprocessing: ScenePreprocessing {
                raw_bands: scene.bands,
                window,
                pca,
                class_names,
                class_values: values,
            },
            padded,
            samples,
            height: scene.height,
            width: scene.width,
        })
    }

    pub fn classes(&self) -> usize {
        self.preprocessing.class_names.len()
    }

    /// Fits the PCA again on the pixels of the samples at `indices` only (`--pca-fit train`),
    /// keeping the number of components and the whitening, and projects the scene with it.
    ///
    /// # Errors
    /// Fewer than 2 samples, or more components than there are bands.
    pub fn refit_pca(&mut self, scene: &Scene, indices: &[usize]) -> Result<()> {
        let pixels: Vec<usize> = indices.iter().map(|&i| self.samples[i].y * self.width + self.samples[i].x).collect();
        let old = &self.preprocessing.pca;
        let pca = fit_pca_on(scene, Some(&pixels), old.n_components(), old.whiten)?;
        let half = (self.preprocessing.window / 2) as i64;
        self.padded = project(scene, &pca)?.constant_pad_nd([half, half, half, half]);
        self.preprocessing.pca = pca;
        Ok(())
    }

    /// The model inputs of the samples at `indices`: `[N, 1, components, window, window]`.
    pub fn windows(&self, indices: &[usize]) -> Tensor {
        let w = self.preprocessing.window as i64;
        let crops: Vec<Tensor> = indices
            .iter()
            .map(|&i| {
                let s = self.samples[i];
                self.padded.narrow(1, s.y as i64, w).narrow(2, s.x as i64, w)
            })
            .collect();
        Tensor::stack(&crops, 0).unsqueeze(1)
    }

    /// Model inputs for arbitrary pixels (the whole-scene map): `[N, 1, components, w, w]`.
    pub fn windows_at(&self, pixels: &[(usize, usize)]) -> Tensor {
        let w = self.preprocessing.window as i64;
        let crops: Vec<Tensor> =
            pixels.iter().map(|&(y, x)| self.padded.narrow(1, y as i64, w).narrow(2, x as i64, w)).collect();
        Tensor::stack(&crops, 0).unsqueeze(1)
    }

    /// Class indices of the samples at `indices`, as an int64 tensor.
    pub fn labels(&self, indices: &[usize]) -> Tensor {
        let labels: Vec<i64> = indices.iter().map(|&i| self.samples[i].class as i64).collect();
        Tensor::from_slice(&labels)
    }
}

/// The raw windows (as read from the file) around the given samples, outside the scene filled
/// with the PCA mean: what the exported graph takes. `[N, bands, window, window]`.
pub fn raw_windows(scene: &Scene, preprocessing: &ScenePreprocessing, pixels: &[(usize, usize)]) -> Tensor {
    let w = preprocessing.window;
    let size = scene.bands * w * w;
    let mut data = vec![0f32; pixels.len() * size];
    for (out, &(y, x)) in data.chunks_exact_mut(size).zip(pixels) {
        scene.window_into(y, x, w, &preprocessing.pca.mean, out);
    }
    Tensor::from_slice(&data).view([pixels.len() as i64, scene.bands as i64, w as i64, w as i64])
}

/// Indices of a stratified split into train, validation and test sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits samples class by class: `test_ratio` of each class to the test set, then
/// `val_ratio` of the rest to validation, the remainder to training; each class with two or
/// more samples keeps at least one for training. Deterministic for a seed.
pub fn stratified_split(classes: &[usize], test_ratio: f64, val_ratio: f64, seed: u64) -> Split {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let k = classes.iter().max().map_or(0, |m| m + 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut split = Split::default();
    for class in 0..k {
        let mut members: Vec<usize> = (0..classes.len()).filter(|&i| classes[i] == class).collect();
        members.shuffle(&mut rng);
        let n = members.len();
        let n_test = ((n as f64 * test_ratio).round() as usize).min(n.saturating_sub(1));
        let rest = n - n_test;
        let n_val = ((rest as f64 * val_ratio).round() as usize).min(rest.saturating_sub(1));
        split.test.extend(&members[..n_test]);
        split.val.extend(&members[n_test..n_test + n_val]);
        split.train.extend(&members[n_test + n_val..]);
    }
    for set in [&mut split.train, &mut split.val, &mut split.test] {
        set.sort_unstable();
    }
    split
}

/// A split into spatial blocks, and the training samples it dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockSplit {
    pub split: Split,
    /// Training samples within the margin of a held-out sample, in no set.
    pub dropped: Vec<usize>,
}

/// Splits a scene's samples by spatial blocks: the scene is cut into `block` x `block` squares,
/// each square goes whole to training, validation or test (those holding much of a class
/// first, then in a seeded random order; the first block of each class to training, the others
/// each to the set that leaves the per-class shares closest to their targets, in least squares: `test_ratio` of each class to test, `val_ratio`
/// of the rest to validation), and training samples closer
/// than `margin + 1` pixels (Chebyshev distance) to a validation or test sample are dropped, so
/// that with `margin` = half the window no held-out window holds a training pixel and no
/// training window a held-out one.
pub fn block_split(
    samples: &[Sample],
    (height, width): (usize, usize),
    block: usize,
    margin: usize,
    (test_ratio, val_ratio): (f64, f64),
    seed: u64,
) -> BlockSplit {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let block = block.max(1);
    let k = samples.iter().map(|s| s.class + 1).max().unwrap_or(0);
    let columns = width.div_ceil(block);
    let mut blocks: Vec<Vec<usize>> = vec![Vec::new(); height.div_ceil(block) * columns];
    for (i, s) in samples.iter().enumerate() {
        blocks[(s.y / block) * columns + s.x / block].push(i);
    }
    let mut totals = vec![0f64; k];
    samples.iter().for_each(|s| totals[s.class] += 1.0);
    let shares = [(1.0 - test_ratio) * (1.0 - val_ratio), (1.0 - test_ratio) * val_ratio, test_ratio];
    let counts: Vec<Vec<f64>> = blocks
        .iter()
        .map(|members| {
            let mut counts = vec![0f64; k];
            members.iter().for_each(|&i| counts[samples[i].class] += 1.0);
            counts
        })
        .collect();
    // Blocks that hold much of some class are placed first, while every set still wants it; a
    // seeded shuffle orders the rest.
    let mut order: Vec<usize> = (0..blocks.len()).filter(|&b| !blocks[b].is_empty()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let weight = |b: usize| (0..k).map(|c| counts[b][c] / totals[c].max(1.0)).fold(0.0, f64::max);
    order.sort_by(|&a, &b| weight(b).total_cmp(&weight(a)));
    let mut assigned = vec![vec![0f64; k]; 3];
    let mut sets: [Vec<usize>; 3] = Default::default();
    for b in order {
        // The set that leaves each class's shares closest to their targets (least squares over
        // the classes in this block; ties go to training, then validation).
        let error_if = |set: usize| -> f64 {
            (0..k)
                .filter(|&c| counts[b][c] > 0.0)
                .map(|c| {
                    (0..3)
                        .map(|s| {
                            let n = assigned[s][c] + if s == set { counts[b][c] } else { 0.0 };
                            (n / totals[c] - shares[s]).powi(2)
                        })
                        .sum::<f64>()
                })
                .sum()
        };
        // A class's first block (the one holding most of it) goes to training, so that every
        // class is learnt where the blocks allow; the rest by least squares.
        let unseen = shares[0] > 0.0 && (0..k).any(|c| counts[b][c] > 0.0 && assigned[0][c] == 0.0);
        let set = if unseen {
            0
        } else {
            (0..3).filter(|&s| shares[s] > 0.0).min_by(|&a, &b| error_if(a).total_cmp(&error_if(b))).unwrap_or(2)
        };
        (0..k).for_each(|c| assigned[set][c] += counts[b][c]);
        sets[set].extend(&blocks[b]);
    }
    let [train, val, test] = sets;
    let mut held = vec![false; height * width];
    val.iter().chain(&test).for_each(|&i| held[samples[i].y * width + samples[i].x] = true);
    let near_held = |s: &Sample| {
        let rows = s.y.saturating_sub(margin)..(s.y + margin + 1).min(height);
        rows.into_iter()
            .any(|y| (s.x.saturating_sub(margin)..(s.x + margin + 1).min(width)).any(|x| held[y * width + x]))
    };
    let (dropped, train): (Vec<usize>, Vec<usize>) = train.into_iter().partition(|&i| near_held(&samples[i]));
    let mut split = Split { train, val, test };
    for set in [&mut split.train, &mut split.val, &mut split.test] {
        set.sort_unstable();
    }
    BlockSplit { split, dropped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_split_keeps_held_out_windows_free_of_training_pixels() {
        // A 60 x 60 scene, every pixel labelled, three classes in vertical stripes and a fourth
        // in one block only (which training must get).
        let class = |y: usize, x: usize| if (20..30).contains(&y) && (20..30).contains(&x) { 3 } else { x / 20 };
        let samples: Vec<Sample> =
            (0..60).flat_map(|y| (0..60).map(move |x| Sample { y, x, class: class(y, x) })).collect();
        let margin = 4;
        let b = block_split(&samples, (60, 60), 10, margin, (0.5, 0.2), 1);
        assert_eq!(b, block_split(&samples, (60, 60), 10, margin, (0.5, 0.2), 1));
        let s = &b.split;
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).chain(&s.test).chain(&b.dropped).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..3600).collect::<Vec<_>>(), "every sample in exactly one place");
        for &t in &s.train {
            for &h in s.test.iter().chain(&s.val) {
                let (a, c) = (samples[t], samples[h]);
                assert!(a.y.abs_diff(c.y).max(a.x.abs_diff(c.x)) > margin, "training {a:?} within {margin} of {c:?}");
            }
        }
        // Whole blocks per set (before the margin), each class's test share near one half.
        for class in 0..3 {
            let test = s.test.iter().filter(|&&i| samples[i].class == class).count();
            assert!((500..=700).contains(&test), "class {class}: {test} of 1200 in test");
            assert!(s.train.iter().any(|&i| samples[i].class == class), "class {class} has no training pixel");
        }
        assert!(s.train.iter().any(|&i| samples[i].class == 3), "the one-block class is not in training");
        let block_of = |i: usize| (samples[i].y / 10, samples[i].x / 10);
        for &t in &s.test {
            assert!(!s.train.iter().chain(&s.val).any(|&o| block_of(o) == block_of(t)), "a block split across sets");
        }
    }

    #[test]
    fn split_is_stratified_disjoint_and_deterministic() {
        let classes: Vec<usize> = (0..1000)
            .map(|i| {
                if i < 20 {
                    0
                } else if i < 300 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let s = stratified_split(&classes, 0.9, 0.1, 3);
        assert_eq!(s, stratified_split(&classes, 0.9, 0.1, 3));
        assert_ne!(s, stratified_split(&classes, 0.9, 0.1, 4));
        let count = |set: &[usize], c| set.iter().filter(|&&i| classes[i] == c).count();
        assert_eq!((count(&s.test, 0), count(&s.val, 0), count(&s.train, 0)), (18, 0, 2));
        assert_eq!(count(&s.test, 1), 252);
        assert_eq!(count(&s.test, 2), 630);
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }
}
