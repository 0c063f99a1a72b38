//! Lets the trainer's binaries and tests find libtorch without `LD_LIBRARY_PATH`, and keeps
//! `libtorch_cuda.so` linked so that CUDA is available where it exists.

use std::path::PathBuf;

fn main() {
    // torch-sys (links = "tch") reports the libtorch lib folder it linked against.
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else { return };
    let lib = PathBuf::from(lib);
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // The linker's --as-needed drops libtorch_cuda.so because no symbol of it is referenced
    // directly; without it libtorch never registers its CUDA backend.
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
