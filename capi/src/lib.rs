//! Prism's runtime for C and C++ programs: `libprism.so`, `libprism.a` and `include/prism.h`
//! (generated from this crate by cbindgen; `cargo test -p prism-capi` fails when it is stale).
//!
//! The calls, in the order a program makes them:
//!
//! ```c
//! PrismOptions *options = NULL;
//! prism_options_new(&options);
//! prism_options_set_engine(options, "tract");            // optional: "auto", "ort", "tract"
//! PrismModel *model = NULL;
//! if (prism_model_open("garbage.onnx", options, &model) != PRISM_STATUS_OK)
//!     fprintf(stderr, "%s\n", prism_last_error());
//! PrismPrediction top[3];
//! size_t n = 0;
//! prism_classify_rgb8(model, rgb, width * height * 3, width, height, top, 3, &n);
//! prism_model_free(model);
//! prism_options_free(options);
//! ```
//!
//! # Errors
//! Every call returns a [`PrismStatus`]; on failure [`prism_last_error`] gives a one-line
//! message naming the problem, for the calling thread. Nothing aborts the host: null pointers,
//! buffers of the wrong length, unknown or freed handles, missing files and corrupt models are
//! errors, and a panic inside the library is caught and reported as [`PrismStatus::Panic`].
//!
//! # Handles and threads
//! Handles (`PrismOptions`, `PrismModel`, `PrismTensors`, `PrismImage`) are numbers the library
//! looks up, never pointers into its memory: a handle used after its `_free` (or freed twice, or
//! of the wrong kind) is reported as [`PrismStatus::InvalidHandle`]. A `PrismModel` may be shared
//! by threads: it holds `prism_options_set_sessions` engines (one by default) and a call waits
//! for a free one. Strings and arrays a handle hands out stay valid until that handle is freed.

mod classify;
mod handles;
mod image;
mod model;
mod options;
mod status;

pub use classify::*;
pub use image::*;
pub use model::*;
pub use options::*;
pub use status::*;

/// The library's version, `"MAJOR.MINOR.PATCH"` (the header's `PRISM_VERSION`), static.
#[unsafe(no_mangle)]
pub extern "C" fn prism_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
