//! Array files: NumPy `.npy`, MATLAB 5 and MATLAB v7.3 (HDF5) MAT-files.
//!
//! Each reader takes a path; each also has a twin that reads from memory or any reader that
//! can seek ([`read_npy_bytes`], [`NpyFile::from_reader`], [`read_mat_from`]...), which is how
//! the fuzz targets in `fuzz/` feed them bytes without writing files.

use std::io::{Read, Seek};

mod hdf5;
mod mat;
mod mat73;
mod npy;

pub use mat::{
    MatVariable, list_mat_variables, list_mat_variables_from, open_mat_values, open_mat_values_from, read_mat,
    read_mat_from, unpack_mat, unpack_mat_from,
};
pub use mat73::MatArray;
