//! Structure-aware MATLAB 5: the input chooses variables as MATLAB and SciPy write them (class,
//! logical and complex flags, dimensions, name, the stored data type of the real part, which may
//! be narrower than the class, compressed or not) and their bytes, and the file is built with a
//! valid 128-byte header and element tags, so that the value decoding, the class conversions,
//! the decompression and the in-place reads run on files random bytes rarely make. Dimensions
//! that claim far more than the values hold, and declared lengths that lie, are tried too.
#![no_main]

use std::io::Write;

use arbitrary::Arbitrary;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use libfuzzer_sys::fuzz_target;

const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_INT8: u32 = 1;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
/// The largest real part built to fit the dimensions exactly.
const MAX_EXACT: usize = 1 << 16;

#[derive(Arbitrary, Debug)]
enum Dim {
    Small(u8),
    Any(i32),
}

#[derive(Arbitrary, Debug)]
struct Variable {
    compressed: bool,
    /// The array class (the low byte of the flags): 1-17, mostly numeric (6-15).
    class: u8,
    logical: bool,
    complex: bool,
    dims: Vec<Dim>,
    unsigned_dims: bool,
    name: String,
    /// The stored data type of the real part (miINT8 = 1 ... miUTF32 = 18).
    data_type: u8,
    /// Short parts in the small data element format (data in the tag), as MATLAB writes them.
    small: bool,
    /// A real part of exactly the bytes the dimensions need (these repeated), or these.
    exact: bool,
    values: Vec<u8>,
    /// A declared element length other than the true one.
    declared: Option<u32>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    variables: Vec<Variable>,
    block: u16,
    trailing: Vec<u8>,
}

fn size_of(data_type: u32) -> usize {
    match data_type {
        1 | 2 => 1,
        3 | 4 => 2,
        5..=7 => 4,
        9 | 12 | 13 => 8,
        _ => 1,
    }
}

/// A sub-element: tag and data, padded to 8 bytes, or in the small format when asked and short.
fn element(out: &mut Vec<u8>, data_type: u32, data: &[u8], small: bool) {
    if small && data.len() <= 4 {
        out.extend_from_slice(&((data.len() as u32) << 16 | data_type).to_le_bytes());
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(0, 4 - data.len()));
    } else {
        out.extend_from_slice(&data_type.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(0, (8 - data.len() % 8) % 8));
    }
}

fn variable(v: &Variable) -> Vec<u8> {
    let class = if v.class % 4 == 0 { v.class % 18 } else { 6 + v.class % 10 };
    let flags = u32::from(class) | if v.logical { 0x0200 } else { 0 } | if v.complex { 0x0800 } else { 0 };
    let dims: Vec<i32> = v
        .dims
        .iter()
        .take(5)
        .map(|d| match *d {
            Dim::Small(n) => i32::from(n),
            Dim::Any(n) => n,
        })
        .collect();
    let data_type = u32::from(v.data_type % 18) + 1;

    let mut content = Vec::new();
    element(&mut content, MI_UINT32, &[flags.to_le_bytes(), [0; 4]].concat(), false);
    let dim_bytes: Vec<u8> = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
    element(&mut content, if v.unsigned_dims { MI_UINT32 } else { MI_INT32 }, &dim_bytes, v.small);
    let name: String = v.name.chars().take(63).collect();
    element(&mut content, MI_INT8, name.as_bytes(), v.small);
    let needed = dims
        .iter()
        .try_fold(size_of(data_type), |n, &d| usize::try_from(d).ok().and_then(|d| n.checked_mul(d)))
        .filter(|&n| n <= MAX_EXACT);
    let values: Vec<u8> = match needed {
        Some(needed) if v.exact => {
            let source = if v.values.is_empty() { &[1][..] } else { &v.values };
            source.iter().cycle().take(needed).copied().collect()
        }
        _ => v.values.clone(),
    };
    element(&mut content, data_type, &values, v.small);
    if v.complex {
        element(&mut content, data_type, &values, v.small);
    }

    let mut matrix = Vec::new();
    matrix.extend_from_slice(&MI_MATRIX.to_le_bytes());
    matrix.extend_from_slice(&v.declared.unwrap_or(content.len() as u32).to_le_bytes());
    matrix.extend_from_slice(&content);
    if !v.compressed {
        return matrix;
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
    let compressed = encoder.write_all(&matrix).and_then(|()| encoder.finish()).unwrap_or_default();
    let mut out = MI_COMPRESSED.to_le_bytes().to_vec();
    out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
    out.extend_from_slice(&compressed);
    out
}

fn build(input: &Input) -> Vec<u8> {
    let mut text = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 12:00:00 2026".to_vec();
    text.resize(116, b' ');
    let mut bytes = text;
    bytes.extend_from_slice(&[0; 8]); // subsystem data offset
    bytes.extend_from_slice(&0x0100u16.to_le_bytes());
    bytes.extend_from_slice(b"IM");
    for v in input.variables.iter().take(3) {
        bytes.extend(variable(v));
    }
    bytes.extend_from_slice(&input.trailing);
    bytes
}

fuzz_target!(|input: Input| {
    prism_fuzz::mat(&build(&input), usize::from(input.block));
});
