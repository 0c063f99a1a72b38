//! Scenes and ground truths kept on disk and read a block (or a band of rows) at a time: `.npy`
//! files, MATLAB 5 variables and MATLAB v7.3 variables.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{GroundTruth, Scene, SceneSource, block_index, check_size, non_finite_values};
use crate::formats::{MatArray, NpyFile, open_mat_values, read_mat, read_npy, unpack_mat};
use crate::{Error, NumArray, NumData, Result};

/// Opens a scene for inference, read a block at a time from disk: a `.npy` cube, a MATLAB v7.3
/// one (a [`MatScene`]) and an uncompressed MATLAB 5 one as they are, a compressed MATLAB 5 one
/// (compressed as a whole) once unpacked into the temporary folder (`TMPDIR`), where the copy is
/// removed again as soon as it is open (so it takes disk space, the cube's size, only while the
/// scene is in use).
///
/// # Errors
/// As [`read_array`], [`MatArray::open`], [`unpack_mat`] and [`NpyScene::open`].
pub fn open_scene(path: &Path, key: Option<&str>) -> Result<Box<dyn SceneSource>> {
    match open_on_disk(path, key)? {
        OnDisk::Mat(array) => Ok(Box::new(MatScene::new(array, path)?)),
        OnDisk::Npy(file) => Ok(Box::new(NpyScene::from_file(file, path)?)),
    }
}

/// An array file opened to be read a part at a time.
#[derive(Debug)]
enum OnDisk {
    /// A `.npy` file, the values of an uncompressed MATLAB 5 variable in place, or a `.npy`
    /// copy of a compressed one.
    Npy(NpyFile),
    /// A variable of a MATLAB v7.3 file, read from its chunks.
    Mat(MatArray),
}

impl OnDisk {
    fn shape(&self) -> &[usize] {
        match self {
            OnDisk::Npy(file) => file.shape(),
            OnDisk::Mat(array) => array.shape(),
        }
    }
}

/// Opens an array file to be read a part at a time: a `.npy` file itself, a MATLAB v7.3
/// variable ([`MatArray::open`]) and the values of an uncompressed MATLAB 5 variable
/// ([`open_mat_values`]) in place, or a compressed variable unpacked with [`unpack_mat`] into a
/// `.npy` file in the temporary folder, removed again once open.
///
/// # Errors
/// As [`read_array`] (a missing file, another extension, a key with a `.npy`),
/// [`MatArray::open`], [`open_mat_values`], [`unpack_mat`] and [`NpyFile::open`].
fn open_on_disk(path: &Path, key: Option<&str>) -> Result<OnDisk> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("npy") if key.is_none() && path.exists() => NpyFile::open(path).map(OnDisk::Npy),
        Some("mat") if path.exists() => {
            if let Some(array) = MatArray::open(path, key)? {
                return Ok(OnDisk::Mat(array));
            }
            if let Some(file) = open_mat_values(path, key)? {
                return Ok(OnDisk::Npy(file));
            }
            static UNPACKED: AtomicUsize = AtomicUsize::new(0);
            let n = UNPACKED.fetch_add(1, Ordering::Relaxed);
            let temp = std::env::temp_dir();
            let unpacked = temp.join(format!("prism-unpacked-{}-{n}.npy", std::process::id()));
            let file = unpack_mat(path, key, &unpacked)
                .map_err(|e| match e {
                    // Writing the copy failed (reading the .mat file is named by its path).
                    Error::Io { path: failed, source } if failed != path => {
                        let reason = format!("cannot unpack it into the temporary folder {} ({source}): point TMPDIR at a folder with room for the cube, or save it with -v7.3 or -v6", temp.display());
                        Error::format(path, reason)
                    }
                    other => other,
                })
                .and_then(|()| NpyFile::open(&unpacked));
            // The open file keeps its handle; where an open file cannot be removed (Windows),
            // the copy stays behind in the temporary folder.
            let _ = std::fs::remove_file(&unpacked);
            file.map(OnDisk::Npy)
        }
        // read_array names what is wrong without reading anything.
        _ => Err(read_array(path, key).err().unwrap_or_else(|| Error::format(path, "expected a .mat or .npy file"))),
    }
}

/// A NaN or infinite value at `(row, column, band)` of a block of a scene read from disk.
fn non_finite_value(source: &Path, (y, x, b, v): (usize, usize, usize, f32)) -> Error {
    Error::format(
        source,
        format!("NaN or infinite value at row {y}, column {x}, band {b} ({v}): replace no-data values before use"),
    )
}

/// Reads a numeric array from a `.mat` (the variable `key`, or the only one) or `.npy` file.
///
/// # Errors
/// A missing or unreadable file, an unknown extension, or a missing key.
pub fn read_array(path: &Path, key: Option<&str>) -> Result<NumArray> {
    if !path.exists() {
        return Err(Error::format(path, "no such file"));
    }
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("mat") => read_mat(path, key),
        Some("npy") => {
            if key.is_some() {
                return Err(Error::format(path, "--key applies to .mat files only"));
            }
            read_npy(path)
        }
        _ => Err(Error::format(path, "expected a .mat (MATLAB) or .npy file")),
    }
}

impl Scene {
    /// Reads a scene file (see [`read_array`]).
    pub fn read(path: &Path, key: Option<&str>) -> Result<Scene> {
        Scene::from_hwc(&read_array(path, key)?, path)
    }
}

/// A `height x width x bands` scene in a `.npy` file (C or Fortran order, any dtype
/// [`read_npy`] reads), read a block at a time: inference holds one tile of it, never the cube.
#[derive(Debug)]
pub struct NpyScene {
    file: NpyFile,
    path: std::path::PathBuf,
    height: usize,
    width: usize,
    bands: usize,
}

impl NpyScene {
    /// Opens the file and checks its header (three dimensions, none empty) and, for floats,
    /// every value, a chunk at a time: a NaN is refused before inference starts, as by
    /// [`Scene::from_hwc`].
    ///
    /// # Errors
    /// As [`NpyFile::open`]; another shape; NaN or infinite values.
    pub fn open(path: &Path) -> Result<NpyScene> {
        NpyScene::from_file(NpyFile::open(path)?, path)
    }

    /// [`NpyScene::open`] for a file already open, which stands for `name` (a `.mat` scene
    /// unpacked) in errors.
    fn from_file(file: NpyFile, name: &Path) -> Result<NpyScene> {
        let [height, width, bands] = file.shape()[..] else {
            return Err(Error::format(
                name,
                format!("a scene is height x width x bands, got shape {:?}", file.shape()),
            ));
        };
        if height == 0 || width == 0 || bands == 0 {
            return Err(Error::format(name, format!("empty scene of shape {:?}", file.shape())));
        }
        let scene = NpyScene { file, path: name.to_path_buf(), height, width, bands };
        if scene.file.is_float() {
            scene.check_finite()?;
        }
        Ok(scene)
    }

    fn check_finite(&self) -> Result<()> {
        const CHUNK: usize = 1 << 20;
        let total = self.height * self.width * self.bands;
        let (mut count, mut first) = (0usize, None);
        for start in (0..total).step_by(CHUNK) {
            self.file.read_values(start, CHUNK.min(total - start))?.for_each_f32(|i, v| {
                if !v.is_finite() {
                    count += 1;
                    first.get_or_insert((start + i, v));
                }
            });
        }
        let Some((k, value)) = first else { return Ok(()) };
        let (h, w, bands) = (self.height, self.width, self.bands);
        let (y, x, b) = if self.file.fortran_order() {
            (k % h, k / h % w, k / (h * w))
        } else {
            (k / bands / w, k / bands % w, k % bands)
        };
        Err(non_finite_values(&self.path, count, (y, x, b), value))
    }
}

impl SceneSource for NpyScene {
    fn size(&self) -> (usize, usize, usize) {
        (self.height, self.width, self.bands)
    }

    fn copy_inside(
        &self,
        ys: Range<usize>,
        xs: Range<usize>,
        corner: (isize, isize),
        shape: (usize, usize),
        block: &mut [f32],
    ) -> Result<()> {
        let (h, w, bands) = (self.height, self.width, self.bands);
        let mut bad = None;
        let mut put = |b: usize, y: usize, x: usize, v: f32| {
            if !v.is_finite() {
                bad.get_or_insert((y, x, b, v));
            }
            block[block_index(corner, shape, b, y, x)] = v;
        };
        if !self.file.fortran_order() {
            // C order: each row of the block is one run of the file, all bands of its pixels.
            for y in ys {
                let values = self.file.read_values((y * w + xs.start) * bands, xs.len() * bands)?;
                values.for_each_f32(|i, v| put(i % bands, y, xs.start + i / bands, v));
            }
        } else {
            // Fortran order: a band is a plane stored column by column; read the run from the
            // block's first pixel to its last and keep the rows inside it.
            for b in 0..bands {
                let first = ys.start + h * (xs.start + w * b);
                let last = (ys.end - 1) + h * ((xs.end - 1) + w * b);
                let values = self.file.read_values(first, last - first + 1)?;
                values.for_each_f32(|i, v| {
                    let k = first + i - h * w * b;
                    let (y, x) = (k % h, k / h);
                    if ys.contains(&y) {
                        put(b, y, x, v);
                    }
                });
            }
        }
        match bad {
            Some(at) => Err(non_finite_value(&self.path, at)),
            None => Ok(()),
        }
    }
}

/// A scene in a MATLAB v7.3 file, read a block at a time from the chunks the block meets.
#[derive(Debug)]
pub struct MatScene {
    array: MatArray,
    path: std::path::PathBuf,
    height: usize,
    width: usize,
    bands: usize,
    /// About how many values a block is read in at a time.
    values_per_read: usize,
}

impl MatScene {
    /// Checks the variable's shape (three dimensions, none empty) and, for floats, every value,
    /// a band of rows at a time, as [`NpyScene::open`] does.
    ///
    /// # Errors
    /// Another shape; NaN or infinite values; chunks that cannot be read.
    pub fn new(array: MatArray, path: &Path) -> Result<MatScene> {
        let [height, width, bands] = array.shape()[..] else {
            return Err(Error::format(
                path,
                format!("a scene is height x width x bands, got shape {:?}", array.shape()),
            ));
        };
        if height == 0 || width == 0 || bands == 0 {
            return Err(Error::format(path, format!("empty scene of shape {:?}", array.shape())));
        }
        let scene = MatScene { array, path: path.to_path_buf(), height, width, bands, values_per_read: 1 << 20 };
        if scene.array.is_float() {
            let rows = (scene.values_per_read / (width * bands)).max(1);
            let (mut count, mut first) = (0usize, None);
            for y in (0..height).step_by(rows) {
                let ys = y..(y + rows).min(height);
                scene.array.read_box(&[ys.clone(), 0..width, 0..bands])?.for_each_f32(|i, v| {
                    if !v.is_finite() {
                        count += 1;
                        first.get_or_insert((scene.pixel(&ys, &(0..width), i), v));
                    }
                });
            }
            if let Some((at, value)) = first {
                return Err(non_finite_values(path, count, at, value));
            }
        }
        Ok(scene)
    }

    /// `(row, column, band)` of the `i`-th value of the box `ys` x `xs` x all bands, in
    /// MATLAB's column-major order.
    fn pixel(&self, ys: &Range<usize>, xs: &Range<usize>, i: usize) -> (usize, usize, usize) {
        let (rows, cols) = (ys.len(), xs.len());
        (ys.start + i % rows, xs.start + i / rows % cols, i / (rows * cols))
    }
}

impl SceneSource for MatScene {
    fn size(&self) -> (usize, usize, usize) {
        (self.height, self.width, self.bands)
    }

    fn copy_inside(
        &self,
        ys: Range<usize>,
        xs: Range<usize>,
        corner: (isize, isize),
        shape: (usize, usize),
        block: &mut [f32],
    ) -> Result<()> {
        // Whole chunks' worth of bands at a time, about `values_per_read` values: a box of every
        // band would hold the tile twice more (as stored, then decoded).
        let depth = self.array.chunk_shape().map_or(1, |chunk| chunk[2]);
        let group = (self.values_per_read / (ys.len() * xs.len()) / depth).max(1) * depth;
        let mut bad = None;
        for first in (0..self.bands).step_by(group) {
            let values = self.array.read_box(&[ys.clone(), xs.clone(), first..(first + group).min(self.bands)])?;
            values.for_each_f32(|i, v| {
                let (y, x, b) = self.pixel(&ys, &xs, i);
                if !v.is_finite() {
                    bad.get_or_insert((y, x, first + b, v));
                }
                block[block_index(corner, shape, first + b, y, x)] = v;
            });
        }
        match bad {
            Some(at) => Err(non_finite_value(&self.path, at)),
            None => Ok(()),
        }
    }
}

impl GroundTruth {
    /// Reads a `height x width` label array of integers (see [`read_array`]).
    ///
    /// # Errors
    /// Not 2-D, non-integer or negative values.
    pub fn read(path: &Path, key: Option<&str>) -> Result<GroundTruth> {
        let array = read_array(path, key)?;
        let [height, width] = array.shape[..] else {
            return Err(Error::format(path, format!("ground truth is height x width, got shape {:?}", array.shape)));
        };
        let labels = array.to_i64().map_err(|e| Error::format(path, format!("labels must be integers: {e}")))?;
        if let Some(v) = labels.iter().find(|v| **v < 0) {
            return Err(Error::format(path, format!("negative label {v}")));
        }
        Ok(GroundTruth { height, width, labels })
    }
}

/// A ground truth read a band of rows at a time from disk (a `.npy` file, a MATLAB v7.3 one or
/// an uncompressed MATLAB 5 one as it is, a compressed one unpacked as [`open_scene`] unpacks a
/// scene): what scene inference with `--gt` reads, so that the labels of a large scene need not
/// be in memory. [`GroundTruth`] holds them all.
#[derive(Debug)]
pub struct TruthRows {
    file: OnDisk,
    path: std::path::PathBuf,
    pub height: usize,
    pub width: usize,
}

impl TruthRows {
    /// Opens a `height x width` label array (a `.mat` variable `key`, or the only one).
    ///
    /// # Errors
    /// As [`GroundTruth::read`], but non-integer and negative labels are found only as they
    /// are read ([`TruthRows::classes`] reads them all).
    pub fn open(path: &Path, key: Option<&str>) -> Result<TruthRows> {
        let file = open_on_disk(path, key)?;
        let shape = file.shape();
        let [height, width] = shape[..] else {
            return Err(Error::format(path, format!("ground truth is height x width, got shape {shape:?}")));
        };
        Ok(TruthRows { file, path: path.to_path_buf(), height, width })
    }

    /// The labels of rows `rows`, row major.
    ///
    /// # Errors
    /// Rows beyond the array, an I/O error, non-integer or negative labels.
    pub fn rows(&self, rows: Range<usize>) -> Result<Vec<i64>> {
        let (h, w) = (self.height, self.width);
        if rows.end > h {
            return Err(Error::Shape(format!("rows {rows:?} of a ground truth of {h} rows")));
        }
        let labels = match &self.file {
            OnDisk::Npy(file) if !file.fortran_order() => {
                self.labels(file.read_values(rows.start * w, rows.len() * w)?)?
            }
            OnDisk::Npy(file) => {
                // Fortran order: each column's part is one run of the file.
                let mut labels = vec![0; rows.len() * w];
                for x in 0..w {
                    let column = self.labels(file.read_values(rows.start + h * x, rows.len())?)?;
                    for (r, v) in column.into_iter().enumerate() {
                        labels[r * w + x] = v;
                    }
                }
                labels
            }
            OnDisk::Mat(array) => {
                // The box comes column by column.
                let n = rows.len();
                let columns = self.labels(array.read_box(&[rows.clone(), 0..w])?)?;
                (0..n * w).map(|i| columns[(i % w) * n + i / w]).collect()
            }
        };
        Ok(labels)
    }

    /// Checks that the ground truth covers the scene pixel for pixel.
    ///
    /// # Errors
    /// Different sizes.
    pub fn check_matches<S: SceneSource + ?Sized>(&self, scene: &S) -> Result<()> {
        check_size((self.height, self.width), scene)
    }

    /// The distinct non-zero labels, ascending.
    ///
    /// # Errors
    /// As [`TruthRows::rows`].
    pub fn classes(&self) -> Result<Vec<i64>> {
        let mut classes = BTreeSet::new();
        self.each_band(|labels| classes.extend(labels.iter().copied().filter(|&v| v != 0)))?;
        Ok(classes.into_iter().collect())
    }

    /// Whether each pixel has a label, row major (1 byte a pixel: the mask of labelled pixels).
    ///
    /// # Errors
    /// As [`TruthRows::rows`].
    pub fn labelled(&self) -> Result<Vec<bool>> {
        let mut mask = Vec::with_capacity(self.height * self.width);
        self.each_band(|labels| mask.extend(labels.iter().map(|&v| v != 0)))?;
        Ok(mask)
    }

    /// `f` on the labels of every band of rows, from the top.
    fn each_band(&self, mut f: impl FnMut(&[i64])) -> Result<()> {
        const BAND: usize = 256;
        for start in (0..self.height).step_by(BAND) {
            f(&self.rows(start..(start + BAND).min(self.height))?);
        }
        Ok(())
    }

    fn labels(&self, values: NumData) -> Result<Vec<i64>> {
        let labels = values.to_i64().map_err(|e| Error::format(&self.path, format!("labels must be integers: {e}")))?;
        if let Some(v) = labels.iter().find(|v| **v < 0) {
            return Err(Error::format(&self.path, format!("negative label {v}")));
        }
        Ok(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block of every 3-D `.npy` fixture (numpy-made; C and Fortran order, each dtype),
    /// read from the file a block at a time, equals the same block of the scene read whole.
    #[test]
    fn npy_blocks_equal_the_scene_read_whole() {
        let fixtures = crate::formats::npy_fixtures();
        let mut checked = (0, 0);
        for entry in std::fs::read_dir(&fixtures).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.ends_with("_c.npy") || name.ends_with("_f.npy")) || read_npy(&path).unwrap().ndim() != 3 {
                continue;
            }
            assert_blocks_equal(&Scene::read(&path, None).unwrap(), &NpyScene::open(&path).unwrap(), &name);
            if name.ends_with("_f.npy") { checked.1 += 1 } else { checked.0 += 1 }
        }
        assert!(checked.0 >= 10 && checked.1 >= 10, "3-D fixtures checked (C, Fortran): {checked:?}");
    }

    /// Every block of `source` at every corner in and around the scene, of sizes from one pixel
    /// to more than the scene, equals the block of `whole`.
    fn assert_blocks_equal(whole: &Scene, source: &dyn SceneSource, what: &str) {
        assert_eq!(source.size(), whole.size(), "{what}");
        let (h, w, bands) = whole.size();
        let fill: Vec<f32> = (0..bands).map(|b| -100.0 - b as f32).collect();
        for (y0, x0) in (-3..=h as isize).flat_map(|y| (-3..=w as isize).map(move |x| (y, x))) {
            for (rows, cols) in [(1, 1), (2, 3), (3, 4), (h + 5, w + 5), (1, w), (h, 1)] {
                let expected = whole.block(y0, x0, rows, cols, &fill).unwrap();
                assert_eq!(
                    source.block(y0, x0, rows, cols, &fill).unwrap(),
                    expected,
                    "{what}: block at ({y0}, {x0}) of {rows} x {cols}"
                );
            }
        }
    }

    /// Every block of every 3-D variable of the MAT-file fixtures, read a block at a time as
    /// `runtime infer` reads it (MATLAB 5 uncompressed in place, compressed from an unpacked copy;
    /// v7.3 from its chunks, each filter, or contiguous), equals the same block of the scene read
    /// whole (checked against SciPy and h5py).
    #[test]
    fn mat_blocks_equal_the_scene_read_whole() {
        let mut checked = (0, 0, 0);
        for entry in std::fs::read_dir(crate::formats::npy_fixtures()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "mat") {
                continue;
            }
            // Files refused whole (a MATLAB 4 one) have no scene in them.
            let Ok(variables) = crate::formats::list_mat_variables(&path) else { continue };
            for variable in variables {
                let key = Some(variable.name.as_str());
                let what = format!("{} `{}`", path.display(), variable.name);
                let Ok(whole) = Scene::read(&path, key) else { continue };
                let blocks = open_scene(&path, key).unwrap();
                // A v7.3 block's bands read a chunk's depth at a time, too.
                let by_bands = MatArray::open(&path, key).unwrap().map(|array| {
                    let mut scene = MatScene::new(array, &path).unwrap();
                    scene.values_per_read = 1;
                    scene
                });
                match (&by_bands, crate::formats::open_mat_values(&path, key).unwrap()) {
                    (Some(_), _) => checked.2 += 1,
                    (None, Some(_)) => checked.0 += 1,
                    (None, None) => checked.1 += 1,
                }
                assert_blocks_equal(&whole, &*blocks, &what);
                if let Some(scene) = &by_bands {
                    assert_blocks_equal(&whole, scene, &format!("{what}, by bands"));
                }
            }
        }
        // (MATLAB 5 in place, MATLAB 5 unpacked, v7.3)
        assert!(checked.0 >= 4 && checked.1 >= 4 && checked.2 >= 3, "3-D variables checked: {checked:?}");
    }

    #[test]
    fn mat_scene_names_a_non_finite_value() {
        let path = crate::formats::npy_fixtures().join("nan_scene_v73.mat");
        let Err(err) = open_scene(&path, None) else { panic!("a NaN scene was opened") };
        let message = err.to_string();
        assert_eq!(
            message,
            format!(
                "{}: 1 NaN or infinite values, the first at row 1, column 2, band 1 (NaN): replace no-data values before use",
                path.display()
            )
        );
        // A block that holds it is refused too, one beside it is read.
        let array = MatArray::open(&path, None).unwrap().unwrap();
        let scene = MatScene { array, path: path.clone(), height: 3, width: 4, bands: 2, values_per_read: 1 << 20 };
        assert!(scene.block(0, 0, 3, 2, &[0.0, 0.0]).is_ok(), "the block left of the NaN");
        let message = scene.block(0, 0, 3, 4, &[0.0, 0.0]).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}: NaN or infinite value at row 1, column 2, band 1 (NaN): replace no-data values before use",
                path.display()
            )
        );
    }

    #[test]
    fn npy_scene_names_a_non_finite_value_when_its_block_is_read() {
        let dir = crate::formats::temp_dir("nan-scene");
        let path = dir.join("nan.npy");
        let mut hwc = vec![1f32; 3 * 4 * 2];
        hwc[(4 + 2) * 2 + 1] = f32::NAN; // row 1, column 2, band 1
        crate::formats::write_npy(&path, &NumArray::new(vec![3, 4, 2], NumData::F32(hwc)).unwrap()).unwrap();
        let message = NpyScene::open(&path).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}: 1 NaN or infinite values, the first at row 1, column 2, band 1 (NaN): replace no-data values before use",
                path.display()
            )
        );
        // The same in numpy's Fortran order (fixture f4_f.npy, 3 x 4 x 2, with a value replaced).
        let fortran = fortran_f32_with_nan(&crate::formats::npy_fixtures().join("f4_f.npy"), (1, 2, 1), (3, 4, 2));
        let path_f = dir.join("nan_f.npy");
        std::fs::write(&path_f, fortran).unwrap();
        let message = NpyScene::open(&path_f).unwrap_err().to_string();
        assert!(message.ends_with("1 NaN or infinite values, the first at row 1, column 2, band 1 (NaN): replace no-data values before use"), "{message}");
        // And a block that holds one (the file changed after it was opened) is refused too.
        let scene = NpyScene { file: NpyFile::open(&path).unwrap(), path: path.clone(), height: 3, width: 4, bands: 2 };
        assert!(scene.block(0, 0, 3, 2, &[0.0, 0.0]).is_ok(), "the block left of the NaN");
        let message = scene.block(0, 0, 3, 4, &[0.0, 0.0]).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}: NaN or infinite value at row 1, column 2, band 1 (NaN): replace no-data values before use",
                path.display()
            )
        );
        let flat = dir.join("flat.npy");
        crate::formats::write_npy(&flat, &NumArray::new(vec![3, 4], NumData::F32(vec![0.0; 12])).unwrap()).unwrap();
        assert!(
            NpyScene::open(&flat)
                .unwrap_err()
                .to_string()
                .ends_with("a scene is height x width x bands, got shape [3, 4]")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The bytes of a little-endian float32 Fortran-order `.npy` file of shape `(h, w, b)` with
    /// the value at `(y, x, band)` replaced by NaN.
    fn fortran_f32_with_nan(
        path: &Path,
        (y, x, band): (usize, usize, usize),
        (h, w, _): (usize, usize, usize),
    ) -> Vec<u8> {
        let mut bytes = std::fs::read(path).unwrap();
        let data_start = bytes.len() - 3 * 4 * 2 * 4;
        let at = data_start + 4 * (y + h * (x + w * band));
        bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        bytes
    }

    #[test]
    fn truth_rows_equal_the_ground_truth_read_whole() {
        // Every 2-D fixture array (.npy in C and Fortran order, .mat compressed or not): its
        // rows, read band by band, equal GroundTruth::read's labels, and a file it refuses
        // (negative or fractional labels) is refused as its labels are read.
        let (mut compared, mut refused) = (0, 0);
        for entry in crate::formats::expected_fixtures() {
            let shape: Vec<usize> =
                entry["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            let [h, _] = shape[..] else { continue };
            let file = crate::formats::npy_fixtures().join(entry["file"].as_str().unwrap());
            let key = entry["key"].as_str();
            let rows = TruthRows::open(&file, key).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            match GroundTruth::read(&file, key) {
                Ok(truth) => {
                    assert_eq!((rows.height, rows.width), (truth.height, truth.width));
                    assert_eq!(rows.rows(0..h).unwrap(), truth.labels, "{}", file.display());
                    let by_row: Vec<i64> = (0..h).flat_map(|y| rows.rows(y..y + 1).unwrap()).collect();
                    assert_eq!(by_row, truth.labels, "{}", file.display());
                    assert_eq!(rows.classes().unwrap(), truth.classes());
                    assert_eq!(rows.labelled().unwrap(), truth.labels.iter().map(|&v| v != 0).collect::<Vec<_>>());
                    compared += 1;
                }
                Err(_) => {
                    assert!(rows.classes().is_err(), "{}: refused whole, accepted by rows", file.display());
                    refused += 1;
                }
            }
        }
        assert!(compared >= 12 && refused >= 8, "{compared} compared, {refused} refused");
    }
}
