//! `include/prism.h` is what cbindgen makes of this crate now: a stale header would let C
//! programs call functions with the wrong signature.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml reads");
    config.after_includes = config.after_includes.map(|s| s.replace("@VERSION@", env!("CARGO_PKG_VERSION")));
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut generated);
    let path = crate_dir.join("include/prism.h");
    if std::env::var_os("PRISM_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("header written");
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with `PRISM_BLESS=1 cargo test -p prism-capi header`",
        path.display()
    );
}
