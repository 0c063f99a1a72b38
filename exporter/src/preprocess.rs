//! The linear preprocessing that goes inside the graph, so a deployed model takes raw data.

use prism_models::Result;
use prism_models::layers::Conv;
use prism_models::run::{ImagePreprocessing, Pca};

use crate::backend::{OnnxBackend, Value};
use crate::ops;

/// The PCA projection with whitening as a 1x1 convolution, `pca.weight` `[k, raw_bands, 1, 1]`
/// and `pca.bias` `[k]` from [`Pca::affine`].
///
/// # Shapes
/// `[N, raw_bands, H, W] -> [N, k, H, W]`.
pub(crate) fn pca(b: &mut OnnxBackend, pca: &Pca, x: &Value) -> Result<Value> {
    let (raw, k) = (pca.mean.len(), pca.n_components());
    let (weight, bias) = pca.affine();
    let conv = Conv::new(raw, k, &[1, 1]);
    let shape = conv.output_shape("pca", &x.shape)?;
    let weight = b.graph.initializer("pca.weight", &[k, raw, 1, 1], &weight);
    let bias = b.graph.initializer("pca.bias", &[k], &bias);
    let out = ops::conv::node(b, "pca", &conv, &x.name, &weight, Some(&bias));
    Ok(Value { name: out, shape })
}

/// `(x - mean) / std` per channel, as torchvision's `Normalize` computes it.
///
/// # Shapes
/// `[N, 3, H, W] -> [N, 3, H, W]`.
pub(crate) fn normalize(b: &mut OnnxBackend, image: &ImagePreprocessing, x: &Value) -> Value {
    let mean = b.graph.initializer("normalize.mean", &[1, 3, 1, 1], &image.mean);
    let std = b.graph.initializer("normalize.std", &[1, 3, 1, 1], &image.std);
    let centred = b.graph.node("Sub", "normalize/center", &[&x.name, &mean], vec![]);
    let out = b.graph.node("Div", "normalize", &[&centred, &std], vec![]);
    Value { name: out, shape: x.shape.clone() }
}
