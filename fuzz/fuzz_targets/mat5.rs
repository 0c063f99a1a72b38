//! MATLAB 5 MAT-files as they come (seeded with files MATLAB and SciPy wrote, compressed and
//! not): listed, read, unpacked and opened in place, every way agreeing. The last byte sets the
//! block size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let block = bytes.last().map_or(1, |&b| usize::from(b) + 1);
    prism_fuzz::mat(bytes, block);
});
