//! MATLAB v7.3 MAT-files (`save -v7.3`, needed for variables of 2 GB and more): HDF5 files
//! (read by [`super::hdf5`]) whose 512-byte user block starts with a MAT-file header.
//!
//! Each variable is a member of the root group with a `MATLAB_class` attribute: a dataset, or
//! a group for structs, sparse matrices and objects. A dataset's HDF5 dimensions are MATLAB's
//! reversed, so its values in C order are MATLAB's column-major order, as in a MATLAB 5 file;
//! logical arrays are `uint8`, complex ones a compound type. An empty array stores its MATLAB
//! dimensions as its values, with a `MATLAB_empty` attribute. Members whose names start with
//! `#` (`#refs#`, `#subsystem#`) hold what cells and objects refer to, and are not variables.

use std::fs;
use std::io::{Read, Seek, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::Source;
use super::hdf5::{Attribute, Dataset, Dtype, Hdf5, Index, Object};
use super::mat::{self, CopyError, Listed, MatVariable};
use crate::array::{NumArray, NumData, element_count};
use crate::{Error, Result};

/// Where the HDF5 superblock of a MATLAB v7.3 file is: after the user block.
pub(super) const USER_BLOCK: u64 = 512;
/// Bytes of values [`unpack`] holds at a time (at least a row of chunks' worth of one index of
/// the first HDF5 dimension, MATLAB's last).
const UNPACK_BUDGET: usize = 64 << 20;

struct Variable {
    listing: MatVariable,
    /// The dataset and MATLAB class code of a numeric variable.
    numeric: Option<(Dataset, u8)>,
    /// An empty array: its values are its dimensions.
    empty: bool,
}

impl Listed for Variable {
    fn name(&self) -> &str {
        &self.listing.name
    }

    fn is_numeric(&self) -> bool {
        self.numeric.is_some()
    }
}

impl Variable {
    /// The dataset and class of a numeric variable, taken out of it, or why it is not one that
    /// can be read.
    fn take_numeric(&mut self) -> Result<(Dataset, u8), String> {
        match self.numeric.take() {
            Some((dataset, _)) if dataset.dtype == Dtype::Compound => Err("complex arrays are not supported".into()),
            Some(numeric) => Ok(numeric),
            None => Err(format!("is not a numeric array (class {})", self.listing.class)),
        }
    }

    /// An error about this variable.
    fn error(&self, path: &Path, reason: String) -> Error {
        Error::format(path, format!("variable `{}`: {reason}", self.listing.name))
    }
}

/// Lists the variables, in the order of their names (HDF5 keeps no other).
pub(super) fn list<R: Read + Seek>(file: &mut R) -> Result<Vec<MatVariable>, String> {
    let mut hdf5 = Hdf5::open(file, USER_BLOCK)?;
    Ok(scan(&mut hdf5)?.into_iter().map(|v| v.listing).collect())
}

/// As [`mat::read_mat`], for a v7.3 file.
pub(super) fn read<R: Read + Seek>(path: &Path, file: &mut R, key: Option<&str>) -> Result<NumArray> {
    let (mut hdf5, variable, dataset, class) = open_variable(path, file, key)?;
    let failed = |reason: String| variable.error(path, reason);
    let data_type = stored_type(&dataset.dtype).map_err(failed)?;
    let mut raw = Vec::new();
    if !variable.empty {
        let index = hdf5.index(&dataset).map_err(failed)?;
        hdf5.copy_values(&index, &mut raw, usize::MAX).map_err(|e| failed(copy_reason(e)))?;
    }
    let shape = &variable.listing.shape;
    let stored = mat::decode_stored(data_type, &raw).map_err(failed)?;
    let count = element_count(shape).ok_or_else(|| failed(format!("dimensions {shape:?} are too large")))?;
    if stored.len() != count {
        return Err(failed(format!("{} values stored, dimensions {shape:?} need {count}", stored.len())));
    }
    let values = mat::to_class(stored, class).map_err(failed)?;
    Ok(NumArray { shape: shape.clone(), data: values.fortran_to_c(shape) })
}

/// As [`mat::unpack_mat`], for a v7.3 file, into `out`, the file `to`.
pub(super) fn unpack<R: Read + Seek>(
    path: &Path,
    file: &mut R,
    key: Option<&str>,
    (to, out): (&Path, &mut dyn Write),
) -> Result<()> {
    let (mut hdf5, variable, dataset, _) = open_variable(path, file, key)?;
    let failed = |reason: String| variable.error(path, reason);
    let (descr, _) = mat::stored_descr(stored_type(&dataset.dtype).map_err(failed)?).map_err(failed)?;
    let shape = &variable.listing.shape;
    let header = super::npy::header_bytes(descr, shape, true)
        .ok_or_else(|| failed(format!("dimensions {shape:?} too many for a .npy header")))?;
    out.write_all(&header).map_err(|e| Error::io(to, e))?;
    if variable.empty {
        return Ok(());
    }
    let index = hdf5.index(&dataset).map_err(failed)?;
    hdf5.copy_values(&index, out, UNPACK_BUDGET).map_err(|e| match e {
        CopyError::Write(e) => Error::io(to, e),
        CopyError::Read(reason) => failed(reason),
    })
}

/// Opens the file and finds its variable `key`, or its only numeric one, which must be a real
/// numeric array: the variable, its dataset and its class.
fn open_variable<R: Read + Seek>(path: &Path, file: R, key: Option<&str>) -> Result<(Hdf5<R>, Variable, Dataset, u8)> {
    let mut hdf5 = Hdf5::open(file, USER_BLOCK).map_err(|reason| Error::format(path, reason))?;
    let mut variables = scan(&mut hdf5).map_err(|reason| Error::format(path, reason))?;
    let chosen = mat::choose(path, &variables, key)?;
    let at = variables.iter().position(|v| std::ptr::eq(v, chosen)).unwrap_or_default();
    let mut variable = variables.swap_remove(at);
    let (dataset, class) = variable.take_numeric().map_err(|reason| variable.error(path, reason))?;
    Ok((hdf5, variable, dataset, class))
}

/// A numeric variable of a MATLAB v7.3 file, open to read boxes of its values, which stay on
/// disk: only the chunks a box meets are read (and inflated). This is how large v7.3 scenes
/// are classified a tile at a time without a copy of the cube.
pub struct MatArray {
    path: PathBuf,
    name: String,
    hdf5: Mutex<Hdf5<Box<dyn Source>>>,
    index: Index,
    /// MATLAB's dimensions.
    shape: Vec<usize>,
    /// The MATLAB 5 data type of the stored values.
    stored: u32,
}

impl std::fmt::Debug for MatArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatArray")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl MatArray {
    /// Opens the numeric variable `key` (or the only one, as [`read_mat`](super::read_mat) chooses) of a
    /// MATLAB v7.3 file and reads where its values are; `None` for a MATLAB 5 file (whose
    /// values are one stream, to be read whole or unpacked) or an empty variable.
    ///
    /// # Errors
    /// As [`read_mat`](super::read_mat), without reading the values.
    pub fn open(path: &Path, key: Option<&str>) -> Result<Option<MatArray>> {
        let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
        MatArray::open_from(path, file, key)
    }

    /// As [`MatArray::open`], from any reader that can seek (a `std::io::Cursor` over bytes in
    /// memory, say); `path` names it in errors.
    ///
    /// # Errors
    /// As [`MatArray::open`].
    pub fn open_from<R: Source + 'static>(path: &Path, mut file: R, key: Option<&str>) -> Result<Option<MatArray>> {
        if !mat::is_v73(&mut file).map_err(|reason| Error::format(path, reason))? {
            return Ok(None);
        }
        let file: Box<dyn Source> = Box::new(file);
        let (mut hdf5, variable, dataset, _) = open_variable(path, file, key)?;
        if variable.empty {
            return Ok(None);
        }
        let failed = |reason: String| variable.error(path, reason);
        let stored = stored_type(&dataset.dtype).map_err(failed)?;
        let index = hdf5.index(&dataset).map_err(failed)?;
        let MatVariable { name, shape, .. } = variable.listing;
        Ok(Some(MatArray { path: path.to_path_buf(), name, hdf5: Mutex::new(hdf5), index, shape, stored }))
    }

    /// MATLAB's dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Whether the values are floating-point (and so may be NaN or infinite).
    pub fn is_float(&self) -> bool {
        matches!(self.stored, mat::MI_SINGLE | mat::MI_DOUBLE)
    }

    /// The dimensions of the chunks the values are stored in (MATLAB's order), `None` when they
    /// are stored in one piece.
    pub fn chunk_shape(&self) -> Option<Vec<usize>> {
        self.index.chunk().map(|chunk| chunk.iter().rev().map(|&c| c as usize).collect())
    }

    /// The values inside `ranges` (one per MATLAB dimension), in MATLAB's column-major order of
    /// that box, in the type they are stored in.
    ///
    /// # Errors
    /// A box outside the dimensions; a chunk that cannot be read or is corrupt.
    pub fn read_box(&self, ranges: &[Range<usize>]) -> Result<NumData> {
        // HDF5's dimensions are MATLAB's reversed: C order there is column-major order here.
        let reversed: Vec<Range<u64>> = ranges.iter().rev().map(|r| r.start as u64..r.end as u64).collect();
        let failed = |reason: String| Error::format(&self.path, format!("variable `{}`: {reason}", self.name));
        let raw = self
            .hdf5
            .lock()
            .map_err(|_| failed("an earlier read panicked".into()))?
            .read_box(&self.index, &reversed)
            .map_err(failed)?;
        mat::decode_stored(self.stored, &raw).map_err(failed)
    }
}

fn copy_reason(e: CopyError) -> String {
    match e {
        CopyError::Read(reason) => reason,
        CopyError::Write(e) => e.to_string(),
    }
}

/// The variables of the file: the members of its root group, `#` ones left out.
fn scan<R: Read + Seek>(hdf5: &mut Hdf5<R>) -> Result<Vec<Variable>, String> {
    let members = hdf5.root_members()?;
    members
        .into_iter()
        .filter(|(name, _)| !name.starts_with('#'))
        .map(|(name, object)| variable(hdf5, name, object))
        .collect()
}

fn variable<R: Read + Seek>(hdf5: &mut Hdf5<R>, name: String, object: Object) -> Result<Variable, String> {
    let dataset = match object {
        Object::Group { attributes, table } => {
            let (class, shape) = if let Some(rows) = find(&attributes, "MATLAB_sparse") {
                ("sparse", sparse_shape(hdf5, rows, table).unwrap_or_default())
            } else if text(&attributes, "MATLAB_class").as_deref() == Some("struct") {
                ("struct", Vec::new())
            } else {
                ("object", Vec::new())
            };
            return Ok(Variable { listing: MatVariable { name, shape, class }, numeric: None, empty: false });
        }
        Object::Dataset(dataset) => dataset,
    };
    let matlab_class = text(&dataset.attributes, "MATLAB_class");
    // Without the attribute (a dataset MATLAB did not write), the stored type is the class.
    let code = match matlab_class.as_deref() {
        Some("logical") => Some(mat::MX_UINT8),
        Some(other) => mat::mx_class_code(other),
        None => stored_type(&dataset.dtype).ok().and_then(mat::class_of_stored),
    };
    let class = match (matlab_class.as_deref(), code) {
        (Some("logical"), _) => "logical",
        (_, Some(code)) => mat::mx_class_name(code),
        (Some("char"), _) => "char",
        (Some("cell"), _) => "cell",
        (Some("function_handle"), _) => "function",
        (Some(_), _) => "object",
        (None, None) => "unknown",
    };
    let empty = find(&dataset.attributes, "MATLAB_empty").and_then(Attribute::integer).is_some_and(|n| n != 0);
    let shape = if empty {
        let index = hdf5.index(&dataset).map_err(|e| format!("`{name}`: {e}"))?;
        let mut raw = Vec::new();
        hdf5.copy_values(&index, &mut raw, usize::MAX).map_err(|e| format!("`{name}`: {}", copy_reason(e)))?;
        let dims = mat::decode_stored(stored_type(&dataset.dtype)?, &raw)?.to_i64().map_err(|e| e.to_string())?;
        dims.into_iter()
            .map(|d| usize::try_from(d).map_err(|_| format!("`{name}`: negative dimension")))
            .collect::<Result<_, _>>()?
    } else {
        dataset
            .shape
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).map_err(|_| format!("`{name}`: dimension {d} too large")))
            .collect::<Result<_, _>>()?
    };
    Ok(Variable { listing: MatVariable { name, shape, class }, numeric: code.map(|code| (dataset, code)), empty })
}

/// The dimensions of a sparse matrix: its `MATLAB_sparse` attribute holds the rows, and its
/// `jc` member (where each column starts) one more value than it has columns. None when they do
/// not say.
fn sparse_shape<R: Read + Seek>(hdf5: &mut Hdf5<R>, rows: &Attribute, table: (u64, u64)) -> Option<Vec<usize>> {
    let rows = usize::try_from(rows.integer()?).ok()?;
    let members = hdf5.members(table).ok()?;
    let jc = members.iter().find_map(|(name, object)| match object {
        Object::Dataset(jc) if name == "jc" => Some(jc),
        _ => None,
    })?;
    let [starts] = jc.shape[..] else { return None };
    Some(vec![rows, usize::try_from(starts.checked_sub(1)?).ok()?])
}

fn find<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes.iter().find(|a| a.name == name)
}

fn text(attributes: &[Attribute], name: &str) -> Option<String> {
    find(attributes, name).and_then(Attribute::text)
}

/// The MATLAB 5 data type (`miINT8`...) that holds values of an HDF5 type.
fn stored_type(dtype: &Dtype) -> Result<u32, String> {
    Ok(match *dtype {
        Dtype::Int { size: 1, signed } => {
            if signed {
                mat::MI_INT8
            } else {
                mat::MI_UINT8
            }
        }
        Dtype::Int { size: 2, signed } => {
            if signed {
                mat::MI_INT16
            } else {
                mat::MI_UINT16
            }
        }
        Dtype::Int { size: 4, signed } => {
            if signed {
                mat::MI_INT32
            } else {
                mat::MI_UINT32
            }
        }
        Dtype::Int { size: 8, signed } => {
            if signed {
                mat::MI_INT64
            } else {
                mat::MI_UINT64
            }
        }
        Dtype::Float { size: 4 } => mat::MI_SINGLE,
        Dtype::Float { size: 8 } => mat::MI_DOUBLE,
        ref other => return Err(format!("values stored as {other} are not supported")),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::npy::tests::{expected_fixtures, fixtures, temp_dir};
    use crate::formats::{read_mat, unpack_mat};
    use std::fs;
    use std::io::Cursor;

    const LAYOUTS: &str = "layouts_v73.mat";

    fn keys(file: &str) -> Vec<String> {
        let entries = expected_fixtures().into_iter().filter(|e| e["file"] == file);
        entries.map(|e| e["key"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn any_budget_gives_the_same_values() {
        // Slabs of one index of the first dimension at a time, a few, or a row of chunks whole:
        // the same bytes, in the same order as the .npy copy holds them.
        let mut file = fs::File::open(fixtures().join(LAYOUTS)).unwrap();
        let mut hdf5 = Hdf5::open(&mut file, USER_BLOCK).unwrap();
        let mut checked = 0;
        for (name, object) in hdf5.root_members().unwrap() {
            let Object::Dataset(dataset) = object else { continue };
            let index = hdf5.index(&dataset).unwrap();
            let copies: Vec<Vec<u8>> = [0, 100, usize::MAX]
                .into_iter()
                .map(|budget| {
                    let mut out = Vec::new();
                    hdf5.copy_values(&index, &mut out, budget).unwrap_or_else(|e| panic!("{name}: {}", copy_reason(e)));
                    out
                })
                .collect();
            assert!(copies.iter().all(|c| c == &copies[0]), "{name}");
            let bytes: u64 = dataset.shape.iter().product::<u64>() * dataset.dtype.size().unwrap() as u64;
            assert_eq!(copies[0].len() as u64, bytes, "{name}");
            checked += 1;
        }
        assert!(checked >= 14, "only {checked} datasets");
    }

    #[test]
    fn boxes_are_the_parts_of_the_array() {
        // Boxes at every corner and of every size up to 3 a side (and whole dimensions) of each
        // variable, against the same part of the array read whole (checked against h5py).
        let path = fixtures().join(LAYOUTS);
        let mut checked = 0;
        for key in keys(LAYOUTS) {
            let Some(array) = MatArray::open(&path, Some(&key)).unwrap() else { continue };
            let whole = read_mat(&path, Some(&key)).unwrap();
            let (shape, values) = (whole.shape.clone(), whole.data.to_f32());
            assert_eq!(array.shape(), shape, "{key}");
            // Each dimension's ranges: every start, lengths 1 to 3, and the whole dimension.
            let ranges: Vec<Vec<Range<usize>>> = shape
                .iter()
                .map(|&d| {
                    (0..d)
                        .flat_map(|s| (1..=3).filter(move |n| s + n <= d).map(move |n| s..s + n))
                        .chain(std::iter::once(0..d))
                        .collect()
                })
                .collect();
            let mut boxes = vec![Vec::new()];
            for options in &ranges {
                boxes = boxes
                    .iter()
                    .flat_map(|b: &Vec<Range<usize>>| {
                        options.iter().map(move |r| [b.clone(), vec![r.clone()]].concat())
                    })
                    .collect();
            }
            for b in &boxes {
                // Column-major order of the box, from the row-major array.
                let mut expected = Vec::new();
                let count: usize = b.iter().map(|r| r.len()).product();
                for i in 0..count {
                    let (mut rest, mut flat) = (i, 0);
                    for (k, r) in b.iter().enumerate() {
                        let stride: usize = shape[k + 1..].iter().product();
                        flat += (r.start + rest % r.len()) * stride;
                        rest /= r.len();
                    }
                    expected.push(values[flat]);
                }
                let got = array.read_box(b).unwrap().to_f32();
                assert!(
                    got.iter().zip(&expected).all(|(a, e)| a.to_bits() == e.to_bits()) && got.len() == expected.len(),
                    "{key} box {b:?}"
                );
            }
            checked += 1;
        }
        assert!(checked >= 13, "only {checked} variables");
        let array = MatArray::open(&path, Some("deflate")).unwrap().unwrap();
        assert!(array.read_box(&[0..8, 0..1, 0..1]).unwrap_err().to_string().contains("outside the dimensions"));
        // A MATLAB 5 file and an empty variable have no boxes to read.
        assert!(MatArray::open(&fixtures().join("cube_u16_z.mat"), None).unwrap().is_none());
        assert!(MatArray::open(&path, Some("none")).unwrap().is_none());
    }

    #[test]
    fn a_cut_file_never_reads_wrong_values() {
        // Cut anywhere: an error, or (when the cut spares what the variable needs) its values.
        let original = fs::read(fixtures().join(LAYOUTS)).unwrap();
        let path = Path::new("cut.mat");
        for key in ["deflate", "levels", "shuffled", "tiny", "plain", "none"] {
            let whole = read(path, &mut Cursor::new(&original), Some(key)).unwrap();
            for len in (0..original.len()).step_by(7) {
                if let Ok(array) = read(path, &mut Cursor::new(&original[..len]), Some(key)) {
                    assert_eq!(array, whole, "`{key}` cut at {len}");
                }
            }
            assert!(read(path, &mut Cursor::new(&original[..original.len() / 2]), Some(key)).is_err(), "{key}");
        }
    }

    #[test]
    fn an_empty_variable_may_claim_any_other_dimension() {
        // Found by the mat73 fuzz target: a uint8 variable of 0 x 18446744073709551615 (its stored
        // dimensions patched) holds no values, so it opens; its boxes are empty or refused.
        let bytes = include_bytes!("../../../fuzz/corpus/mat73/found-huge-empty-dimension.mat").to_vec();
        let path = Path::new("found.mat");
        let array = MatArray::open_from(path, Cursor::new(bytes.clone()), None).unwrap().unwrap();
        assert_eq!(array.shape(), [0, usize::MAX]);
        assert_eq!(read(path, &mut Cursor::new(&bytes), None).unwrap().len(), 0);
        assert_eq!(array.read_box(&[0..0, usize::MAX / 3..usize::MAX - usize::MAX / 3]).unwrap().len(), 0);
        assert!(array.read_box(&[0..1, 0..1]).is_err(), "a box past the first dimension reads");
    }

    #[test]
    fn scalar_datasets_read_as_one_value() {
        // Found by the mat73_build fuzz target: a rank-0 dataset (an h5py scalar; MATLAB writes
        // 1 x 1) made reading a box, and copying the values of one never written, index past
        // its dimensions. This file is h5py's: compact, contiguous and never written scalars.
        let bytes = include_bytes!("../../../fuzz/corpus/mat73/found-scalar-datasets.mat").to_vec();
        let path = Path::new("found.mat");
        let names: Vec<String> = list(&mut Cursor::new(&bytes)).unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["compact", "contiguous", "unwritten"]);
        for (key, value) in [("compact", -7.0), ("contiguous", 2.5), ("unwritten", 4.25)] {
            let whole = read(path, &mut Cursor::new(&bytes), Some(key)).unwrap();
            assert_eq!((whole.shape.as_slice(), whole.to_f32()), (&[][..], vec![value]), "{key}");
            let array = MatArray::open_from(path, Cursor::new(bytes.clone()), Some(key)).unwrap().unwrap();
            assert_eq!(array.read_box(&[]).unwrap().to_f32(), [value], "{key}");
            let mut npy = Vec::new();
            unpack(path, &mut Cursor::new(&bytes), Some(key), (Path::new("found.npy"), &mut npy)).unwrap();
            assert_eq!(crate::formats::read_npy_bytes(Path::new("found.npy"), &npy).unwrap().to_f32(), [value]);
        }
    }

    #[test]
    fn a_byte_vector_in_chunks_reads_whole() {
        // Found by the mat73_build fuzz target: reading whole a dataset whose planes are one
        // byte (a uint8 vector) counted usize::MAX / 1 planes past the second row of chunks, an
        // overflow (so, in a release build, an empty box and an error). h5py's file.
        let bytes = include_bytes!("../../../fuzz/corpus/mat73/found-byte-vector-in-chunks.mat").to_vec();
        let whole = read(Path::new("found.mat"), &mut Cursor::new(&bytes), Some("bytes")).unwrap();
        assert_eq!(whole.to_f32(), (0..10).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        let path = Path::new("corrupt.mat");
        for (file, step, keys) in [
            ("mixed_v73.mat", 1, keys("mixed_v73.mat")),
            (LAYOUTS, 5, vec!["levels".into(), "shuffled".into(), "tiny".into(), "none".into()]),
        ] {
            let original = fs::read(fixtures().join(file)).unwrap();
            for i in (USER_BLOCK as usize..original.len()).step_by(step) {
                for byte in [0x00, 0x01, 0x80, 0xff] {
                    let mut corrupt = original.clone();
                    corrupt[i] = byte;
                    let _ = list(&mut Cursor::new(&corrupt));
                    for key in &keys {
                        let _ = read(path, &mut Cursor::new(&corrupt), Some(key));
                        let _ = unpack(path, &mut Cursor::new(&corrupt), Some(key), (path, &mut std::io::sink()));
                    }
                }
            }
        }
    }

    #[test]
    fn checksums_catch_corrupt_chunks() {
        // `wide` is stored uncompressed in chunks of two values with a Fletcher-32 checksum:
        // change one byte of its first chunk's values and the read fails.
        let path = fixtures().join(LAYOUTS);
        let wide = read_mat(&path, Some("wide")).unwrap();
        let NumArray { data: crate::NumData::U32(values), .. } = wide else { panic!("{wide:?}") };
        // MATLAB's wide(1, 1) and wide(1, 2), the dataset's first chunk.
        let chunk: Vec<u8> = [values[0], values[1]].iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.windows(8).position(|w| w == chunk).unwrap();
        bytes[at + 1] ^= 0x10;
        let err = read(&path, &mut Cursor::new(&bytes), Some("wide")).unwrap_err().to_string();
        assert!(err.contains("variable `wide`: chunk fails its Fletcher-32 checksum"), "{err}");
        // The checksum itself is HDF5's (a byte of it changed fails too).
        let mut bytes = fs::read(&path).unwrap();
        bytes[at + 9] ^= 0x01;
        assert!(read(&path, &mut Cursor::new(&bytes), Some("wide")).is_err());
    }

    #[test]
    fn unpacked_copies_are_fortran_npy_files() {
        // The .npy copy holds the stored type in MATLAB's shape, and reads back as read_mat.
        let dir = temp_dir("mat73-unpack");
        let path = fixtures().join(LAYOUTS);
        for key in keys(LAYOUTS) {
            let to = dir.join(format!("{key}.npy"));
            unpack_mat(&path, Some(&key), &to).unwrap();
            let copy = crate::formats::read_npy(&to).unwrap();
            let array = read_mat(&path, Some(&key)).unwrap();
            assert_eq!(copy.shape, array.shape, "{key}");
            assert_eq!(copy.data.to_f32(), array.data.to_f32(), "{key}");
            let header = fs::read(&to).unwrap();
            assert!(String::from_utf8_lossy(&header[..128]).contains("'fortran_order': True"), "{key}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
