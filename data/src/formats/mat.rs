//! MATLAB 5 (Level 5) MAT-files, as MATLAB writes with `save -v7` (the default before R2006b
//! was `-v6`, same format without compression) and as `scipy.io.savemat` writes; MATLAB v7.3
//! files (`save -v7.3`, HDF5) are told apart by their header and read by `mat73.rs`.
//!
//! The file is a 128-byte header (text, subsystem offset, version `0x0100`, endian indicator
//! `IM` for little-endian) followed by one data element per variable: an 8-byte tag (data type,
//! byte count) and the data, either `miMATRIX` or `miCOMPRESSED` (a zlib stream holding an
//! `miMATRIX` element). An `miMATRIX` holds sub-elements: array flags (class, complex, logical),
//! dimensions, name and, for numeric classes, the real part. MATLAB stores the real part in the
//! smallest type that holds the values (a `double` array of small integers as `miUINT8`), and
//! short sub-elements (up to 4 bytes) in the "small data element" format, data in the tag.
//! Values are stored column-major; [`read_mat`] returns them row-major, with MATLAB's shape.
//!
//! Written here because scenes are read a tile at a time and no crate reads part of a variable
//! in place (checked on crates.io 2026-12-07): `matfile` 0.5.0 parses every variable of a file
//! whole into memory; `matrw` 0.1.4 (de)serialises whole variables with serde. Neither reads
//! v7.3 files.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use flate2::read::ZlibDecoder;

use super::{NpyFile, Source, hdf5, mat73};
use crate::array::{NumArray, NumData, decode, element_count, with_values};
use crate::{Error, Result};

const HEADER_LEN: usize = 128;
const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";
/// Where a MATLAB v7.3 file (an HDF5 file with a MAT-file header in its user block) has the
/// HDF5 signature.
const HDF5_OFFSET: usize = 512;
/// Bytes of a compressed variable decompressed to read its name, class and dimensions.
const HEADER_PREFIX: usize = 1024;
/// Deflate expands at most ~1032 times; a compressed variable claiming more is corrupt.
const MAX_INFLATE_RATIO: usize = 1100;

// Data types of elements.
pub(super) const MI_INT8: u32 = 1;
pub(super) const MI_UINT8: u32 = 2;
pub(super) const MI_INT16: u32 = 3;
pub(super) const MI_UINT16: u32 = 4;
pub(super) const MI_INT32: u32 = 5;
pub(super) const MI_UINT32: u32 = 6;
pub(super) const MI_SINGLE: u32 = 7;
pub(super) const MI_DOUBLE: u32 = 9;
pub(super) const MI_INT64: u32 = 12;
pub(super) const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;

// Array classes (the low byte of the array flags).
const MX_DOUBLE: u8 = 6;
const MX_SINGLE: u8 = 7;
const MX_INT8: u8 = 8;
pub(super) const MX_UINT8: u8 = 9;
const MX_INT16: u8 = 10;
const MX_UINT16: u8 = 11;
const MX_INT32: u8 = 12;
const MX_UINT32: u8 = 13;
const MX_INT64: u8 = 14;
const MX_UINT64: u8 = 15;
const MX_OPAQUE: u8 = 17;

const FLAG_COMPLEX: u32 = 0x0800;
const FLAG_LOGICAL: u32 = 0x0200;

/// A variable of a MAT-file, as listed by [`list_mat_variables`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatVariable {
    pub name: String,
    /// MATLAB's dimensions (at least two), or none where the file does not store them: opaque
    /// objects, and a v7.3 file's structs and objects.
    pub shape: Vec<usize>,
    /// MATLAB's class as `whos` (and `scipy.io.whosmat`) names it: `"double"`, `"single"`,
    /// `"uint16"`... `"logical"`, or for variables [`read_mat`] cannot read: `"char"`,
    /// `"cell"`, `"struct"`, `"sparse"`, `"object"`, `"function"`, `"opaque"`.
    pub class: &'static str,
}

/// Reads a numeric variable of a MAT-file: MATLAB 5 (`save -v6` or `-v7`, compressed or not)
/// or MATLAB v7.3 (`save -v7.3`, an HDF5 file; see `mat73.rs` for what is read of HDF5).
///
/// `key` names the variable; `None` takes the only numeric variable (names starting with
/// `__` are ignored). The array has MATLAB's shape and the element type of MATLAB's class
/// (`double` gives `F64` even when the file stores the values as bytes), in row-major order:
/// element `[i][j][k]` is MATLAB's `A(i+1, j+1, k+1)`. Logical arrays are read as `uint8`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::MissingKey`] when there is no variable
/// `key`; [`Error::Format`] when the file is not a little-endian MAT-file (or is a v7.3 file
/// using HDF5 structures MATLAB does not write), is truncated or corrupt, when the variable is
/// not a real numeric array (char, cell, struct, sparse, complex...), or when `key` is `None`
/// and the file does not hold exactly one numeric variable.
pub fn read_mat(path: &Path, key: Option<&str>) -> Result<NumArray> {
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_mat_from(path, &mut file, key)
}

/// Lists the variables of a MAT-file, numeric or not, without reading their values: in file
/// order for a MATLAB 5 file, in the order of their names for a v7.3 file.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is not a
/// little-endian MAT-file, or is truncated or corrupt.
pub fn list_mat_variables(path: &Path) -> Result<Vec<MatVariable>> {
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    list_mat_variables_from(path, &mut file)
}

/// As [`list_mat_variables`], from any reader that can seek (a `std::io::Cursor` over bytes in
/// memory, say); `path` names it in errors.
///
/// # Errors
/// As [`list_mat_variables`].
pub fn list_mat_variables_from<R: Read + Seek>(path: &Path, file: &mut R) -> Result<Vec<MatVariable>> {
    let listed = if is_v73(file).map_err(|reason| Error::format(path, reason))? {
        mat73::list(file)
    } else {
        scan(file).map(|variables| {
            variables
                .iter()
                .map(|v| MatVariable {
                    name: v.header.name.clone(),
                    shape: v.header.shape.clone(),
                    class: v.header.class_name(),
                })
                .collect()
        })
    };
    listed.map_err(|reason| Error::format(path, reason))
}

/// Copies a numeric variable of a MAT-file (chosen as by [`read_mat`]) into a `.npy` file, a
/// buffer at a time, so that neither file need fit in memory: MATLAB's shape in Fortran order
/// (the order MAT-files store), in the type the file stores the values in (which may be
/// narrower than the class, with the same values). The `.npy` file is written atomically.
///
/// # Errors
/// As [`read_mat`], and [`Error::Io`] when `to` cannot be written.
pub fn unpack_mat(path: &Path, key: Option<&str>, to: &Path) -> Result<()> {
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    crate::write_atomic(to, |out| unpack_mat_from(path, &mut file, key, (to, out)))
}

/// The values of a numeric variable of an uncompressed MATLAB 5 file (`save -v6`,
/// `scipy.io.savemat`'s default), chosen as by [`read_mat`], to be read in place: the file open
/// as a Fortran-order array of MATLAB's shape in the stored type, as [`unpack_mat`] would copy
/// it. `None` when the variable is compressed or the file is a v7.3 one.
///
/// # Errors
/// As [`read_mat`], without reading the values.
pub fn open_mat_values(path: &Path, key: Option<&str>) -> Result<Option<NpyFile>> {
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    open_mat_values_from(path, file, key)
}

/// As [`open_mat_values`], from any reader that can seek; `path` names it in errors.
///
/// # Errors
/// As [`open_mat_values`].
pub fn open_mat_values_from<R: Source + 'static>(
    path: &Path,
    mut file: R,
    key: Option<&str>,
) -> Result<Option<NpyFile>> {
    if is_v73(&mut file).map_err(|reason| Error::format(path, reason))? {
        return Ok(None);
    }
    let variables = scan(&mut file).map_err(|reason| Error::format(path, reason))?;
    let variable = choose(path, &variables, key)?;
    if variable.compressed {
        return Ok(None);
    }
    let failed = |reason: String| variable.error(path, reason);
    let (descr, skip, _) = variable.values(&mut file).map_err(failed)?;
    NpyFile::raw(path, file, descr, &variable.header.shape, true, variable.start + skip as u64).map(Some)
}

/// As [`unpack_mat`], from any reader that can seek (`path` names it in errors) into `out`
/// (`to` names it in errors): the `.npy` file's bytes, header first.
///
/// # Errors
/// As [`unpack_mat`]; [`Error::Io`] naming `to` when `out` fails.
pub fn unpack_mat_from<R: Read + Seek>(
    path: &Path,
    file: &mut R,
    key: Option<&str>,
    (to, out): (&Path, &mut dyn Write),
) -> Result<()> {
    if is_v73(file).map_err(|reason| Error::format(path, reason))? {
        return mat73::unpack(path, file, key, (to, out));
    }
    let variables = scan(file).map_err(|reason| Error::format(path, reason))?;
    let variable = choose(path, &variables, key)?;
    let failed = |reason: String| variable.error(path, reason);
    let (descr, skip, len) = variable.values(file).map_err(failed)?;
    let header = super::npy::header_bytes(descr, &variable.header.shape, true)
        .ok_or_else(|| failed(format!("dimensions {:?} too many for a .npy header", variable.header.shape)))?;
    out.write_all(&header).map_err(|e| Error::io(to, e))?;
    variable.copy_content(file, skip, len, out).map_err(|reason| match reason {
        CopyError::Write(e) => Error::io(to, e),
        CopyError::Read(reason) => failed(reason),
    })
}

/// As [`read_mat`], from any reader that can seek (a `std::io::Cursor` over bytes in memory,
/// say); `path` names it in errors.
///
/// # Errors
/// As [`read_mat`].
pub fn read_mat_from<R: Read + Seek>(path: &Path, file: &mut R, key: Option<&str>) -> Result<NumArray> {
    if is_v73(file).map_err(|reason| Error::format(path, reason))? {
        return mat73::read(path, file, key);
    }
    let variables = scan(file).map_err(|reason| Error::format(path, reason))?;
    let variable = choose(path, &variables, key)?;
    variable.read(file).map_err(|reason| variable.error(path, reason))
}

#[cfg(test)]
fn read_mat_bytes(path: &Path, bytes: &[u8], key: Option<&str>) -> Result<NumArray> {
    read_mat_from(path, &mut std::io::Cursor::new(bytes), key)
}

/// What [`choose`] needs to know of a variable.
pub(super) trait Listed {
    fn name(&self) -> &str;
    fn is_numeric(&self) -> bool;
}

impl Listed for Variable {
    fn name(&self) -> &str {
        &self.header.name
    }

    fn is_numeric(&self) -> bool {
        self.header.is_numeric()
    }
}

/// The variable `key`, or without a key the only numeric one.
pub(super) fn choose<'v, V: Listed>(path: &Path, variables: &'v [V], key: Option<&str>) -> Result<&'v V> {
    let visible = || variables.iter().filter(|v| !v.name().starts_with("__"));
    let names = |list: Vec<&V>| list.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ");
    match key {
        Some(key) => variables.iter().find(|v| v.name() == key).ok_or_else(|| Error::MissingKey {
            path: path.to_path_buf(),
            key: key.to_string(),
            available: names(visible().collect()),
        }),
        None => {
            let numeric: Vec<&V> = visible().filter(|v| v.is_numeric()).collect();
            match numeric.as_slice() {
                [only] => Ok(*only),
                [] => {
                    Err(Error::format(path, format!("no numeric variable (variables: {})", names(visible().collect()))))
                }
                _ => Err(Error::format(
                    path,
                    format!(
                        "several numeric variables ({}); name the one to read (--key; --gt-key for ground truth)",
                        names(numeric)
                    ),
                )),
            }
        }
    }
}

/// A variable found by [`scan`]: what its header says, and where its element lies in the file.
#[derive(Debug)]
struct Variable {
    header: MatrixHeader,
    /// An `miCOMPRESSED` element (a zlib stream holding the `miMATRIX` element), or the
    /// `miMATRIX` element itself.
    compressed: bool,
    /// Offset in the file of the element's content, and its length there.
    start: u64,
    len: usize,
}

/// Why copying a variable's values stopped.
pub(super) enum CopyError {
    Read(String),
    Write(std::io::Error),
}

impl Variable {
    /// An error about this variable.
    fn error(&self, path: &Path, reason: String) -> Error {
        Error::format(path, format!("variable `{}`: {reason}", self.header.name))
    }

    /// The content of the `miMATRIX` element, decompressed if need be, and the full length of
    /// that content. With `limit`, only that much of it is read.
    fn matrix<R: Read + Seek>(&self, file: &mut R, limit: Option<usize>) -> Result<(Vec<u8>, usize), String> {
        let mut reader = self.content(file)?;
        let full = reader.full;
        let wanted = limit.map_or(full, |limit| limit.min(full));
        // Reserve what the file surely holds; the rest grows only as data actually comes out.
        let mut content = Vec::with_capacity(wanted.min(self.len.saturating_mul(16)));
        (&mut reader).take(wanted as u64).read_to_end(&mut content).map_err(|e| self.read_error(e))?;
        if content.len() < wanted {
            return Err(format!("{} after {} of {full} bytes", reader.ends(), content.len()));
        }
        if wanted == full {
            reader.finish()?;
        }
        Ok((content, full))
    }

    /// The content of the element as a stream: from the file, or inflated.
    fn content<'r, R: Read + Seek>(&self, file: &'r mut R) -> Result<Content<'r>, String> {
        file.seek(SeekFrom::Start(self.start)).map_err(|e| e.to_string())?;
        let element: Box<dyn Read + 'r> = Box::new(file.take(self.len as u64));
        if !self.compressed {
            return Ok(Content { reader: element, full: self.len, compressed: false });
        }
        let mut decoder = ZlibDecoder::new(element);
        let mut tag = [0u8; 8];
        decoder.read_exact(&mut tag).map_err(corrupt)?;
        let [t0, t1, t2, t3, n0, n1, n2, n3] = tag;
        let data_type = u32::from_le_bytes([t0, t1, t2, t3]);
        if data_type != MI_MATRIX {
            return Err(format!("compressed element holds data type {data_type}, not a matrix (14)"));
        }
        let full = to_usize(u32::from_le_bytes([n0, n1, n2, n3]));
        if full > self.len.saturating_mul(MAX_INFLATE_RATIO) {
            return Err(format!(
                "compressed element claims {full} bytes, more than its {} compressed bytes can hold",
                self.len
            ));
        }
        Ok(Content { reader: Box::new(decoder), full, compressed: true })
    }

    /// The reason a read of the element's content failed.
    fn read_error(&self, e: std::io::Error) -> String {
        if self.compressed { corrupt(e) } else { e.to_string() }
    }

    /// Decodes the values of a numeric variable; the error is the reason, without the path.
    fn read<R: Read + Seek>(&self, file: &mut R) -> Result<NumArray, String> {
        let header = self.check_numeric()?;
        let (content, _) = self.matrix(file, None)?;
        let count =
            element_count(&header.shape).ok_or_else(|| format!("dimensions {:?} are too large", header.shape))?;
        let mut elements = SubElements { buf: &content, pos: header.data_start };
        let (data_type, raw) = elements.next("real part")?;
        let stored = decode_stored(data_type, raw)?;
        if stored.len() != count {
            return Err(format!(
                "the real part holds {} values, dimensions {:?} need {count}",
                stored.len(),
                header.shape
            ));
        }
        let values = to_class(stored, header.class)?;
        let data = values.fortran_to_c(&header.shape);
        Ok(NumArray { shape: header.shape.clone(), data })
    }

    fn check_numeric(&self) -> Result<&MatrixHeader, String> {
        let header = &self.header;
        if !header.is_numeric() {
            return Err(format!("is not a numeric array (class {})", mx_class_name(header.class)));
        }
        if header.complex {
            return Err("complex arrays are not supported".into());
        }
        Ok(header)
    }

    /// Where the values of a numeric variable lie in the matrix content: their `.npy` type,
    /// offset and length in bytes (checked against the dimensions).
    fn values<R: Read + Seek>(&self, file: &mut R) -> Result<(&'static str, usize, usize), String> {
        let header = self.check_numeric()?;
        let count =
            element_count(&header.shape).ok_or_else(|| format!("dimensions {:?} are too large", header.shape))?;
        let (prefix, full) = self.matrix(file, Some(header.data_start + 8))?;
        let Tag { data_type, start: skip, count: len, .. } =
            SubElements { buf: &prefix, pos: header.data_start }.tag("real part")?;
        let (descr, size) = stored_descr(data_type)?;
        if skip.saturating_add(len) > full {
            return Err(format!("truncated real part: declares {len} bytes, {} remain", full.saturating_sub(skip)));
        }
        if len != count.saturating_mul(size) {
            return Err(format!(
                "the real part holds {} bytes of {size}-byte values, dimensions {:?} need {count}",
                len, header.shape
            ));
        }
        Ok((descr, skip, len))
    }

    /// Copies `len` bytes of the matrix content from `skip` on into `out`, then reads the rest
    /// of a compressed element, which checks it.
    fn copy_content<R: Read + Seek>(
        &self,
        file: &mut R,
        skip: usize,
        len: usize,
        out: &mut dyn Write,
    ) -> Result<(), CopyError> {
        const BUFFER: usize = 1 << 20;
        let failed = |e: std::io::Error| CopyError::Read(self.read_error(e));
        let mut reader = self.content(file).map_err(CopyError::Read)?;
        let (full, ends) = (reader.full, reader.ends());
        let short = |at: u64| CopyError::Read(format!("{ends} after {at} of {full} bytes"));
        let skipped = std::io::copy(&mut (&mut reader).take(skip as u64), &mut std::io::sink()).map_err(failed)?;
        let mut buf = vec![0u8; BUFFER.min(len)];
        let mut left = len;
        while left > 0 {
            let n = reader.read(&mut buf[..left.min(BUFFER)]).map_err(failed)?;
            if n == 0 {
                return Err(short(skipped + (len - left) as u64));
            }
            out.write_all(&buf[..n]).map_err(CopyError::Write)?;
            left -= n;
        }
        if self.compressed {
            let rest = (full - skip - len) as u64;
            let read = std::io::copy(&mut (&mut reader).take(rest), &mut std::io::sink()).map_err(failed)?;
            if read < rest {
                return Err(short((skip + len) as u64 + read));
            }
            reader.finish().map_err(CopyError::Read)?;
        }
        Ok(())
    }
}

/// The content of a variable's `miMATRIX` element as a stream, and its full length.
struct Content<'r> {
    reader: Box<dyn Read + 'r>,
    full: usize,
    compressed: bool,
}

impl Content<'_> {
    /// How the content ends too early.
    fn ends(&self) -> &'static str {
        if self.compressed { "compressed data ends" } else { "the variable ends" }
    }

    /// Once `full` bytes are read: a compressed stream must end there, with its checksum right.
    fn finish(&mut self) -> Result<(), String> {
        if self.compressed {
            let extra = std::io::copy(&mut self.reader, &mut std::io::sink()).map_err(corrupt)?;
            if extra > 0 {
                return Err(format!("compressed data holds {extra} bytes more than the {} declared", self.full));
            }
        }
        Ok(())
    }
}

impl Read for Content<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

fn corrupt(e: std::io::Error) -> String {
    format!("corrupt compressed data ({e})")
}

/// Checks the file header and finds the variables, reading the header of each (and, of a
/// compressed one, decompressing only that); the error is the reason, without the path.
fn scan<R: Read + Seek>(file: &mut R) -> Result<Vec<Variable>, String> {
    let io = |e: std::io::Error| e.to_string();
    let size = file.seek(SeekFrom::End(0)).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut head = Vec::new();
    (&mut *file).take((HDF5_OFFSET + HDF5_SIGNATURE.len()) as u64).read_to_end(&mut head).map_err(io)?;
    if check_file_header(&head)? {
        return Err("a MATLAB v7.3 file, not a MATLAB 5 one".into());
    }
    let mut variables = Vec::new();
    let mut pos = HEADER_LEN as u64;
    while pos < size {
        let at = |reason: String| format!("variable at byte {pos}: {reason}");
        let mut tag = [0u8; 8];
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        if size - pos < 8 {
            return Err(at(format!("truncated tag ({} bytes at the end of the file)", size - pos)));
        }
        file.read_exact(&mut tag).map_err(io)?;
        let data_type = u32_at(&tag, 0);
        let declared = to_usize(u32_at(&tag, 4));
        let start = pos + 8;
        if declared as u64 > size - start {
            return Err(at(format!("truncated file: the variable declares {declared} bytes, {} remain", size - start)));
        }
        let compressed = match data_type {
            MI_MATRIX => false,
            MI_COMPRESSED => true,
            other => return Err(at(format!("unexpected data type {other} (expected miMATRIX or miCOMPRESSED)"))),
        };
        let mut variable = Variable { header: MatrixHeader::default(), compressed, start, len: declared };
        variable.header = read_matrix_header(&variable, file).map_err(at)?;
        variables.push(variable);
        // Compressed elements are not padded; matrix contents are a whole number of 8-byte units.
        pos = start + declared as u64;
        if !compressed {
            pos = (pos + padding(declared) as u64).min(size);
        }
    }
    Ok(variables)
}

/// Whether a MAT-file is a MATLAB v7.3 (HDF5) one, its header checked either way.
pub(super) fn is_v73<R: Read + Seek>(file: &mut R) -> Result<bool, String> {
    let io = |e: std::io::Error| e.to_string();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut head = Vec::new();
    (&mut *file).take((HDF5_OFFSET + HDF5_SIGNATURE.len()) as u64).read_to_end(&mut head).map_err(io)?;
    check_file_header(&head)
}

/// Whether `bytes` start as a MATLAB 4 MAT-file does: a header of five 32-bit integers (type,
/// rows, columns, imaginary flag, name length; either byte order) and a NUL-ended name.
fn is_matlab4(bytes: &[u8]) -> bool {
    let Some(head) = bytes.get(..20) else { return false };
    let orders: [fn([u8; 4]) -> i32; 2] = [i32::from_le_bytes, i32::from_be_bytes];
    orders.iter().any(|read| {
        let [kind, rows, columns, imaginary, name_len] =
            std::array::from_fn(|i| read([head[4 * i], head[4 * i + 1], head[4 * i + 2], head[4 * i + 3]]));
        // The type is MOPT in decimal: machine 0-4, O always 0, precision 0-5, matrix type 0-2.
        let type_ok = (0..5000).contains(&kind) && kind / 100 % 10 == 0 && kind / 10 % 10 <= 5 && kind % 10 <= 2;
        let name_ends = usize::try_from(name_len)
            .ok()
            .filter(|n| (1..=64).contains(n))
            .is_some_and(|n| bytes.get(19 + n) == Some(&0));
        type_ok && rows >= 0 && columns >= 0 && (imaginary == 0 || imaginary == 1) && name_ends
    })
}

/// Checks the 128-byte header: a MATLAB 5 MAT-file, version 0x0100, little-endian, or a
/// MATLAB v7.3 one (true), whose HDF5 data starts at byte 512.
fn check_file_header(bytes: &[u8]) -> Result<bool, String> {
    let text = bytes.get(..116).unwrap_or(bytes);
    let says_v73 = text.windows(10).any(|w| w == b"MATLAB 7.3");
    if bytes.get(HDF5_OFFSET..).is_some_and(hdf5::is_signature) {
        return Ok(true);
    }
    if says_v73 {
        return Err(format!("a MATLAB v7.3 file without its HDF5 data at byte {HDF5_OFFSET} (truncated?)"));
    }
    if is_matlab4(bytes) {
        return Err("a MATLAB 4 MAT-file (`save -v4`), which is not read: save it with -v7, -v6 or -v7.3".into());
    }
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or_else(|| format!("not a MAT-file: {} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len()))?;
    match header.get(126..128) {
        Some(b"IM") => {}
        Some(b"MI") => {
            return Err("big-endian MAT-files are not supported; save it again on a little-endian machine".into());
        }
        _ => return Err("not a MATLAB 5 MAT-file (no 'IM' endian indicator at byte 126)".into()),
    }
    let version = header.get(124..126).map_or(0, |v| u16_at(v, 0));
    if version != 0x0100 {
        return Err(format!("unsupported MAT-file version 0x{version:04x} (expected 0x0100)"));
    }
    Ok(false)
}

/// What the first sub-elements of an `miMATRIX` say.
#[derive(Debug, Default)]
struct MatrixHeader {
    class: u8,
    complex: bool,
    logical: bool,
    shape: Vec<usize>,
    name: String,
    /// Offset in the matrix content of the sub-element after the name (the real part).
    data_start: usize,
}

impl MatrixHeader {
    /// Parses the array flags, dimensions and name at the start of a matrix content.
    fn parse(content: &[u8]) -> Result<MatrixHeader, String> {
        let mut elements = SubElements { buf: content, pos: 0 };
        let (data_type, flags) = elements.next("array flags")?;
        if data_type != MI_UINT32 || flags.len() < 4 {
            return Err(format!("bad array flags (data type {data_type}, {} bytes)", flags.len()));
        }
        let flags = u32_at(flags, 0);
        let class = flags.to_le_bytes()[0];
        // Opaque objects (MATLAB strings, tables...) store their name right after the flags.
        let shape = if class == MX_OPAQUE {
            Vec::new()
        } else {
            let (data_type, dims) = elements.next("dimensions")?;
            if !matches!(data_type, MI_INT32 | MI_UINT32) || dims.len() % 4 != 0 {
                return Err(format!("bad dimensions (data type {data_type}, {} bytes)", dims.len()));
            }
            dims.chunks_exact(4)
                .map(|d| usize::try_from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])).ok())
                .collect::<Option<Vec<usize>>>()
                .ok_or("negative dimension")?
        };
        let (data_type, name) = elements.next("array name")?;
        if !matches!(data_type, MI_INT8 | MI_UINT8 | MI_UTF8) {
            return Err(format!("bad array name (data type {data_type})"));
        }
        let name = match String::from_utf8_lossy(name) {
            // MATLAB's only unnamed variable holds the workspace of anonymous functions.
            n if n.is_empty() => "__function_workspace__".to_string(),
            n => n.into_owned(),
        };
        Ok(MatrixHeader {
            class,
            complex: flags & FLAG_COMPLEX != 0,
            logical: flags & FLAG_LOGICAL != 0,
            shape,
            name,
            data_start: elements.pos,
        })
    }

    fn is_numeric(&self) -> bool {
        (MX_DOUBLE..=MX_UINT64).contains(&self.class)
    }

    /// The class as `whos` names it: MATLAB's class, or `"logical"` for logical arrays.
    fn class_name(&self) -> &'static str {
        if self.logical { "logical" } else { mx_class_name(self.class) }
    }
}

/// The name of an array class (the low byte of the array flags).
pub(super) fn mx_class_name(class: u8) -> &'static str {
    match class {
        1 => "cell",
        2 => "struct",
        3 => "object",
        4 => "char",
        5 => "sparse",
        MX_DOUBLE => "double",
        MX_SINGLE => "single",
        MX_INT8 => "int8",
        MX_UINT8 => "uint8",
        MX_INT16 => "int16",
        MX_UINT16 => "uint16",
        MX_INT32 => "int32",
        MX_UINT32 => "uint32",
        MX_INT64 => "int64",
        MX_UINT64 => "uint64",
        16 => "function",
        MX_OPAQUE => "opaque",
        _ => "unknown",
    }
}

/// The code of a numeric class named as [`mx_class_name`] names it.
pub(super) fn mx_class_code(name: &str) -> Option<u8> {
    (MX_DOUBLE..=MX_UINT64).find(|&code| mx_class_name(code) == name)
}

/// The numeric class whose values a stored data type holds exactly (`miDOUBLE`: `double`).
pub(super) fn class_of_stored(data_type: u32) -> Option<u8> {
    Some(match data_type {
        MI_INT8 => MX_INT8,
        MI_UINT8 => MX_UINT8,
        MI_INT16 => MX_INT16,
        MI_UINT16 => MX_UINT16,
        MI_INT32 => MX_INT32,
        MI_UINT32 => MX_UINT32,
        MI_SINGLE => MX_SINGLE,
        MI_DOUBLE => MX_DOUBLE,
        MI_INT64 => MX_INT64,
        MI_UINT64 => MX_UINT64,
        _ => return None,
    })
}

/// Reads the header of a variable, decompressing only the start of a compressed one when that
/// is enough.
fn read_matrix_header<R: Read + Seek>(variable: &Variable, file: &mut R) -> Result<MatrixHeader, String> {
    let (prefix, full) = variable.matrix(file, Some(HEADER_PREFIX))?;
    match MatrixHeader::parse(&prefix) {
        Err(_) if prefix.len() < full => MatrixHeader::parse(&variable.matrix(file, None)?.0),
        parsed => parsed,
    }
}

/// The sub-elements of a matrix content, one after the other.
struct SubElements<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Where a sub-element's data lies in a matrix content, as its tag says.
struct Tag {
    data_type: u32,
    /// Offset and length of the data.
    start: usize,
    count: usize,
    /// Offset of the next sub-element.
    next: usize,
}

impl<'a> SubElements<'a> {
    /// The tag of the next sub-element (whose data may lie beyond `buf`); `what` names it in
    /// errors.
    fn tag(&self, what: &str) -> Result<Tag, String> {
        let tag = self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.get(..8))
            .ok_or_else(|| format!("truncated before the {what}"))?;
        let first = u32_at(tag, 0);
        if first >> 16 != 0 {
            // Small data element: byte count in the upper half of the first word, data in the
            // second word.
            let count = to_usize(first >> 16);
            if count > 4 {
                return Err(format!("bad small element for the {what} ({count} bytes)"));
            }
            Ok(Tag { data_type: first & 0xffff, start: self.pos + 4, count, next: self.pos + 8 })
        } else {
            let count = to_usize(u32_at(tag, 4));
            let start = self.pos + 8;
            Ok(Tag { data_type: first, start, count, next: start.saturating_add(count).saturating_add(padding(count)) })
        }
    }

    /// The data type and data of the next sub-element; `what` names it in errors.
    fn next(&mut self, what: &str) -> Result<(u32, &'a [u8]), String> {
        let buf = self.buf;
        let tag = self.tag(what)?;
        let data = buf.get(tag.start..).and_then(|rest| rest.get(..tag.count)).ok_or_else(|| {
            format!("truncated {what}: declares {} bytes, {} remain", tag.count, buf.len().saturating_sub(tag.start))
        })?;
        self.pos = tag.next.min(buf.len());
        Ok((tag.data_type, data))
    }
}

/// Decodes a real part in its stored data type.
pub(super) fn decode_stored(data_type: u32, raw: &[u8]) -> Result<NumData, String> {
    let size = match data_type {
        MI_INT8 | MI_UINT8 => 1,
        MI_INT16 | MI_UINT16 => 2,
        MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
        MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
        other => return Err(format!("unsupported data type {other} for the values")),
    };
    if raw.len() % size != 0 {
        return Err(format!("{} bytes of values are not a whole number of {size}-byte values", raw.len()));
    }
    Ok(match data_type {
        MI_INT8 => NumData::I8(decode(raw, i8::from_le_bytes)),
        MI_UINT8 => NumData::U8(raw.to_vec()),
        MI_INT16 => NumData::I16(decode(raw, i16::from_le_bytes)),
        MI_UINT16 => NumData::U16(decode(raw, u16::from_le_bytes)),
        MI_INT32 => NumData::I32(decode(raw, i32::from_le_bytes)),
        MI_UINT32 => NumData::U32(decode(raw, u32::from_le_bytes)),
        MI_SINGLE => NumData::F32(decode(raw, f32::from_le_bytes)),
        MI_DOUBLE => NumData::F64(decode(raw, f64::from_le_bytes)),
        MI_INT64 => NumData::I64(decode(raw, i64::from_le_bytes)),
        _ => NumData::U64(decode(raw, u64::from_le_bytes)),
    })
}

/// The `.npy` type string of a stored data type, and its size.
pub(super) fn stored_descr(data_type: u32) -> Result<(&'static str, usize), String> {
    Ok(match data_type {
        MI_INT8 => ("|i1", 1),
        MI_UINT8 => ("|u1", 1),
        MI_INT16 => ("<i2", 2),
        MI_UINT16 => ("<u2", 2),
        MI_INT32 => ("<i4", 4),
        MI_UINT32 => ("<u4", 4),
        MI_SINGLE => ("<f4", 4),
        MI_DOUBLE => ("<f8", 8),
        MI_INT64 => ("<i8", 8),
        MI_UINT64 => ("<u8", 8),
        other => return Err(format!("unsupported data type {other} for the values")),
    })
}

/// Converts values from their stored type to the type of the array's class.
pub(super) fn to_class(stored: NumData, class: u8) -> Result<NumData, String> {
    let target = match class {
        MX_DOUBLE => "float64",
        MX_SINGLE => "float32",
        MX_INT8 => "int8",
        MX_UINT8 => "uint8",
        MX_INT16 => "int16",
        MX_UINT16 => "uint16",
        MX_INT32 => "int32",
        MX_UINT32 => "uint32",
        MX_INT64 => "int64",
        _ => "uint64",
    };
    if stored.dtype() == target {
        return Ok(stored);
    }
    let converted = match class {
        MX_DOUBLE => convert(&stored).map(NumData::F64),
        MX_SINGLE => convert(&stored).map(NumData::F32),
        MX_INT8 => convert(&stored).map(NumData::I8),
        MX_UINT8 => convert(&stored).map(NumData::U8),
        MX_INT16 => convert(&stored).map(NumData::I16),
        MX_UINT16 => convert(&stored).map(NumData::U16),
        MX_INT32 => convert(&stored).map(NumData::I32),
        MX_UINT32 => convert(&stored).map(NumData::U32),
        MX_INT64 => convert(&stored).map(NumData::I64),
        _ => convert(&stored).map(NumData::U64),
    };
    converted.ok_or_else(|| format!("a value stored as {} does not fit its class ({target})", stored.dtype()))
}

/// Every value converted to `T`, or `None` if one does not fit exactly.
fn convert<T: ClassValue>(stored: &NumData) -> Option<Vec<T>> {
    with_values!(stored, values => values.iter().map(|&v| v.stored_into()).collect())
}

/// A type of an array class, which stored values convert into.
trait ClassValue: Sized {
    fn from_int(v: i128) -> Option<Self>;
    fn from_float(v: f64) -> Option<Self>;
}

macro_rules! int_class {
    ($($t:ty),*) => {$(
        impl ClassValue for $t {
            fn from_int(v: i128) -> Option<Self> {
                Self::try_from(v).ok()
            }
            fn from_float(v: f64) -> Option<Self> {
                // NaN and infinities have no zero fraction; huge values fail `try_from`.
                if v.fract() == 0.0 { Self::from_int(v as i128) } else { None }
            }
        }
    )*};
}
int_class!(u8, i8, u16, i16, u32, i32, u64, i64);

macro_rules! float_class {
    ($($t:ty),*) => {$(
        impl ClassValue for $t {
            fn from_int(v: i128) -> Option<Self> {
                Some(v as $t)
            }
            fn from_float(v: f64) -> Option<Self> {
                Some(v as $t)
            }
        }
    )*};
}
float_class!(f32, f64);

/// A stored value, converted into the class type.
trait StoredValue: Copy {
    fn stored_into<T: ClassValue>(self) -> Option<T>;
}

macro_rules! stored_int {
    ($($t:ty),*) => {$(
        impl StoredValue for $t {
            fn stored_into<T: ClassValue>(self) -> Option<T> {
                T::from_int(i128::from(self))
            }
        }
    )*};
}
stored_int!(u8, i8, u16, i16, u32, i32, u64, i64);

macro_rules! stored_float {
    ($($t:ty),*) => {$(
        impl StoredValue for $t {
            fn stored_into<T: ClassValue>(self) -> Option<T> {
                T::from_float(f64::from(self))
            }
        }
    )*};
}
stored_float!(f32, f64);

/// The bytes that pad `len` bytes of data to a multiple of 8.
fn padding(len: usize) -> usize {
    (8 - len % 8) % 8
}

/// The little-endian `u32` at `at` in `bytes`; the caller has checked the length.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// The little-endian `u16` at `at` in `bytes`; the caller has checked the length.
fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::npy::tests::{assert_matches, expected_fixtures, expected_json, fixtures, temp_dir};
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        fixtures().join(name)
    }

    fn format_error(result: Result<NumArray>) -> String {
        match result {
            Err(err @ Error::Format { .. }) => err.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn indian_pines_gt_needs_shared() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/indian_pines/Indian_pines_gt.mat");
        if !path.exists() {
            // CI has ../shared; a fresh clone elsewhere need not.
            assert!(std::env::var_os("CI").is_none(), "{} is missing: CI must have ../shared", path.display());
            // Straight to stderr, past the test harness's capture, so that the skip is seen.
            let skipped = format!("skipped: {} is missing (this test reads ../shared, which CI has)\n", path.display());
            let _ = std::io::Write::write_all(&mut std::io::stderr(), skipped.as_bytes());
            return;
        }
        let variables = list_mat_variables(&path).unwrap();
        assert_eq!(variables, [MatVariable { name: "indian_pines_gt".into(), shape: vec![145, 145], class: "double" }]);
        // MATLAB stores this double array as miUINT8; it reads as its class, double.
        let gt = read_mat(&path, Some("indian_pines_gt")).unwrap();
        assert_eq!(gt, read_mat(&path, None).unwrap());
        assert_eq!(gt.shape, [145, 145]);
        assert_eq!(gt.dtype(), "float64");
        let labels = gt.to_i64().unwrap();
        let mut counts = [0usize; 17];
        for &label in &labels {
            counts[usize::try_from(label).unwrap()] += 1;
        }
        let expected = [46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93];
        assert_eq!(counts[1..], expected);
        assert_eq!(counts[0], 145 * 145 - expected.iter().sum::<usize>());
        // Orientation: sums of label x row and label x column, computed by scipy.io.loadmat
        // (a transposed reader would swap them).
        let weighted =
            |axis: usize| -> i64 { labels.iter().enumerate().map(|(i, &l)| l * [i / 145, i % 145][axis] as i64).sum() };
        assert_eq!((weighted(0), weighted(1)), (5_935_274, 6_241_734));
    }

    #[test]
    fn mat_fixtures_match_scipy() {
        let entries: Vec<_> =
            expected_fixtures().into_iter().filter(|e| e["file"].as_str().unwrap().ends_with(".mat")).collect();
        assert!(entries.len() >= 30, "expected.json lists only {} MAT-file arrays", entries.len());
        for entry in &entries {
            let file = entry["file"].as_str().unwrap();
            let key = entry["key"].as_str().unwrap();
            let array = read_mat(&fixture(file), Some(key)).unwrap_or_else(|e| panic!("{e}"));
            assert_matches(&array, entry, &format!("{file} `{key}`"));
        }
    }

    #[test]
    fn unpacked_variables_equal_the_variables_read() {
        // Every numeric array of the fixtures, compressed and not, of every stored type: the
        // .npy copy holds the values read_mat reads, in MATLAB's shape (and numpy's Fortran
        // order, which read_npy turns back into rows).
        let dir = temp_dir("mat-unpack");
        let mut unpacked = 0;
        for entry in expected_fixtures() {
            let file = entry["file"].as_str().unwrap();
            if !file.ends_with(".mat") {
                continue;
            }
            let key = entry["key"].as_str().unwrap();
            let Ok(array) = read_mat(&fixture(file), Some(key)) else { continue };
            let to = dir.join(format!("{file}-{key}.npy"));
            unpack_mat(&fixture(file), Some(key), &to).unwrap_or_else(|e| panic!("{file} `{key}`: {e}"));
            let copy = crate::formats::read_npy(&to).unwrap();
            assert_eq!(copy.shape, array.shape, "{file} `{key}`");
            let (a, b) = (copy.data.to_f32(), array.data.to_f32());
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())),
                "{file} `{key}`"
            );
            assert_eq!(a.len(), b.len());
            unpacked += 1;
        }
        assert!(unpacked >= 20, "only {unpacked} arrays unpacked");

        // Errors as read_mat's, and no file: a cut in the values, a missing key, a non-numeric one.
        for file in ["cube_u16.mat", "cube_u16_z.mat"] {
            let original = fs::read(fixture(file)).unwrap();
            let cut = dir.join(file);
            fs::write(&cut, &original[..original.len() - 24]).unwrap();
            let to = dir.join("cut.npy");
            let err = unpack_mat(&cut, Some("cube"), &to).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "{file}: {err:?}");
            assert!(!to.exists());
        }
        assert!(matches!(
            unpack_mat(&fixture("mixed_z.mat"), Some("nope"), &dir.join("x.npy")),
            Err(Error::MissingKey { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uncompressed_values_are_read_in_place() {
        // Each numeric variable of an uncompressed file reads in place as its unpacked copy
        // reads; compressed variables and v7.3 files have no values in place.
        let dir = temp_dir("mat-in-place");
        let (mut in_place, mut not) = (0, 0);
        for entry in expected_fixtures() {
            let file = entry["file"].as_str().unwrap();
            let key = entry["key"].as_str();
            if !file.ends_with(".mat") || read_mat(&fixture(file), key).is_err() {
                continue;
            }
            let Some(values) = open_mat_values(&fixture(file), key).unwrap() else {
                assert!(
                    file.ends_with("_z.mat") || file.ends_with("_v73.mat"),
                    "{file}: uncompressed but not in place"
                );
                not += 1;
                continue;
            };
            let to = dir.join("copy.npy");
            unpack_mat(&fixture(file), key, &to).unwrap();
            let copy = NpyFile::open(&to).unwrap();
            assert_eq!((values.shape(), values.fortran_order()), (copy.shape(), true), "{file}");
            let count = copy.shape().iter().product();
            assert_eq!(values.read_values(0, count).unwrap(), copy.read_values(0, count).unwrap(), "{file} {key:?}");
            in_place += 1;
        }
        assert!(in_place >= 15 && not >= 25, "{in_place} in place, {not} not");
        // A file cut inside the values is refused when opened, not when read.
        let original = fs::read(fixture("cube_u16.mat")).unwrap();
        let cut = dir.join("cut.mat");
        fs::write(&cut, &original[..original.len() - 24]).unwrap();
        assert!(matches!(open_mat_values(&cut, Some("cube")), Err(Error::Format { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listings_match_scipy_whosmat() {
        let json = expected_json();
        let listings = json["mat_variables"].as_object().unwrap();
        assert!(listings.len() >= 19);
        for (file, expected) in listings {
            let listed = list_mat_variables(&fixture(file)).unwrap_or_else(|e| panic!("{e}"));
            let listed: Vec<serde_json::Value> =
                listed.iter().map(|v| serde_json::json!([v.name, v.shape, v.class])).collect();
            assert_eq!(&serde_json::Value::from(listed), expected, "{file}");
        }
    }

    #[test]
    fn key_none_takes_the_only_numeric_variable() {
        for file in ["mixed.mat", "mixed_z.mat", "mixed_v73.mat"] {
            let path = fixture(file);
            assert_eq!(read_mat(&path, None).unwrap(), read_mat(&path, Some("labels")).unwrap());
        }
        for file in ["cube_u16.mat", "f32_z.mat"] {
            assert!(read_mat(&fixture(file), None).is_ok(), "{file}");
        }
        let message = format_error(read_mat(&fixture("several_z.mat"), None));
        assert!(
            message.contains("several.mat") || message.contains("several_z.mat"),
            "the message names the file: {message}"
        );
        assert!(message.contains("several numeric variables (first, second, wide, huge, mask)"), "{message}");
    }

    #[test]
    fn missing_key_lists_the_names() {
        let err = read_mat(&fixture("mixed_z.mat"), Some("nope")).unwrap_err();
        assert!(matches!(&err, Error::MissingKey { key, .. } if key == "nope"), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("mixed_z.mat"), "{message}");
        assert!(message.contains("`nope`") && message.contains("title, labels, cells, meta, sp"), "{message}");
    }

    #[test]
    fn non_numeric_and_complex_variables_are_refused() {
        for (key, class) in [("title", "char"), ("cells", "cell"), ("meta", "struct"), ("sp", "sparse")] {
            let v73 = if key == "sp" { "layouts_v73.mat" } else { "mixed_v73.mat" };
            for file in ["mixed.mat", "mixed_z.mat", v73] {
                let message = format_error(read_mat(&fixture(file), Some(key)));
                assert!(message.contains(&format!("`{key}`: is not a numeric array (class {class})")), "{message}");
            }
        }
        let json = expected_json();
        let errors = json["mat_errors"].as_object().unwrap();
        assert!(!errors.is_empty());
        for (file, word) in errors {
            let message = format_error(read_mat(&fixture(file), None));
            assert!(message.contains(word.as_str().unwrap()), "{file}: {message}");
        }
    }

    #[test]
    fn truncated_mat_is_a_format_error() {
        let dir = temp_dir("mat-truncated");
        for file in ["cube_u16.mat", "cube_u16_z.mat"] {
            let original = fs::read(fixture(file)).unwrap();
            let path = dir.join(file);
            fs::write(&path, &original[..original.len() / 2]).unwrap();
            let message = format_error(read_mat(&path, Some("cube")));
            assert!(message.contains(file), "{message}");
            assert!(message.contains("variable at byte 128: truncated file"), "{message}");
            assert!(list_mat_variables(&path).is_err());
        }
        fs::remove_dir_all(&dir).unwrap();

        // Every cut of a one-variable file fails (no panic), in the header or in the variable.
        let path = Path::new("cut.mat");
        for file in ["cube_u16.mat", "cube_u16_z.mat", "f64.mat", "f64_z.mat"] {
            let original = fs::read(fixture(file)).unwrap();
            let key = if file.starts_with("cube") { "cube" } else { "double" };
            assert!(read_mat_bytes(path, &original, Some(key)).is_ok());
            for len in 0..original.len() {
                let result = read_mat_bytes(path, &original[..len], Some(key));
                assert!(result.is_err(), "{file} cut at {len} accepted");
            }
        }
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        // Every byte of a few fixtures set to values that break lengths, types and flags.
        let path = Path::new("corrupt.mat");
        for file in ["matlab_style.mat", "matlab_style_z.mat", "mixed.mat", "several_z.mat"] {
            let original = fs::read(fixture(file)).unwrap();
            let keys: Vec<String> = list_mat_variables(&fixture(file)).unwrap().into_iter().map(|v| v.name).collect();
            for i in HEADER_LEN..original.len() {
                for byte in [0x00, 0x01, 0x0f, 0x80, 0xff] {
                    let mut corrupt = original.clone();
                    corrupt[i] = byte;
                    let _ = scan(&mut std::io::Cursor::new(&corrupt));
                    for key in &keys {
                        let _ = read_mat_bytes(path, &corrupt, Some(key));
                        let _ = unpack_mat_from(
                            path,
                            &mut std::io::Cursor::new(&corrupt),
                            Some(key),
                            (path, &mut std::io::sink()),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn other_files_are_named() {
        let path = Path::new("other.mat");
        // Random bytes, from a fixed linear congruential generator.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<u8> = (0..2000)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                state.to_le_bytes()[7]
            })
            .collect();
        let message = format_error(read_mat_bytes(path, &random, None));
        assert!(message.contains("other.mat: not a MATLAB 5 MAT-file"), "{message}");
        let message = format_error(read_mat_bytes(path, b"MATLAB 5.0", None));
        assert!(message.contains("shorter than the 128-byte header"), "{message}");

        // MATLAB v7.3: an HDF5 file whose user block starts with a MAT-file header.
        let mut v73 =
            b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Fri Jun  7 12:00:00 2024 HDF5 schema 1.00 .".to_vec();
        v73.resize(600, 0);
        let message = format_error(read_mat_bytes(path, &v73, None));
        assert!(message.contains("a MATLAB v7.3 file without its HDF5 data at byte 512"), "{message}");
        v73[512..520].copy_from_slice(HDF5_SIGNATURE);
        let message = format_error(read_mat_bytes(path, &v73, None));
        assert!(message.contains("other.mat: bad HDF5 superblock"), "{message}");
        v73[520] = 2;
        let message = format_error(read_mat_bytes(path, &v73, None));
        assert!(message.contains("HDF5 superblock version 2 is not supported (MATLAB writes version 0)"), "{message}");

        // A big-endian file, and a header of another version.
        let mut header = fs::read(fixture("u8.mat")).unwrap();
        header[126..128].copy_from_slice(b"MI");
        assert!(format_error(read_mat_bytes(path, &header, None)).contains("big-endian"));
        header[126..128].copy_from_slice(b"IM");
        header[124] = 0x02;
        assert!(format_error(read_mat_bytes(path, &header, None)).contains("version 0x0102"));

        // Corrupt zlib data in a compressed variable.
        let mut compressed = fs::read(fixture("u8_z.mat")).unwrap();
        let middle = compressed.len() - 30;
        compressed[middle..].iter_mut().for_each(|b| *b ^= 0x5a);
        let message = format_error(read_mat_bytes(path, &compressed, Some("bytes")));
        assert!(message.contains("variable") && message.contains("compressed data"), "{message}");

        // A file with no variable at all.
        let empty = &fs::read(fixture("u8.mat")).unwrap()[..HEADER_LEN];
        assert!(format_error(read_mat_bytes(path, empty, None)).contains("no numeric variable"));
    }

    #[test]
    fn stored_types_convert_to_the_class() {
        assert_eq!(to_class(NumData::U8(vec![0, 255]), MX_DOUBLE).unwrap(), NumData::F64(vec![0.0, 255.0]));
        assert_eq!(to_class(NumData::I16(vec![-5]), MX_SINGLE).unwrap(), NumData::F32(vec![-5.0]));
        assert_eq!(to_class(NumData::U32(vec![7]), MX_INT32).unwrap(), NumData::I32(vec![7]));
        assert_eq!(to_class(NumData::F64(vec![3.0]), MX_UINT8).unwrap(), NumData::U8(vec![3]));
        for (stored, class) in [
            (NumData::I16(vec![-1]), MX_UINT8),
            (NumData::U32(vec![300]), MX_UINT8),
            (NumData::F64(vec![0.5]), MX_INT32),
            (NumData::F64(vec![f64::NAN]), MX_INT16),
            (NumData::U64(vec![u64::MAX]), MX_INT64),
        ] {
            let err = to_class(stored, class).unwrap_err();
            assert!(err.contains("does not fit its class"), "{err}");
        }
    }
}
