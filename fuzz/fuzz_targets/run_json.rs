//! A run directory's JSON files as the exporter reads them (`RunJson::parse`, the part of
//! `RunDir::read` before the weights): the input is `config.json`, then after a NUL byte
//! `preprocessing.json`, then after another `metrics.json` (absent without a second NUL).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut parts = bytes.splitn(3, |&b| b == 0).map(|part| String::from_utf8_lossy(part).into_owned());
    let files = [parts.next(), parts.next(), parts.next()];
    let _ = prism_exporter::RunJson::parse(Path::new("run"), |name| {
        let at = match name {
            prism_models::run::CONFIG => 0,
            prism_models::run::PREPROCESSING => 1,
            _ => 2,
        };
        Ok(files[at].clone())
    });
});
