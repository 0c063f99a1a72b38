//! Prism's trainer: the tch (libtorch) interpretation of the model descriptions, the datasets,
//! and the training loop. The only crate of the workspace that links libtorch.

pub mod checkpoint;
pub mod data;
pub mod fit;
pub mod model;
pub mod optim;
pub mod progress;
pub mod report;
