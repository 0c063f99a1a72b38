//! Where downloaded data sets are kept, so that the trainer that fetches them and the exporter
//! that reads their pixels again for calibration agree on the place.

use std::path::PathBuf;

/// `$PRISM_CACHE`, else `$XDG_CACHE_HOME/prism`, else `~/.cache/prism`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PRISM_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("prism");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/prism")
}

/// The scene and ground-truth files of a built-in data set in the cache (present or not), by
/// the name `trainer fetch` takes; `None` for a name that is not built in.
pub fn builtin_files(dataset: &str) -> Option<(PathBuf, PathBuf)> {
    match dataset {
        "indian-pines" => {
            let dir = cache_dir().join("indian-pines");
            Some((dir.join("Indian_pines_corrected.npy"), dir.join("Indian_pines_gt.npy")))
        }
        _ => None,
    }
}
