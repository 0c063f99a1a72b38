//! Prism's data: what comes in and what goes out, shared by the trainer, the exporter and the
//! runtime so that what is trained is fed exactly as what is deployed.
//!
//! Always built (few dependencies, nothing that parses files): typed arrays ([`NumArray`]),
//! scenes in memory and the [`scene::SceneSource`] trait that scene inference reads blocks
//! through, the resize/crop/scale of images ([`images`]), OA/AA/kappa and the confusion matrix
//! ([`metrics`]), and atomic writes. Behind features:
//!
//! - `files`: array files ([`formats`]: `.npy`, MATLAB 5 and v7.3), scenes and ground truths read
//!   from them by tiles, JPEG and PNG decoding;
//! - `pictures`: class maps written in strips, training curves, per-class bars and confusion
//!   matrices as PNG ([`pictures`]).

mod array;
mod atomic;
mod cache;
mod error;
#[cfg(feature = "files")]
pub mod formats;
pub mod images;
pub mod metrics;
#[cfg(feature = "pictures")]
pub mod pictures;
pub mod scene;

pub use array::{NumArray, NumData};
pub use atomic::{write_atomic, write_bytes_atomic};
pub use cache::{builtin_files, cache_dir};
pub use error::{Error, Result};
