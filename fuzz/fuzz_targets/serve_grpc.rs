//! `runtime serve`'s gRPC `ModelInferRequest` (prost's decoding, then `decode_grpc`), then the
//! model's check; see `prism_fuzz::protocol::grpc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| prism_fuzz::protocol::grpc(bytes));
