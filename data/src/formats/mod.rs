//! Array files: NumPy `.npy`, MATLAB 5 and MATLAB v7.3 (HDF5) MAT-files.

mod hdf5;
mod mat;
mod mat73;
mod npy;

pub use mat::{MatVariable, list_mat_variables, open_mat_values, read_mat, unpack_mat};
pub use mat73::MatArray;
#[cfg(test)]
pub(crate) use npy::tests::{expected_fixtures, fixtures as npy_fixtures, temp_dir};
pub use npy::{NpyFile, read_npy, write_npy, write_npy_in_pieces};
