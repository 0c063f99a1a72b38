//! Where the ONNX Runtime shared library is looked for. Pure path logic: nothing is loaded here,
//! so it compiles (and `runtime info` can report) without the `ort` feature.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How users get the library, appended to every "not found" error.
pub const ORT_HELP: &str = "scripts/setup.sh installs onnxruntime 1.31.1 into the project's .venv, or set ORT_DYLIB_PATH to a libonnxruntime.so";

/// The name the system loader resolves when nothing else is found.
pub(crate) const SYSTEM_NAME: &str = "libonnxruntime.so";

/// The project's Python environment, where `scripts/setup.sh` installs onnxruntime.
const PROJECT_VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv");

/// One place the library may be, and why it is looked for there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub source: &'static str,
    pub path: PathBuf,
}

/// Where the ONNX Runtime library is found, in order: the environment variable
/// `ORT_DYLIB_PATH`, the project's `.venv` (`lib/python3*/site-packages/onnxruntime/capi/
/// libonnxruntime.so*`, as pip installs it), then the active `$VIRTUAL_ENV` likewise. `None` when
/// none of them holds it, or when `ORT_DYLIB_PATH` names a file that does not exist (what the
/// user asked for is not there; the others are not tried); [`crate::engine::load`] then still
/// asks the system loader for `libonnxruntime.so`. An explicit
/// [`crate::engine::EngineOptions::ort_library`] wins over all of these.
pub fn ort_library() -> Option<PathBuf> {
    let first = search(env_library(), std::env::var_os("VIRTUAL_ENV")).into_iter().next()?;
    first.path.is_file().then_some(first.path)
}

/// The library `ORT_DYLIB_PATH` names, when it is set and not empty.
pub(crate) fn env_library() -> Option<OsString> {
    std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty())
}

/// Every place tried, in order, with the explicit path first when there is one. The last entry
/// is the bare name for the system loader.
#[cfg_attr(not(feature = "ort"), allow(dead_code))]
pub(crate) fn candidates(explicit: Option<&Path>) -> Vec<Candidate> {
    let mut all = Vec::new();
    if let Some(path) = explicit {
        all.push(Candidate { source: "--ort-library", path: path.to_path_buf() });
    }
    all.extend(search(env_library(), std::env::var_os("VIRTUAL_ENV")));
    all.push(Candidate { source: "system loader", path: PathBuf::from(SYSTEM_NAME) });
    all
}

fn search(env_path: Option<OsString>, virtual_env: Option<OsString>) -> Vec<Candidate> {
    let mut found = Vec::new();
    if let Some(path) = env_path.filter(|p| !p.is_empty()) {
        found.push(Candidate { source: "ORT_DYLIB_PATH", path: PathBuf::from(path) });
    }
    for (source, venv) in
        [("project .venv", Some(PathBuf::from(PROJECT_VENV))), ("VIRTUAL_ENV", virtual_env.map(PathBuf::from))]
    {
        if let Some(path) = venv.and_then(|v| in_venv(&v)) {
            if !found.iter().any(|c: &Candidate| same_file(&c.path, &path)) {
                found.push(Candidate { source, path });
            }
        }
    }
    found
}

/// `venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`, the highest version
/// when several match.
fn in_venv(venv: &Path) -> Option<PathBuf> {
    let mut matches = Vec::new();
    for python in read_dir_names(&venv.join("lib")).into_iter().filter(|n| n.starts_with("python3")) {
        let capi = venv.join("lib").join(&python).join("site-packages/onnxruntime/capi");
        for name in read_dir_names(&capi) {
            if name == SYSTEM_NAME || name.starts_with(&format!("{SYSTEM_NAME}.")) {
                matches.push(capi.join(name));
            }
        }
    }
    matches.sort_by_key(|p| version_key(p));
    matches.pop()
}

fn read_dir_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

/// `libonnxruntime.so.1.31.1` -> `[1, 31, 1]`, so that 1.9 sorts before 1.31.
fn version_key(path: &Path) -> Vec<u64> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.trim_start_matches(SYSTEM_NAME).split('.').filter_map(|p| p.parse().ok()).collect()
}

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        let mut paths = [PathBuf::from("libonnxruntime.so.1.31.1"), PathBuf::from("libonnxruntime.so.1.9.0")];
        paths.sort_by_key(|p| version_key(p));
        assert_eq!(paths[1], PathBuf::from("libonnxruntime.so.1.31.1"));
    }

    #[test]
    fn a_venv_layout_is_searched() {
        let dir = std::env::temp_dir().join(format!("prism-ortlib-{}", std::process::id()));
        let capi = dir.join("lib/python3.12/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        for name in ["libonnxruntime.so.1.31.1", "libonnxruntime_providers_shared.so"] {
            std::fs::write(capi.join(name), b"").unwrap();
        }
        assert_eq!(in_venv(&dir), Some(capi.join("libonnxruntime.so.1.31.1")));
        let found = search(Some("/nowhere/libonnxruntime.so".into()), Some(dir.clone().into_os_string()));
        assert_eq!(found[0], Candidate { source: "ORT_DYLIB_PATH", path: "/nowhere/libonnxruntime.so".into() });
        assert!(found.iter().any(|c| c.source == "VIRTUAL_ENV" && c.path == capi.join("libonnxruntime.so.1.31.1")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
