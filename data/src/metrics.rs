//! Classification metrics as the hyperspectral literature reports them: overall accuracy (OA),
//! average accuracy (AA, the mean of per-class recalls), Cohen's kappa, per-class accuracy and
//! the confusion matrix. All rates are fractions in [0, 1]; tables print percentages.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One class's line of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    pub name: String,
    /// Samples of this class in the evaluated set.
    pub support: usize,
    pub correct: usize,
    /// Recall (producer's accuracy); `None` without support.
    pub accuracy: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub samples: usize,
    pub oa: f64,
    pub aa: f64,
    pub kappa: f64,
    pub per_class: Vec<ClassReport>,
    /// `confusion[truth][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Report {
    /// Scores predictions against the truth, both as class indices below `class_names.len()`.
    ///
    /// # Errors
    /// Lengths that differ, no samples, or an index out of range.
    pub fn new(truth: &[usize], predicted: &[usize], class_names: &[String]) -> Result<Report> {
        let k = class_names.len();
        if truth.len() != predicted.len() {
            return Err(Error::Shape(format!("{} labels but {} predictions", truth.len(), predicted.len())));
        }
        if truth.is_empty() {
            return Err(Error::Invalid("no samples to evaluate".into()));
        }
        let mut confusion = vec![vec![0usize; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            if t >= k || p >= k {
                return Err(Error::Invalid(format!("class index {} out of range for {k} classes", t.max(p))));
            }
            confusion[t][p] += 1;
        }
        Report::from_confusion(confusion, class_names)
    }

    /// Scores a confusion matrix, `confusion[truth][predicted]`, `class_names.len()` square
    /// (for predictions counted as they come rather than kept).
    ///
    /// # Errors
    /// A matrix of another size, or no samples.
    pub fn from_confusion(confusion: Vec<Vec<usize>>, class_names: &[String]) -> Result<Report> {
        let k = class_names.len();
        if confusion.len() != k || confusion.iter().any(|row| row.len() != k) {
            return Err(Error::Shape(format!("a confusion matrix for {k} classes must be {k} x {k}")));
        }
        let samples: usize = confusion.iter().flatten().sum();
        if samples == 0 {
            return Err(Error::Invalid("no samples to evaluate".into()));
        }
        let n = samples as f64;
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let per_class: Vec<ClassReport> = (0..k)
            .map(|i| {
                let support: usize = confusion[i].iter().sum();
                let correct = confusion[i][i];
                let accuracy = (support > 0).then(|| correct as f64 / support as f64);
                ClassReport { name: class_names[i].clone(), support, correct, accuracy }
            })
            .collect();
        let recalls: Vec<f64> = per_class.iter().filter_map(|c| c.accuracy).collect();
        let aa = recalls.iter().sum::<f64>() / recalls.len() as f64;
        let oa = correct as f64 / n;
        // Expected agreement by chance: sum over classes of (row total x column total) / n^2.
        let expected: f64 = (0..k)
            .map(|i| {
                let row: usize = confusion[i].iter().sum();
                let col: usize = confusion.iter().map(|r| r[i]).sum();
                row as f64 * col as f64
            })
            .sum::<f64>()
            / (n * n);
        let kappa = if expected < 1.0 { (oa - expected) / (1.0 - expected) } else { 1.0 };
        Ok(Report { samples, oa, aa, kappa, per_class, confusion })
    }

    /// How many classes the model gives to at least one sample: the non-empty columns of the
    /// confusion matrix.
    pub fn predicted_classes(&self) -> usize {
        (0..self.confusion.len()).filter(|&p| self.answered(p) > 0).count()
    }

    /// How many samples were given class `p`.
    fn answered(&self, p: usize) -> usize {
        self.confusion.iter().map(|row| row.get(p).copied().unwrap_or(0)).sum()
    }

    /// A one-line warning when the model does no better than chance (Kappa under 5 %) on a
    /// truth of several classes, as a training run that collapsed to one answer does.
    pub fn chance_warning(&self) -> Option<String> {
        let truth_classes = self.per_class.iter().filter(|c| c.support > 0).count();
        if truth_classes < 2 || self.kappa >= 0.05 {
            return None;
        }
        let (class, n) =
            (0..self.confusion.len()).map(|p| (p, self.answered(p))).max_by_key(|&(p, n)| (n, std::cmp::Reverse(p)))?;
        Some(format!(
            "warning: Kappa {:.2} %: the model does no better than chance; it answers '{}' for {:.1} % of the {} samples \
             (docs/guide.md, troubleshooting: \"A run predicts one class for everything\")",
            self.kappa * 100.0,
            self.per_class.get(class)?.name,
            n as f64 * 100.0 / self.samples as f64,
            self.samples
        ))
    }

    /// A table of per-class accuracies and the three summary figures, in percent.
    pub fn table(&self) -> String {
        let width = self.per_class.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{:>3}  {:<width$}  {:>7}  {:>8}", "#", "Class", "Samples", "Accuracy");
        for (i, c) in self.per_class.iter().enumerate() {
            let acc = c.accuracy.map_or("-".to_string(), |a| format!("{:.2}", a * 100.0));
            let _ = writeln!(out, "{:>3}  {:<width$}  {:>7}  {:>8}", i, c.name, c.support, acc);
        }
        let _ = writeln!(out, "{}", "-".repeat(width + 25));
        let _ = writeln!(out, "OA     {:6.2} %   ({} samples)", self.oa * 100.0, self.samples);
        let _ = writeln!(out, "AA     {:6.2} %", self.aa * 100.0);
        let _ = write!(out, "Kappa  {:6.2} %", self.kappa * 100.0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn figures_match_a_hand_computed_confusion_matrix() {
        // truth 0 x4: predicted 0,0,0,1 ; truth 1 x2: 1,1 ; truth 2 x4: 2,2,0,1
        let truth = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2];
        let pred = [0, 0, 0, 1, 1, 1, 2, 2, 0, 1];
        let r = Report::new(&truth, &pred, &names(3)).unwrap();
        assert_eq!(r.confusion, vec![vec![3, 1, 0], vec![0, 2, 0], vec![1, 1, 2]]);
        assert!((r.oa - 0.7).abs() < 1e-12);
        assert!((r.aa - (0.75 + 1.0 + 0.5) / 3.0).abs() < 1e-12);
        // pe = (4*4 + 2*4 + 4*2) / 100 = 0.32 ; kappa = (0.7 - 0.32) / 0.68
        assert!((r.kappa - 0.38 / 0.68).abs() < 1e-12);
        assert!(r.table().contains("OA      70.00 %"));
    }

    #[test]
    fn a_model_no_better_than_chance_is_flagged() {
        let collapsed = Report::new(&[0, 1, 2, 2], &[2, 2, 2, 2], &names(3)).unwrap();
        assert_eq!(collapsed.predicted_classes(), 1);
        let warning = collapsed.chance_warning().expect("a warning");
        assert!(warning.contains("Kappa 0.00 %") && warning.contains("'c2' for 100.0 % of the 4 samples"), "{warning}");

        // Two answers, but as often wrong as chance would be.
        let coin = Report::new(&[0, 0, 1, 1], &[0, 1, 0, 1], &names(2)).unwrap();
        assert_eq!(coin.predicted_classes(), 2);
        assert!(coin.chance_warning().expect("a warning").contains("'c0' for 50.0 % of the 4 samples"));

        let learned = Report::new(&[0, 1, 2, 2], &[0, 2, 2, 2], &names(3)).unwrap();
        assert_eq!(learned.predicted_classes(), 2);
        assert_eq!(learned.chance_warning(), None);
        // A truth of one class says nothing about chance.
        assert_eq!(Report::new(&[1, 1], &[1, 1], &names(3)).unwrap().chance_warning(), None);
    }

    #[test]
    fn classes_without_samples_do_not_count_in_aa() {
        let r = Report::new(&[0, 0, 2], &[0, 1, 2], &names(3)).unwrap();
        assert_eq!(r.per_class[1].accuracy, None);
        assert!((r.aa - 0.75).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Report::new(&[0], &[0, 1], &names(2)).is_err());
        assert!(Report::new(&[], &[], &names(2)).is_err());
        assert!(Report::new(&[3], &[0], &names(2)).is_err());
        assert!(Report::from_confusion(vec![vec![1, 0], vec![0, 1]], &names(3)).is_err());
        assert!(Report::from_confusion(vec![vec![1, 0], vec![0]], &names(2)).is_err());
        assert!(Report::from_confusion(vec![vec![0, 0], vec![0, 0]], &names(2)).is_err());
    }
}
