//! A deployed model: an ONNX file, what its metadata says about feeding it, and a pool of
//! engines that run it. Typed predictions for images (top-k labels) and scenes (a class per
//! pixel).
//!
//! ```no_run
//! use prism_runtime::model::{LoadOptions, Model};
//!
//! let model = Model::load("garbage.onnx".as_ref(), &LoadOptions::default())?;
//! let image = prism_runtime::images::load_rgb("bottle.jpg".as_ref())?;
//! for p in &model.classify_images(&[image], 3)?[0] {
//!     println!("{} {:.3}", p.label, p.probability);
//! }
//! # Ok::<(), prism_runtime::Error>(())
//! ```
//!
//! # Concurrency
//! [`Model`] is `Sync`: callers on several threads share one. It holds a pool of
//! [`LoadOptions::sessions`] engines (one by default); a call takes a free engine for the
//! duration of one graph run and waits when all are busy. Give it as many sessions as threads
//! that should run at the same time.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use prism_models::Task;
use serde::Serialize;

use crate::engine::{self, Engine, EngineOptions, Source};
use crate::images::{self as preprocess, RgbImage};
use crate::onnx_info::{Dim, OnnxInfo};
use crate::scene::{Scene, SceneSource};
use crate::{Error, Result};

/// How images are turned into the graph's input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImagePipeline {
    pub resize: u32,
    pub crop: u32,
    /// Normalisation applied here, outside the graph (foreign models); Prism's graphs
    /// normalise inside and leave this `None`.
    pub normalize: Option<([f32; 3], [f32; 3])>,
}

impl ImagePipeline {
    /// ImageNet's evaluation transform with normalisation outside the graph, as torchvision
    /// models exported by `torch.onnx` expect.
    pub fn imagenet() -> Self {
        ImagePipeline { resize: 256, crop: 224, normalize: Some(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])) }
    }
}

/// How scenes are turned into windows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenePipeline {
    pub window: usize,
    pub bands: usize,
    /// Value of each band outside the scene (the PCA mean, i.e. zero after the projection).
    pub pad_value: Vec<f32>,
    /// The ground-truth label value of each class.
    pub class_values: Vec<i64>,
}

impl ScenePipeline {
    /// The label value of class index `k` in a label array (0 for no class): the ground
    /// truth's value, or `k + 1` for a model without class values.
    pub fn label_value(&self, k: Option<u16>) -> i64 {
        k.map_or(0, |k| self.class_values.get(usize::from(k)).copied().unwrap_or(i64::from(k) + 1))
    }

    /// The class index of a label value, the inverse of [`ScenePipeline::label_value`].
    pub fn class_index(&self, value: i64) -> Option<u16> {
        if value == 0 {
            return None;
        }
        let k = self.class_values.iter().position(|&x| x == value).map_or(value - 1, |k| k as i64);
        u16::try_from(k).ok()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Pipeline {
    Image(ImagePipeline),
    Scene(ScenePipeline),
    /// Raw tensors in and out (blocks, or models without metadata and without flags).
    Tensor,
}

/// What a model file is and how to feed it.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    /// The model's name (`prism.model`), or the file stem.
    pub name: String,
    pub class_names: Vec<String>,
    pub pipeline: Pipeline,
    /// `window` (a batch of windows or images) or `scene` (a whole scene at once).
    pub graph: String,
    pub onnx: OnnxInfo,
}

/// Options of [`Model::load`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub engine: EngineOptions,
    /// Engines in the pool, i.e. graph runs that may happen at the same time (default 1).
    pub sessions: usize,
    /// Class names for models without `prism.class_names`.
    pub labels: Option<Vec<String>>,
    /// Preprocessing for image models without Prism metadata.
    pub image_pipeline: Option<ImagePipeline>,
    /// Do not use a whole-scene graph next to a window model (`<stem>.scene.onnx`).
    pub windows_only: bool,
    /// Largest tile side of scene inference, in pixels (default [`TILE`]): smaller tiles take
    /// less memory and more time (each is fed with a margin of half a window).
    pub tile: Option<usize>,
}

/// One label of a top-k answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub probability: f32,
}

/// Engines that take turns.
struct Pool {
    engines: Mutex<Vec<Box<dyn Engine>>>,
    free: Condvar,
    engine: &'static str,
    provider: String,
    notes: Vec<String>,
}

impl Pool {
    fn new(source: Source<'_>, options: &EngineOptions, sessions: usize) -> Result<Pool> {
        let first = engine::load_source(source, options)?;
        let (name, provider, notes) = (first.engine(), first.provider().to_string(), first.notes().to_vec());
        // The other engines take what the first one got (auto could land elsewhere, say once the
        // GPU's memory is full): one pool, one engine and provider, or an error.
        let same = EngineOptions { engine: name.parse()?, provider: provider.parse()?, ..options.clone() };
        let mut engines = vec![first];
        for _ in 1..sessions.max(1) {
            engines.push(engine::load_source(source, &same)?);
        }
        Ok(Pool { engines: Mutex::new(engines), free: Condvar::new(), engine: name, provider, notes })
    }

    fn run(&self, input: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>> {
        let poisoned = || Error::Engine("an engine panicked in another thread".into());
        let mut engine = {
            let mut free = self.engines.lock().map_err(|_| poisoned())?;
            loop {
                if let Some(engine) = free.pop() {
                    break engine;
                }
                free = self.free.wait(free).map_err(|_| poisoned())?;
            }
        };
        let result = engine.run(input);
        self.engines.lock().map_err(|_| poisoned())?.push(engine);
        self.free.notify_one();
        result
    }
}

/// A loaded model.
pub struct Model {
    info: ModelInfo,
    pool: Pool,
    /// The whole-scene graph that sits next to a scene model's window graph, when present.
    scene_graph: Option<(PathBuf, Pool)>,
    tile: usize,
}

fn json_field<T: serde::de::DeserializeOwned>(info: &OnnxInfo, key: &str) -> Result<Option<T>> {
    info.metadata
        .get(key)
        .map(|v| serde_json::from_str(v).map_err(|e| Error::Invalid(format!("metadata `{key}` is not valid: {e}"))))
        .transpose()
}

impl ModelInfo {
    /// Reads a model file's description and decides how to feed it: from Prism's metadata, or
    /// from `options` for models made elsewhere.
    ///
    /// # Errors
    /// A missing, truncated or non-ONNX file; metadata that does not parse.
    pub fn read(path: &Path, options: &LoadOptions) -> Result<ModelInfo> {
        ModelInfo::new(path, crate::onnx_info::read(path)?, options)
    }

    /// [`ModelInfo::read`] for the bytes of an ONNX file; `name` names it in messages.
    ///
    /// # Errors
    /// As [`ModelInfo::read`].
    pub fn parse(name: &Path, bytes: &[u8], options: &LoadOptions) -> Result<ModelInfo> {
        ModelInfo::new(name, crate::onnx_info::parse(name, bytes.to_vec())?, options)
    }

    fn new(path: &Path, onnx: OnnxInfo, options: &LoadOptions) -> Result<ModelInfo> {
        let task = onnx.metadata.get("prism.task").map(String::as_str);
        let graph = onnx.metadata.get("prism.graph").cloned().unwrap_or_else(|| "window".into());
        let pipeline = match (task, &options.image_pipeline) {
            (_, Some(p)) => Pipeline::Image(p.clone()),
            (Some("image"), None) => {
                let pre: serde_json::Value = json_field(&onnx, "prism.preprocessing")?.unwrap_or_default();
                let get = |k: &str| pre[k].as_u64().map(|v| v as u32);
                match (get("resize"), get("crop")) {
                    (Some(resize), Some(crop)) => Pipeline::Image(ImagePipeline { resize, crop, normalize: None }),
                    _ => return Err(Error::format(path, "metadata prism.preprocessing lacks resize and crop")),
                }
            }
            (Some("scene"), None) => {
                let pre: serde_json::Value = json_field(&onnx, "prism.preprocessing")?.unwrap_or_default();
                let input: serde_json::Value = json_field(&onnx, "prism.input")?.unwrap_or_default();
                let pad_value: Vec<f32> = serde_json::from_value(pre["pad_value"].clone()).unwrap_or_default();
                let class_values: Vec<i64> = serde_json::from_value(pre["class_values"].clone()).unwrap_or_default();
                let window = pre["window"].as_u64().unwrap_or(0) as usize;
                let bands = input["bands"].as_u64().unwrap_or(pad_value.len() as u64) as usize;
                if window == 0 || pad_value.len() != bands {
                    return Err(Error::format(
                        path,
                        "metadata prism.preprocessing lacks the window or the padding values",
                    ));
                }
                Pipeline::Scene(ScenePipeline { window, bands, pad_value, class_values })
            }
            _ => Pipeline::Tensor,
        };
        let classes = onnx.outputs.first().and_then(|o| match o.shape.get(1) {
            Some(Dim::Fixed(k)) => Some(*k as usize),
            _ => None,
        });
        let class_names = match (&options.labels, json_field::<Vec<String>>(&onnx, "prism.class_names")?) {
            (Some(labels), _) => labels.clone(),
            (None, Some(names)) => names,
            (None, None) => (0..classes.unwrap_or(0)).map(|i| format!("class {i}")).collect(),
        };
        if let (Some(k), false) = (classes, class_names.is_empty()) {
            if class_names.len() != k {
                return Err(Error::Invalid(format!("{} labels given for a model with {k} outputs", class_names.len())));
            }
        }
        let name = onnx
            .metadata
            .get("prism.model")
            .cloned()
            .unwrap_or_else(|| path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned()));
        Ok(ModelInfo { path: path.to_path_buf(), name, class_names, pipeline, graph, onnx })
    }

    pub fn task(&self) -> Task {
        match self.pipeline {
            Pipeline::Image(_) => Task::Image,
            Pipeline::Scene(_) => Task::Scene,
            Pipeline::Tensor => Task::Features,
        }
    }
}

/// `<dir>/<stem>.scene.onnx` for `<dir>/<stem>.onnx`: where the exporter writes the
/// whole-scene graph.
pub fn scene_graph_path(model: &Path) -> PathBuf {
    let stem = model.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    model.with_file_name(format!("{stem}.scene.onnx"))
}

/// What [`Model::classify_scene_rows`] hands each band of rows to: `rows(first_row, classes)`.
pub type RowSink<'a> = dyn FnMut(usize, &[Option<u16>]) -> Result<()> + 'a;

impl Model {
    /// Loads a model on the engine and provider `options` ask for.
    ///
    /// # Errors
    /// See [`ModelInfo::read`] and [`engine::load`].
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Model> {
        let info = ModelInfo::read(path, options)?;
        let pool = Pool::new(Source::File(path), &options.engine, options.sessions)?;
        let mut scene_graph = None;
        if matches!(info.pipeline, Pipeline::Scene(_)) && info.graph == "window" && !options.windows_only {
            let dense = scene_graph_path(path);
            if dense.is_file() {
                scene_graph =
                    Some((dense.clone(), Pool::new(Source::File(&dense), &options.engine, options.sessions)?));
            }
        }
        Model::new(info, pool, scene_graph, options)
    }

    /// Loads a model from the bytes of its ONNX file; `name` names it in messages and in
    /// [`ModelInfo::path`]. A scene model loaded so classifies window by window: its whole-scene
    /// graph is another file, which [`Model::load`] finds beside the window graph.
    ///
    /// # Errors
    /// As [`Model::load`].
    pub fn from_bytes(name: &str, bytes: &[u8], options: &LoadOptions) -> Result<Model> {
        let name = Path::new(name);
        let info = ModelInfo::parse(name, bytes, options)?;
        let pool = Pool::new(Source::Memory { name, bytes }, &options.engine, options.sessions)?;
        Model::new(info, pool, None, options)
    }

    fn new(info: ModelInfo, pool: Pool, scene_graph: Option<(PathBuf, Pool)>, options: &LoadOptions) -> Result<Model> {
        let tile = options.tile.unwrap_or(TILE);
        if tile == 0 {
            return Err(Error::Invalid("the tile side must be at least one pixel".into()));
        }
        Ok(Model { info, pool, scene_graph, tile })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The engine that runs the model: `ort` or `tract`.
    pub fn engine(&self) -> &'static str {
        self.pool.engine
    }

    /// The execution provider that registered: `cpu`, `cuda` or `tensorrt`.
    pub fn provider(&self) -> &str {
        &self.pool.provider
    }

    /// Fallbacks taken while loading, for reports.
    pub fn notes(&self) -> &[String] {
        &self.pool.notes
    }

    /// The whole-scene graph in use, if any.
    pub fn scene_graph(&self) -> Option<&Path> {
        match (&self.scene_graph, self.info.graph.as_str()) {
            (Some((path, _)), _) => Some(path),
            (None, "scene") => Some(&self.info.path),
            _ => None,
        }
    }

    /// Runs the graph on one input batch.
    pub fn run(&self, input: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>> {
        self.pool.run(input)
    }

    /// Class probabilities `[N, classes]` of a batch: the graph's `probabilities` output, or
    /// the softmax of its first output.
    fn probabilities(&self, outputs: Vec<(String, ArrayD<f32>)>) -> Result<ArrayD<f32>> {
        if let Some((_, p)) = outputs.iter().find(|(name, _)| name == "probabilities") {
            return Ok(p.clone());
        }
        let (_, logits) = outputs.into_iter().next().ok_or_else(|| Error::Engine("the model has no output".into()))?;
        Ok(softmax(logits, 1))
    }

    /// The graph inputs for images, `[N, 3, crop, crop]`.
    ///
    /// # Errors
    /// A model that is not an image classifier.
    pub fn image_batch(&self, images: &[RgbImage]) -> Result<ArrayD<f32>> {
        let Pipeline::Image(p) = &self.info.pipeline else {
            return Err(Error::Invalid(format!(
                "{} is not an image model (give --preprocess imagenet for image models made elsewhere)",
                self.info.path.display()
            )));
        };
        let side = p.crop as usize;
        let mut data = Vec::with_capacity(images.len() * 3 * side * side);
        for image in images {
            let mut chw = preprocess::eval_transform(image, p.resize, p.crop);
            if let Some((mean, std)) = p.normalize {
                for (c, plane) in chw.chunks_exact_mut(side * side).enumerate() {
                    plane.iter_mut().for_each(|v| *v = (*v - mean[c]) / std[c]);
                }
            }
            data.extend(chw);
        }
        ArrayD::from_shape_vec(IxDyn(&[images.len(), 3, side, side]), data).map_err(|e| Error::Shape(e.to_string()))
    }

    /// The `top` most probable classes of each image.
    pub fn classify_images(&self, images: &[RgbImage], top: usize) -> Result<Vec<Vec<Prediction>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let probabilities = self.probabilities(self.run(self.image_batch(images)?.view())?)?;
        Ok(probabilities.axis_iter(Axis(0)).map(|row| self.top(row.iter().copied(), top)).collect())
    }

    fn top(&self, probabilities: impl Iterator<Item = f32>, k: usize) -> Vec<Prediction> {
        let mut ranked: Vec<(usize, f32)> = probabilities.enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
            .into_iter()
            .take(k.max(1))
            .map(|(index, probability)| Prediction {
                index,
                label: self.info.class_names.get(index).cloned().unwrap_or_else(|| format!("class {index}")),
                probability,
            })
            .collect()
    }

    /// The class index of every pixel of `scene` (or of the pixels where `mask` is true), row
    /// major: [`Model::classify_scene_rows`] with the bands gathered into one answer (4 bytes a
    /// pixel).
    ///
    /// # Errors
    /// As [`Model::classify_scene_rows`].
    pub fn classify_scene(
        &self,
        scene: &dyn SceneSource,
        mask: Option<&[bool]>,
        batch: usize,
        progress: &dyn Fn(usize, usize),
    ) -> Result<Vec<Option<u16>>> {
        let (height, width, _) = scene.size();
        let mut classes = Vec::with_capacity(height * width);
        self.classify_scene_rows(scene, mask, batch, progress, &mut |_, rows| {
            classes.extend_from_slice(rows);
            Ok(())
        })?;
        Ok(classes)
    }

    /// Classifies every pixel of `scene` (or the pixels where `mask` is true; the others are
    /// `None`), with the whole-scene graph when there is one, otherwise window by window in
    /// batches of `batch`, and hands the answer over a band of rows at a time:
    /// `rows(first_row, classes)` gets the class indexes of whole rows, row major, bands in
    /// order from the top. `progress(done, total)` is called as pixels are classified.
    ///
    /// The scene is read a tile at a time (tiles of at most [`LoadOptions::tile`] pixels a side
    /// and their margins), so memory is one tile's, one batch's and one band's (4 bytes a pixel
    /// of `tile` rows) whatever the scene's size; an `NpyScene` (feature `files`) keeps
    /// its cube on disk, and `rows` decides what to keep of the answer.
    ///
    /// # Errors
    /// A model that is not a scene classifier or has more than 65,536 classes, a scene with
    /// another number of bands, a mask of another size, a block of the scene that cannot be
    /// read, or the first error `rows` returns (which stops the work).
    pub fn classify_scene_rows(
        &self,
        scene: &dyn SceneSource,
        mask: Option<&[bool]>,
        batch: usize,
        progress: &dyn Fn(usize, usize),
        rows: &mut RowSink<'_>,
    ) -> Result<()> {
        let Pipeline::Scene(p) = &self.info.pipeline else {
            return Err(Error::Invalid(format!("{} is not a scene model", self.info.path.display())));
        };
        let (height, width, bands) = scene.size();
        if bands != p.bands {
            return Err(Error::Shape(format!("the scene has {bands} bands, the model takes {}", p.bands)));
        }
        if let Some(mask) = mask {
            if mask.len() != height * width {
                return Err(Error::Shape(format!("the mask has {} pixels, the scene {}", mask.len(), height * width)));
            }
        }
        let wanted = |i: usize| mask.is_none_or(|m| m[i]);
        let dense = match (&self.scene_graph, self.info.graph.as_str()) {
            (Some((_, pool)), _) => Some(pool),
            (None, "scene") => Some(&self.pool),
            _ => None,
        };
        let tiles = tiles(height, width, self.tile);
        // A scene in one tile needs no margin: the graph pads its outer edge itself.
        let margin = if tiles.len() == 1 { 0 } else { p.window / 2 };
        let total = match dense {
            Some(_) => height * width,
            None => (0..height * width).filter(|&i| wanted(i)).count(),
        };
        let mut done = 0;
        let mut band: Vec<Option<u16>> = Vec::new();
        // Tiles come band by band, left to right: a band is complete when the next one starts.
        let mut tiles = tiles.into_iter().peekable();
        while let Some((ys, xs)) = tiles.next() {
            if xs.start == 0 {
                band = vec![None; ys.len() * width];
            }
            let cut = |y: usize, x: usize| (y - ys.start) * width + x;
            done += match dense {
                Some(pool) => {
                    self.classify_tile(pool, p, scene, (&ys, &xs), margin, &mut |y, x, c| band[cut(y, x)] = c)?
                }
                None => self.classify_windows(
                    p,
                    scene,
                    (&ys, &xs),
                    &wanted,
                    batch,
                    &mut |y, x, c| band[cut(y, x)] = c,
                    &mut |n| progress(done + n, total),
                )?,
            };
            progress(done, total);
            if tiles.peek().is_none_or(|(next, _)| next.start != ys.start) {
                if mask.is_some() {
                    for (i, c) in band.iter_mut().enumerate() {
                        *c = c.filter(|_| wanted(ys.start * width + i));
                    }
                }
                rows(ys.start, &band)?;
            }
        }
        Ok(())
    }

    /// The windows of one tile's wanted pixels, in batches: the tile is read with a margin of
    /// half a window, and the windows are cut from it. A tile without a pixel to classify is
    /// not read. Returns how many pixels it classified; `progress(n)` is told as it goes.
    #[allow(clippy::too_many_arguments)]
    fn classify_windows(
        &self,
        p: &ScenePipeline,
        scene: &dyn SceneSource,
        (ys, xs): (&Range<usize>, &Range<usize>),
        wanted: &dyn Fn(usize) -> bool,
        batch: usize,
        set: &mut dyn FnMut(usize, usize, Option<u16>),
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize> {
        let (_, w, bands) = scene.size();
        let half = p.window / 2;
        let size = bands * p.window * p.window;
        let pixels: Vec<(usize, usize)> =
            ys.clone().flat_map(|y| xs.clone().map(move |x| (y, x))).filter(|&(y, x)| wanted(y * w + x)).collect();
        if pixels.is_empty() {
            return Ok(0);
        }
        let (rows, cols) = (ys.len() + 2 * half, xs.len() + 2 * half);
        let data = scene.block(
            ys.start as isize - half as isize,
            xs.start as isize - half as isize,
            rows,
            cols,
            &p.pad_value,
        )?;
        let tile = Scene { bands, height: rows, width: cols, data };
        let mut done = 0;
        for chunk in pixels.chunks(batch.max(1)) {
            let mut data = vec![0f32; chunk.len() * size];
            for (window, &(y, x)) in data.chunks_exact_mut(size).zip(chunk) {
                tile.window_into(y - ys.start + half, x - xs.start + half, p.window, &p.pad_value, window);
            }
            let input = ArrayD::from_shape_vec(IxDyn(&[chunk.len(), bands, p.window, p.window]), data)
                .map_err(|e| Error::Shape(e.to_string()))?;
            let probabilities = self.probabilities(self.run(input.view())?)?;
            for (&(y, x), row) in chunk.iter().zip(probabilities.axis_iter(Axis(0))) {
                set(y, x, scene_class(row.iter().copied())?);
            }
            done += chunk.len();
            progress(done);
        }
        Ok(done)
    }

    /// One tile through the whole-scene graph: the tile is fed with a margin of `margin` pixels
    /// of real neighbours (or padding values outside the scene), so every pixel sees exactly
    /// the window it would see alone. Returns how many pixels it classified.
    fn classify_tile(
        &self,
        pool: &Pool,
        p: &ScenePipeline,
        scene: &dyn SceneSource,
        (ys, xs): (&Range<usize>, &Range<usize>),
        margin: usize,
        set: &mut dyn FnMut(usize, usize, Option<u16>),
    ) -> Result<usize> {
        let (_, _, bands) = scene.size();
        // The tile with its margins; outside the scene, the padding values (the graph itself
        // pads only the tile's outer edge, which the crop below discards).
        let (ih, iw) = (ys.len() + 2 * margin, xs.len() + 2 * margin);
        let data = scene.block(
            ys.start as isize - margin as isize,
            xs.start as isize - margin as isize,
            ih,
            iw,
            &p.pad_value,
        )?;
        let input =
            ArrayD::from_shape_vec(IxDyn(&[1, bands, ih, iw]), data).map_err(|e| Error::Shape(e.to_string()))?;
        let probabilities = self.probabilities(pool.run(input.view())?)?;
        let shape = probabilities.shape().to_vec();
        if shape.len() != 4 || shape[2] != ih || shape[3] != iw {
            return Err(Error::Engine(format!("the scene graph returned shape {shape:?} for an input of {ih} x {iw}")));
        }
        for y in ys.clone() {
            for x in xs.clone() {
                let (r, c) = (y - ys.start + margin, x - xs.start + margin);
                set(y, x, scene_class((0..shape[1]).map(|k| probabilities[[0, k, r, c]]))?);
            }
        }
        Ok(ys.len() * xs.len())
    }
}

/// The scene cut into balanced tiles of at most `tile` pixels a side: row and column ranges.
fn tiles(h: usize, w: usize, tile: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let (rows, cols) = (h.div_ceil(tile), w.div_ceil(tile));
    let (th, tw) = (h.div_ceil(rows.max(1)), w.div_ceil(cols.max(1)));
    let mut out = Vec::new();
    for ty in 0..rows {
        for tx in 0..cols {
            let (ys, xs) = (ty * th..((ty + 1) * th).min(h), tx * tw..((tx + 1) * tw).min(w));
            if !ys.is_empty() && !xs.is_empty() {
                out.push((ys, xs));
            }
        }
    }
    out
}

/// Default largest tile side of scene inference: bounds the graph's working memory whatever the
/// scene's size (HybridSN's whole-scene graph on ONNX Runtime's CPU provider, measured here:
/// 0.92 GB peak at tiles of 232 + 24 pixels a side, 0.59 GB without ONNX Runtime's arena).
pub const TILE: usize = 256;

/// The index of the largest value, as a scene pixel's class.
fn scene_class(values: impl Iterator<Item = f32>) -> Result<Option<u16>> {
    argmax(values)
        .map(|k| {
            u16::try_from(k)
                .map_err(|_| Error::Invalid(format!("class index {k}: scene models may have at most 65,536 classes")))
        })
        .transpose()
}

fn argmax(values: impl Iterator<Item = f32>) -> Option<usize> {
    values.enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(i, _)| i)
}

/// Softmax along `axis`.
pub fn softmax(mut x: ArrayD<f32>, axis: usize) -> ArrayD<f32> {
    for mut lane in x.lanes_mut(Axis(axis)) {
        let max = lane.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        lane.mapv_inplace(|v| (v - max).exp());
        let sum: f32 = lane.sum();
        lane.mapv_inplace(|v| v / sum);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_sum_to_one_and_keep_order() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 1000.0, 0.0, -1000.0]).unwrap();
        let p = softmax(x, 1);
        for row in p.axis_iter(Axis(0)) {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
        assert!(p[[0, 2]] > p[[0, 1]] && p[[0, 1]] > p[[0, 0]]);
        assert_eq!(p[[1, 0]], 1.0);
        assert!((p[[0, 2]] - 0.665_240_9).abs() < 1e-6);
    }

    #[test]
    fn label_values_and_class_indexes_are_inverse() {
        let with = ScenePipeline { window: 1, bands: 1, pad_value: vec![0.0], class_values: vec![2, 5, 9] };
        let without = ScenePipeline { class_values: Vec::new(), ..with.clone() };
        for p in [&with, &without] {
            assert_eq!(p.label_value(None), 0);
            assert_eq!(p.class_index(0), None);
            for k in 0..3u16 {
                assert_eq!(p.class_index(p.label_value(Some(k))), Some(k));
            }
        }
        assert_eq!(with.label_value(Some(1)), 5);
        assert_eq!(without.label_value(Some(1)), 2);
    }

    #[test]
    fn scene_graph_sits_next_to_the_model() {
        assert_eq!(scene_graph_path(Path::new("out/hybridsn.onnx")), PathBuf::from("out/hybridsn.scene.onnx"));
    }
}
