//! MATLAB v7.3 MAT-files (HDF5 after a 512-byte user block) as they come, seeded with files
//! MATLAB, hdf5storage and h5py wrote (contiguous, compact and chunked datasets; deflate, shuffle,
//! Fletcher-32; groups, structs, sparse and empty arrays): listed, read, unpacked and read by
//! boxes (`MatArray`), every way agreeing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let block = bytes.last().map_or(1, |&b| usize::from(b) + 1);
    prism_fuzz::mat(bytes, block);
});
