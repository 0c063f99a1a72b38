//! Array files: NumPy `.npy`, MATLAB 5 and MATLAB v7.3 (HDF5) MAT-files.
//!
//! Each reader takes a path; each also has a twin that reads from memory or any reader that
//! can seek ([`read_npy_bytes`], [`NpyFile::from_reader`], [`read_mat_from`]...), which is how
//! the fuzz targets in `fuzz/` feed them bytes without writing files.

use std::io::{Read, Seek};

mod hdf5;
mod mat;
mod mat73;
mod npy;

pub use mat::{
    MatVariable, list_mat_variables, list_mat_variables_from, open_mat_values, open_mat_values_from, read_mat,
    read_mat_from, unpack_mat, unpack_mat_from,
};
pub use mat73::MatArray;
#[cfg(test)]
pub(crate) use npy::tests::{expected_fixtures, fixtures as npy_fixtures, temp_dir};
pub use npy::{NpyFile, read_npy, read_npy_bytes, write_npy, write_npy_in_pieces};

/// What the readers that keep a file open read from: a file, or bytes in memory
/// (`std::io::Cursor`).
pub trait Source: Read + Seek + Send {}

impl<T: Read + Seek + Send> Source for T {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Cursor;
    use std::path::Path;

    use super::*;

    /// Files of a few hundred bytes that claim arrays of 80 GB (100000 x 100000 float64 and more):
    /// a `.npy` file, two MATLAB 5 files (the values in place and compressed) and a MATLAB v7.3
    /// one (a chunked dataset whose dimensions were made enormous, most of its chunks never
    /// written, as a partial write leaves them).
    fn enormous_claims() -> Vec<(&'static str, Vec<u8>)> {
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }\n";
        npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        npy.extend_from_slice(&[0; 16]);
        assert!(npy.len() <= 100, "{} bytes", npy.len());

        // MATLAB 5: a double 100000 x 100000 `x` whose real part claims 4 GB (the most a tag
        // can), in an element that is honest about its own 48 bytes.
        let mut matrix = Vec::new();
        for (data_type, data) in [(6u32, &[6u8, 0, 0, 0, 0, 0, 0, 0][..]), (5, &[0xa0, 0x86, 1, 0, 0xa0, 0x86, 1, 0])] {
            matrix.extend_from_slice(&data_type.to_le_bytes());
            matrix.extend_from_slice(&(data.len() as u32).to_le_bytes());
            matrix.extend_from_slice(data);
        }
        matrix.extend_from_slice(&[1, 0, 1, 0, b'x', 0, 0, 0]); // name, small element
        matrix.extend_from_slice(&[9, 0, 0, 0, 0xf8, 0xff, 0xff, 0xff]); // miDOUBLE, 4 GB
        matrix.extend_from_slice(&[0; 8]);
        let mut header = b"MATLAB 5.0 MAT-file, crafted".to_vec();
        header.resize(124, b' ');
        header.extend_from_slice(&[0, 1, b'I', b'M']);
        let element = |data_type: u32, content: &[u8]| {
            let mut bytes = header.clone();
            bytes.extend_from_slice(&data_type.to_le_bytes());
            bytes.extend_from_slice(&(content.len() as u32).to_le_bytes());
            bytes.extend_from_slice(content);
            bytes
        };
        let mat5 = element(14, &matrix);
        // Compressed: the zlib stream holds an miMATRIX tag claiming 4 GB, and the 48 bytes.
        let mut tagged = vec![14, 0, 0, 0, 0xf8, 0xff, 0xff, 0xff];
        tagged.extend_from_slice(&matrix);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut zlib, &tagged).unwrap();
        let mat5_z = element(15, &zlib.finish().unwrap());

        // v7.3: the 3 x 4 x 2 `cube` of nan_scene_v73.mat, its dataspace (version 1, rank 3,
        // HDF5's dimensions 2, 4, 3) made 100000 x 100000 x 3.
        let mut v73 = std::fs::read(npy::tests::fixtures().join("nan_scene_v73.mat")).unwrap();
        let dims = |d: [u64; 3]| d.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<u8>>();
        let found: Vec<usize> =
            v73.windows(24).enumerate().filter(|(_, w)| *w == dims([2, 4, 3])).map(|(i, _)| i).collect();
        assert!(!found.is_empty(), "the dataspace of `cube` is not in nan_scene_v73.mat");
        for at in found {
            v73[at..at + 24].copy_from_slice(&dims([100_000, 100_000, 3]));
        }
        vec![("huge.npy", npy), ("huge.mat", mat5), ("huge_z.mat", mat5_z), ("huge_v73.mat", v73)]
    }

    /// Every reader refuses each enormous claim; run in a child process whose address space is
    /// capped (see `enormous_claims_fit_in_100_mb`).
    #[test]
    #[ignore = "run by enormous_claims_fit_in_100_mb, in a process capped at 100 MB"]
    fn enormous_claims_are_refused() {
        for (name, bytes) in enormous_claims() {
            let path = Path::new(name);
            let refused = |what: &str, result: Result<(), crate::Error>| match result {
                Err(e) => println!("{name}: {what}: {e}"),
                Ok(()) => panic!("{name}: {what} accepted an 80 GB claim"),
            };
            if name.ends_with(".npy") {
                refused("read_npy", read_npy_bytes(path, &bytes).map(drop));
                refused("NpyFile", NpyFile::from_reader(path, Cursor::new(bytes.clone())).map(drop));
                continue;
            }
            refused("read_mat", read_mat_from(path, &mut Cursor::new(&bytes), None).map(drop));
            let mut sink = std::io::sink();
            refused("unpack_mat", unpack_mat_from(path, &mut Cursor::new(&bytes), None, (path, &mut sink)));
            // Opened in place (MATLAB 5) or by boxes (v7.3): refused when opened, or the open
            // variable's largest box refused.
            match open_mat_values_from(path, Cursor::new(bytes.clone()), None) {
                Ok(Some(file)) => refused("NpyFile::read_values", file.read_values(0, usize::MAX).map(drop)),
                Ok(None) => assert!(name.contains("v73") || name.contains("_z"), "{name}: not opened in place"),
                Err(e) => println!("{name}: open_mat_values: {e}"),
            }
            match MatArray::open_from(path, Cursor::new(bytes.clone()), None) {
                Ok(Some(array)) => {
                    let all: Vec<_> = array.shape().iter().map(|&d| 0..d).collect();
                    refused("MatArray::read_box", array.read_box(&all).map(drop));
                }
                Ok(None) => assert!(!name.contains("v73"), "{name}: not opened as v7.3"),
                Err(e) => println!("{name}: MatArray::open: {e}"),
            }
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: unknown");
        println!("peak resident memory {peak}");
    }

    /// The enormous claims are refused by a process that cannot map more than 100 MB of memory
    /// in all (`ulimit -v`, this test binary, its code and the test harness included): none of
    /// the readers allocated for the claim before checking it.
    #[cfg(target_os = "linux")]
    #[test]
    fn enormous_claims_fit_in_100_mb() {
        let exe = std::env::current_exe().unwrap();
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -v 102400 && exec "$0" --exact formats::tests::enormous_claims_are_refused --ignored --nocapture --test-threads 1"#)
            .arg(exe)
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "the capped process failed ({}):\n{stdout}\n{stderr}", output.status);
        assert!(stdout.contains("1 passed"), "the capped process ran no test:\n{stdout}");
        let peak = stdout.lines().find(|l| l.contains("peak resident memory")).unwrap_or("no peak reported");
        println!("{peak}");
    }
}
