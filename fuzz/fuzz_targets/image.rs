//! A photo as the runtime takes it: decoded to RGB (`decode_rgb`, JPEG or PNG), then the
//! evaluation transform of ImageNet-style pipelines (`eval_transform`: shorter side to 256,
//! centre 224 x 224 crop, `[3, 224, 224]` in [0, 1]), what `Model::classify_images` feeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_data::images::{decode_rgb, eval_transform};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(image) = decode_rgb(bytes) {
        let chw = eval_transform(&image, 256, 224);
        assert_eq!(chw.len(), 3 * 224 * 224);
    }
});
