//! `PrismImage`: JPEG or PNG bytes decoded to RGB8 (feature `images`), for programs that have
//! no decoder of their own. Programs that have pixels already (a camera, a video decoder) skip
//! this and call `prism_classify_rgb8` directly.

use crate::status::PrismStatus;

/// Opaque: a decoded image.
pub struct PrismImage {
    _opaque: [u8; 0],
}

/// The pixels of a `PrismImage`, which owns them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PrismImageView {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes: R, G, B, rows top to bottom.
    pub rgb: *const u8,
    pub len: usize,
}

use prism_runtime::RgbImage;

use crate::handles;
use crate::status::{Result, guard, out, slice};

const WHAT: &str = "PrismImage";

/// Decodes JPEG or PNG bytes to RGB8 (grey and RGBA images are converted). Free with
/// `prism_image_free`. A library built without the `images` feature says so here.
///
/// # Safety
/// `bytes` points to `len` bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_image_decode(
    bytes: *const u8,
    len: usize,
    out_image: *mut *mut PrismImage,
) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promises.
        let (bytes, out_image) = unsafe { (slice(bytes, len, "bytes")?, out(out_image, "out_image")?) };
        *out_image = handles::insert(decode(bytes)?);
        Ok(())
    })
}

#[cfg(feature = "images")]
fn decode(bytes: &[u8]) -> Result<RgbImage> {
    prism_data::images::decode_rgb(bytes).map_err(|reason| crate::status::Failure {
        status: PrismStatus::Format,
        message: format!("not a JPEG or PNG image: {reason}"),
    })
}

#[cfg(not(feature = "images"))]
fn decode(_bytes: &[u8]) -> Result<RgbImage> {
    Err(crate::status::invalid("this build of libprism decodes no images (cargo feature `images`)"))
}

/// The pixels of a decoded image.
///
/// # Safety
/// `view` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn prism_image_view(image: *const PrismImage, view: *mut PrismImageView) -> PrismStatus {
    guard(|| {
        // SAFETY: the caller's promise.
        let view = unsafe { out(view, "view") }?;
        let image = handles::get::<_, RgbImage>(image, WHAT)?;
        *view = PrismImageView {
            width: image.width(),
            height: image.height(),
            rgb: image.as_raw().as_ptr(),
            len: image.as_raw().len(),
        };
        Ok(())
    })
}

/// Frees a decoded image (null is allowed).
#[unsafe(no_mangle)]
pub extern "C" fn prism_image_free(image: *mut PrismImage) -> PrismStatus {
    guard(|| handles::remove::<_, RgbImage>(image, WHAT))
}
