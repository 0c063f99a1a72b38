//! Prism's end-to-end tests, in one test binary. Tests that need `../shared` (CI has it, a
//! user's machine may not) or access to PyPI (where they download data from, as
//! `scripts/setup.sh` does its packages) say so in their name.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod capi;
mod exporter;
mod models;
mod runtime;
mod serve;
mod trainer;
