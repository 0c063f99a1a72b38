//! The parity report: the exported file run on tract and on ONNX Runtime, compared with the
//! trainer's outputs for the run's sample.

use std::path::Path;
use std::time::Instant;

use ndarray::ArrayD;
use prism_runtime::engine::{self, EngineChoice, EngineOptions, Provider};
use serde::Serialize;

use crate::rundir::Sample;

/// `|got - expected| <= atol + rtol * |expected|` for every element (NumPy's `allclose`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    pub atol: f32,
    pub rtol: f32,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { atol: 1e-4, rtol: 1e-3 }
    }
}

/// How many differences fall in one decade.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    pub range: String,
    pub count: usize,
}

/// Two tensors compared element by element.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub count: usize,
    pub max_abs: f32,
    /// Largest `|got - expected| / |expected|` over elements with `|expected| >= atol` (smaller
    /// ones make relative differences meaningless).
    pub max_rel: f32,
    /// Elements out of tolerance.
    pub outliers: usize,
    pub histogram: Vec<Bucket>,
    pub pass: bool,
}

/// Decades of absolute differences: below 1e-8, 1e-8 to 1e-7, ... 1e-3 to 1e-2, 1e-2 and more.
const DECADES: std::ops::RangeInclusive<i32> = -8..=-3;

/// Compares two tensors of the same shape (a shape mismatch counts every element as an outlier).
pub fn compare(got: &ArrayD<f32>, expected: &ArrayD<f32>, tol: Tolerance) -> Comparison {
    let mut counts = vec![0usize; DECADES.count() + 2];
    if got.shape() != expected.shape() {
        return Comparison {
            count: expected.len(),
            max_abs: f32::INFINITY,
            max_rel: f32::INFINITY,
            outliers: expected.len(),
            histogram: buckets(&counts),
            pass: false,
        };
    }
    let (mut max_abs, mut max_rel, mut outliers) = (0f32, 0f32, 0usize);
    for (g, e) in got.iter().zip(expected) {
        let diff = (g - e).abs();
        // NaN differences are outliers and land in the last bucket.
        let within = diff <= tol.atol + tol.rtol * e.abs();
        if !within {
            outliers += 1;
        }
        max_abs = if diff.is_nan() {
            f32::NAN
        } else if max_abs.is_nan() {
            max_abs
        } else {
            max_abs.max(diff)
        };
        if e.abs() >= tol.atol {
            max_rel = max_rel.max(diff / e.abs());
        }
        let slot = if diff.is_nan() || diff >= 1e-2 {
            counts.len() - 1
        } else if diff < 1e-8 {
            0
        } else {
            (diff.log10().floor() as i32 - DECADES.start() + 1) as usize
        };
        let last = counts.len() - 1;
        counts[slot.min(last)] += 1;
    }
    Comparison { count: got.len(), max_abs, max_rel, outliers, histogram: buckets(&counts), pass: outliers == 0 }
}

fn buckets(counts: &[usize]) -> Vec<Bucket> {
    let mut names = vec![format!("<1e{}", DECADES.start())];
    names.extend(DECADES.map(|d| format!("1e{d}..1e{}", d + 1)));
    names.push(format!(">=1e{}", DECADES.end() + 1));
    names.into_iter().zip(counts).map(|(range, &count)| Bucket { range, count }).collect()
}

impl Comparison {
    /// A text histogram, one line per non-empty decade.
    pub fn histogram_text(&self) -> String {
        let most = self.histogram.iter().map(|b| b.count).max().unwrap_or(0).max(1);
        self.histogram
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| format!("    {:>12} {:<30} {}", b.range, "#".repeat((b.count * 30).div_ceil(most)), b.count))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The outcome on one engine.
#[derive(Clone, Debug, Serialize)]
pub struct EngineParity {
    pub engine: String,
    pub provider: String,
    /// `pass`, `fail`, `skipped` (ONNX Runtime not found) or `error`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl EngineParity {
    /// Passed, or skipped because the engine is not installed.
    pub fn ok(&self) -> bool {
        matches!(self.status.as_str(), "pass" | "skipped")
    }
}

/// The engines a check runs on: tract, and ONNX Runtime's CPU provider (skipped when its
/// library is not found).
pub fn check_engines(ort_library: Option<&Path>) -> Vec<(&'static str, EngineOptions)> {
    let tract = EngineOptions { engine: EngineChoice::Tract, ..Default::default() };
    let ort = EngineOptions {
        engine: EngineChoice::Ort,
        provider: Provider::Cpu,
        ort_library: ort_library.map(Path::to_path_buf),
        ..Default::default()
    };
    vec![("tract", tract), ("ort", ort)]
}

/// Runs `model` on the sample's input on each of [`check_engines`] and compares the first
/// output with the sample's logits.
pub fn check(model: &Path, sample: &Sample, tol: Tolerance, ort_library: Option<&Path>) -> Vec<EngineParity> {
    check_engines(ort_library).iter().map(|(name, options)| on_engine(name, model, sample, tol, options)).collect()
}

fn on_engine(name: &str, model: &Path, sample: &Sample, tol: Tolerance, options: &EngineOptions) -> EngineParity {
    let mut result = EngineParity {
        engine: name.into(),
        provider: "cpu".into(),
        status: "error".into(),
        comparison: None,
        seconds: None,
        note: None,
    };
    let mut engine = match engine::load(model, options) {
        Ok(engine) => engine,
        Err(e) => {
            let library_missing = name == "ort" && e.to_string().contains("ONNX Runtime library");
            result.status = if library_missing { "skipped" } else { "error" }.into();
            result.note = Some(e.to_string());
            return result;
        }
    };
    result.provider = engine.provider().to_string();
    let start = Instant::now();
    match engine.run(sample.input.view()) {
        Ok(outputs) => {
            result.seconds = Some(start.elapsed().as_secs_f64());
            match outputs.into_iter().next() {
                Some((_, got)) => {
                    let comparison = compare(&got, &sample.logits, tol);
                    result.status = if comparison.pass { "pass" } else { "fail" }.into();
                    result.comparison = Some(comparison);
                }
                None => result.note = Some("the model returned no output".into()),
            }
        }
        Err(e) => result.note = Some(e.to_string()),
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn differences_land_in_their_decade() {
        let expected = ArrayD::from_shape_vec(vec![5], vec![1.0, 1.0, 1.0, 100.0, 0.0]).unwrap();
        let got = ArrayD::from_shape_vec(vec![5], vec![1.0, 1.0 + 5e-6, 1.05, 100.05, f32::NAN]).unwrap();
        let c = compare(&got, &expected, Tolerance::default());
        let count = |range: &str| c.histogram.iter().find(|b| b.range == range).unwrap().count;
        assert_eq!((count("<1e-8"), count("1e-6..1e-5"), count(">=1e-2")), (1, 1, 3));
        // 1.05 vs 1 and NaN are out of tolerance; 100.05 vs 100 is within rtol.
        assert_eq!(c.outliers, 2);
        assert!(!c.pass && c.max_abs.is_nan());
        assert!((c.max_rel - 0.05).abs() < 1e-3, "{}", c.max_rel);
        let same = compare(&expected, &expected, Tolerance::default());
        assert!(same.pass && same.max_abs == 0.0);
        assert!(same.histogram_text().contains("<1e-8"));
    }
}
