//! What the fuzz targets share: each array reader driven through every public entry point a
//! file reaches, with the checks that hold whatever the bytes (an error or a value, never a
//! panic; two ways of reading the same values agree). A failed check is a finding.

pub mod mat73_build;
pub mod protocol;

use std::io::Cursor;
use std::ops::Range;
use std::path::Path;

use prism_data::NumArray;
use prism_data::formats::{
    MatArray, NpyFile, list_mat_variables_from, open_mat_values_from, read_mat_from, read_npy_bytes, unpack_mat_from,
};

/// Values read a block at a time, at most this many blocks (a unit must stay well under a second).
const MAX_BLOCKS: usize = 64;
/// Variables of a MAT-file read one by one, at most.
const MAX_VARIABLES: usize = 4;

/// A `.npy` file: read whole ([`read_npy_bytes`]) and opened ([`NpyFile::from_reader`]); both
/// accept it or both refuse it, and where both accept, its values read in blocks of `block`
/// values are the whole array's, in storage order.
pub fn npy(bytes: &[u8], block: usize) {
    let name = Path::new("fuzz.npy");
    let whole = read_npy_bytes(name, bytes);
    let opened = NpyFile::from_reader(name, Cursor::new(bytes.to_vec()));
    match (whole, opened) {
        (Ok(whole), Ok(file)) => {
            assert_eq!(file.shape(), whole.shape.as_slice(), "NpyFile and read_npy disagree on the shape");
            let stored = storage_order(&whole, file.fortran_order());
            blocks_match(&file, &stored, block);
        }
        (Err(_), Err(_)) => {}
        (whole, opened) => panic!("read_npy and NpyFile disagree: {:?} / {:?}", whole.err(), opened.err()),
    }
}

/// Reads `file` a block of `block` values at a time and compares with `stored` (the values as
/// `f32`, in storage order); a read past the end is an error.
fn blocks_match(file: &NpyFile, stored: &[f32], block: usize) {
    let total = stored.len();
    let block = block.max(1).max(total.div_ceil(MAX_BLOCKS));
    let mut start = 0;
    while start < total {
        let count = block.min(total - start);
        let values = file.read_values(start, count).expect("a block inside the array reads").to_f32();
        assert!(same(&values, &stored[start..start + count]), "block {start}+{count} differs from the whole");
        start += count;
    }
    assert!(file.read_values(total, 1).is_err(), "a value past the end reads");
    assert!(file.read_values(usize::MAX, 2).is_err(), "an overflowing range reads");
}

/// The values of `array` (row-major) as `f32`, in the order a file stores them.
fn storage_order(array: &NumArray, fortran: bool) -> Vec<f32> {
    let c = array.to_f32();
    if !fortran || array.shape.len() < 2 || c.is_empty() {
        return c;
    }
    // Storage index i is the Fortran-order index: its first coordinate varies fastest.
    let shape = &array.shape;
    let mut strides = vec![1usize; shape.len()];
    for d in (0..shape.len() - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    (0..c.len())
        .map(|mut i| {
            let mut at = 0;
            for (&dim, &stride) in shape.iter().zip(&strides) {
                at += (i % dim) * stride;
                i /= dim;
            }
            c[at]
        })
        .collect()
}

/// How many values a box holds (none where a range is empty), `None` past `usize`.
fn box_len(ranges: &[Range<usize>]) -> Option<usize> {
    if ranges.iter().any(|r| r.is_empty()) {
        return Some(0);
    }
    ranges.iter().try_fold(1usize, |n, r| n.checked_mul(r.len()))
}

/// Equal values, NaN equal to NaN (a conversion may quiet a signalling NaN).
fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// A MAT-file (MATLAB 5 or v7.3) through every entry point: listed, read without a key and by
/// each listed name, unpacked into `.npy` bytes, opened in place (MATLAB 5 values, read in
/// blocks) and opened by boxes (v7.3). What is read one way equals what is read another.
pub fn mat(bytes: &[u8], block: usize) {
    let name = Path::new("fuzz.mat");
    let mut cursor = Cursor::new(bytes);
    let listed = list_mat_variables_from(name, &mut cursor);
    let mut keys: Vec<Option<String>> = vec![None];
    if let Ok(variables) = &listed {
        keys.extend(variables.iter().take(MAX_VARIABLES).map(|v| Some(v.name.clone())));
    }
    for key in &keys {
        let key = key.as_deref();
        let read = read_mat_from(name, &mut cursor, key);
        if let Ok(array) = &read {
            assert_eq!(Some(array.len()), element_count(&array.shape), "read_mat's shape does not hold its values");
        }
        let mut npy_bytes = Vec::new();
        let unpacked = unpack_mat_from(name, &mut cursor, key, (Path::new("fuzz.npy"), &mut npy_bytes));
        if let (Ok(array), Ok(())) = (&read, &unpacked) {
            // The copy is Fortran order in the stored type: the same values as read_mat's.
            let copy = read_npy_bytes(Path::new("fuzz.npy"), &npy_bytes).expect("an unpacked variable is a .npy file");
            assert_eq!(copy.shape, array.shape, "unpack_mat and read_mat disagree on the shape");
            assert!(same(&copy.to_f32(), &array.to_f32()), "unpack_mat and read_mat disagree on the values");
        }
        if let Ok(Some(file)) = open_mat_values_from(name, Cursor::new(bytes.to_vec()), key) {
            if let Ok(array) = &read {
                blocks_match(&file, &storage_order(array, true), block);
            }
        }
        if let Ok(Some(array)) = MatArray::open_from(name, Cursor::new(bytes.to_vec()), key) {
            read_boxes(&array, read.as_ref().ok());
        }
    }
}

/// Reads boxes of a v7.3 variable: the whole (equal to `whole`, if read), a corner, the middle,
/// and one past the end (an error).
fn read_boxes(array: &MatArray, whole: Option<&NumArray>) {
    let shape = array.shape().to_vec();
    let all: Vec<Range<usize>> = shape.iter().map(|&d| 0..d).collect();
    if let (Ok(values), Some(whole)) = (array.read_box(&all), whole) {
        assert!(same(&values.to_f32(), &storage_order(whole, true)), "read_box of the whole differs from read_mat");
    }
    let corner: Vec<Range<usize>> = shape.iter().map(|&d| 0..d.min(1)).collect();
    // The middle third, d - d/3 = ceil(2d/3) without overflow (a file may claim any dimension).
    let middle: Vec<Range<usize>> = shape.iter().map(|&d| d / 3..d - d / 3).collect();
    for ranges in [corner, middle] {
        if let Ok(values) = array.read_box(&ranges) {
            let count = box_len(&ranges);
            assert_eq!(Some(values.len()), count, "read_box returned {} values for {ranges:?}", values.len());
        }
    }
    let mut past: Vec<Range<usize>> = all;
    if let Some(last) = past.last_mut().filter(|last| last.end < usize::MAX) {
        *last = last.end..last.end + 1;
        assert!(array.read_box(&past).is_err(), "a box past the end reads");
    }
}

fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// MATLAB's 512-byte user block of a v7.3 file (its 128-byte header, then zeros).
const MAT73_USER_BLOCK: &[u8] = include_bytes!("../corpus/mat73/mixed_v73.mat");

/// A v7.3 file built from `input` ([`mat73_build`]): where no byte was overwritten, every
/// variable reads, with the values written; then the file goes through every entry point as
/// [`mat`] takes it.
pub fn mat73_built(input: &mat73_build::Input, block: usize) {
    let (file, built) = mat73_build::build(input, &MAT73_USER_BLOCK[..512]);
    if let Some(built) = built {
        let name = Path::new("built.mat");
        let mut cursor = Cursor::new(&file);
        for variable in &built {
            let read = read_mat_from(name, &mut cursor, Some(&variable.name))
                .unwrap_or_else(|e| panic!("`{}` of a valid file does not read: {e}", variable.name));
            assert!(
                same(&storage_order(&read, true), &variable.values),
                "`{}`: the values read are not those written",
                variable.name
            );
        }
    }
    mat(&file, block);
}
