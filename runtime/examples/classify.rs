//! Embedding the runtime in an application: load a model once, share it between threads, and
//! classify images.
//!
//! ```sh
//! cargo run --release -p prism-runtime --example classify -- garbage.onnx a.jpg b.jpg
//! # without ONNX Runtime, pure Rust:
//! cargo run --release -p prism-runtime --no-default-features --features tract --example classify -- garbage.onnx a.jpg
//! ```

use std::path::PathBuf;

use prism_runtime::images::load_rgb;
use prism_runtime::model::{LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let model_path = args.next().ok_or("usage: classify MODEL.onnx IMAGE...")?;
    let images: Vec<PathBuf> = args.collect();

    // Two engines: two threads may run the graph at the same time.
    let model = Model::load(&model_path, &LoadOptions { sessions: 2, ..Default::default() })?;
    println!("{} on {} ({})", model.info().name, model.engine(), model.provider());

    std::thread::scope(|s| {
        let handles: Vec<_> = images
            .iter()
            .map(|path| {
                let model = &model;
                s.spawn(move || -> Result<String, prism_runtime::Error> {
                    let top = model.classify_images(&[load_rgb(path)?], 1)?;
                    let best = &top[0][0];
                    Ok(format!("{}: {} ({:.1}%)", path.display(), best.label, best.probability * 100.0))
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(Ok(line)) => println!("{line}"),
                Ok(Err(e)) => eprintln!("error: {e}"),
                Err(_) => eprintln!("error: a worker panicked"),
            }
        }
    });
    Ok(())
}
