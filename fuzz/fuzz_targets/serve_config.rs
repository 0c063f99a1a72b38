//! A model repository's `config.pbtxt` as `runtime serve` reads it (protobuf's text format
//! through prost-reflect), completed against a graph; see `prism_fuzz::protocol::config_pbtxt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| prism_fuzz::protocol::config_pbtxt(bytes));
