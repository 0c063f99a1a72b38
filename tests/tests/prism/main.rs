//! Prism's end-to-end tests, in one test binary. Tests that need `../shared` (CI has it, a
//! user's machine may not) say so in their name.

mod exporter;
mod models;
mod trainer;
