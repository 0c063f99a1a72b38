//! Prism's trainer: the tch (libtorch) interpretation of the model descriptions, the datasets,
//! and the training loop. The only crate of the workspace that links libtorch.

pub mod model;
