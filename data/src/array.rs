//! Numeric arrays as read from `.mat` and `.npy` files: a shape and a flat buffer of one
//! element type, always in row-major (C) order, whatever order the file used.

use crate::{Error, Result};

/// An N-dimensional numeric array: `data` holds `shape.iter().product()` values in row-major
/// (C) order, the last index varying fastest.
#[derive(Debug, Clone, PartialEq)]
pub struct NumArray {
    pub shape: Vec<usize>,
    pub data: NumData,
}

/// The values of a [`NumArray`], in the element type of the file.
#[derive(Debug, Clone, PartialEq)]
pub enum NumData {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Runs `$body` with `$v` bound to the vector inside any [`NumData`] variant.
macro_rules! with_values {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            NumData::U8($v) => $body,
            NumData::I8($v) => $body,
            NumData::U16($v) => $body,
            NumData::I16($v) => $body,
            NumData::U32($v) => $body,
            NumData::I32($v) => $body,
            NumData::U64($v) => $body,
            NumData::I64($v) => $body,
            NumData::F32($v) => $body,
            NumData::F64($v) => $body,
        }
    };
}
#[cfg_attr(not(feature = "files"), allow(unused_imports))] // the file readers' helper
pub(crate) use with_values;

/// Rebuilds a [`NumData`] of the same variant, `$v` bound to the vector inside, `$body` giving
/// the new vector.
macro_rules! map_values {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            NumData::U8($v) => NumData::U8($body),
            NumData::I8($v) => NumData::I8($body),
            NumData::U16($v) => NumData::U16($body),
            NumData::I16($v) => NumData::I16($body),
            NumData::U32($v) => NumData::U32($body),
            NumData::I32($v) => NumData::I32($body),
            NumData::U64($v) => NumData::U64($body),
            NumData::I64($v) => NumData::I64($body),
            NumData::F32($v) => NumData::F32($body),
            NumData::F64($v) => NumData::F64($body),
        }
    };
}

impl NumData {
    /// The number of values.
    pub fn len(&self) -> usize {
        with_values!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// NumPy's name of the element type: `"uint8"`, `"int16"`, `"float32"`...
    pub fn dtype(&self) -> &'static str {
        match self {
            NumData::U8(_) => "uint8",
            NumData::I8(_) => "int8",
            NumData::U16(_) => "uint16",
            NumData::I16(_) => "int16",
            NumData::U32(_) => "uint32",
            NumData::I32(_) => "int32",
            NumData::U64(_) => "uint64",
            NumData::I64(_) => "int64",
            NumData::F32(_) => "float32",
            NumData::F64(_) => "float64",
        }
    }

    /// The size of one value in bytes.
    pub fn item_size(&self) -> usize {
        match self {
            NumData::U8(_) | NumData::I8(_) => 1,
            NumData::U16(_) | NumData::I16(_) => 2,
            NumData::U32(_) | NumData::I32(_) | NumData::F32(_) => 4,
            NumData::U64(_) | NumData::I64(_) | NumData::F64(_) => 8,
        }
    }

    /// The values converted to `f32` (see [`for_each_f32`](Self::for_each_f32)).
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each_f32(|_, v| out.push(v));
        out
    }

    /// Calls `f(index, value)` for every value in storage order, converted to `f32` (rounded to
    /// the nearest `f32` where it does not fit exactly, as `as` does), without a converted copy
    /// of the whole array.
    #[allow(clippy::unnecessary_cast)] // the macro's F32 arm casts f32 to itself
    pub fn for_each_f32(&self, mut f: impl FnMut(usize, f32)) {
        with_values!(self, v => v.iter().enumerate().for_each(|(i, &x)| f(i, x as f32)))
    }

    /// The values converted to `i64`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first value that is not an integer in `i64`'s range: a
    /// floating-point value with a fraction, NaN or infinite, or a `u64` above `i64::MAX`.
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        fn float_to_i64(index: usize, x: f64) -> Result<i64> {
            // 2^63 is exactly representable; every finite integer in [-2^63, 2^63) fits.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if x.is_finite() && x.fract() == 0.0 && (-LIMIT..LIMIT).contains(&x) {
                Ok(x as i64)
            } else {
                Err(Error::Invalid(format!("value {x} at index {index} is not an integer in the range of int64")))
            }
        }
        match self {
            NumData::U8(v) => Ok(v.iter().map(|&x| i64::from(x)).collect()),
            NumData::I8(v) => Ok(v.iter().map(|&x| i64::from(x)).collect()),
            NumData::U16(v) => Ok(v.iter().map(|&x| i64::from(x)).collect()),
            NumData::I16(v) => Ok(v.iter().map(|&x| i64::from(x)).collect()),
            NumData::U32(v) => Ok(v.iter().map(|&x| i64::from(x)).collect()),
            NumData::I32(v) => Ok(v.iter().map(|&x| i64::from(x)).collect()),
            NumData::I64(v) => Ok(v.clone()),
            NumData::U64(v) => v
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    i64::try_from(x)
                        .map_err(|_| Error::Invalid(format!("value {x} at index {i} is too large for int64")))
                })
                .collect(),
            NumData::F32(v) => v.iter().enumerate().map(|(i, &x)| float_to_i64(i, f64::from(x))).collect(),
            NumData::F64(v) => v.iter().enumerate().map(|(i, &x)| float_to_i64(i, x)).collect(),
        }
    }

    /// Reorders values stored in column-major (Fortran) order for `shape` into row-major order.
    /// The caller has checked that `shape` holds exactly `self.len()` values.
    #[cfg_attr(not(feature = "files"), allow(dead_code))]
    pub(crate) fn fortran_to_c(self, shape: &[usize]) -> NumData {
        map_values!(self, v => fortran_to_c(&v, shape))
    }
}

impl NumArray {
    /// An array of `shape` holding `data` in row-major order.
    ///
    /// # Errors
    /// [`Error::Shape`] when the product of `shape` is not the number of values.
    pub fn new(shape: Vec<usize>, data: NumData) -> Result<Self> {
        match element_count(&shape) {
            Some(n) if n == data.len() => Ok(NumArray { shape, data }),
            _ => Err(Error::Shape(format!("shape {shape:?} does not hold the {} values given", data.len()))),
        }
    }

    /// The number of values (the product of the shape).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// NumPy's name of the element type: `"uint8"`, `"float32"`...
    pub fn dtype(&self) -> &'static str {
        self.data.dtype()
    }

    /// The values converted to `f32`, in row-major order.
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.to_f32()
    }

    /// The values converted to `i64`, in row-major order.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a value is not an integer (a fraction, NaN, infinite) or does not
    /// fit in `i64`.
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        self.data.to_i64()
    }
}

/// The product of `shape`, or `None` if it overflows `usize`.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Decodes `bytes` as consecutive `N`-byte values with `convert` (e.g. `u16::from_le_bytes`);
/// a trailing partial value, if any, is ignored (callers check the length first).
#[cfg_attr(not(feature = "files"), allow(dead_code))]
pub(crate) fn decode<T, const N: usize>(bytes: &[u8], convert: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut raw = [0u8; N];
            raw.copy_from_slice(chunk);
            convert(raw)
        })
        .collect()
}

/// Row-major copy of `values`, stored in column-major order for `shape`.
#[cfg_attr(not(feature = "files"), allow(dead_code))]
fn fortran_to_c<T: Copy>(values: &[T], shape: &[usize]) -> Vec<T> {
    if shape.len() < 2 || values.is_empty() {
        return values.to_vec();
    }
    // Column-major strides: the first index varies fastest.
    let strides: Vec<usize> = shape
        .iter()
        .scan(1usize, |stride, &d| {
            let s = *stride;
            *stride = stride.saturating_mul(d);
            Some(s)
        })
        .collect();
    // Walk the indices in row-major order (an odometer, last index fastest), keeping the
    // column-major offset of the current index up to date.
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        out.push(values[offset]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_becomes_row_major() {
        // A 2x3x2 array whose value at [i][j][k] is 100i + 10j + k, laid out column-major.
        let shape = [2, 3, 2];
        let mut column_major = Vec::new();
        for k in 0..2 {
            for j in 0..3 {
                for i in 0..2 {
                    column_major.push(100 * i + 10 * j + k);
                }
            }
        }
        let row_major = fortran_to_c(&column_major, &shape);
        let expected: Vec<i32> =
            (0..2).flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| 100 * i + 10 * j + k))).collect();
        assert_eq!(row_major, expected);
        // One and zero dimensions are left as they are.
        assert_eq!(fortran_to_c(&[1, 2, 3], &[3]), vec![1, 2, 3]);
        assert_eq!(fortran_to_c(&[7], &[]), vec![7]);
    }

    #[test]
    fn conversions_and_names() {
        let a = NumArray::new(vec![2, 2], NumData::F64(vec![1.0, -2.0, 3.0, 4e9])).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a.ndim(), 2);
        assert_eq!(a.dtype(), "float64");
        assert_eq!(a.to_f32(), vec![1.0, -2.0, 3.0, 4e9]);
        assert_eq!(a.to_i64().unwrap(), vec![1, -2, 3, 4_000_000_000]);

        for bad in [1.5, f64::NAN, f64::INFINITY, 1e19] {
            let err = NumData::F64(vec![0.0, bad]).to_i64().unwrap_err().to_string();
            assert!(err.contains("index 1"), "{err}");
        }
        assert!(NumData::F32(vec![f32::NEG_INFINITY]).to_i64().is_err());
        assert!(NumData::U64(vec![u64::MAX]).to_i64().is_err());
        assert_eq!(NumData::U64(vec![7]).to_i64().unwrap(), vec![7]);
        assert_eq!(NumData::I8(vec![-128]).to_i64().unwrap(), vec![-128]);
        assert_eq!(NumData::U16(vec![65535]).to_f32(), vec![65535.0]);

        let names: Vec<&str> = [
            NumData::U8(vec![]),
            NumData::I8(vec![]),
            NumData::U16(vec![]),
            NumData::I16(vec![]),
            NumData::U32(vec![]),
            NumData::I32(vec![]),
            NumData::U64(vec![]),
            NumData::I64(vec![]),
            NumData::F32(vec![]),
            NumData::F64(vec![]),
        ]
        .iter()
        .map(NumData::dtype)
        .collect();
        assert_eq!(
            names,
            ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]
        );
    }

    #[test]
    fn new_checks_the_shape() {
        assert!(NumArray::new(vec![2, 3], NumData::U8(vec![0; 5])).is_err());
        assert!(NumArray::new(vec![usize::MAX, 2], NumData::U8(vec![])).is_err());
        assert!(NumArray::new(vec![], NumData::U8(vec![9])).is_ok());
        assert!(NumArray::new(vec![0, 4], NumData::U8(vec![])).is_ok());
    }
}
