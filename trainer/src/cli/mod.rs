//! The command line: each command turns its flags into a validated plan and calls the library.

pub mod bench;
pub mod eval;
pub mod fetch;
pub mod fit;
pub mod summary;
pub mod sweep;

// The one-line error reporting all three binaries share.
pub use prism_cli::{clap_error, one_line, quiet_on_closed_pipe};
