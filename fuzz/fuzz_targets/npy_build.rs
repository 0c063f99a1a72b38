//! Structure-aware `.npy`: the input chooses a header NumPy would write (format version, dtype,
//! byte order, order, shape; sometimes a Python 2 `L` suffix, an extra key, odd spacing) and a
//! body (its own bytes, or exactly as many as the shape needs), so that the value decoding, the
//! Fortran reordering and the block reads run on well-formed files that random bytes rarely
//! make, and shapes that claim far more than the body holds are tried as often as honest ones.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// Type codes NumPy writes (the reader takes the first eleven).
const CODES: &[&str] = &["b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "f2", "c8", "O", "U3", "V4"];
const ORDERS: &[&str] = &["<", ">", "|", "=", ""];
/// The largest body built to fit a shape exactly.
const MAX_EXACT: usize = 1 << 16;

#[derive(Arbitrary, Debug)]
enum Dim {
    Small(u8),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
struct Input {
    version: u8,
    code: u8,
    order: u8,
    fortran: bool,
    shape: Vec<Dim>,
    python2_long: bool,
    extra_key: bool,
    /// Body of exactly the bytes the shape needs (the input's bytes repeated), or the input's.
    exact: bool,
    block: u16,
    body: Vec<u8>,
}

fn item_size(code: &str) -> usize {
    code.get(1..).and_then(|n| n.parse().ok()).unwrap_or(1)
}

fn build(input: &Input) -> Vec<u8> {
    let code = CODES[usize::from(input.code) % CODES.len()];
    let order = ORDERS[usize::from(input.order) % ORDERS.len()];
    let dims: Vec<u64> = input
        .shape
        .iter()
        .take(6)
        .map(|d| match *d {
            Dim::Small(n) => u64::from(n),
            Dim::Any(n) => n,
        })
        .collect();
    let suffix = if input.python2_long { "L" } else { "" };
    let texts: Vec<String> = dims.iter().map(|d| format!("{d}{suffix}")).collect();
    let shape = match texts.len() {
        1 => format!("({},)", texts[0]),
        _ => format!("({})", texts.join(", ")),
    };
    let fortran = if input.fortran { "True" } else { "False" };
    let extra = if input.extra_key { "'extra': [1, 'two', None], " } else { "" };
    let mut dict = format!("{{'descr': '{order}{code}', {extra}'fortran_order': {fortran}, 'shape': {shape}, }}");
    let version = input.version % 3 + 1;
    let prefix = if version == 1 { 10 } else { 12 };
    let unpadded = prefix + dict.len() + 1;
    dict.extend(std::iter::repeat_n(' ', (64 - unpadded % 64) % 64));
    dict.push('\n');

    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend_from_slice(&[version, 0]);
    if version == 1 {
        bytes.extend_from_slice(&u16::try_from(dict.len()).unwrap_or(u16::MAX).to_le_bytes());
    } else {
        bytes.extend_from_slice(&u32::try_from(dict.len()).unwrap_or(u32::MAX).to_le_bytes());
    }
    bytes.extend_from_slice(dict.as_bytes());
    let needed = dims
        .iter()
        .try_fold(item_size(code) as u64, |n, &d| n.checked_mul(d))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= MAX_EXACT);
    match needed {
        Some(needed) if input.exact => {
            let source = if input.body.is_empty() { &[0x3f][..] } else { &input.body };
            bytes.extend(source.iter().cycle().take(needed));
        }
        _ => bytes.extend_from_slice(&input.body),
    }
    bytes
}

fuzz_target!(|input: Input| {
    prism_fuzz::npy(&build(&input), usize::from(input.block));
});
