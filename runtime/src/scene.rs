//! Hyperspectral scenes and their ground truth, as users hold them (MATLAB `.mat` or NumPy
//! `.npy`, `height x width x bands`), and the windows HybridSN-like models classify.

use std::collections::BTreeSet;
use std::path::Path;

use crate::io::{read_mat, read_npy, NumArray};
use crate::{Error, Result};

/// A scene in memory, band-major: value `data[(b * height + y) * width + x]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    pub bands: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
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
        _ => Err(Error::format(path, "expected a .mat (MATLAB 5) or .npy file")),
    }
}

impl Scene {
    /// A scene from a `height x width x bands` array (the usual layout of `.mat` scenes).
    ///
    /// # Errors
    /// An array that is not 3-D, is empty, or holds NaN or infinite values (a NaN spreads
    /// through PCA and every window that touches it, so it is refused rather than classified).
    pub fn from_hwc(array: &NumArray, source: &Path) -> Result<Scene> {
        let [height, width, bands] = array.shape[..] else {
            return Err(Error::format(source, format!("a scene is height x width x bands, got shape {:?}", array.shape)));
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
            let reason = format!(
                "{count} NaN or infinite values, the first at row {}, column {}, band {band} ({value}): replace no-data values before use",
                pixel / width,
                pixel % width,
            );
            return Err(Error::format(source, reason));
        }
        Ok(Scene { bands, height, width, data })
    }

    /// Reads a scene file (see [`read_array`]).
    pub fn read(path: &Path, key: Option<&str>) -> Result<Scene> {
        Scene::from_hwc(&read_array(path, key)?, path)
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

/// Ground truth: one label value per pixel, 0 for unlabelled.
#[derive(Clone, Debug, PartialEq)]
pub struct GroundTruth {
    pub height: usize,
    pub width: usize,
    pub labels: Vec<i64>,
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

    /// The distinct non-zero label values, ascending.
    pub fn classes(&self) -> Vec<i64> {
        self.labels.iter().filter(|v| **v != 0).copied().collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// Checks that the ground truth covers the scene pixel for pixel.
    ///
    /// # Errors
    /// Different sizes.
    pub fn check_matches(&self, scene: &Scene) -> Result<()> {
        if (self.height, self.width) != (scene.height, scene.width) {
            return Err(Error::Shape(format!(
                "the scene is {} x {} pixels but the ground truth is {} x {}",
                scene.height, scene.width, self.height, self.width
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::NumData;

    fn scene() -> Scene {
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
        assert_eq!(message, "s.npy: 2 NaN or infinite values, the first at row 1, column 2, band 1 (NaN): replace no-data values before use");
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
