//! Draws one picture of each kind from made-up data, for looking at:
//! `cargo run --release -p prism-data --example pictures -- OUT_DIR` writes `curves.png`,
//! `per_class.png`, `confusion.png` and `class_map.png` into `OUT_DIR` (default `pictures`).

use std::path::PathBuf;

use prism_data::metrics::Report;
use prism_data::pictures::{Panel, Series, write_chart, write_class_map, write_confusion, write_per_class_bars};

const CLASSES: [&str; 16] = [
    "Alfalfa",
    "Corn-notill",
    "Corn-mintill",
    "Corn",
    "Grass-pasture",
    "Grass-trees",
    "Grass-pasture-mowed",
    "Hay-windrowed",
    "Oats",
    "Soybean-notill",
    "Soybean-mintill",
    "Soybean-clean",
    "Wheat",
    "Woods",
    "Buildings-Grass-Trees-Drives",
    "Stone-Steel-Towers",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "pictures".into()));
    let names: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();

    // Training curves: 60 epochs, a validation loss that levels off.
    let epochs = || (1..=60).map(f64::from);
    let series = |name: &str, f: &dyn Fn(f64) -> f64| Series {
        name: name.into(),
        points: epochs().map(|e| (e, f(e))).collect(),
    };
    let wiggle = |e: f64| 0.02 * (e * 1.7).sin();
    let panels = [
        Panel {
            title: "loss".into(),
            x_label: "epoch".into(),
            y_label: "cross-entropy".into(),
            series: vec![
                series("train", &|e| 2.6 * (-e / 9.0).exp() + 0.04),
                series("validation", &|e| 2.5 * (-e / 10.0).exp() + 0.12 + wiggle(e)),
            ],
        },
        Panel {
            title: "accuracy".into(),
            x_label: "epoch".into(),
            y_label: "%".into(),
            series: vec![
                series("train", &|e| 100.0 - 90.0 * (-e / 8.0).exp()),
                series("validation", &|e| 97.0 - 85.0 * (-e / 9.0).exp() + 100.0 * wiggle(e) / 4.0),
            ],
        },
    ];
    write_chart(&out.join("curves.png"), &panels)?;

    // A confusion matrix: supports like Indian Pines' test set, most samples right, a few
    // confused with the next classes.
    let supports = [41, 1285, 747, 213, 435, 657, 25, 430, 18, 875, 2210, 534, 185, 1139, 347, 84];
    let k = supports.len();
    let confusion: Vec<Vec<usize>> = (0..k)
        .map(|t| {
            let mut row = vec![0; k];
            let wrong = (supports[t] * (t % 5 + 1)) / 40 + usize::from(t == 8) * 6;
            row[t] = supports[t] - wrong;
            row[(t + 1) % k] += wrong * 2 / 3;
            row[(t + 3) % k] += wrong - wrong * 2 / 3;
            row
        })
        .collect();
    let report = Report::from_confusion(confusion, &names)?;
    write_per_class_bars(&out.join("per_class.png"), &report, "hybridsn - Indian Pines - per-class accuracy")?;
    write_confusion(&out.join("confusion.png"), &report, "hybridsn - Indian Pines - confusion matrix")?;

    // A class map of 145 x 145 pixels: fields in bands, some unlabelled.
    let (h, w) = (145usize, 145usize);
    let labels: Vec<Option<usize>> = (0..h * w)
        .map(|i| {
            let (r, c) = (i / w, i % w);
            let field = (r / 20 + (c + r / 3) / 24) % k;
            ((r * 7 + c * 3) % 11 != 0 && (r / 10 + c / 15) % 4 != 0).then_some(field)
        })
        .collect();
    write_class_map(&out.join("class_map.png"), h, w, &labels, &names, "hybridsn - Indian Pines - OA 97.30%")?;
    println!("pictures in {}", out.display());
    Ok(())
}
