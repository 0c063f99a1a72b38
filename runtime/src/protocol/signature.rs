//! What a served model takes and gives, as clients see it, and the check of a decoded request
//! against it.

use ndarray::{ArrayD, IxDyn};

use super::request::{Fault, InputTensor};

/// A graph input or output as clients see it: dimensions without the batch when the model
/// batches, -1 where any size goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub name: String,
    pub dims: Vec<i64>,
}

/// A served model's one input, its outputs and its largest batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// The name clients use.
    pub model: String,
    pub input: Spec,
    pub outputs: Vec<Spec>,
    /// Largest batch (rows of the first dimension); 0 when the model takes no batch dimension.
    pub max_batch: usize,
}

impl Signature {
    /// A tensor's shape as clients send it: with a free batch dimension when the model batches.
    pub fn shape(&self, spec: &Spec) -> Vec<i64> {
        let batch = (self.max_batch > 0).then_some(-1);
        batch.into_iter().chain(spec.dims.iter().copied()).collect()
    }

    /// The input's shape as clients send it.
    pub fn input_shape(&self) -> Vec<i64> {
        self.shape(&self.input)
    }

    /// The output names asked for, all of them when none are named.
    ///
    /// # Errors
    /// [`Fault::Invalid`] naming an output the model does not have.
    pub fn check_outputs(&self, asked: &[String]) -> Result<Vec<String>, Fault> {
        if asked.is_empty() {
            return Ok(self.outputs.iter().map(|o| o.name.clone()).collect());
        }
        for name in asked {
            if !self.outputs.iter().any(|o| &o.name == name) {
                let known: Vec<&str> = self.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(Fault::Invalid(format!(
                    "model `{}` has no output `{name}` (outputs: {})",
                    self.model,
                    known.join(", ")
                )));
            }
        }
        Ok(asked.to_vec())
    }

    /// The request's one input as the array the graph takes.
    ///
    /// # Errors
    /// [`Fault::Invalid`] naming what does not fit: the number of inputs, the input's name, its
    /// datatype, its shape or batch, the number of values.
    pub fn check_input(&self, inputs: Vec<InputTensor>) -> Result<ArrayD<f32>, Fault> {
        let name = &self.model;
        let [input] = <[InputTensor; 1]>::try_from(inputs).map_err(|inputs| {
            Fault::Invalid(format!(
                "model `{name}` takes 1 input (`{}`), the request has {}",
                self.input.name,
                inputs.len()
            ))
        })?;
        if input.name != self.input.name {
            return Err(Fault::Invalid(format!(
                "model `{name}` has no input `{}` (its input is `{}`)",
                input.name, self.input.name
            )));
        }
        if input.datatype != "FP32" {
            return Err(Fault::Invalid(format!(
                "input `{}`: datatype {} given, the model takes FP32",
                input.name, input.datatype
            )));
        }
        let expected = self.input_shape();
        let fits = input.shape.len() == expected.len()
            && input.shape.iter().zip(&expected).all(|(&given, &want)| given >= 1 && (want == -1 || given == want));
        let rows = input.shape.first().copied().unwrap_or(1);
        if !fits || (self.max_batch > 0 && rows > self.max_batch as i64) {
            return Err(Fault::Invalid(format!(
                "input `{}`: shape {:?} does not fit the model's {:?}{}",
                input.name,
                input.shape,
                expected,
                if self.max_batch > 0 { format!(" (batch at most {})", self.max_batch) } else { String::new() }
            )));
        }
        let shape: Vec<usize> = input.shape.iter().map(|&d| d as usize).collect();
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if count != Some(input.data.len()) {
            return Err(Fault::Invalid(format!(
                "input `{}`: {} values given for shape {:?}",
                input.name,
                input.data.len(),
                input.shape
            )));
        }
        ArrayD::from_shape_vec(IxDyn(&shape), input.data)
            .map_err(|e| Fault::Invalid(format!("input `{}`: {e}", input.name)))
    }
}
