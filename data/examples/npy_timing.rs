//! How long `read_npy` takes on a ~50 MB float32 file, and `NpyFile::read_values` on the same
//! file a run at a time (as scenes are read by tiles). A measurement to print, not a test:
//!
//! ```text
//! cargo run --release -p prism-data --example npy_timing
//! ```

use std::time::{Duration, Instant};

use prism_data::formats::{NpyFile, read_npy, write_npy};
use prism_data::{NumArray, NumData};

fn main() -> Result<(), prism_data::Error> {
    let dir = tempfile::tempdir().map_err(|e| prism_data::Error::io(std::env::temp_dir(), e))?;
    let path = dir.path().join("cube.npy");
    // 1000 x 1000 x 13 float32: 52 MB of values.
    let shape = vec![1000, 1000, 13];
    let values: Vec<f32> = (0..13_000_000u32).map(|i| (i % 9973) as f32 * 0.25).collect();
    write_npy(&path, &NumArray::new(shape, NumData::F32(values))?)?;
    let size = std::fs::metadata(&path).map_err(|e| prism_data::Error::io(&path, e))?.len();

    let runs = 7;
    let mut whole = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let array = read_npy(&path)?;
        whole.push(start.elapsed());
        assert_eq!(array.len(), 13_000_000);
    }
    // The whole file again, 1000 x 13 values (a row of the cube) at a time.
    let mut runs_of_rows = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let file = NpyFile::open(&path)?;
        let row = 1000 * 13;
        for y in 0..1000 {
            let values = file.read_values(y * row, row)?;
            assert_eq!(values.len(), row);
        }
        runs_of_rows.push(start.elapsed());
    }
    println!("file: {size} bytes, {runs} runs each (min / median)");
    println!("read_npy:                 {}", summary(&mut whole));
    println!("read_values, row by row:  {}", summary(&mut runs_of_rows));
    Ok(())
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!("{:.1} ms / {:.1} ms", ms(times[0]), ms(times[times.len() / 2]))
}
