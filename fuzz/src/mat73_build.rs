//! MATLAB v7.3 files built from the fuzz input, for the `mat73_build` target: the HDF5 subset that
//! MATLAB writes (version 0 superblock at 512 after MATLAB's header, version 1 object headers, a
//! root group indexed by a symbol table, datasets compact, contiguous or chunked under a version 1
//! B-tree, the chunks shuffled, deflated and Fletcher-32 checked, chunks left unwritten, fill
//! values, the `MATLAB_class` attribute). The structures are valid and their values known, so the
//! reader's value decoding, chunk assembly and filters run on files that mutating bytes seldom
//! makes; then a few bytes may be overwritten, to reach its checks from valid files.
//!
//! No crate writes HDF5 without the C library (checked on crates.io 2026-12-08: `hdf5-metno`
//! binds it; `hdf5-pure` writes but not version 1 B-trees of chunks, which MATLAB's files use),
//! and a fuzz target must build its files in-process and fast, so this writes the few structures
//! itself, field by field as the HDF5 file format specification (version 0 superblock) lays them.

use arbitrary::Arbitrary;
use flate2::{Compress, Compression, FlushCompress, Status};

const SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";
const UNDEFINED: u64 = u64::MAX;
/// Where the superblock starts (after MATLAB's 512-byte user block), and so the base address.
const BASE: u64 = 512;
/// The largest dimension built.
const MAX_DIM: u8 = 12;

/// MATLAB classes and how they are stored: HDF5 type class (0 integer, 1 float), size, signed.
const CLASSES: [(&str, u8, u32, bool); 10] = [
    ("double", 1, 8, true),
    ("single", 1, 4, true),
    ("int8", 0, 1, true),
    ("uint8", 0, 1, false),
    ("int16", 0, 2, true),
    ("uint16", 0, 2, false),
    ("int32", 0, 4, true),
    ("uint32", 0, 4, false),
    ("int64", 0, 8, true),
    ("logical", 0, 1, false),
];

#[derive(Arbitrary, Debug)]
pub enum Storage {
    Compact,
    Contiguous,
    /// Chunks of these dimensions (each taken modulo the dataset's, plus one; made larger until
    /// there are at most 64), filtered, those whose bit is set in `missing` never written.
    Chunked {
        chunk: Vec<u8>,
        shuffle: bool,
        deflate: bool,
        fletcher32: bool,
        missing: u64,
    },
}

#[derive(Arbitrary, Debug)]
pub struct Variable {
    name: String,
    class: u8,
    /// Without the attribute the stored type is the class.
    attribute: bool,
    dims: Vec<u8>,
    storage: Storage,
    fill: Option<u64>,
    values: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub variables: Vec<Variable>,
    /// Bytes to overwrite after building: (position in the HDF5 part, value).
    pub patches: Vec<(u16, u8)>,
}

/// A variable as built: its name and, in the dataset's order (MATLAB's dimensions reversed, C
/// order), its values as `f32`.
pub struct Built {
    pub name: String,
    pub values: Vec<f32>,
}

/// The bytes of the HDF5 part, addresses relative to its start.
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn at(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn put(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }

    fn align(&mut self) {
        self.bytes.resize(self.bytes.len().next_multiple_of(8), 0);
    }

    /// Writes `v` at `position` (a field reserved earlier).
    fn set_u64(&mut self, position: u64, v: u64) {
        let p = position as usize;
        self.bytes[p..p + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// A version 1 object header holding `messages` (type, data).
    fn object_header(&mut self, messages: &[(u16, Vec<u8>)]) -> u64 {
        self.align();
        let address = self.at();
        let size: usize = messages.iter().map(|(_, data)| 8 + data.len().next_multiple_of(8)).sum();
        self.put(&[1, 0]);
        self.u16(messages.len() as u16);
        self.u32(1);
        self.u32(size as u32);
        self.u32(0);
        for (kind, data) in messages {
            let padded = data.len().next_multiple_of(8);
            self.u16(*kind);
            self.u16(padded as u16);
            self.put(&[0, 0, 0, 0]);
            self.put(data);
            self.bytes.resize(self.bytes.len() + padded - data.len(), 0);
        }
        address
    }
}

fn dataspace(dims: &[u64]) -> Vec<u8> {
    let mut out = vec![1, dims.len() as u8, 0, 0, 0, 0, 0, 0];
    dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
    out
}

fn datatype(class: u8, size: u32, signed: bool) -> Vec<u8> {
    let mut out = vec![0x10 | class];
    match class {
        // Floats: little-endian, IEEE (sign at bit size*8-1).
        1 => out.extend([0x20, (size * 8 - 1) as u8, 0]),
        _ => out.extend([if signed { 0x08 } else { 0 }, 0, 0]),
    }
    out.extend(size.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend((size as u16 * 8).to_le_bytes());
    if class == 1 {
        let (exponent, mantissa, bias) = if size == 8 { (11u8, 52u8, 1023u32) } else { (8, 23, 127) };
        out.extend([mantissa, exponent, 0, mantissa]);
        out.extend(bias.to_le_bytes());
    }
    out
}

/// The `MATLAB_class` attribute (version 1: name, type and space each padded to 8 bytes).
fn class_attribute(class: &str) -> Vec<u8> {
    let name = b"MATLAB_class\0";
    let mut string_type = vec![0x13, 0, 0, 0];
    string_type.extend((class.len() as u32).to_le_bytes());
    let space = dataspace(&[]);
    let mut out = vec![1, 0];
    out.extend((name.len() as u16).to_le_bytes());
    out.extend((string_type.len() as u16).to_le_bytes());
    out.extend((space.len() as u16).to_le_bytes());
    for part in [&name[..], &string_type, &space] {
        out.extend(part);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    out.extend(class.as_bytes());
    out
}

fn fill_message(fill: Option<&[u8]>) -> Vec<u8> {
    // Version 2: allocation time (late), write time (if set), defined; then size and value.
    let mut out = vec![2, 2, 2, u8::from(fill.is_some())];
    if let Some(value) = fill {
        out.extend((value.len() as u32).to_le_bytes());
        out.extend(value);
    }
    out
}

fn filter_message(shuffle: bool, deflate: bool, fletcher32: bool, size: u32) -> Option<Vec<u8>> {
    // Version 2, in the order applied when writing.
    let mut filters: Vec<(u16, Vec<u32>)> = Vec::new();
    if shuffle {
        filters.push((2, vec![size]));
    }
    if deflate {
        filters.push((1, vec![4]));
    }
    if fletcher32 {
        filters.push((3, vec![]));
    }
    if filters.is_empty() {
        return None;
    }
    let mut out = vec![2, filters.len() as u8];
    for (id, values) in filters {
        out.extend(id.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend((values.len() as u16).to_le_bytes());
        values.iter().for_each(|v| out.extend(v.to_le_bytes()));
    }
    Some(out)
}

fn shuffle(data: &[u8], size: usize) -> Vec<u8> {
    let count = data.len() / size;
    let mut out = vec![0; data.len()];
    for i in 0..count {
        for j in 0..size {
            out[j * count + i] = data[i * size + j];
        }
    }
    out
}

/// HDF5's Fletcher-32 (`H5_checksum_fletcher32` in the library's `H5checksum.c`): big-endian
/// 16-bit words summed in blocks of 360, each sum folded to 16 bits after a block; an odd last
/// byte counts as the high byte of one more word.
fn fletcher32(data: &[u8]) -> u32 {
    let fold = |sum: u32| (sum & 0xffff) + (sum >> 16);
    let (mut sum1, mut sum2) = (0u32, 0u32);
    for block in data.chunks(720) {
        for word in block.chunks(2).filter(|w| w.len() == 2) {
            sum1 += u32::from(word[0]) << 8 | u32::from(word[1]);
            sum2 += sum1;
        }
        (sum1, sum2) = (fold(sum1), fold(sum2));
    }
    if data.len() % 2 == 1 {
        sum1 += u32::from(data[data.len() - 1]) << 8;
        sum2 += sum1;
        (sum1, sum2) = (fold(sum1), fold(sum2));
    }
    (sum1, sum2) = (fold(sum1), fold(sum2));
    (sum2 << 16) | sum1
}

fn value_bytes(values: &[u8], count: usize, size: usize) -> Vec<u8> {
    (0..count * size).map(|i| if values.is_empty() { 0 } else { values[i % values.len()] }).collect()
}

fn to_f32(bytes: &[u8], class: u8, size: usize, signed: bool) -> Vec<f32> {
    bytes
        .chunks_exact(size)
        .map(|b| {
            let mut w = [0u8; 8];
            w[..size].copy_from_slice(b);
            let unsigned = u64::from_le_bytes(w);
            match (class, size, signed) {
                (1, 8, _) => f64::from_bits(unsigned) as f32,
                (1, _, _) => f32::from_bits(unsigned as u32),
                (_, _, true) => {
                    let shift = 64 - 8 * size as u32;
                    (((unsigned << shift) as i64) >> shift) as f32
                }
                _ => unsigned as f32,
            }
        })
        .collect()
}

/// Writes the datasets of `input` into a MAT v7.3 file; returns it and what each variable holds,
/// or `None` for the variables when patches may have changed them.
pub fn build(input: &Input, header: &[u8]) -> (Vec<u8>, Option<Vec<Built>>) {
    let mut w = Writer { bytes: Vec::new() };
    // Superblock, version 0; the end of file and the root's addresses are set at the end.
    w.put(SIGNATURE);
    w.put(&[0, 0, 0, 0, 0, 8, 8, 0]);
    w.u16(4);
    w.u16(16);
    w.u32(0);
    w.u64(BASE);
    w.u64(UNDEFINED);
    let end_field = w.at();
    w.u64(0);
    w.u64(UNDEFINED);
    w.u64(0); // the root's link name offset
    let root_field = w.at();
    w.u64(0);
    w.u32(0);
    w.u32(0);
    w.put(&[0; 16]);

    let mut built = Vec::new();
    let mut links = Vec::new();
    for (i, variable) in input.variables.iter().take(3).enumerate() {
        let (address, values) = dataset(&mut w, variable);
        let mut name: String = variable.name.chars().filter(|&c| c != '\0').take(16).collect();
        if name.is_empty() || name.starts_with('#') {
            name = format!("v{i}");
        }
        while links.iter().any(|(n, _)| n == &name) {
            name.push('_');
        }
        links.push((name.clone(), address));
        built.push(Built { name, values });
    }
    // Symbol table nodes list their links in name order.
    links.sort();

    // The local heap of names: offset 0 is the empty name.
    let mut heap_data = vec![0u8; 8];
    let offsets: Vec<u64> = links
        .iter()
        .map(|(name, _)| {
            let at = heap_data.len() as u64;
            heap_data.extend(name.as_bytes());
            heap_data.push(0);
            heap_data.resize(heap_data.len().next_multiple_of(8), 0);
            at
        })
        .collect();
    w.align();
    let heap = w.at();
    w.put(b"HEAP\0\0\0\0");
    w.u64(heap_data.len() as u64);
    w.u64(UNDEFINED);
    w.u64(heap + 32);
    w.put(&heap_data);

    w.align();
    let node = w.at();
    w.put(b"SNOD\x01\0");
    w.u16(links.len() as u16);
    for ((_, address), offset) in links.iter().zip(&offsets) {
        w.u64(*offset);
        w.u64(*address);
        w.u32(0);
        w.u32(0);
        w.put(&[0; 16]);
    }

    let btree = w.at();
    w.put(b"TREE\0\0");
    w.u16(1);
    w.u64(UNDEFINED);
    w.u64(UNDEFINED);
    w.u64(0);
    w.u64(node);
    w.u64(offsets.last().copied().unwrap_or(0));

    let mut table = btree.to_le_bytes().to_vec();
    table.extend(heap.to_le_bytes());
    let root = w.object_header(&[(0x11, table)]);
    w.set_u64(root_field, root);
    let end = w.at();
    w.set_u64(end_field, end);

    let mut hdf5 = w.bytes;
    for &(at, value) in &input.patches {
        let len = hdf5.len();
        hdf5[usize::from(at) % len] = value;
    }
    let mut file = header.to_vec();
    file.extend(hdf5);
    (file, input.patches.is_empty().then_some(built))
}

/// One dataset: its data first, then its object header; its address and its values.
fn dataset(w: &mut Writer, variable: &Variable) -> (u64, Vec<f32>) {
    let (class_name, class, size, signed) = CLASSES[usize::from(variable.class) % CLASSES.len()];
    let dims: Vec<u64> = variable.dims.iter().take(3).map(|&d| u64::from(d % (MAX_DIM + 1))).collect();
    let count = dims.iter().product::<u64>() as usize;
    let bytes = value_bytes(&variable.values, count, size as usize);
    let fill = variable.fill.map(|f| f.to_le_bytes()[..size as usize].to_vec());
    let mut values = to_f32(&bytes, class, size as usize, signed);

    let mut messages = vec![(0x1, dataspace(&dims)), (0x3, datatype(class, size, signed))];
    messages.push((0x5, fill_message(fill.as_deref())));
    let layout = match &variable.storage {
        Storage::Compact if bytes.len() < 1024 => {
            let mut layout = vec![3, 0];
            layout.extend((bytes.len() as u16).to_le_bytes());
            layout.extend(&bytes);
            layout
        }
        Storage::Compact | Storage::Contiguous => {
            w.align();
            let address = w.at();
            w.put(&bytes);
            let mut layout = vec![3, 1];
            layout.extend(address.to_le_bytes());
            layout.extend((bytes.len() as u64).to_le_bytes());
            layout
        }
        Storage::Chunked { chunk, shuffle: sh, deflate, fletcher32: fl, missing } if !dims.is_empty() => {
            let mut chunk: Vec<u64> =
                dims.iter().enumerate().map(|(i, &d)| u64::from(*chunk.get(i).unwrap_or(&0)) % d.max(1) + 1).collect();
            // At most 64 chunks, one per bit of `missing`: the dimension cut most finely doubles
            // its chunk until they are that few.
            while dims.iter().zip(&chunk).map(|(&d, &c)| d.div_ceil(c)).product::<u64>() > 64 {
                let cuts: Vec<u64> = dims.iter().zip(&chunk).map(|(&d, &c)| d.div_ceil(c)).collect();
                let k = (0..cuts.len()).max_by_key(|&k| cuts[k]).unwrap_or(0);
                chunk[k] = (chunk[k] * 2).min(dims[k]);
            }
            if let Some(filters) = filter_message(*sh, *deflate, *fl, size) {
                messages.push((0xb, filters));
            }
            let fill_value = fill.as_deref().map_or(0.0, |f| to_f32(f, class, size as usize, signed)[0]);
            let btree = chunks(w, &dims, &chunk, &bytes, size as usize, (*sh, *deflate, *fl), *missing);
            // Values in chunks never written are the fill value.
            for (i, value) in values.iter_mut().enumerate() {
                if missing_at(i, &dims, &chunk, *missing) {
                    *value = fill_value;
                }
            }
            let mut layout = vec![3, 2, dims.len() as u8 + 1];
            layout.extend(btree.to_le_bytes());
            chunk.iter().for_each(|&c| layout.extend((c as u32).to_le_bytes()));
            layout.extend(size.to_le_bytes());
            layout
        }
        Storage::Chunked { .. } => vec![3, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
    };
    if matches!(variable.storage, Storage::Chunked { .. }) && dims.is_empty() {
        // A scalar never written: its fill value.
        let fill_value = fill.as_deref().map_or(0.0, |f| to_f32(f, class, size as usize, signed)[0]);
        values.iter_mut().for_each(|v| *v = fill_value);
    }
    messages.push((0x8, layout));
    if variable.attribute {
        messages.push((0xc, class_attribute(class_name)));
    }
    (w.object_header(&messages), values)
}

/// Whether the value at C-order index `i` lies in a chunk the `missing` bits leave unwritten.
fn missing_at(i: usize, dims: &[u64], chunk: &[u64], missing: u64) -> bool {
    let mut rest = i as u64;
    let mut grid = vec![0u64; dims.len()];
    for k in (0..dims.len()).rev() {
        grid[k] = (rest % dims[k]) / chunk[k];
        rest /= dims[k];
    }
    missing & (1 << chunk_number(&grid, dims, chunk)) != 0
}

/// The number of a chunk in C order of the grid of chunks.
fn chunk_number(grid: &[u64], dims: &[u64], chunk: &[u64]) -> u64 {
    grid.iter().zip(dims.iter().zip(chunk)).fold(0, |n, (&g, (&d, &c))| n * d.div_ceil(c) + g)
}

/// Writes the chunks (each a whole chunk, edges padded with zeros, then filtered) and their
/// version 1 B-tree; returns the tree's address.
fn chunks(
    w: &mut Writer,
    dims: &[u64],
    chunk: &[u64],
    bytes: &[u8],
    size: usize,
    (sh, deflate, fl): (bool, bool, bool),
    missing: u64,
) -> u64 {
    let grid: Vec<u64> = dims.iter().zip(chunk).map(|(&d, &c)| d.div_ceil(c)).collect();
    let total: u64 = grid.iter().product();
    let mut compressor = Compress::new(Compression::fast(), true);
    let chunk_values: u64 = chunk.iter().product();
    let mut written = Vec::new();
    for number in 0..total {
        let mut index = vec![0u64; dims.len()];
        let mut rest = number;
        for k in (0..dims.len()).rev() {
            index[k] = rest % grid[k];
            rest /= grid[k];
        }
        if missing & (1 << number) != 0 {
            continue;
        }
        let mut data = vec![0u8; chunk_values as usize * size];
        for local in 0..chunk_values {
            let mut rest = local;
            let mut at = 0u64;
            let mut inside = true;
            for k in (0..dims.len()).rev() {
                let coordinate = index[k] * chunk[k] + rest % chunk[k];
                rest /= chunk[k];
                inside &= coordinate < dims[k];
                at += coordinate * dims[k + 1..].iter().product::<u64>();
            }
            if inside {
                let (from, to) = (at as usize * size, local as usize * size);
                data[to..to + size].copy_from_slice(&bytes[from..from + size]);
            }
        }
        if sh {
            data = shuffle(&data, size);
        }
        if deflate {
            // One compressor for all the chunks: a new one's state is 256 KB, allocated and
            // freed per chunk it would make units slow and AddressSanitizer's resident set large.
            compressor.reset();
            let mut out = Vec::with_capacity(data.len() + data.len() / 100 + 128);
            let status =
                compressor.compress_vec(&data, &mut out, FlushCompress::Finish).expect("compressing to memory");
            assert_eq!(status, Status::StreamEnd, "the compressor's output was sized too small");
            data = out;
        }
        if fl {
            let sum = fletcher32(&data);
            data.extend(sum.to_le_bytes());
        }
        w.align();
        let address = w.at();
        w.put(&data);
        let offsets: Vec<u64> = index.iter().zip(chunk).map(|(&g, &c)| g * c).collect();
        written.push((data.len() as u32, offsets, address));
    }
    w.align();
    let tree = w.at();
    w.put(b"TREE\x01\0");
    w.u16(written.len() as u16);
    w.u64(UNDEFINED);
    w.u64(UNDEFINED);
    let key = |w: &mut Writer, stored: u32, offsets: &[u64]| {
        w.u32(stored);
        w.u32(0);
        offsets.iter().for_each(|&o| w.u64(o));
        w.u64(0);
    };
    for (stored, offsets, address) in &written {
        key(w, *stored, offsets);
        w.u64(*address);
    }
    let last: Vec<u64> = dims.to_vec();
    key(w, 0, &last);
    tree
}
