//! Structure-aware MATLAB v7.3: the input chooses up to three variables (class, dimensions,
//! compact, contiguous or chunked storage, chunk sizes, shuffle, deflate and Fletcher-32, chunks
//! left unwritten, fill values, the `MATLAB_class` attribute or not, values) and the file is
//! built as MATLAB's HDF5 lays it out (`prism_fuzz::mat73_build`); valid files must read back
//! the values written; then a few bytes may be overwritten. Every file goes through the entry
//! points `mat73` drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (prism_fuzz::mat73_build::Input, u8)| {
    prism_fuzz::mat73_built(&input.0, usize::from(input.1) + 1);
});
