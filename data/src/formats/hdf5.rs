//! The part of HDF5 that MATLAB v7.3 MAT-files use, read-only.
//!
//! MATLAB (and `hdf5storage`, `h5py` with its default `libver="earliest"`) write a version 0
//! superblock, version 1 object headers, groups indexed by a symbol table (a version 1 B-tree of
//! symbol nodes, names in a local heap), and datasets laid out compact, contiguous or in chunks
//! indexed by a version 1 B-tree, the chunks filtered by deflate, shuffle and Fletcher-32, and
//! values never written (chunks missing, as MATLAB's `matfile` leaves them after partial writes)
//! taking the fill value. That is what this reader reads; newer structures (version 2 and 3
//! superblocks, version 2 object headers, link messages, version 4 layouts) are refused with a
//! message naming them.
//!
//! Addresses in the file are relative to the superblock's base address (512 in a MAT-file,
//! after the user block that holds MATLAB's 128-byte header). Everything read is checked
//! against the file's size before anything is allocated for it, so a corrupt file gives an error,
//! not a huge allocation or a panic. Errors are the reason, without the path.
//!
//! Written here rather than taken from a crate (checked on crates.io 2026-12-07): `hdf5-metno`
//! 0.15.1 binds the C HDF5 library, a native library the runtime does not link; `hdf5-pure`
//! 0.47.0 and `hdf5-pure-rust` 0.3.6 are pure Rust and recent (`hdf5-pure-rust` has hyperslab
//! selections, which reading a tile from the chunks it meets needs) but have not been tried on
//! MATLAB's own files here. They are the candidates to replace this reader once they are: the
//! tests that check it (files MATLAB, hdf5storage and h5py wrote, compared with h5py) would check
//! them the same way.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;

use flate2::read::ZlibDecoder;

use super::mat::CopyError;

const SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";
/// Deflate expands at most ~1032 times; a chunk inflating to more is corrupt.
const MAX_INFLATE_RATIO: u64 = 1100;
/// Object header blocks (the first and its continuations) read for one object, at most.
const MAX_HEADER_BLOCKS: usize = 1024;
const UNDEFINED: u64 = u64::MAX;

// Object header message types.
const DATASPACE: u16 = 0x1;
const LINK: u16 = 0x6;
const DATATYPE: u16 = 0x3;
const LAYOUT: u16 = 0x8;
const FILTERS: u16 = 0xb;
const ATTRIBUTE: u16 = 0xc;
const CONTINUATION: u16 = 0x10;
const SYMBOL_TABLE: u16 = 0x11;
const OLD_FILL_VALUE: u16 = 0x4;
const FILL_VALUE: u16 = 0x5;

// Filters.
const DEFLATE: u16 = 1;
const SHUFFLE: u16 = 2;
const FLETCHER32: u16 = 3;

/// An open HDF5 file: where its superblock puts addresses, and how wide they are.
pub(super) struct Hdf5<R> {
    file: R,
    size: u64,
    base: u64,
    offset_size: usize,
    length_size: usize,
    /// Object header address of the root group.
    root: u64,
    /// B-tree nodes read so far: a well-formed file reads each once, so more than the file
    /// can hold means a corrupt tree.
    nodes_read: u64,
}

/// A member of a group.
pub(super) enum Object {
    Dataset(Dataset),
    /// A group: its attributes and where its symbol table is (B-tree and local heap).
    Group {
        attributes: Vec<Attribute>,
        table: (u64, u64),
    },
}

/// What a dataset's object header says.
pub(super) struct Dataset {
    /// Dimensions, slowest-varying first (the values are stored in C order of these).
    pub shape: Vec<u64>,
    pub dtype: Dtype,
    layout: Layout,
    filters: Vec<Filter>,
    /// The value of elements never written, when the file defines one (zero otherwise).
    fill: Option<Vec<u8>>,
    pub attributes: Vec<Attribute>,
}

/// The type of a dataset's or an attribute's elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dtype {
    /// A little-endian integer of `size` bytes.
    Int { size: usize, signed: bool },
    /// A little-endian IEEE float of `size` bytes.
    Float { size: usize },
    /// A fixed-length string of `size` bytes.
    Text { size: usize },
    /// A compound type (MATLAB stores complex numbers so).
    Compound,
    /// Anything else, described.
    Other(String),
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dtype::Int { size, signed } => {
                write!(f, "{size}-byte {} integers", if *signed { "signed" } else { "unsigned" })
            }
            Dtype::Float { size } => write!(f, "{size}-byte floats"),
            Dtype::Text { size } => write!(f, "{size}-byte strings"),
            Dtype::Compound => write!(f, "compound values"),
            Dtype::Other(what) => write!(f, "{what}"),
        }
    }
}

impl Dtype {
    pub(super) fn size(&self) -> Option<usize> {
        match *self {
            Dtype::Int { size, .. } | Dtype::Float { size } | Dtype::Text { size } => Some(size),
            Dtype::Compound | Dtype::Other(_) => None,
        }
    }
}

pub(super) struct Attribute {
    pub name: String,
    pub dtype: Dtype,
    /// The raw value: every element, in C order.
    pub data: Vec<u8>,
}

impl Attribute {
    /// The value of a string attribute, without trailing NULs and spaces.
    pub(super) fn text(&self) -> Option<String> {
        matches!(self.dtype, Dtype::Text { .. })
            .then(|| String::from_utf8_lossy(&self.data).trim_end_matches(['\0', ' ']).to_string())
    }

    /// The first element of an integer attribute.
    pub(super) fn integer(&self) -> Option<u64> {
        let Dtype::Int { size, .. } = self.dtype else { return None };
        let bytes = self.data.get(..size)?;
        Some(bytes.iter().rev().fold(0u64, |n, &b| (n << 8) | u64::from(b)))
    }
}

enum Layout {
    Compact(Vec<u8>),
    Contiguous {
        address: u64,
        size: u64,
    },
    /// Chunks of `chunk` elements (one per dimension), indexed by the B-tree at `btree`.
    Chunked {
        btree: u64,
        chunk: Vec<u64>,
    },
}

#[derive(Clone)]
struct Filter {
    id: u16,
    values: Vec<u32>,
}

/// A chunk as the chunk B-tree lists it.
struct Chunk {
    address: u64,
    size: u64,
    /// Bit `i` set: filter `i` of the pipeline was not applied to this chunk.
    skipped: u32,
}

/// Where a dataset's values are, as [`Hdf5::index`] found them.
pub(super) struct Index {
    shape: Vec<u64>,
    /// Bytes a value.
    size: u64,
    filters: Vec<Filter>,
    /// The bytes of the value of elements never written, `size` of them.
    fill: Vec<u8>,
    storage: Storage,
}

enum Storage {
    /// All the values (a compact dataset, or none).
    Memory(Vec<u8>),
    Contiguous {
        address: u64,
    },
    /// Never written: every value is the fill value.
    Fill,
    /// Chunks of `chunk` values a dimension, `chunk_bytes` once their filters are undone, by
    /// their index in the grid of chunks; those never written are missing (fill values).
    Chunked {
        chunk: Vec<u64>,
        chunk_bytes: u64,
        chunks: BTreeMap<Vec<u64>, Chunk>,
    },
}

impl Index {
    /// The dimensions of a chunk, for a chunked dataset.
    pub(super) fn chunk(&self) -> Option<&[u64]> {
        match &self.storage {
            Storage::Chunked { chunk, .. } => Some(chunk),
            _ => None,
        }
    }
}

/// Whether `bytes` start with the HDF5 signature.
pub(super) fn is_signature(bytes: &[u8]) -> bool {
    bytes.starts_with(SIGNATURE)
}

impl<R: Read + Seek> Hdf5<R> {
    /// Reads the superblock at `at` (a MAT-file's is at 512).
    pub(super) fn open(mut file: R, at: u64) -> Result<Self, String> {
        let size = file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
        let mut hdf5 = Hdf5 { file, size, base: 0, offset_size: 8, length_size: 8, root: 0, nodes_read: 0 };
        let head = hdf5.bytes(at, 16).map_err(|_| "truncated HDF5 superblock".to_string())?;
        if !is_signature(&head) {
            return Err("no HDF5 signature".into());
        }
        match head[8] {
            0 | 1 => {}
            v => return Err(format!("HDF5 superblock version {v} is not supported (MATLAB writes version 0)")),
        }
        let (offset_size, length_size) = (usize::from(head[13]), usize::from(head[14]));
        if ![2, 4, 8].contains(&offset_size) || ![2, 4, 8].contains(&length_size) {
            return Err(format!("bad HDF5 superblock: {offset_size}-byte addresses, {length_size}-byte lengths"));
        }
        (hdf5.offset_size, hdf5.length_size) = (offset_size, length_size);
        // Version 1 adds the indexed storage node K and two reserved bytes.
        let fields = at + if head[8] == 1 { 28 } else { 24 };
        let block = hdf5.bytes(fields, 6 * offset_size as u64 + 24)?;
        let mut sb = Cursor::new(&block, offset_size, length_size);
        let base = sb.offset()?;
        sb.skip(3 * offset_size)?; // free space, end of file and driver information addresses
        sb.skip(offset_size)?; // the root's link name offset
        let root = sb.offset()?;
        if base > size {
            return Err(format!("bad HDF5 superblock: base address {base} beyond the end of the file"));
        }
        (hdf5.base, hdf5.root) = (base, root);
        Ok(hdf5)
    }

    /// The members of the root group, by name, in the order of their names.
    pub(super) fn root_members(&mut self) -> Result<Vec<(String, Object)>, String> {
        let messages = self.messages(self.root).map_err(|e| format!("root group: {e}"))?;
        let table = symbol_table(&messages, self)?.ok_or("the root group has no symbol table")?;
        self.members(table)
    }

    /// The members of the group whose symbol table is `table`, by name, in the order of their
    /// names.
    pub(super) fn members(&mut self, (btree, heap): (u64, u64)) -> Result<Vec<(String, Object)>, String> {
        let links = self.group_links(btree, heap)?;
        links
            .into_iter()
            .map(|(name, address)| Ok((name.clone(), self.object(address).map_err(|e| format!("`{name}`: {e}"))?)))
            .collect()
    }

    fn object(&mut self, address: u64) -> Result<Object, String> {
        let messages = self.messages(address)?;
        let attributes = messages
            .iter()
            .filter(|m| m.kind == ATTRIBUTE)
            .map(|m| self.attribute(&m.data))
            .collect::<Result<_, _>>()?;
        if let Some(table) = symbol_table(&messages, self)? {
            return Ok(Object::Group { attributes, table });
        }
        let find = |kind: u16| messages.iter().find(|m| m.kind == kind).map(|m| m.data.as_slice());
        let Some(layout) = find(LAYOUT) else {
            return Err(if find(LINK).is_some() {
                "groups holding link messages (HDF5 1.8 compact groups) are not supported".into()
            } else {
                "neither a dataset nor a group".into()
            });
        };
        let shape = self
            .dataspace(find(DATASPACE).ok_or("dataset without a dataspace")?)?
            .ok_or("dataset with a null dataspace")?;
        let dtype = datatype(find(DATATYPE).ok_or("dataset without a datatype")?)?;
        let layout = self.layout(layout, shape.len())?;
        let filters = find(FILTERS).map(filters).transpose()?.unwrap_or_default();
        let fill = match find(FILL_VALUE) {
            Some(message) => fill_value(message)?,
            None => find(OLD_FILL_VALUE).map(old_fill_value).transpose()?,
        };
        Ok(Object::Dataset(Dataset { shape, dtype, layout, filters, fill, attributes }))
    }

    /// `len` bytes at address `address`, checked against the file's size.
    fn bytes(&mut self, address: u64, len: u64) -> Result<Vec<u8>, String> {
        let at = self
            .base
            .checked_add(address)
            .filter(|&at| at <= self.size)
            .ok_or_else(|| format!("address {address} is beyond the end of the file"))?;
        if len > self.size - at {
            return Err(format!("{len} bytes at address {address} run past the end of the file"));
        }
        let mut buf = vec![0; usize::try_from(len).map_err(|_| "too large")?];
        self.file.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
        self.file.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    }

    /// The messages of the version 1 object header at `address`, continuations followed.
    fn messages(&mut self, address: u64) -> Result<Vec<Message>, String> {
        let head = self.bytes(address, 16)?;
        if head.starts_with(b"OHDR") {
            return Err("version 2 object headers are not supported (MATLAB writes version 1)".into());
        }
        if head[0] != 1 {
            return Err(format!("bad object header version {}", head[0]));
        }
        let mut blocks = vec![(address + 16, u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])))];
        let mut messages = Vec::new();
        let mut next = 0;
        // The blocks of a well-formed header do not overlap, so together they fit in the file;
        // continuations that loop back would otherwise copy the same messages again and again.
        let mut total = 0u64;
        while let Some(&(at, len)) = blocks.get(next) {
            next += 1;
            if next > MAX_HEADER_BLOCKS {
                return Err(format!("more than {MAX_HEADER_BLOCKS} object header blocks"));
            }
            total = total.saturating_add(len);
            if total > self.size {
                return Err(format!(
                    "object header blocks of {total} bytes in a file of {} (continuations in a loop?)",
                    self.size
                ));
            }
            let block = self.bytes(at, len)?;
            let mut c = Cursor::new(&block, self.offset_size, self.length_size);
            while c.remaining() >= 8 {
                let kind = c.u16()?;
                let size = usize::from(c.u16()?);
                let flags = c.u8()?;
                c.skip(3)?;
                let data = c.take(size).map_err(|_| format!("message {kind:#x} runs past its header block"))?.to_vec();
                if flags & 0x02 != 0 {
                    return Err(format!("shared object header messages (type {kind:#x}) are not supported"));
                }
                if kind == CONTINUATION {
                    let mut d = Cursor::new(&data, self.offset_size, self.length_size);
                    blocks.push((d.offset()?, d.length()?));
                } else {
                    messages.push(Message { kind, data });
                }
            }
        }
        Ok(messages)
    }

    /// The links of a group with a symbol table: names (from the local heap at `heap`) and
    /// object header addresses, from the symbol nodes of the B-tree at `btree`.
    fn group_links(&mut self, btree: u64, heap: u64) -> Result<Vec<(String, u64)>, String> {
        let head = self.bytes(heap, 8 + 2 * self.length_size as u64 + self.offset_size as u64)?;
        if !head.starts_with(b"HEAP") {
            return Err("bad local heap signature".into());
        }
        let mut c = Cursor::new(&head[8..], self.offset_size, self.length_size);
        let heap_size = c.length()?;
        c.length()?; // free list
        let heap_data = c.offset()?;
        let names = self.bytes(heap_data, heap_size)?;
        let mut nodes = Vec::new();
        self.btree_leaves(btree, 0, self.length_size, None, &mut nodes)?;
        let mut links = Vec::new();
        for (_, node) in nodes {
            let head = self.bytes(node, 8)?;
            if !head.starts_with(b"SNOD") {
                return Err("bad symbol node signature".into());
            }
            let count = u64::from(u16::from_le_bytes([head[6], head[7]]));
            let entry = 2 * self.offset_size as u64 + 24;
            let entries = self.bytes(node + 8, count * entry)?;
            let mut c = Cursor::new(&entries, self.offset_size, self.length_size);
            for _ in 0..count {
                let name_at = usize::try_from(c.uint(self.offset_size)?).unwrap_or(usize::MAX);
                let address = c.offset()?;
                c.skip(24)?;
                let name = names
                    .get(name_at..)
                    .and_then(|rest| rest.split(|&b| b == 0).next())
                    .ok_or("link name outside the local heap")?;
                links.push((String::from_utf8_lossy(name).into_owned(), address));
            }
        }
        Ok(links)
    }

    /// The leaves of the version 1 B-tree of type `node_type` at `address`: each child address
    /// of a level-0 node with the key before it (`key_size` bytes). `level` is the level the
    /// node must have (`None` for the root), which bounds the walk.
    fn btree_leaves(
        &mut self,
        address: u64,
        node_type: u8,
        key_size: usize,
        level: Option<u8>,
        out: &mut Vec<(Vec<u8>, u64)>,
    ) -> Result<(), String> {
        self.nodes_read += 1;
        if self.nodes_read > self.size / 16 {
            return Err("B-tree nodes read more often than the file holds them (a loop)".into());
        }
        let head = self.bytes(address, 8 + 2 * self.offset_size as u64)?;
        if !head.starts_with(b"TREE") || head[4] != node_type {
            return Err(format!("bad B-tree node at address {address}"));
        }
        let node_level = head[5];
        if level.is_some_and(|level| level != node_level) {
            return Err(format!(
                "B-tree node at address {address} has level {node_level}, expected {}",
                level.unwrap_or(0)
            ));
        }
        let entries = u64::from(u16::from_le_bytes([head[6], head[7]]));
        let entry = (key_size + self.offset_size) as u64;
        let body = self.bytes(address + head.len() as u64, entries * entry + key_size as u64)?;
        let mut c = Cursor::new(&body, self.offset_size, self.length_size);
        for _ in 0..entries {
            let key = c.take(key_size)?.to_vec();
            let child = c.offset()?;
            if node_level == 0 {
                out.push((key, child));
            } else {
                self.btree_leaves(child, node_type, key_size, Some(node_level - 1), out)?;
            }
        }
        Ok(())
    }

    /// Dimensions of a dataspace message, `None` for a null dataspace.
    fn dataspace(&self, data: &[u8]) -> Result<Option<Vec<u64>>, String> {
        let mut c = Cursor::new(data, self.offset_size, self.length_size);
        let version = c.u8()?;
        let rank = c.u8()?;
        c.u8()?; // flags: maximum dimensions follow, which do not matter here
        match version {
            1 => c.skip(5)?,
            2 => {
                if c.u8()? == 2 {
                    return Ok(None);
                }
            }
            v => return Err(format!("dataspace message version {v} is not supported")),
        }
        (0..rank).map(|_| c.length()).collect::<Result<_, _>>().map(Some)
    }

    fn layout(&self, data: &[u8], rank: usize) -> Result<Layout, String> {
        let mut c = Cursor::new(data, self.offset_size, self.length_size);
        let version = c.u8()?;
        if version != 3 {
            return Err(format!("data layout message version {version} is not supported (MATLAB writes version 3)"));
        }
        match c.u8()? {
            0 => {
                let size = usize::from(c.u16()?);
                Ok(Layout::Compact(c.take(size)?.to_vec()))
            }
            1 => Ok(Layout::Contiguous { address: c.offset()?, size: c.length()? }),
            2 => {
                let dims = usize::from(c.u8()?);
                let btree = c.offset()?;
                // One size per dimension, then the element size.
                if dims != rank + 1 {
                    return Err(format!("chunks of {} dimensions for a dataset of {rank}", dims.saturating_sub(1)));
                }
                let chunk: Vec<u64> = (0..rank).map(|_| c.u32().map(u64::from)).collect::<Result<_, _>>()?;
                if chunk.contains(&0) {
                    return Err(format!("chunk dimensions {chunk:?} hold a zero"));
                }
                Ok(Layout::Chunked { btree, chunk })
            }
            class => Err(format!("data layout class {class} is not supported")),
        }
    }

    fn attribute(&self, data: &[u8]) -> Result<Attribute, String> {
        let mut c = Cursor::new(data, self.offset_size, self.length_size);
        let version = c.u8()?;
        c.u8()?; // reserved or flags
        let name_size = usize::from(c.u16()?);
        let type_size = usize::from(c.u16()?);
        let space_size = usize::from(c.u16()?);
        // Version 1 pads each part to 8 bytes; version 3 adds the name's encoding.
        let padded = |n: usize| if version == 1 { n.next_multiple_of(8) } else { n };
        match version {
            1 | 2 => {}
            3 => c.skip(1)?,
            v => return Err(format!("attribute message version {v} is not supported")),
        }
        let name = c.take(padded(name_size))?;
        let name = String::from_utf8_lossy(name.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
        let dtype = datatype(c.take(padded(type_size))?)?;
        let shape = self.dataspace(c.take(padded(space_size))?)?.unwrap_or_default();
        let len = shape.iter().try_fold(dtype.size().unwrap_or(0) as u64, |n, &d| n.checked_mul(d)).unwrap_or(u64::MAX);
        let data = c.take(usize::try_from(len).unwrap_or(usize::MAX)).map(<[u8]>::to_vec).unwrap_or_default();
        Ok(Attribute { name, dtype, data })
    }

    /// Where the values of `dataset` are, found once (the chunk index of a chunked dataset,
    /// checked against its dimensions and the file), for [`Hdf5::read_box`] and
    /// [`Hdf5::copy_values`].
    pub(super) fn index(&mut self, dataset: &Dataset) -> Result<Index, String> {
        let size =
            dataset.dtype.size().ok_or_else(|| format!("values stored as {} are not supported", dataset.dtype))? as u64;
        let shape = dataset.shape.clone();
        let bytes = shape.iter().try_fold(size, |n, &d| n.checked_mul(d)).ok_or("dimensions too large")?;
        // A fill value of another size than the values' is not theirs: zeros then, as HDF5's default.
        let fill =
            dataset.fill.clone().filter(|fill| fill.len() as u64 == size).unwrap_or_else(|| vec![0; size as usize]);
        let index = |storage| Index {
            shape: shape.clone(),
            size,
            filters: dataset.filters.clone(),
            fill: fill.clone(),
            storage,
        };
        if bytes == 0 {
            return Ok(index(Storage::Memory(Vec::new())));
        }
        match &dataset.layout {
            Layout::Compact(data) if data.len() as u64 == bytes => Ok(index(Storage::Memory(data.clone()))),
            Layout::Compact(data) => Err(format!("compact data of {} bytes, the dimensions need {bytes}", data.len())),
            Layout::Contiguous { address, .. } if *address == UNDEFINED => {
                self.check_unwritten(bytes)?;
                Ok(index(Storage::Fill))
            }
            Layout::Contiguous { size: stored, .. } if *stored != bytes => {
                Err(format!("contiguous data of {stored} bytes, the dimensions need {bytes}"))
            }
            Layout::Contiguous { address, .. } => {
                let end = self.base.checked_add(*address).and_then(|at| at.checked_add(bytes));
                if end.is_none_or(|end| end > self.size) {
                    return Err(format!("{bytes} bytes at address {address} run past the end of the file"));
                }
                Ok(index(Storage::Contiguous { address: *address }))
            }
            Layout::Chunked { btree, chunk } => {
                if shape.is_empty() {
                    return Err("a chunked dataset without dimensions".into());
                }
                let chunks = self.chunk_index(*btree, &shape, chunk)?;
                let chunk_bytes = chunk.iter().try_fold(size, |n, &c| n.checked_mul(c)).ok_or("chunks too large")?;
                // Each chunk holds at most its stored size, or MAX_INFLATE_RATIO times that when
                // compressed: check that they can hold the values before allocating for them.
                let ratio = if dataset.filters.iter().any(|f| f.id == DEFLATE) { MAX_INFLATE_RATIO } else { 1 };
                let holdable = chunks.values().map(|c| c.size.saturating_mul(ratio)).fold(0u64, u64::saturating_add);
                if holdable < chunk_bytes.saturating_mul(chunks.len() as u64) {
                    let stored: u64 = chunks.values().map(|c| c.size).sum();
                    return Err(format!(
                        "{} chunks of {chunk_bytes} bytes cannot come out of the {stored} bytes stored",
                        chunks.len()
                    ));
                }
                let expected: u64 = shape.iter().zip(chunk).map(|(&d, &c)| d.div_ceil(c)).product();
                if (chunks.len() as u64) < expected {
                    self.check_unwritten(bytes)?;
                }
                Ok(index(Storage::Chunked { chunk: chunk.clone(), chunk_bytes, chunks }))
            }
        }
    }

    /// Values never written take no room in the file, so nothing bounds their number but the
    /// dimensions; a corrupt dimension could claim terabytes of them. Those of a dataset not
    /// wholly written may take at most [`MAX_INFLATE_RATIO`] times the file's size.
    fn check_unwritten(&self, bytes: u64) -> Result<(), String> {
        if bytes > self.size.saturating_mul(MAX_INFLATE_RATIO) {
            return Err(format!(
                "{bytes} bytes of values, mostly never written, in a file of {} bytes: corrupt dimensions?",
                self.size
            ));
        }
        Ok(())
    }

    /// The values inside `ranges` (one per dimension, within the dataset), in C order of that
    /// box: only the chunks that meet the box are read.
    pub(super) fn read_box(&mut self, index: &Index, ranges: &[Range<u64>]) -> Result<Vec<u8>, String> {
        let fits = ranges.len() == index.shape.len()
            && ranges.iter().zip(&index.shape).all(|(r, &d)| r.start <= r.end && r.end <= d);
        if !fits {
            return Err(format!("box {ranges:?} outside the dimensions {:?}", index.shape));
        }
        let size = index.size;
        let count: u64 = ranges.iter().map(|r| r.end - r.start).product();
        let bytes = usize::try_from(count * size).map_err(|_| "box too large")?;
        let mut out = Vec::new();
        out.try_reserve_exact(bytes).map_err(|_| format!("cannot hold the {bytes} bytes of {ranges:?} in memory"))?;
        // Values never written (a missing chunk, or a dataset never written) are the fill value.
        if index.fill.iter().all(|&b| b == 0) {
            out.resize(bytes, 0);
        } else {
            (0..count).for_each(|_| out.extend_from_slice(&index.fill));
        }
        if count == 0 {
            return Ok(out);
        }
        let rank = ranges.len();
        if rank == 0 {
            // A scalar (a rank-0 dataset, as h5py writes one): its one value.
            match &index.storage {
                Storage::Memory(data) => out.copy_from_slice(data),
                Storage::Contiguous { address } => out = self.bytes(*address, size)?,
                Storage::Fill | Storage::Chunked { .. } => {}
            }
            return Ok(out);
        }
        match &index.storage {
            Storage::Memory(data) => copy_box(data, &index.shape, &vec![0; rank], ranges, size, &mut out),
            Storage::Fill => {}
            Storage::Contiguous { address } => {
                // One read a run along the last dimension.
                let (first, last) = (
                    ranges[..rank - 1].iter().map(|r| r.start).collect::<Vec<_>>(),
                    ranges[..rank - 1].iter().map(|r| r.end).collect::<Vec<_>>(),
                );
                let strides = strides(&index.shape);
                let run = (ranges[rank - 1].end - ranges[rank - 1].start) * size;
                let mut at = 0;
                let mut error = None;
                for_each_index(&first, &last, |outer| {
                    let element: u64 =
                        outer.iter().zip(&strides).map(|(i, s)| i * s).sum::<u64>() + ranges[rank - 1].start;
                    match self.bytes(address + element * size, run) {
                        Ok(bytes) => out[at..at + run as usize].copy_from_slice(&bytes),
                        Err(e) => {
                            error.get_or_insert(e);
                        }
                    }
                    at += run as usize;
                });
                if let Some(e) = error {
                    return Err(e);
                }
            }
            Storage::Chunked { chunk, chunk_bytes, chunks } => {
                let first: Vec<u64> = ranges.iter().zip(chunk).map(|(r, c)| r.start / c).collect();
                let last: Vec<u64> = ranges.iter().zip(chunk).map(|(r, c)| (r.end - 1) / c + 1).collect();
                let mut grids = Vec::new();
                for_each_index(&first, &last, |grid| grids.push(grid.to_vec()));
                for grid in grids {
                    let Some(entry) = chunks.get(&grid) else { continue };
                    let data = self.chunk(entry, &index.filters, *chunk_bytes)?;
                    let origin: Vec<u64> = grid.iter().zip(chunk).map(|(g, c)| g * c).collect();
                    copy_box(&data, chunk, &origin, ranges, size, &mut out);
                }
            }
        }
        Ok(out)
    }

    /// Writes every value to `out`, in C order of the dimensions and the stored type, holding
    /// about `budget` bytes of them at a time (at least a row of chunks' worth of one index of
    /// the first dimension).
    pub(super) fn copy_values(&mut self, index: &Index, out: &mut dyn Write, budget: usize) -> Result<(), CopyError> {
        let shape = &index.shape;
        match &index.storage {
            Storage::Memory(data) => out.write_all(data).map_err(CopyError::Write),
            Storage::Contiguous { address } => {
                const BUFFER: u64 = 1 << 20;
                let bytes = shape.iter().product::<u64>() * index.size;
                let mut at = 0;
                while at < bytes {
                    let n = BUFFER.min(bytes - at);
                    out.write_all(&self.bytes(address + at, n).map_err(CopyError::Read)?).map_err(CopyError::Write)?;
                    at += n;
                }
                Ok(())
            }
            Storage::Fill | Storage::Chunked { .. } if shape.is_empty() => {
                out.write_all(&self.read_box(index, &[]).map_err(CopyError::Read)?).map_err(CopyError::Write)
            }
            Storage::Fill | Storage::Chunked { .. } => {
                // Slabs of the first dimension, each within a row of chunks so that a chunk
                // is read once when the budget holds a row.
                let plane: u64 = shape[1..].iter().product::<u64>() * index.size;
                let planes = (budget as u64 / plane).max(1);
                let rows = index.chunk().map_or(1, |chunk| chunk[0]);
                let mut slab: Vec<Range<u64>> = shape.iter().map(|&d| 0..d).collect();
                for row in (0..shape[0]).step_by(usize::try_from(rows).unwrap_or(usize::MAX)) {
                    let row_end = row.saturating_add(rows).min(shape[0]);
                    let mut first = row;
                    while first < row_end {
                        // A budget of usize::MAX over planes of one byte is more planes than
                        // a u64 can count past `first`.
                        slab[0] = first..first.saturating_add(planes).min(row_end);
                        out.write_all(&self.read_box(index, &slab).map_err(CopyError::Read)?)
                            .map_err(CopyError::Write)?;
                        first = slab[0].end;
                    }
                }
                Ok(())
            }
        }
    }

    /// The chunks of a dataset by their index in the grid of chunks, checked: each at a whole
    /// number of chunks in every dimension, inside the dataset, once.
    fn chunk_index(&mut self, btree: u64, shape: &[u64], chunk: &[u64]) -> Result<BTreeMap<Vec<u64>, Chunk>, String> {
        let key_size = 8 + 8 * (shape.len() + 1);
        let mut leaves = Vec::new();
        self.btree_leaves(btree, 1, key_size, None, &mut leaves)?;
        let mut chunks = BTreeMap::new();
        for (key, address) in leaves {
            let word = |i: usize| u64::from_le_bytes(key[8 + 8 * i..16 + 8 * i].try_into().unwrap_or_default());
            let stored = u64::from(u32::from_le_bytes([key[0], key[1], key[2], key[3]]));
            let skipped = u32::from_le_bytes([key[4], key[5], key[6], key[7]]);
            let offsets: Vec<u64> = (0..shape.len()).map(word).collect();
            let inside = offsets.iter().zip(chunk).zip(shape).all(|((&o, &c), &d)| o % c == 0 && o < d);
            if !inside || word(shape.len()) != 0 {
                return Err(format!("chunk at {offsets:?} is not on the grid of {chunk:?} inside {shape:?}"));
            }
            let grid = offsets.iter().zip(chunk).map(|(o, c)| o / c).collect();
            if chunks.insert(grid, Chunk { address, size: stored, skipped }).is_some() {
                return Err(format!("chunk at {offsets:?} is listed twice"));
            }
        }
        Ok(chunks)
    }

    /// The values of one chunk (`bytes` long), its filters undone.
    fn chunk(&mut self, chunk: &Chunk, filters: &[Filter], bytes: u64) -> Result<Vec<u8>, String> {
        let mut data = self.bytes(chunk.address, chunk.size)?;
        for (i, filter) in filters.iter().enumerate().rev() {
            if chunk.skipped & (1 << i.min(31)) != 0 {
                continue;
            }
            data = match filter.id {
                DEFLATE => {
                    let mut inflated = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
                    ZlibDecoder::new(data.as_slice())
                        .take(bytes + 1)
                        .read_to_end(&mut inflated)
                        .map_err(|e| format!("corrupt compressed chunk ({e})"))?;
                    inflated
                }
                SHUFFLE => {
                    let size = filter.values.first().map_or(1, |&s| s as usize).max(1);
                    unshuffle(&data, size)
                }
                FLETCHER32 => {
                    let split = data.len().checked_sub(4).ok_or("chunk too short for its Fletcher-32 checksum")?;
                    let stored = u32::from_le_bytes(data[split..].try_into().unwrap_or_default());
                    let sum = fletcher32(&data[..split]);
                    // HDF5 before 1.6.3 stored the bytes of each half swapped; HDF5 accepts both.
                    let swapped = ((sum & 0x00ff_00ff) << 8) | ((sum >> 8) & 0x00ff_00ff);
                    if stored != sum && stored != swapped {
                        return Err("chunk fails its Fletcher-32 checksum".into());
                    }
                    data.truncate(split);
                    data
                }
                id => return Err(format!("HDF5 filter {id} is not supported (only deflate, shuffle and Fletcher-32)")),
            };
        }
        if data.len() as u64 != bytes {
            return Err(format!("chunk holds {} bytes, expected {bytes}", data.len()));
        }
        Ok(data)
    }
}

/// Copies what lies inside the box `ranges` of `data` (values of dimensions `dims` whose first
/// value is at `origin` in the dataset: a chunk, or the whole dataset) into `out`, the box's
/// values in C order.
fn copy_box(data: &[u8], dims: &[u64], origin: &[u64], ranges: &[Range<u64>], size: u64, out: &mut [u8]) {
    let rank = dims.len();
    // What of `data` lies in the box, in dataset coordinates.
    let lo: Vec<u64> = (0..rank).map(|k| origin[k].max(ranges[k].start)).collect();
    let hi: Vec<u64> = (0..rank).map(|k| (origin[k] + dims[k]).min(ranges[k].end)).collect();
    if lo.iter().zip(&hi).any(|(l, h)| l >= h) {
        return;
    }
    let box_dims: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
    let (from, to) = (strides(dims), strides(&box_dims));
    let last = rank - 1;
    let run = ((hi[last] - lo[last]) * size) as usize;
    for_each_index(&lo[..last], &hi[..last], |outer| {
        let offset = |strides: &[u64], base: &dyn Fn(usize) -> u64| -> usize {
            let element: u64 =
                (0..last).map(|k| (outer[k] - base(k)) * strides[k]).sum::<u64>() + lo[last] - base(last);
            (element * size) as usize
        };
        let (source, target) = (offset(&from, &|k| origin[k]), offset(&to, &|k| ranges[k].start));
        out[target..target + run].copy_from_slice(&data[source..source + run]);
    });
}

/// Calls `f` with every index from `first` (inclusive) to `last` (exclusive), the last
/// dimension varying fastest; once with an empty index when there are no dimensions.
fn for_each_index(first: &[u64], last: &[u64], mut f: impl FnMut(&[u64])) {
    if first.iter().zip(last).any(|(a, b)| a >= b) {
        return;
    }
    let mut index = first.to_vec();
    loop {
        f(&index);
        let mut k = index.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            index[k] += 1;
            if index[k] < last[k] {
                break;
            }
            index[k] = first[k];
        }
    }
}

/// Elements from one index to the next along each dimension, in C order.
fn strides(dims: &[u64]) -> Vec<u64> {
    (0..dims.len()).map(|k| dims[k + 1..].iter().product()).collect()
}

/// Undoes HDF5's shuffle filter: the first bytes of every element, then the second bytes...
fn unshuffle(data: &[u8], size: usize) -> Vec<u8> {
    let count = data.len() / size;
    let mut out = data.to_vec();
    for (j, bytes) in data.chunks(count.max(1)).take(size).enumerate() {
        if bytes.len() < count {
            break;
        }
        for (i, &b) in bytes.iter().enumerate() {
            out[i * size + j] = b;
        }
    }
    out
}

/// HDF5's Fletcher-32 checksum (`H5_checksum_fletcher32`): sums of big-endian 16-bit words,
/// folded every 360 words, an odd last byte as the high byte of a last word.
fn fletcher32(data: &[u8]) -> u32 {
    let fold = |sum: u32| (sum & 0xffff) + (sum >> 16);
    let (mut sum1, mut sum2) = (0u32, 0u32);
    let words = data.chunks_exact(2);
    let odd = words.remainder().first().copied();
    let words: Vec<u16> = words.map(|w| u16::from_be_bytes([w[0], w[1]])).collect();
    for block in words.chunks(360) {
        for &word in block {
            sum1 = sum1.wrapping_add(u32::from(word));
            sum2 = sum2.wrapping_add(sum1);
        }
        (sum1, sum2) = (fold(sum1), fold(sum2));
    }
    if let Some(byte) = odd {
        sum1 += u32::from(byte) << 8;
        sum2 += sum1;
        (sum1, sum2) = (fold(sum1), fold(sum2));
    }
    (sum1, sum2) = (fold(sum1), fold(sum2));
    (sum2 << 16) | sum1
}

struct Message {
    kind: u16,
    data: Vec<u8>,
}

/// The symbol table message of an object: its B-tree and local heap addresses.
fn symbol_table<R>(messages: &[Message], hdf5: &Hdf5<R>) -> Result<Option<(u64, u64)>, String> {
    let Some(message) = messages.iter().find(|m| m.kind == SYMBOL_TABLE) else { return Ok(None) };
    let mut c = Cursor::new(&message.data, hdf5.offset_size, hdf5.length_size);
    Ok(Some((c.offset()?, c.offset()?)))
}

fn datatype(data: &[u8]) -> Result<Dtype, String> {
    let mut c = Cursor::new(data, 8, 8);
    let class_version = c.u8()?;
    let bits = c.take(3)?.to_vec();
    let size = c.u32()? as usize;
    let little = bits[0] & 0x01 == 0;
    Ok(match class_version & 0x0f {
        0 if little && [1, 2, 4, 8].contains(&size) => Dtype::Int { size, signed: bits[0] & 0x08 != 0 },
        1 if little && bits[0] & 0x40 == 0 && [4, 8].contains(&size) => Dtype::Float { size },
        3 => Dtype::Text { size },
        0 | 1 if !little => Dtype::Other(format!("big-endian {size}-byte numbers")),
        0 => Dtype::Other(format!("{size}-byte integers")),
        1 => Dtype::Other(format!("{size}-byte floats")),
        6 => Dtype::Compound,
        7 => Dtype::Other("object references".into()),
        class => Dtype::Other(format!("HDF5 type class {class}")),
    })
}

/// The fill value a fill value message defines, if it defines one.
fn fill_value(data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut c = Cursor::new(data, 8, 8);
    let defined = match c.u8()? {
        // Space allocation time, fill value write time, whether a fill value is defined; then
        // its size and value (always in version 1, only when defined in version 2).
        version @ (1 | 2) => {
            c.skip(2)?;
            let defined = c.u8()? != 0;
            if version == 1 && !defined {
                return Ok(None);
            }
            defined
        }
        // Flags: bit 5, a fill value is defined (its size and value follow).
        3 => c.u8()? & 0x20 != 0,
        v => return Err(format!("fill value message version {v} is not supported")),
    };
    if !defined {
        return Ok(None);
    }
    let size = c.u32()? as usize;
    Ok(Some(c.take(size)?.to_vec()).filter(|value| !value.is_empty()))
}

/// The fill value of an old fill value message: its size, then its value.
fn old_fill_value(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut c = Cursor::new(data, 8, 8);
    let size = c.u32()? as usize;
    Ok(c.take(size)?.to_vec())
}

fn filters(data: &[u8]) -> Result<Vec<Filter>, String> {
    let mut c = Cursor::new(data, 8, 8);
    let version = c.u8()?;
    let count = c.u8()?;
    match version {
        1 => c.skip(6)?,
        2 => {}
        v => return Err(format!("filter pipeline message version {v} is not supported")),
    }
    (0..count)
        .map(|_| {
            let id = c.u16()?;
            let name_size = if version == 1 || id >= 256 { usize::from(c.u16()?) } else { 0 };
            c.u16()?; // flags
            let values = usize::from(c.u16()?);
            c.skip(if version == 1 { name_size.next_multiple_of(8) } else { name_size })?;
            let values = (0..values).map(|_| c.u32()).collect::<Result<Vec<_>, _>>()?;
            if version == 1 && values.len() % 2 == 1 {
                c.skip(4)?;
            }
            Ok(Filter { id, values })
        })
        .collect()
}

/// Reads little-endian fields one after the other.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    offset_size: usize,
    length_size: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], offset_size: usize, length_size: usize) -> Self {
        Cursor { buf, pos: 0, offset_size, length_size }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let bytes = self.buf.get(self.pos..).and_then(|rest| rest.get(..n)).ok_or("truncated HDF5 structure")?;
        self.pos += n;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        self.uint(2).map(|v| v as u16)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.uint(4).map(|v| v as u32)
    }

    /// An address; all ones (undefined) whatever its width reads as [`UNDEFINED`].
    fn offset(&mut self) -> Result<u64, String> {
        let n = self.offset_size;
        let v = self.uint(n)?;
        Ok(if n < 8 && v == (1 << (8 * n)) - 1 { UNDEFINED } else { v })
    }

    fn length(&mut self) -> Result<u64, String> {
        self.uint(self.length_size)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn datatypes_are_read_and_named() {
        // Datatype messages as the HDF5 format specification lays them out: class and version,
        // three bytes of class bits (bit 0: big-endian; bit 3 of an integer: signed), size.
        let message = |class_version: u8, bits: u8, size: u32| {
            let mut m = vec![class_version, bits, 0, 0];
            m.extend(size.to_le_bytes());
            m.extend([0; 12]);
            m
        };
        let read = |m: Vec<u8>| datatype(&m).unwrap();
        assert_eq!(read(message(0x10, 0x08, 2)), Dtype::Int { size: 2, signed: true });
        assert_eq!(read(message(0x10, 0x00, 8)), Dtype::Int { size: 8, signed: false });
        assert_eq!(read(message(0x11, 0x20, 4)), Dtype::Float { size: 4 });
        assert_eq!(read(message(0x13, 0x00, 6)), Dtype::Text { size: 6 });
        assert_eq!(read(message(0x16, 0x00, 16)), Dtype::Compound);
        let named = |m: Vec<u8>| read(m).to_string();
        assert_eq!(named(message(0x11, 0x21, 8)), "big-endian 8-byte numbers");
        assert_eq!(named(message(0x10, 0x09, 4)), "big-endian 4-byte numbers");
        assert_eq!(named(message(0x11, 0x20, 2)), "2-byte floats");
        assert_eq!(named(message(0x10, 0x00, 16)), "16-byte integers");
        assert_eq!(named(message(0x17, 0x00, 8)), "object references");
        assert_eq!(named(message(0x19, 0x00, 16)), "HDF5 type class 9");
        assert_eq!(named(message(0x10, 0x08, 2)), "2-byte signed integers");
        assert!(datatype(&[0x10, 0x08]).is_err(), "a cut message");
    }

    #[test]
    fn object_header_continuations_in_a_loop_are_refused() {
        // A version 1 object header at address 0 whose only block holds a continuation back to
        // itself. Before the blocks' total length was bounded by the file's size, the reader
        // went round 1024 times, copying the block's messages each time: 1024 times a file's
        // worth of memory and time for one object.
        let mut file = vec![1, 0, 1, 0, 1, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0];
        file.extend_from_slice(&[0x10, 0, 16, 0, 0, 0, 0, 0]);
        file.extend_from_slice(&16u64.to_le_bytes());
        file.extend_from_slice(&24u64.to_le_bytes());
        let size = file.len() as u64;
        let mut hdf5 = Hdf5 {
            file: std::io::Cursor::new(file),
            size,
            base: 0,
            offset_size: 8,
            length_size: 8,
            root: 0,
            nodes_read: 0,
        };
        let Err(e) = hdf5.messages(0) else { panic!("a header that continues into itself was read") };
        assert!(e.contains("continuations in a loop"), "{e}");
    }
}
