//! Embedding scene classification: a hyperspectral scene of any size, classified a band of rows
//! at a time and written as a label array as it goes, so that memory stays one tile's.
//!
//! ```sh
//! cargo run --release -p prism-runtime --example scene -- hybridsn.onnx scene.npy labels.npy
//! ```
//!
//! The label array holds the model's class values (0 for none), as `runtime infer` writes it.

use std::path::PathBuf;

use prism_data::NumData;
use prism_data::formats::write_npy_in_pieces;
use prism_runtime::model::{LoadOptions, Model, Pipeline};
use prism_runtime::scene::open_scene;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let usage = "usage: scene MODEL.onnx SCENE.npy|.mat LABELS.npy";
    let (Some(model_path), Some(scene_path), Some(labels_path)) = (args.next(), args.next(), args.next()) else {
        return Err(usage.into());
    };

    let model = Model::load(&model_path, &LoadOptions::default())?;
    let Pipeline::Scene(pipeline) = &model.info().pipeline else {
        return Err(format!("{} is not a scene model", model_path.display()).into());
    };
    let scene = open_scene(&scene_path, None)?;
    let (height, width, _) = scene.size();
    let mut counts = vec![0usize; model.info().class_names.len()];

    write_npy_in_pieces(&labels_path, &[height, width], "int64", |put| {
        model.classify_scene_rows(&*scene, None, 32, &|_, _| {}, &mut |first, rows| {
            eprintln!("rows {first}..{} of {height}", first + rows.len() / width);
            for k in rows.iter().flatten() {
                if let Some(count) = counts.get_mut(usize::from(*k)) {
                    *count += 1;
                }
            }
            let values: Vec<i64> = rows.iter().map(|&c| pipeline.label_value(c)).collect();
            Ok(put(&NumData::I64(values))?)
        })
    })?;

    for (name, count) in model.info().class_names.iter().zip(&counts) {
        println!("{name}: {count} pixels");
    }
    Ok(())
}
