//! `.npy` files as they come: `read_npy` and `NpyFile` (opened, then read in blocks), which must
//! agree. The last byte sets the block size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let block = bytes.last().map_or(1, |&b| usize::from(b) + 1);
    prism_fuzz::npy(bytes, block);
});
