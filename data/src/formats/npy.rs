//! NumPy `.npy` files: reading format versions 1.0, 2.0 and 3.0, writing version 1.0.
//!
//! A `.npy` file is the magic `\x93NUMPY`, a two-byte version, the length of the header
//! (2 bytes little-endian in version 1, 4 bytes in versions 2 and 3), the header (a Python
//! dict literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, padded
//! with spaces and ended by a newline) and then the raw values.
//!
//! Written here rather than taken from a crate. On 2026-12-07 this module was ported to npyz 0.9.1
//! and measured against this code, then set aside:
//! - `npyz` parses headers and decodes values of a dtype known at run time, and can seek to a
//!   value. But it writes shapes as `(3, 4, )` where `np.save` writes `(3, 4)` (files would no
//!   longer match NumPy's byte for byte), reads lazily (a short file fails halfway, extra bytes go
//!   unnoticed), multiplies the shape without an overflow check (a panic in debug builds on a
//!   crafted header), decodes one value at a time (reading a tile row by row of a 52 MB float32
//!   cube took 31.2 against 27.2 ms here, `cargo run --release -p prism-data --example
//!   npy_timing`; whole-file reads 77.1 against 74.2 ms), and brings py_literal, pest and psm (C
//!   code) with it. The port kept the header checks and the dtype dispatch by hand and saved no
//!   lines (914 before, 920 after).
//! - `ndarray-npy` needs the element type at compile time and reads whole arrays (its memory map
//!   needs `unsafe` and the native byte order), so it cannot read a tile of a scene of any dtype.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::Source;
use crate::array::{NumArray, NumData, decode, element_count};
use crate::atomic::write_atomic;
use crate::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// NumPy aligns the start of the data to this many bytes.
const ALIGN: usize = 64;

/// Reads a `.npy` file.
///
/// Supported: format versions 1.0, 2.0 and 3.0; the dtypes `u1 i1 u2 i2 u4 i4 u8 i8 f4 f8`
/// little- or big-endian (big-endian values are converted), and `|b1` (booleans, read as
/// `uint8` 0/1); C and Fortran order (Fortran order is converted to row-major, same shape).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is not a `.npy` file,
/// is truncated, or holds a dtype outside the list above (complex, structured, object...).
pub fn read_npy(path: &Path) -> Result<NumArray> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    read_npy_bytes(path, &bytes)
}

/// Reads the content of a `.npy` file already in memory, as [`read_npy`] reads a file; `name`
/// names it in errors.
///
/// # Errors
/// As [`read_npy`], without I/O errors.
pub fn read_npy_bytes(name: &Path, bytes: &[u8]) -> Result<NumArray> {
    parse_npy(bytes).map_err(|reason| Error::format(name, reason))
}

/// Writes `array` as a `.npy` file, format version 1.0, C order, little-endian, atomically
/// (see [`write_atomic`]).
///
/// # Errors
/// [`Error::Shape`] when the shape does not hold the number of values; [`Error::Io`] when the
/// file cannot be written.
pub fn write_npy(path: &Path, array: &NumArray) -> Result<()> {
    write_npy_in_pieces(path, &array.shape, array.data.dtype(), |put| put(&array.data))
}

/// Writes a `.npy` file (as [`write_npy`]) whose values arrive in pieces, so that the array
/// need never be whole in memory: `fill` is handed `put`, which appends a piece of values of
/// NumPy type `dtype` (`"int64"`, `"float32"`...: [`NumData::dtype`]) in C order. The file
/// appears, atomically, only once `fill` has returned and the pieces held exactly the values
/// of `shape`.
///
/// ```no_run
/// use prism_data::NumData;
/// use prism_data::formats::write_npy_in_pieces;
///
/// write_npy_in_pieces("rows.npy".as_ref(), &[2, 3], "int64", |put| {
///     put(&NumData::I64(vec![1, 2, 3]))?;
///     put(&NumData::I64(vec![4, 5, 6]))
/// })?;
/// # Ok::<(), prism_data::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] when the pieces hold more or fewer values than the shape, or a piece is of
/// another type; [`Error::Invalid`] for an unknown `dtype`; [`Error::Io`] when the file cannot
/// be written; the first error `fill` returns (of the caller's type `E`, unchanged). In every
/// case no file is left behind.
pub fn write_npy_in_pieces<F, E>(path: &Path, shape: &[usize], dtype: &str, fill: F) -> Result<(), E>
where
    F: FnOnce(&mut dyn FnMut(&NumData) -> Result<()>) -> Result<(), E>,
    E: From<Error>,
{
    let descr =
        descr(dtype).ok_or_else(|| Error::Invalid(format!("{}: cannot write dtype '{dtype}'", path.display())))?;
    let header = header_bytes(descr, shape, false)
        .ok_or_else(|| Error::Shape(format!("{}: shape {shape:?} too long for a .npy header", path.display())))?;
    let total =
        element_count(shape).ok_or_else(|| Error::Shape(format!("{}: shape {shape:?} overflows", path.display())))?;
    let too_many = |written: usize| {
        Error::Shape(format!("{}: shape {shape:?} holds {total} values, given {written}", path.display()))
    };
    write_atomic(path, |out| {
        out.write_all(&header).map_err(|e| Error::io(path, e))?;
        let mut written = 0usize;
        fill(&mut |piece: &NumData| {
            if piece.dtype() != dtype {
                return Err(Error::Shape(format!(
                    "{}: a piece of {} values in an array of {dtype}",
                    path.display(),
                    piece.dtype()
                )));
            }
            written = written.saturating_add(piece.len());
            if written > total {
                return Err(too_many(written));
            }
            write_values(out, piece).map_err(|e| Error::io(path, e))
        })?;
        if written != total {
            return Err(too_many(written).into());
        }
        Ok(())
    })
}

/// The `.npy` type string of NumPy's type name (as [`NumData::dtype`] names it).
fn descr(dtype: &str) -> Option<&'static str> {
    Some(match dtype {
        "uint8" => "|u1",
        "int8" => "|i1",
        "uint16" => "<u2",
        "int16" => "<i2",
        "uint32" => "<u4",
        "int32" => "<i4",
        "uint64" => "<u8",
        "int64" => "<i8",
        "float32" => "<f4",
        "float64" => "<f8",
        _ => return None,
    })
}

/// The magic, version, header length and header of a version 1.0 file holding an array of
/// `shape` and type `descr`, in C or Fortran order, or `None` if the header does not fit in
/// version 1.0's 65535 bytes.
pub(super) fn header_bytes(descr: &str, shape: &[usize], fortran: bool) -> Option<Vec<u8>> {
    // Python's tuple syntax, as NumPy writes it: `()`, `(3,)`, `(3, 4)`.
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    // Pad with spaces so that the data starts on an ALIGN boundary; the newline ends it.
    let prefix = MAGIC.len() + 2 + 2;
    let unpadded = prefix + dict.len() + 1;
    dict.extend(std::iter::repeat_n(' ', (ALIGN - unpadded % ALIGN) % ALIGN));
    dict.push('\n');
    let len = u16::try_from(dict.len()).ok()?;

    let mut header = Vec::with_capacity(prefix + dict.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&[1, 0]);
    header.extend_from_slice(&len.to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    Some(header)
}

/// Writes the values little-endian, a block at a time.
fn write_values(out: &mut dyn Write, data: &NumData) -> std::io::Result<()> {
    const BLOCK: usize = 8192;
    macro_rules! write_le {
        ($values:expr) => {{
            let mut buf = Vec::with_capacity(BLOCK * data.item_size());
            for block in $values.chunks(BLOCK) {
                buf.clear();
                for v in block {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                out.write_all(&buf)?;
            }
            Ok(())
        }};
    }
    match data {
        NumData::U8(v) => out.write_all(v),
        NumData::I8(v) => write_le!(v),
        NumData::U16(v) => write_le!(v),
        NumData::I16(v) => write_le!(v),
        NumData::U32(v) => write_le!(v),
        NumData::I32(v) => write_le!(v),
        NumData::U64(v) => write_le!(v),
        NumData::I64(v) => write_le!(v),
        NumData::F32(v) => write_le!(v),
        NumData::F64(v) => write_le!(v),
    }
}

/// Parses the content of a `.npy` file; the error is the reason, without the path.
fn parse_npy(bytes: &[u8]) -> Result<NumArray, String> {
    let (header, data_start) = parse_header(bytes)?;
    let data = &bytes[data_start..];
    header.check_data_len(data.len() as u64)?;
    let values = header.dtype.decode(data);
    let values = if header.fortran_order { values.fortran_to_c(&header.shape) } else { values };
    Ok(NumArray { shape: header.shape, data: values })
}

/// The magic, the version and the header at the start of `bytes` (the whole file, or as much of
/// its start as holds the header); returns the header and where the data starts.
fn parse_header(bytes: &[u8]) -> Result<(Header, usize), String> {
    if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err("not a .npy file (no \\x93NUMPY magic at the start)".into());
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => return Err("truncated .npy header (no format version)".into()),
    };
    let len_size = length_field_size(major)
        .ok_or_else(|| format!("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"))?;
    let utf8 = major == 3;
    let header_len = header_length(bytes, len_size).ok_or("truncated .npy header (no header length)")?;
    let header_start = 8 + len_size;
    let data_start = header_start.checked_add(header_len).filter(|&end| end <= bytes.len()).ok_or_else(|| {
        format!(
            "truncated .npy header (declares {header_len} bytes, {} remain)",
            bytes.len().saturating_sub(header_start)
        )
    })?;
    let raw_header = bytes.get(header_start..data_start).unwrap_or_default();
    let header = std::str::from_utf8(raw_header)
        .ok()
        .filter(|text| utf8 || text.is_ascii())
        .ok_or("the .npy header is not text")?;
    Ok((Header::parse(header)?, data_start))
}

/// The size of the header-length field in format version `major` (1.0: 2 bytes; 2.0 and 3.0: 4).
fn length_field_size(major: u8) -> Option<usize> {
    match major {
        1 => Some(2),
        2 | 3 => Some(4),
        _ => None,
    }
}

/// The header length, a little-endian field of `len_size` bytes after the magic and version.
fn header_length(bytes: &[u8], len_size: usize) -> Option<usize> {
    let field = bytes.get(8..8 + len_size)?;
    Some(field.iter().rev().fold(0usize, |n, &b| (n << 8) | usize::from(b)))
}

/// A `.npy` file opened for reading parts of its values: the header is parsed, the values stay
/// on disk until asked for. This is how large scenes are classified a tile at a time.
pub struct NpyFile {
    path: PathBuf,
    file: Mutex<Box<dyn Source>>,
    header: Header,
    data_start: u64,
}

impl std::fmt::Debug for NpyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpyFile")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("data_start", &self.data_start)
            .finish_non_exhaustive()
    }
}

impl NpyFile {
    /// Opens `path` and checks its header and its length (a truncated file is refused here,
    /// not halfway through reading it).
    ///
    /// # Errors
    /// As [`read_npy`].
    pub fn open(path: &Path) -> Result<NpyFile> {
        let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
        NpyFile::from_reader(path, file)
    }

    /// As [`NpyFile::open`], from any reader that can seek (a `std::io::Cursor` over bytes in
    /// memory, say); `path` names it in errors.
    ///
    /// # Errors
    /// As [`read_npy`].
    pub fn from_reader<R: Source + 'static>(path: &Path, mut file: R) -> Result<NpyFile> {
        let size = file.seek(SeekFrom::End(0)).map_err(|e| Error::io(path, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
        // The header's length is in its first 12 bytes; then read exactly the header (of a
        // file that says it is a .npy: parse_header names what is wrong with any other).
        let mut start = Vec::new();
        (&mut file).take(12).read_to_end(&mut start).map_err(|e| Error::io(path, e))?;
        let len_size = start.get(6).filter(|_| start.starts_with(MAGIC)).and_then(|&major| length_field_size(major));
        let declared = len_size.and_then(|n| Some(8 + n + header_length(&start, n)?));
        if let Some(end) = declared.filter(|&end| end > start.len()) {
            let rest = (end - start.len()) as u64;
            (&mut file).take(rest).read_to_end(&mut start).map_err(|e| Error::io(path, e))?;
        }
        let (header, data_start) = parse_header(&start).map_err(|reason| Error::format(path, reason))?;
        let data_start = data_start as u64;
        header.check_data_len(size.saturating_sub(data_start)).map_err(|reason| Error::format(path, reason))?;
        Ok(NpyFile { path: path.to_path_buf(), file: Mutex::new(Box::new(file)), header, data_start })
    }

    /// Values of type `descr` and dimensions `shape` (in Fortran order when `fortran`) stored
    /// as in a `.npy` file, from byte `data_start` of `file` (the file `path`), without a
    /// header: the values of an uncompressed MATLAB 5 variable, read in place.
    ///
    /// # Errors
    /// An unknown type, or a file too short for the values.
    pub(super) fn raw<R: Source + 'static>(
        path: &Path,
        mut file: R,
        descr: &str,
        shape: &[usize],
        fortran: bool,
        data_start: u64,
    ) -> Result<NpyFile> {
        let dtype = Dtype::parse(descr).map_err(|reason| Error::format(path, reason))?;
        let header = Header { descr: descr.to_string(), dtype, fortran_order: fortran, shape: shape.to_vec() };
        let size = file.seek(SeekFrom::End(0)).map_err(|e| Error::io(path, e))?;
        let needed = element_count(shape).and_then(|n| n.checked_mul(dtype.size())).unwrap_or(usize::MAX) as u64;
        if size.checked_sub(data_start).is_none_or(|len| len < needed) {
            return Err(Error::format(
                path,
                format!("truncated: {needed} bytes of values at byte {data_start}, the file has {size}"),
            ));
        }
        Ok(NpyFile { path: path.to_path_buf(), file: Mutex::new(Box::new(file)), header, data_start })
    }

    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// Whether the values are floating-point (and so may be NaN or infinite).
    pub fn is_float(&self) -> bool {
        matches!(self.header.dtype, Dtype::F32 { .. } | Dtype::F64 { .. })
    }

    /// Whether the values are stored in Fortran order (the first index varying fastest).
    pub fn fortran_order(&self) -> bool {
        self.header.fortran_order
    }

    /// `count` values from the `start`-th in storage order (C or Fortran, as the file says).
    ///
    /// # Errors
    /// A range beyond the values, or an I/O error.
    pub fn read_values(&self, start: usize, count: usize) -> Result<NumData> {
        let size = self.header.dtype.size();
        let total = element_count(&self.header.shape).unwrap_or(0);
        if start.checked_add(count).is_none_or(|end| end > total) {
            return Err(Error::format(
                &self.path,
                format!("values {start}..{} asked of {total}", start.saturating_add(count)),
            ));
        }
        let mut bytes = vec![0u8; count * size];
        // A poisoned lock only means another reader panicked; the file itself is still fine.
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.seek(SeekFrom::Start(self.data_start + (start * size) as u64)).map_err(|e| Error::io(&self.path, e))?;
        file.read_exact(&mut bytes).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.header.dtype.decode(&bytes))
    }
}

/// The element types a `.npy` file may hold here.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dtype {
    Bool,
    U8,
    I8,
    U16 { big: bool },
    I16 { big: bool },
    U32 { big: bool },
    I32 { big: bool },
    U64 { big: bool },
    I64 { big: bool },
    F32 { big: bool },
    F64 { big: bool },
}

impl Dtype {
    /// Parses a NumPy type string such as `<f4` or `|u1`.
    fn parse(descr: &str) -> Result<Dtype, String> {
        let unsupported = || {
            format!(
                "unsupported dtype '{descr}' (supported: |b1 |u1 |i1 and <u2 <i2 <u4 <i4 <u8 <i8 <f4 <f8, or big-endian '>')"
            )
        };
        let (big, code) = match descr.as_bytes().first() {
            Some(b'>') => (true, &descr[1..]),
            Some(b'<' | b'|' | b'=') => (false, &descr[1..]),
            _ => (false, descr),
        };
        Ok(match code {
            "b1" => Dtype::Bool,
            "u1" => Dtype::U8,
            "i1" => Dtype::I8,
            "u2" => Dtype::U16 { big },
            "i2" => Dtype::I16 { big },
            "u4" => Dtype::U32 { big },
            "i4" => Dtype::I32 { big },
            "u8" => Dtype::U64 { big },
            "i8" => Dtype::I64 { big },
            "f4" => Dtype::F32 { big },
            "f8" => Dtype::F64 { big },
            _ => return Err(unsupported()),
        })
    }

    fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 { .. } | Dtype::I16 { .. } => 2,
            Dtype::U32 { .. } | Dtype::I32 { .. } | Dtype::F32 { .. } => 4,
            Dtype::U64 { .. } | Dtype::I64 { .. } | Dtype::F64 { .. } => 8,
        }
    }

    /// Decodes `bytes` (a whole number of values) in this type.
    fn decode(self, bytes: &[u8]) -> NumData {
        macro_rules! either {
            ($big:expr, $t:ty) => {
                if $big { decode(bytes, <$t>::from_be_bytes) } else { decode(bytes, <$t>::from_le_bytes) }
            };
        }
        match self {
            Dtype::Bool => NumData::U8(bytes.iter().map(|&b| u8::from(b != 0)).collect()),
            Dtype::U8 => NumData::U8(bytes.to_vec()),
            Dtype::I8 => NumData::I8(decode(bytes, i8::from_le_bytes)),
            Dtype::U16 { big } => NumData::U16(either!(big, u16)),
            Dtype::I16 { big } => NumData::I16(either!(big, i16)),
            Dtype::U32 { big } => NumData::U32(either!(big, u32)),
            Dtype::I32 { big } => NumData::I32(either!(big, i32)),
            Dtype::U64 { big } => NumData::U64(either!(big, u64)),
            Dtype::I64 { big } => NumData::I64(either!(big, i64)),
            Dtype::F32 { big } => NumData::F32(either!(big, f32)),
            Dtype::F64 { big } => NumData::F64(either!(big, f64)),
        }
    }
}

/// The three entries of a `.npy` header.
#[derive(Debug)]
struct Header {
    descr: String,
    dtype: Dtype,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    /// Checks that `len` bytes of data hold exactly the values the header declares.
    fn check_data_len(&self, len: u64) -> Result<(), String> {
        let count = element_count(&self.shape).ok_or_else(|| format!("shape {:?} is too large", self.shape))?;
        let needed =
            count.checked_mul(self.dtype.size()).ok_or_else(|| format!("shape {:?} is too large", self.shape))? as u64;
        if len < needed {
            return Err(format!(
                "truncated .npy data: shape {:?} of {} needs {needed} bytes, {len} present",
                self.shape, self.descr
            ));
        }
        if len > needed {
            return Err(format!(
                "{} unexpected bytes after the data (shape {:?} of {} needs {needed})",
                len - needed,
                self.shape,
                self.descr
            ));
        }
        Ok(())
    }

    fn parse(text: &str) -> Result<Header, String> {
        let bad = |what: &str| format!("bad .npy header ({what}): {}", text.trim_end());
        let mut parser = Literal::parser(text);
        let dict = match parser.value().map_err(|e| bad(&e))? {
            Literal::Dict(entries) => entries,
            _ => return Err(bad("not a dict")),
        };
        if !parser.rest().trim().is_empty() {
            return Err(bad("text after the dict"));
        }
        let entry = |key: &str| {
            dict.iter()
                .find(|(k, _)| matches!(k, Literal::Str(s) if s == key))
                .map(|(_, v)| v)
                .ok_or_else(|| bad(&format!("no '{key}'")))
        };
        let descr = match entry("descr")? {
            Literal::Str(s) => s.clone(),
            _ => return Err("structured dtypes are not supported".into()),
        };
        let fortran_order = match entry("fortran_order")? {
            Literal::Bool(b) => *b,
            _ => return Err(bad("'fortran_order' is not True or False")),
        };
        let shape = match entry("shape")? {
            Literal::Tuple(items) => items
                .iter()
                .map(|item| match item {
                    Literal::Int(n) => usize::try_from(*n).ok(),
                    _ => None,
                })
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| bad("'shape' is not a tuple of sizes"))?,
            _ => return Err(bad("'shape' is not a tuple")),
        };
        let dtype = Dtype::parse(&descr)?;
        Ok(Header { descr, dtype, fortran_order, shape })
    }
}

/// The subset of Python literals that `.npy` headers use.
#[derive(Debug, PartialEq)]
enum Literal {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

/// A recursive-descent parser over the header text.
struct LiteralParser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Literal {
    fn parser(text: &str) -> LiteralParser<'_> {
        LiteralParser { text, pos: 0, depth: 0 }
    }
}

impl<'a> LiteralParser<'a> {
    /// Nesting beyond this is not a NumPy header; the limit keeps recursion bounded.
    const MAX_DEPTH: usize = 32;

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&mut self) -> Option<char> {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        trimmed.chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Literal, String> {
        self.depth += 1;
        if self.depth > Self::MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        let value = match self.peek() {
            Some('{') => self.dict(),
            Some('(') => self.sequence('(', ')').map(Literal::Tuple),
            Some('[') => self.sequence('[', ']').map(Literal::List),
            Some(quote @ ('\'' | '"')) => self.string(quote),
            Some(c) if c == '-' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => self.word(),
            Some(c) => Err(format!("unexpected '{c}'")),
            None => Err("unexpected end".into()),
        };
        self.depth -= 1;
        value
    }

    fn dict(&mut self) -> Result<Literal, String> {
        self.eat('{');
        let mut entries = Vec::new();
        while !self.eat('}') {
            let key = self.value()?;
            if !self.eat(':') {
                return Err("expected ':'".into());
            }
            let value = self.value()?;
            entries.push((key, value));
            if !self.eat(',') && self.peek() != Some('}') {
                return Err("expected ',' or '}'".into());
            }
        }
        Ok(Literal::Dict(entries))
    }

    fn sequence(&mut self, open: char, close: char) -> Result<Vec<Literal>, String> {
        self.eat(open);
        let mut items = Vec::new();
        while !self.eat(close) {
            items.push(self.value()?);
            if !self.eat(',') && self.peek() != Some(close) {
                return Err(format!("expected ',' or '{close}'"));
            }
        }
        Ok(items)
    }

    fn string(&mut self, quote: char) -> Result<Literal, String> {
        self.eat(quote);
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c if c == quote => {
                    self.pos += i + c.len_utf8();
                    return Ok(Literal::Str(out));
                }
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    fn int(&mut self) -> Result<Literal, String> {
        let rest = self.rest();
        let sign = usize::from(rest.starts_with('-'));
        let digits = rest[sign..].bytes().take_while(u8::is_ascii_digit).count();
        let literal = &rest[..sign + digits];
        let n = literal.parse().map_err(|_| format!("bad integer '{literal}'"))?;
        self.pos += literal.len();
        // Python 2 wrote long integers with an `L` suffix.
        if self.rest().starts_with('L') {
            self.pos += 1;
        }
        Ok(Literal::Int(n))
    }

    fn word(&mut self) -> Result<Literal, String> {
        let rest = self.rest();
        let word = &rest[..rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count()];
        let value = match word {
            "True" => Literal::Bool(true),
            "False" => Literal::Bool(false),
            "None" => Literal::None,
            _ => return Err(format!("unexpected '{word}'")),
        };
        self.pos += word.len();
        Ok(value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::PathBuf;

    pub(crate) fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/arrays")
    }

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("prism-arrays-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Checks `array` against a fixture entry of expected.json: dtype, shape, every value.
    pub(crate) fn assert_matches(array: &NumArray, expected: &Value, what: &str) {
        let dtype = expected["dtype"].as_str().unwrap();
        let dtype = if dtype == "bool" { "uint8" } else { dtype };
        assert_eq!(array.dtype(), dtype, "{what}: dtype");
        let shape: Vec<usize> =
            expected["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(array.shape, shape, "{what}: shape");
        let values = expected["values"].as_array().unwrap();
        assert_eq!(array.len(), values.len(), "{what}: number of values");
        // Integers are JSON numbers; floats are Python reprs in strings, so they parse exactly.
        let int = |i: usize| values[i].as_i64();
        let float = |i: usize| values[i].as_str().unwrap().parse::<f64>().unwrap();
        for i in 0..values.len() {
            let ok = match &array.data {
                NumData::U8(v) => int(i) == Some(i64::from(v[i])),
                NumData::I8(v) => int(i) == Some(i64::from(v[i])),
                NumData::U16(v) => int(i) == Some(i64::from(v[i])),
                NumData::I16(v) => int(i) == Some(i64::from(v[i])),
                NumData::U32(v) => int(i) == Some(i64::from(v[i])),
                NumData::I32(v) => int(i) == Some(i64::from(v[i])),
                NumData::I64(v) => int(i) == Some(v[i]),
                NumData::U64(v) => values[i].as_u64() == Some(v[i]),
                NumData::F32(v) => f64::from(v[i]).to_bits() == float(i).to_bits(),
                NumData::F64(v) => v[i].to_bits() == float(i).to_bits(),
            };
            assert!(ok, "{what}: value {i} differs: expected {}, got {:?}", values[i], array.data);
        }
    }

    /// expected.json, written by tests/fixtures/make_arrays.py.
    pub(crate) fn expected_json() -> Value {
        let path = fixtures().join("expected.json");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// The "arrays" entries of expected.json.
    pub(crate) fn expected_fixtures() -> Vec<Value> {
        expected_json()["arrays"].as_array().unwrap().clone()
    }

    #[test]
    fn npy_fixtures_match_numpy() {
        let entries: Vec<Value> =
            expected_fixtures().into_iter().filter(|e| e["file"].as_str().unwrap().ends_with(".npy")).collect();
        assert!(entries.len() >= 20, "expected.json lists only {} .npy fixtures", entries.len());
        let mut fortran = 0;
        for entry in &entries {
            let file = entry["file"].as_str().unwrap();
            fortran += usize::from(file.contains("_f."));
            let array = read_npy(&fixtures().join(file)).unwrap_or_else(|e| panic!("{e}"));
            assert_matches(&array, entry, file);
        }
        assert!(fortran >= 5, "only {fortran} Fortran-order fixtures");
    }

    #[test]
    fn written_headers_match_numpy() {
        // np.save writes version 1.0 with the same header text and padding as write_npy.
        let dir = temp_dir("same");
        for entry in expected_fixtures() {
            let file = entry["file"].as_str().unwrap();
            if !entry["numpy_v1_c_little"].as_bool().unwrap_or(false) {
                continue;
            }
            let original = fs::read(fixtures().join(file)).unwrap();
            let array = parse_npy(&original).unwrap();
            let copy = dir.join("copy.npy");
            write_npy(&copy, &array).unwrap();
            assert_eq!(fs::read(&copy).unwrap(), original, "{file}: write_npy differs from np.save");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_then_read_round_trip() {
        let dir = temp_dir("round-trip");
        let arrays = [
            NumArray::new(vec![2, 3], NumData::U8(vec![0, 1, 2, 253, 254, 255])).unwrap(),
            NumArray::new(vec![3], NumData::I8(vec![-128, 0, 127])).unwrap(),
            NumArray::new(vec![2, 1, 2], NumData::U16(vec![0, 1, 65534, 65535])).unwrap(),
            NumArray::new(vec![2], NumData::I16(vec![-32768, 32767])).unwrap(),
            NumArray::new(vec![1, 2], NumData::U32(vec![u32::MAX, 7])).unwrap(),
            NumArray::new(vec![2], NumData::I32(vec![i32::MIN, i32::MAX])).unwrap(),
            NumArray::new(vec![2], NumData::U64(vec![u64::MAX, 1 << 60])).unwrap(),
            NumArray::new(vec![2], NumData::I64(vec![i64::MIN, -1])).unwrap(),
            NumArray::new(vec![], NumData::F32(vec![-1.25])).unwrap(),
            NumArray::new(vec![0, 4], NumData::F32(vec![])).unwrap(),
            NumArray::new(vec![2, 2], NumData::F64(vec![0.1, -0.0, f64::INFINITY, 1e-300])).unwrap(),
            NumArray::new(vec![3, 4, 5], NumData::F32((0..60).map(|i| i as f32 / 7.0).collect())).unwrap(),
        ];
        for array in &arrays {
            let path = dir.join(format!("{}.npy", array.dtype()));
            write_npy(&path, array).unwrap();
            let back = read_npy(&path).unwrap();
            assert_eq!(&back, array);
            let bytes = fs::read(&path).unwrap();
            assert_eq!(bytes.get(6..8), Some([1u8, 0].as_slice()), "version 1.0");
            let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
            assert_eq!((10 + header_len) % ALIGN, 0, "data aligned to {ALIGN} bytes");
        }
        // NaN does not compare equal: check the bits.
        let nan = NumArray::new(vec![1], NumData::F64(vec![f64::NAN])).unwrap();
        let path = dir.join("nan.npy");
        write_npy(&path, &nan).unwrap();
        match read_npy(&path).unwrap().data {
            NumData::F64(v) => assert_eq!(v[0].to_bits(), f64::NAN.to_bits()),
            other => panic!("read back {other:?}"),
        }
        // A shape that does not hold the values is refused, and nothing is written.
        let wrong = NumArray { shape: vec![5], data: NumData::U8(vec![1, 2]) };
        assert!(matches!(write_npy(&dir.join("wrong.npy"), &wrong), Err(Error::Shape(_))));
        assert!(!dir.join("wrong.npy").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_array_written_in_pieces_is_the_array_written_whole() {
        let dir = temp_dir("pieces");
        let values: Vec<i64> = (0..60).map(|i| i * 7 - 100).collect();
        let whole = dir.join("whole.npy");
        write_npy(&whole, &NumArray::new(vec![5, 12], NumData::I64(values.clone())).unwrap()).unwrap();
        let pieces = dir.join("pieces.npy");
        write_npy_in_pieces(&pieces, &[5, 12], "int64", |put| {
            for rows in values.chunks(24) {
                put(&NumData::I64(rows.to_vec()))?;
            }
            Ok::<_, Error>(())
        })
        .unwrap();
        assert_eq!(fs::read(&pieces).unwrap(), fs::read(&whole).unwrap());

        // Too few values, too many, a piece of another type, an unknown type or an error of
        // the caller's: an error, and no file.
        let refused = dir.join("refused.npy");
        let short = write_npy_in_pieces(&refused, &[5, 12], "int64", |put| put(&NumData::I64(values[..59].to_vec())));
        assert!(matches!(short, Err(Error::Shape(_))), "{short:?}");
        let long = write_npy_in_pieces(&refused, &[5, 12], "int64", |put| {
            put(&NumData::I64(values.clone()))?;
            put(&NumData::I64(vec![1]))
        });
        assert!(matches!(long, Err(Error::Shape(_))), "{long:?}");
        let mixed = write_npy_in_pieces(&refused, &[2], "int64", |put| put(&NumData::I32(vec![1, 2])));
        assert!(matches!(mixed, Err(Error::Shape(_))), "{mixed:?}");
        let unknown = write_npy_in_pieces(&refused, &[2], "complex64", |put| put(&NumData::I32(vec![1, 2])));
        assert!(matches!(unknown, Err(Error::Invalid(_))), "{unknown:?}");
        let stopped = write_npy_in_pieces(&refused, &[2], "int64", |put| {
            put(&NumData::I64(vec![1]))?;
            Err(Error::Invalid("stopped".into()))
        });
        assert!(matches!(stopped, Err(Error::Invalid(ref m)) if m == "stopped"), "{stopped:?}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "only whole.npy and pieces.npy");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_magic_is_named() {
        let dir = temp_dir("magic");
        let path = dir.join("bad.npy");
        fs::write(&path, b"\x93NUMPZ\x01\x00\x10\x00{'descr': '<f4'}").unwrap();
        let err = read_npy(&path).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("bad.npy") && message.contains("not a .npy file"), "{message}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn opened_npy_reads_what_read_npy_reads() {
        // Every 3-D fixture (C and Fortran order, each dtype): each run of values equals the
        // same run of the whole array in storage order.
        for name in ["u2_c.npy", "u2_f.npy", "f4_f.npy", "f8_c.npy", "big_endian_i4_f.npy", "b1_f.npy", "v3_f4_f.npy"] {
            let path = fixtures().join(name);
            let (file, whole) = (NpyFile::open(&path).unwrap(), read_npy(&path).unwrap());
            assert_eq!(file.shape(), whole.shape, "{name}");
            let storage: Vec<f32> = if file.fortran_order() {
                let reversed: Vec<usize> = whole.shape.iter().rev().copied().collect();
                let c = ndarray::ArrayD::from_shape_vec(whole.shape.clone(), whole.to_f32()).unwrap();
                c.t().as_standard_layout().into_shape_with_order(reversed).unwrap().iter().copied().collect()
            } else {
                whole.to_f32()
            };
            for start in 0..storage.len() {
                for count in 0..=storage.len() - start {
                    assert_eq!(
                        file.read_values(start, count).unwrap().to_f32(),
                        storage[start..start + count],
                        "{name}: {start}+{count}"
                    );
                }
            }
            assert!(file.read_values(storage.len(), 1).is_err(), "{name}: a value past the end");
        }
        // A cut file is refused when opened, with read_npy's message.
        let original = fs::read(fixtures().join("f4_c.npy")).unwrap();
        let dir = temp_dir("opened");
        let path = dir.join("cut.npy");
        for len in [original.len() - 5, 40, 9, 3, 0] {
            fs::write(&path, &original[..len]).unwrap();
            assert_eq!(
                NpyFile::open(&path).unwrap_err().to_string(),
                read_npy(&path).unwrap_err().to_string(),
                "cut at {len}"
            );
        }
        fs::write(&path, b"PK\x03\x04 a zip, say, whose bytes 8..12 would declare a huge header").unwrap();
        assert_eq!(NpyFile::open(&path).unwrap_err().to_string(), read_npy(&path).unwrap_err().to_string());
        fs::write(&path, [original.as_slice(), &[0u8; 3]].concat()).unwrap();
        assert!(NpyFile::open(&path).unwrap_err().to_string().contains("3 unexpected bytes after the data"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_npy_is_an_error() {
        let original = fs::read(fixtures().join("f4_c.npy")).unwrap();
        let dir = temp_dir("truncated");
        let path = dir.join("cut.npy");
        fs::write(&path, &original[..original.len() - 5]).unwrap();
        let message = read_npy(&path).unwrap_err().to_string();
        assert!(message.contains("cut.npy") && message.contains("truncated .npy data"), "{message}");
        fs::write(&path, &original[..40]).unwrap();
        let message = read_npy(&path).unwrap_err().to_string();
        assert!(message.contains("truncated .npy header"), "{message}");
        fs::remove_dir_all(&dir).unwrap();

        // Every cut, and every single-byte corruption, gives an error or an array; no panic.
        for len in 0..original.len() {
            assert!(parse_npy(&original[..len]).is_err(), "cut at {len} accepted");
        }
        for i in 0..original.len() {
            for byte in [0x00, 0x7f, 0xff, b'(', b'\''] {
                let mut corrupt = original.clone();
                corrupt[i] = byte;
                let _ = parse_npy(&corrupt);
            }
        }
    }

    #[test]
    fn bad_headers_are_named() {
        let npy = |header: &str, data: &[u8]| {
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(data);
            parse_npy(&bytes)
        };
        let ok = npy("{'descr': '<i2', 'fortran_order': False, 'shape': (2L,), }\n", &[1, 0, 0xff, 0xff]).unwrap();
        assert_eq!(ok.data, NumData::I16(vec![1, -1]));
        let big = npy("{'descr': '>u4', 'fortran_order': False, 'shape': (1,), }\n", &[0, 0, 1, 2]).unwrap();
        assert_eq!(big.data, NumData::U32(vec![0x0102]));
        let cases = [
            ("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "unsupported dtype '<c8'"),
            ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "unsupported dtype '|O'"),
            ("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", "structured"),
            ("{'descr': '<f4', 'shape': (1,), }", "no 'fortran_order'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "not a tuple of sizes"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "bad .npy header"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", "too large"),
            ("['descr']", "not a dict"),
            ("{'descr': '<f4', 'fortran_order': Maybe}", "unexpected 'Maybe'"),
            (&"(".repeat(100), "nested too deeply"),
        ];
        for (header, expected) in cases {
            let err = npy(header, &[0; 8]).unwrap_err();
            assert!(err.contains(expected), "{header}: {err}");
        }
        let err = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &[0; 6]).unwrap_err();
        assert!(err.contains("2 unexpected bytes"), "{err}");
        let err = parse_npy(b"\x93NUMPY\x04\x00\x00\x00").unwrap_err();
        assert!(err.contains("version 4.0"), "{err}");
    }

    #[test]
    fn tiles_read_in_place_are_those_of_read_npy() {
        // A 200 x 300 x 12 float32 cube (2.9 MB) in C and in Fortran order, and a tile of it
        // (rows 37..121, columns 250..300, every band) read a run of values at a time, as
        // scene inference reads tiles of a scene too large to read whole.
        let (h, w, b) = (200usize, 300usize, 12usize);
        let value = |y: usize, x: usize, c: usize| ((y * 7919 + x * 104_729 + c * 1_299_709) % 100_003) as f32 / 3.0;
        let dir = temp_dir("tiles");
        let c_path = dir.join("c.npy");
        let c_values: Vec<f32> = (0..h * w * b).map(|i| value(i / (w * b), i / b % w, i % b)).collect();
        write_npy(&c_path, &NumArray::new(vec![h, w, b], NumData::F32(c_values)).unwrap()).unwrap();
        let f_path = dir.join("f.npy");
        let mut f_bytes = header_bytes("<f4", &[h, w, b], true).unwrap();
        for i in 0..h * w * b {
            f_bytes.extend_from_slice(&value(i % h, i / h % w, i / (h * w)).to_le_bytes());
        }
        fs::write(&f_path, &f_bytes).unwrap();

        let (ys, xs) = (37..121, 250..300);
        for path in [&c_path, &f_path] {
            let whole = read_npy(path).unwrap();
            let file = NpyFile::open(path).unwrap();
            let NumData::F32(whole) = whole.data else { panic!("{}: not float32", path.display()) };
            let mut tile = vec![0f32; ys.len() * xs.len() * b];
            if file.fortran_order() {
                // A run down each column of each band.
                for c in 0..b {
                    for x in xs.clone() {
                        let run = file.read_values(ys.start + h * (x + w * c), ys.len()).unwrap().to_f32();
                        for (dy, v) in run.into_iter().enumerate() {
                            tile[(dy * xs.len() + x - xs.start) * b + c] = v;
                        }
                    }
                }
            } else {
                // A run along each row, every band.
                for y in ys.clone() {
                    let run = file.read_values((y * w + xs.start) * b, xs.len() * b).unwrap().to_f32();
                    let at = (y - ys.start) * xs.len() * b;
                    tile[at..at + run.len()].copy_from_slice(&run);
                }
            }
            let expected: Vec<f32> = ys
                .clone()
                .flat_map(|y| xs.clone().flat_map(move |x| (0..b).map(move |c| (y, x, c))))
                .map(|(y, x, c)| whole[(y * w + x) * b + c])
                .collect();
            assert_eq!(tile, expected, "{}", path.display());
            assert_eq!(whole[(120 * w + 299) * b + 11], value(120, 299, 11), "{}", path.display());
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
