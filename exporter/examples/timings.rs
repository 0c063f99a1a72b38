//! Timings of an exported run on the runtime's engines, as ratios measured in the same run:
//!
//! - tract at batch 1 and batch 8, the engine's per-sample split of graphs with 3-D
//!   convolutions against tract run directly on the whole batch;
//! - ONNX Runtime (CPU) at the same batch sizes;
//! - for scene models with a whole-scene graph: one run over a `SIZE x SIZE` scene against all
//!   its windows through the window graph.
//!
//! ```text
//! cargo run --release -p prism-exporter --example timings -- RUN_DIR [SIZE]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use ndarray::{ArrayD, Axis};
use prism_exporter::scene_graph::{random_scene, scene_windows};
use prism_exporter::{ExportOptions, RunDir, export};
use prism_models::run::Preprocessing;
use prism_runtime::engine::{self, Engine, EngineChoice, EngineOptions, Provider};
use tract_onnx::prelude::*;

fn seconds_per_call(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    for _ in 0..repeats {
        f();
    }
    start.elapsed().as_secs_f64() / repeats as f64
}

fn batch(input: &ArrayD<f32>, n: usize) -> ArrayD<f32> {
    let views: Vec<_> = (0..n).map(|i| input.index_axis(Axis(0), i % input.shape()[0]).insert_axis(Axis(0))).collect();
    ndarray::concatenate(Axis(0), &views).unwrap_or_else(|e| panic!("{e}"))
}

fn load(model: &std::path::Path, engine: EngineChoice) -> Box<dyn Engine> {
    let options = EngineOptions { engine, provider: Provider::Cpu, ..Default::default() };
    engine::load(model, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let run_dir = PathBuf::from(args.next().ok_or("usage: timings RUN_DIR [SIZE]")?);
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(145);
    let out = std::env::temp_dir().join(format!("prism-timings-{}.onnx", std::process::id()));
    let report = export(&run_dir, &ExportOptions { out: Some(out.clone()), parity: None, ..Default::default() })?;
    let run = RunDir::read(&run_dir)?;
    let input = run.sample()?.input;
    println!("{} ({} nodes)", report.model, report.nodes);

    println!("per sample, milliseconds:");
    let mut tract = load(&out, EngineChoice::Tract);
    let mut ort = load(&out, EngineChoice::Ort);
    for n in [1, 8] {
        let x = batch(&input, n);
        let t = seconds_per_call(3, || drop(tract.run(x.view())));
        let o = seconds_per_call(3, || drop(ort.run(x.view())));
        println!(
            "  batch {n}: tract engine {:.2}, ort {:.2}, tract/ort {:.1}x",
            1e3 * t / n as f64,
            1e3 * o / n as f64,
            t / o
        );
    }
    // tract on the whole batch of 8, as the engine would without splitting.
    let plan = tract_onnx::onnx()
        .model_for_path(&out)?
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), batch(&input, 8).shape()))?
        .into_optimized()?
        .into_runnable()?;
    let x8 = batch(&input, 8);
    let whole = seconds_per_call(2, || drop(plan.run(tvec!(Tensor::from(x8.clone()).into()))));
    let split = seconds_per_call(2, || drop(tract.run(x8.view())));
    println!(
        "  tract batch 8 unsplit {:.2} ms/sample, split {:.2} ms/sample: {:.1}x faster split",
        1e3 * whole / 8.0,
        1e3 * split / 8.0,
        whole / split
    );

    if let (Some(scene), Some(Preprocessing::Scene(pre))) = (&report.scene_graph.path, &run.preprocessing) {
        let raw = random_scene(pre.raw_bands, size, size, (0.0, 0.6), 1);
        let windows = scene_windows(&raw, pre);
        for engine in [EngineChoice::Ort, EngineChoice::Tract] {
            let mut dense = load(scene, engine);
            let mut windowed = load(&out, engine);
            let d = seconds_per_call(1, || drop(dense.run(raw.view().into_dyn())));
            // tract takes minutes for every window of a large scene: time 1,024 and scale.
            let all = windows.shape()[0];
            let timed = if engine == EngineChoice::Tract { all.min(1024) } else { all };
            let part = windows.slice_axis(Axis(0), (0..timed).into());
            let w = seconds_per_call(1, || {
                for chunk in part.axis_chunks_iter(Axis(0), 256) {
                    drop(windowed.run(chunk.into_dyn()));
                }
            }) * all as f64
                / timed as f64;
            let note = if timed < all { format!(" (scaled from {timed} windows)") } else { String::new() };
            println!(
                "{size}x{size} scene on {}: whole-scene graph {d:.2} s, every window {w:.2} s{note}: {:.1}x",
                dense.engine(),
                w / d
            );
        }
    }
    let _ = std::fs::remove_file(&out);
    if let Some(scene) = report.scene_graph.path {
        let _ = std::fs::remove_file(scene);
    }
    Ok(())
}
