//! Image preprocessing shared by the trainer and the runtime, so that a deployed model sees
//! exactly the pixels the trained one saw: decode to RGB (feature `files`), resize the shorter
//! side, crop the centre, scale to [0, 1] in `[3, H, W]` layout. Normalisation by mean and std
//! lives in the exported graph (and in the trainer's forward).

#[cfg(feature = "files")]
use std::path::Path;

pub use image::RgbImage;
use image::imageops::{self, FilterType};

#[cfg(feature = "files")]
use crate::{Error, Result};

#[cfg(feature = "files")]
/// Decodes a JPEG or PNG file to 8-bit RGB.
///
/// # Errors
/// A missing file, or one that is not a decodable JPEG or PNG.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_rgb(&bytes).map_err(|reason| Error::format(path, reason))
}

#[cfg(feature = "files")]
/// Decodes JPEG or PNG bytes to 8-bit RGB; the error is a one-line reason.
pub fn decode_rgb(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    let format = image::guess_format(bytes).map_err(|_| "not a JPEG or PNG image".to_string())?;
    if !matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        return Err(format!("{format:?} images are not supported (JPEG or PNG)"));
    }
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The decoder would fill the missing rows with grey, as PIL refuses to.
        return Err("the JPEG is truncated (no end-of-image marker after its image data)".into());
    }
    let decoded =
        image::load_from_memory_with_format(bytes, format).map_err(|e| format!("cannot decode the image: {e}"))?;
    Ok(decoded.to_rgb8())
}

#[cfg(feature = "files")]
/// Whether an end-of-image marker (FF D9) follows the first start-of-scan (FF DA): image data
/// never holds FF D9 (a data byte FF is followed by 00 or a restart marker), so a file cut
/// anywhere in its scans has none.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(scan) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[scan..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Resizes so that the shorter side is `size` pixels, keeping the aspect ratio (bilinear with
/// antialiasing when shrinking, as torchvision's `Resize` on PIL images).
pub fn resize_shorter(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = if w <= h {
        (size, ((h as f64 * size as f64 / w as f64).round() as u32).max(1))
    } else {
        (((w as f64 * size as f64 / h as f64).round() as u32).max(1), size)
    };
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    imageops::resize(img, nw, nh, FilterType::Triangle)
}

/// The centre `size x size` square (torchvision's `CenterCrop` offsets: rounded halves).
/// An image smaller than `size` is resized up first.
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    let img = if img.width() < size || img.height() < size { resize_shorter(img, size) } else { img.clone() };
    let left = ((img.width() - size) as f64 / 2.0).round() as u32;
    let top = ((img.height() - size) as f64 / 2.0).round() as u32;
    imageops::crop_imm(&img, left, top, size, size).to_image()
}

/// `[3, H, W]` values in [0, 1].
pub fn to_chw(img: &RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, pixel) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(pixel.0[c]) / 255.0;
        }
    }
    out
}

/// The evaluation transform: resize the shorter side to `resize`, crop the centre `crop`,
/// `[3, crop, crop]` in [0, 1].
pub fn eval_transform(img: &RgbImage, resize: u32, crop: u32) -> Vec<f32> {
    to_chw(&center_crop(&resize_shorter(img, resize), crop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "files")]
    #[test]
    fn a_truncated_jpeg_is_refused() {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
        let mut jpeg = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        assert_eq!(decode_rgb(&jpeg).unwrap().dimensions(), (64, 48));
        // Data appended after the end of the image (as some cameras do) is fine.
        let mut trailer = jpeg.clone();
        trailer.extend_from_slice(b"maker notes");
        assert!(decode_rgb(&trailer).is_ok());
        for cut in [jpeg.len() - 2, jpeg.len() / 2] {
            let err = decode_rgb(&jpeg[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{err}");
        }
    }

    #[test]
    fn shorter_side_and_centre() {
        let mut img = RgbImage::new(40, 20);
        img.put_pixel(20, 10, image::Rgb([255, 0, 0]));
        let r = resize_shorter(&img, 10);
        assert_eq!(r.dimensions(), (20, 10));
        let c = center_crop(&img, 4);
        assert_eq!(c.dimensions(), (4, 4));
        // The crop starts at (18, 8): the red pixel lands at (2, 2).
        assert_eq!(c.get_pixel(2, 2).0, [255, 0, 0]);
        let chw = to_chw(&c);
        assert_eq!(chw.len(), 48);
        assert_eq!(chw[2 * 4 + 2], 1.0);
        assert_eq!(chw[16 + 2 * 4 + 2], 0.0);
    }

    #[cfg(feature = "files")]
    #[test]
    fn corrupt_bytes_are_an_error() {
        assert!(decode_rgb(b"not an image").is_err());
        let mut png = Vec::new();
        RgbImage::new(4, 4).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        assert!(decode_rgb(&png).is_ok());
        assert!(decode_rgb(&png[..png.len() / 2]).is_err());
    }
}
