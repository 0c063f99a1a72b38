//! The smallest embedding: a model and an RGB buffer the application already holds (from a
//! camera, a decoder of its own...), no file formats, no ONNX Runtime. Builds with
//!
//! ```sh
//! cargo run --release -p prism-runtime --no-default-features --features tract --example embed -- garbage.onnx
//! ```

use prism_runtime::RgbImage;
use prism_runtime::model::{LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: embed MODEL.onnx")?;
    let model = Model::load(path.as_ref(), &LoadOptions::default())?;
    // A 320 x 240 frame, 3 bytes a pixel: here a gradient stands in for the camera's.
    let (width, height) = (320, 240);
    let rgb: Vec<u8> = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
    let image = RgbImage::from_raw(width, height, rgb).ok_or("not width x height x 3 bytes")?;
    for p in &model.classify_images(&[image], 3)?[0] {
        println!("{} {:.3}", p.label, p.probability);
    }
    Ok(())
}
