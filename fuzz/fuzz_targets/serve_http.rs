//! `runtime serve`'s HTTP inference body (`decode_http_body`: JSON, or JSON and the binary tensor
//! data extension), then the model's check; see `prism_fuzz::protocol::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| prism_fuzz::protocol::http(bytes));
