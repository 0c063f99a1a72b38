//! Hyperspectral scenes and their ground truth (`height x width x bands`), and the windows
//! HybridSN-like models classify: [`SceneSource`], what scene inference reads a block at a time,
//! and [`Scene`], a scene in memory. With the `files` feature, [`open_scene`] and the readers
//! that keep a scene on disk (`.npy`, MATLAB 5 and v7.3).

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use crate::{Error, NumArray, Result};

#[cfg(feature = "files")]
mod on_disk;
#[cfg(feature = "files")]
pub use on_disk::{MatScene, NpyScene, TruthRows, open_scene, read_array};

/// What scene inference needs of a scene: its size, and blocks of its values in the band-major
/// layout the graphs take. A [`Scene`] holds the whole cube in memory; an [`NpyScene`] and a
/// [`MatScene`] read each block from their file, so that memory does not grow with the scene.
pub trait SceneSource {
    /// `(height, width, bands)`.
    fn size(&self) -> (usize, usize, usize);

    /// Writes the values of the scene's rows `ys` and columns `xs` into `block`, a `[bands, rows,
    /// cols]` block whose top-left corner is at `corner` in scene coordinates. The caller has
    /// filled the rest of the block; see [`block`](SceneSource::block).
    ///
    /// # Errors
    /// A file that cannot be read, or values that are NaN or infinite.
    fn copy_inside(
        &self,
        ys: Range<usize>,
        xs: Range<usize>,
        corner: (isize, isize),
        shape: (usize, usize),
        block: &mut [f32],
    ) -> Result<()>;

    /// The values of rows `y0..y0 + rows` and columns `x0..x0 + cols` as `[bands, rows, cols]`.
    /// The block may reach outside the scene (`y0` and `x0` may be negative): there band `b`
    /// takes `fill[b]`.
    ///
    /// # Errors
    /// `fill` not of one value a band, or as [`copy_inside`](SceneSource::copy_inside).
    fn block(&self, y0: isize, x0: isize, rows: usize, cols: usize, fill: &[f32]) -> Result<Vec<f32>> {
        let (height, width, bands) = self.size();
        if fill.len() != bands {
            return Err(Error::Shape(format!("{} fill values for a scene of {bands} bands", fill.len())));
        }
        let mut block: Vec<f32> = fill.iter().flat_map(|&v| std::iter::repeat_n(v, rows * cols)).collect();
        let (ys, xs) = (inside(y0, rows, height), inside(x0, cols, width));
        if !ys.is_empty() && !xs.is_empty() {
            self.copy_inside(ys, xs, (y0, x0), (rows, cols), &mut block)?;
        }
        Ok(block)
    }
}

/// The part `start..start + len` of a block that falls within `0..size`, in scene coordinates.
fn inside(start: isize, len: usize, size: usize) -> Range<usize> {
    let from = start.clamp(0, size as isize) as usize;
    let to = (start + len as isize).clamp(0, size as isize) as usize;
    from..to.max(from)
}

/// Where scene pixel `(y, x)` of band `b` goes in a `[bands, rows, cols]` block whose top-left
/// corner is at `(y0, x0)`.
pub(crate) fn block_index(
    (y0, x0): (isize, isize),
    (rows, cols): (usize, usize),
    b: usize,
    y: usize,
    x: usize,
) -> usize {
    (b * rows + (y as isize - y0) as usize) * cols + (x as isize - x0) as usize
}

/// `count` NaN or infinite values in a scene, the first at `(row, column, band)`: refused, as a
/// NaN would spread through PCA and every window that touches it.
pub(crate) fn non_finite_values(source: &Path, count: usize, (y, x, b): (usize, usize, usize), value: f32) -> Error {
    let reason = format!(
        "{count} NaN or infinite values, the first at row {y}, column {x}, band {b} ({value}): replace no-data values before use"
    );
    Error::format(source, reason)
}

/// A scene in memory, band-major: value `data[(b * height + y) * width + x]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    pub bands: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl Scene {
    /// A scene from a `height x width x bands` array (the usual layout of `.mat` scenes).
    ///
    /// # Errors
    /// An array that is not 3-D, is empty, or holds NaN or infinite values (a NaN spreads
    /// through PCA and every window that touches it, so it is refused rather than classified).
    pub fn from_hwc(array: &NumArray, source: &Path) -> Result<Scene> {
        let [height, width, bands] = array.shape[..] else {
            return Err(Error::format(
                source,
                format!("a scene is height x width x bands, got shape {:?}", array.shape),
            ));
        };
        if height == 0 || width == 0 || bands == 0 {
            return Err(Error::format(source, format!("empty scene of shape {:?}", array.shape)));
        }
        // Straight into band-major order: a converted copy of a large cube would cost as
        // much memory again as the scene itself.
        let plane = height * width;
        let mut data = vec![0f32; array.len()];
        let (mut count, mut first) = (0usize, None);
        array.data.for_each_f32(|i, v| {
            if !v.is_finite() {
                count += 1;
                first.get_or_insert((i, v));
            }
            data[(i % bands) * plane + i / bands] = v;
        });
        if let Some((first, value)) = first {
            let (pixel, band) = (first / bands, first % bands);
            return Err(non_finite_values(source, count, (pixel / width, pixel % width, band), value));
        }
        Ok(Scene { bands, height, width, data })
    }

    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// The spectrum of pixel `(y, x)`.
    pub fn spectrum(&self, y: usize, x: usize) -> Vec<f32> {
        let plane = self.height * self.width;
        (0..self.bands).map(|b| self.data[b * plane + y * self.width + x]).collect()
    }

    /// Copies the `window x window` neighbourhood centred on `(y, x)` into `out` as
    /// `[bands, window, window]`; pixels outside the scene take `fill[band]`.
    ///
    /// # Panics
    /// When `out` or `fill` have the wrong length (a caller's bug, not user input).
    pub fn window_into(&self, y: usize, x: usize, window: usize, fill: &[f32], out: &mut [f32]) {
        assert_eq!(out.len(), self.bands * window * window);
        assert_eq!(fill.len(), self.bands);
        let half = (window / 2) as isize;
        let (h, w) = (self.height as isize, self.width as isize);
        // Columns of the window that fall inside the scene.
        let x0 = x as isize - half;
        let inside_from = (-x0).clamp(0, window as isize) as usize;
        let inside_to = (w - x0).clamp(0, window as isize) as usize;
        for b in 0..self.bands {
            let plane = &self.data[b * self.pixels()..(b + 1) * self.pixels()];
            for r in 0..window {
                let row = &mut out[(b * window + r) * window..(b * window + r + 1) * window];
                let sy = y as isize - half + r as isize;
                if sy < 0 || sy >= h || inside_from >= inside_to {
                    row.fill(fill[b]);
                    continue;
                }
                row[..inside_from].fill(fill[b]);
                row[inside_to..].fill(fill[b]);
                let start = sy as usize * self.width + (x0 + inside_from as isize) as usize;
                row[inside_from..inside_to].copy_from_slice(&plane[start..start + inside_to - inside_from]);
            }
        }
    }
}

impl SceneSource for Scene {
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
        for b in 0..self.bands {
            let plane = &self.data[b * self.pixels()..(b + 1) * self.pixels()];
            for y in ys.clone() {
                let at = block_index(corner, shape, b, y, xs.start);
                block[at..at + xs.len()].copy_from_slice(&plane[y * self.width + xs.start..y * self.width + xs.end]);
            }
        }
        Ok(())
    }
}

/// Ground truth: one label value per pixel, 0 for unlabelled.
#[derive(Clone, Debug, PartialEq)]
pub struct GroundTruth {
    pub height: usize,
    pub width: usize,
    pub labels: Vec<i64>,
}

impl GroundTruth {
    /// The distinct non-zero label values, ascending.
    pub fn classes(&self) -> Vec<i64> {
        self.labels.iter().filter(|v| **v != 0).copied().collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// Checks that the ground truth covers the scene pixel for pixel.
    ///
    /// # Errors
    /// Different sizes.
    pub fn check_matches<S: SceneSource + ?Sized>(&self, scene: &S) -> Result<()> {
        check_size((self.height, self.width), scene)
    }
}

/// Checks that a ground truth of `size` covers the scene pixel for pixel.
pub(crate) fn check_size<S: SceneSource + ?Sized>((h, w): (usize, usize), scene: &S) -> Result<()> {
    let (height, width, _) = scene.size();
    if (h, w) != (height, width) {
        return Err(Error::Shape(format!("the scene is {height} x {width} pixels but the ground truth is {h} x {w}")));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::NumData;

    pub(crate) fn scene() -> Scene {
        // 3 x 4 pixels, 2 bands: band 0 holds 10 y + x, band 1 holds -(10 y + x).
        let mut hwc = Vec::new();
        for y in 0..3 {
            for x in 0..4 {
                let v = (10 * y + x) as f32;
                hwc.extend([v, -v]);
            }
        }
        let array = NumArray::new(vec![3, 4, 2], NumData::F32(hwc)).unwrap();
        Scene::from_hwc(&array, Path::new("t")).unwrap()
    }

    #[test]
    fn hwc_becomes_band_major() {
        let s = scene();
        assert_eq!(s.spectrum(2, 3), vec![23.0, -23.0]);
        assert_eq!(s.data[..4], [0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn non_finite_values_are_refused_with_their_place() {
        let mut hwc = vec![1f32; 3 * 4 * 2];
        hwc[(4 + 2) * 2 + 1] = f32::NAN; // row 1, column 2, band 1
        hwc[20] = f32::INFINITY;
        let array = NumArray::new(vec![3, 4, 2], NumData::F32(hwc)).unwrap();
        let message = Scene::from_hwc(&array, Path::new("s.npy")).unwrap_err().to_string();
        assert_eq!(
            message,
            "s.npy: 2 NaN or infinite values, the first at row 1, column 2, band 1 (NaN): replace no-data values before use"
        );
    }

    #[test]
    fn a_block_is_the_scene_where_inside_and_the_fill_outside() {
        let s = scene();
        // Rows -1..2 and columns 2..5 of the 3 x 4 scene, band 0 holds 10 y + x.
        let block = s.block(-1, 2, 3, 3, &[-1.0, 99.0]).unwrap();
        #[rustfmt::skip]
        assert_eq!(block[..9], [-1.0, -1.0, -1.0,
                                 2.0,  3.0, -1.0,
                                12.0, 13.0, -1.0]);
        assert_eq!(block[9..], [99.0, 99.0, 99.0, -2.0, -3.0, 99.0, -12.0, -13.0, 99.0]);
        assert!(s.block(0, 0, 1, 1, &[0.0]).unwrap_err().to_string().contains("1 fill values for a scene of 2 bands"));
    }

    #[test]
    fn windows_are_filled_outside_the_scene() {
        let s = scene();
        let mut out = vec![0f32; 2 * 3 * 3];
        s.window_into(0, 0, 3, &[-1.0, 99.0], &mut out);
        #[rustfmt::skip]
        assert_eq!(out[..9], [-1.0, -1.0, -1.0,
                              -1.0,  0.0,  1.0,
                              -1.0, 10.0, 11.0]);
        assert_eq!(out[9..], [99.0, 99.0, 99.0, 99.0, -0.0, -1.0, 99.0, -10.0, -11.0]);
        // A window wider than the scene.
        let mut big = vec![0f32; 2 * 7 * 7];
        s.window_into(1, 1, 7, &[5.0, 5.0], &mut big);
        assert_eq!(big[2 * 7 + 2], 0.0);
        assert_eq!(big[4 * 7 + 5], 23.0);
        assert_eq!(big[6 * 7 + 6], 5.0);
        assert_eq!(big.iter().filter(|v| **v == 5.0).count(), 2 * (49 - 12));
    }
}
