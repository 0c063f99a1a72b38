//! Helpers of Prism's end-to-end tests: the project's Python environment, the release
//! binaries, and tensor comparisons that say where and by how much two results differ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace").to_path_buf()
}

/// The project's Python (scripts/setup.sh --test installs it), or `PRISM_PYTHON`.
pub fn python() -> PathBuf {
    let python = std::env::var_os("PRISM_PYTHON").map(PathBuf::from).unwrap_or_else(|| root().join(".venv/bin/python"));
    assert!(python.exists(), "{} is missing: run scripts/setup.sh --test first", python.display());
    python
}

/// Runs a script of tests/python with the project's Python and returns its stdout; panics with
/// its stderr when it fails.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out =
        Command::new(python()).arg(root().join("tests/python").join(script)).args(args).output().expect("python runs");
    assert!(out.status.success(), "{script} {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The path of a release binary of the workspace, built once per test run (a no-op when it is
/// up to date), so the tests never run stale binaries.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .args([
                "build",
                "--release",
                "--bins",
                "-p",
                "prism-trainer",
                "-p",
                "prism-exporter",
                "-p",
                "prism-runtime",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
    });
    target_dir().join("release").join(name)
}

/// Cargo's target folder: `CARGO_TARGET_DIR` when set (relative to the workspace), else
/// `<workspace>/target`. The binaries built by [`bin`] land there.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// Runs a binary with arguments, without standard input.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name)).args(args).stdin(std::process::Stdio::null()).output().expect("binary runs")
}

/// Asserts that a command failed the way users should see failures: a non-zero exit and one
/// line on stderr containing `expected`, no panic, no backtrace.
pub fn assert_one_line_error(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure, got success; stderr: {stderr}");
    assert_ne!(out.status.code(), Some(101), "exit code 101 is a panic: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{stderr}");
    assert!(lines[0].contains(expected), "expected `{expected}` in: {}", lines[0]);
}

/// How close two float tensors must be.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub atol: f32,
    pub rtol: f32,
}

impl Tolerance {
    /// Same computation, same library: only the order of floating-point sums differs.
    pub const CLOSE: Tolerance = Tolerance { atol: 1e-5, rtol: 1e-4 };
    /// Different engines or algorithms on float32 (im2col vs direct, fused batch norm...).
    pub const APPROX: Tolerance = Tolerance { atol: 1e-4, rtol: 1e-3 };
}

/// Compares whole tensors element by element; on failure reports the first element out of
/// tolerance, how many are, and the largest difference.
pub fn assert_close(what: &str, got: &[f32], expected: &[f32], tol: Tolerance) {
    assert_eq!(got.len(), expected.len(), "{what}: {} values, expected {}", got.len(), expected.len());
    let mut first = None;
    let mut outliers = 0;
    let mut largest = 0f32;
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let diff = (g - e).abs();
        largest = largest.max(diff);
        // NaN differences count as out of tolerance.
        let within = diff <= tol.atol + tol.rtol * e.abs();
        if !within {
            outliers += 1;
            first.get_or_insert((i, *g, *e));
        }
    }
    if let Some((i, g, e)) = first {
        panic!(
            "{what}: {outliers} of {} values out of tolerance {tol:?}; first at index {i}: got {g}, expected {e}; largest difference {largest}",
            got.len()
        );
    }
}

/// A small HybridSN exported by Prism from a PyTorch-made run directory (`make_run.py`: 15 PCA
/// components of 30 raw bands, 11 x 11 windows, 4 classes, seeded): `dir/hybridsn.onnx`, with
/// its whole-scene graph `dir/hybridsn.scene.onnx` beside it.
pub fn small_hybridsn(dir: &Path, seed: u64) -> PathBuf {
    let config =
        serde_json::json!({"arch": "hybridsn", "bands": 15, "window": 11, "classes": 4, "variant": {}, "dropout": 0.4});
    let jobs = serde_json::json!([{"config": config, "dir": dir.join("run"), "seed": seed, "raw_bands": 30}]);
    std::fs::write(dir.join("jobs.json"), jobs.to_string()).unwrap();
    run_python("make_run.py", &[dir.join("jobs.json").to_str().unwrap()]);
    let onnx = dir.join("hybridsn.onnx");
    let export = run("exporter", &["--run", dir.join("run").to_str().unwrap(), "--out", onnx.to_str().unwrap()]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    onnx
}
