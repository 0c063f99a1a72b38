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
///
/// An image whose dimensions could not come out of its bytes is refused before its pixels are
/// allocated: a PNG whose rows (filter bytes included) take more than [`MAX_INFLATE_RATIO`]
/// times its size, as deflate expands at most about 1032 times; a JPEG of more than
/// [`MAX_JPEG_PIXELS_PER_BYTE`] pixels a byte, as its scans spend at least one bit on each 8 x 8
/// block (512 pixels a byte). So a 100-byte file cannot make the decoder allocate more than
/// about 300 kB, and a real photo is never refused for its size.
pub fn decode_rgb(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    use image::ImageDecoder;

    let format = image::guess_format(bytes).map_err(|_| "not a JPEG or PNG image".to_string())?;
    if !matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        return Err(format!("{format:?} images are not supported (JPEG or PNG)"));
    }
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The decoder would fill the missing rows with grey, as PIL refuses to.
        return Err("the JPEG is truncated (no end-of-image marker after its image data)".into());
    }
    let cannot = |e: image::ImageError| format!("cannot decode the image: {e}");
    let decoder =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), format).into_decoder().map_err(cannot)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(format!("the image has no pixels ({width} x {height})"));
    }
    let len = bytes.len() as u64;
    let fits = match format {
        image::ImageFormat::Png => png_rows_bytes(bytes).is_none_or(|rows| rows <= MAX_INFLATE_RATIO * len),
        _ => u64::from(width) * u64::from(height) <= MAX_JPEG_PIXELS_PER_BYTE * len,
    };
    if !fits {
        return Err(format!("a {width} x {height} image cannot come out of {len} bytes of {format:?} (corrupt?)"));
    }
    Ok(image::DynamicImage::from_decoder(decoder).map_err(cannot)?.into_rgb8())
}

/// Deflate expands at most about 1032 times: a PNG's rows cannot take more than this many times
/// the file's size.
#[cfg(feature = "files")]
pub const MAX_INFLATE_RATIO: u64 = 1100;

/// A JPEG's scans spend at least one bit on each 8 x 8 block of a component, so a JPEG holds at
/// most 512 pixels a byte; this leaves room for twice that.
#[cfg(feature = "files")]
pub const MAX_JPEG_PIXELS_PER_BYTE: u64 = 1024;

/// The bytes of a PNG's rows before compression (a filter byte and the packed samples of each
/// row), from its `IHDR` chunk, which comes first; `None` if the chunk or its colour type is not
/// there to read (the decoder names what is wrong).
#[cfg(feature = "files")]
fn png_rows_bytes(bytes: &[u8]) -> Option<u64> {
    let ihdr = bytes.get(8..26).filter(|h| &h[4..8] == b"IHDR")?;
    let width = u64::from(u32::from_be_bytes([ihdr[8], ihdr[9], ihdr[10], ihdr[11]]));
    let height = u64::from(u32::from_be_bytes([ihdr[12], ihdr[13], ihdr[14], ihdr[15]]));
    let samples = match ihdr[17] {
        0 | 3 => 1, // grey, palette indexes
        4 => 2,     // grey and alpha
        2 => 3,     // RGB
        6 => 4,     // RGBA
        _ => return None,
    };
    let bits = samples * u64::from(ihdr[16]);
    Some(height * (1 + (width * bits).div_ceil(8)))
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

/// The longest side [`resize_shorter`] makes (unless `size` is longer).
pub const MAX_RESIZED_SIDE: u32 = 16384;

/// Resizes so that the shorter side is `size` pixels, keeping the aspect ratio (bilinear with
/// antialiasing when shrinking, as torchvision's `Resize` on PIL images).
///
/// An image so elongated that its longer side would exceed [`MAX_RESIZED_SIDE`] (a strip 1 pixel
/// wide and 60000 long would become 256 x 15 million pixels, 11 GB) is first cut to its central
/// part of the longest aspect that fits: a centre crop of the result keeps only that part, up to
/// the sampling positions' rounding.
pub fn resize_shorter(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let most = u64::from(MAX_RESIZED_SIDE.max(size));
    let (short, long) = (u64::from(w.min(h)), u64::from(w.max(h)));
    if short > 0 && long * u64::from(size) > most * short {
        // The longest side that resizes to at most `most` pixels (at least the shorter side).
        let kept = u32::try_from((most * short / u64::from(size.max(1))).max(short)).unwrap_or(u32::MAX);
        let cut = if w < h {
            imageops::crop_imm(img, 0, (h - kept) / 2, w, kept).to_image()
        } else {
            imageops::crop_imm(img, (w - kept) / 2, 0, kept, h).to_image()
        };
        return resize_shorter(&cut, size);
    }
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
    fn dimensions_the_bytes_cannot_hold_are_refused_before_decoding() {
        // A PNG chunk's checksum, which the png crate does not check in fuzz builds.
        let fix_ihdr_crc = |png: &mut Vec<u8>| {
            let mut crc = flate2::Crc::new();
            crc.update(&png[12..29]);
            png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        };
        // Found by the `image` fuzz target: a 134-byte PNG whose header claims 16711696 x 12
        // grey pixels made the decoder allocate 200 MB before finding the data missing.
        let mut found = include_bytes!("../../fuzz/corpus/image/found-png-16-million-wide.png").to_vec();
        fix_ihdr_crc(&mut found);
        let err = decode_rgb(&found).unwrap_err();
        assert!(err.contains("16711696 x 12 image cannot come out of 134 bytes of Png"), "{err}");
        // A real PNG and JPEG, and the same with their dimensions made 60000 x 60000.
        let img = RgbImage::from_fn(32, 24, |x, y| image::Rgb([(x * 8) as u8, (y * 10) as u8, 90]));
        for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
            assert_eq!(decode_rgb(&bytes).unwrap().dimensions(), (32, 24));
            let (at, big) = match format {
                // IHDR: width and height, big-endian, after the signature and the chunk's header.
                image::ImageFormat::Png => (16, [0, 0, 0xea, 0x60, 0, 0, 0xea, 0x60]),
                // SOF0: height then width, big-endian, after FF C0, the length and the precision.
                _ => {
                    let sof = bytes.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
                    (sof + 5, [0xea, 0x60, 0xea, 0x60, 0, 0, 0, 0])
                }
            };
            let n = if format == image::ImageFormat::Png { 8 } else { 4 };
            bytes[at..at + n].copy_from_slice(&big[..n]);
            if format == image::ImageFormat::Png {
                fix_ihdr_crc(&mut bytes);
            }
            let err = decode_rgb(&bytes).unwrap_err();
            assert!(err.contains("60000 x 60000 image cannot come out of"), "{format:?}: {err}");
        }
    }

    #[test]
    fn an_elongated_image_is_cut_before_resizing() {
        // 1 x 40000 would resize to 256 x 10240000 (7.9 GB); it is cut to its central 1 x 64 first.
        let strip = RgbImage::from_fn(1, 40000, |_, y| image::Rgb([(y % 251) as u8, (y / 251 % 256) as u8, 7]));
        let resized = resize_shorter(&strip, 256);
        assert_eq!(resized.dimensions(), (256, MAX_RESIZED_SIDE));
        assert_eq!(eval_transform(&strip, 256, 224).len(), 3 * 224 * 224);
        // Its centre is the strip's centre: row 20000 of the strip is (79, 79, 7).
        let centre = resized.get_pixel(128, MAX_RESIZED_SIDE / 2).0;
        assert!(
            centre.iter().zip([(20000 % 251) as u8, (20000 / 251) as u8, 7]).all(|(a, b)| a.abs_diff(b) <= 2),
            "{centre:?}"
        );
        // Up to the limit nothing is cut: 16 x 1024 resizes whole to 256 x 16384.
        let tall = RgbImage::from_fn(16, 1024, |x, y| image::Rgb([x as u8, (y % 256) as u8, 0]));
        assert_eq!(resize_shorter(&tall, 256), imageops::resize(&tall, 256, 16384, FilterType::Triangle));
        let (w, h) = resize_shorter(&RgbImage::new(50000, 3), 10).dimensions();
        assert!(h == 10 && (16000..=MAX_RESIZED_SIDE).contains(&w), "{w} x {h}");
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
