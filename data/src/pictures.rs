//! PNG pictures for reports: training curves, per-class accuracy bars and confusion matrices
//! drawn with `plotters`, and classification maps with a legend, drawn here by hand.
//!
//! - **Charts** ([`write_chart`], [`write_per_class_bars`], [`write_confusion`]), black on
//!   white: `plotters` lays out the plot areas, picks the round tick values, and draws grids,
//!   axes, tick marks, frames, lines, bars, heat-map cells and legend boxes, with its bitmap
//!   backend into an RGB buffer that holds the whole image (a few hundred pixels a side,
//!   whatever the data); `image` encodes it.
//! - **Class maps** ([`write_class_map`], [`write_class_map_rows`]) stay hand-written: a map can
//!   be as large as the scene (tens of thousands of pixels a side), and `plotters` draws into
//!   one in-memory bitmap of the whole image, while a map is drawn and PNG-encoded (with `png`)
//!   a strip of rows at a time, so memory does not grow with the scene. Its layout
//!   ([`class_map_layout`]), its colours ([`palette`], on a black [`BACKGROUND`]) and its
//!   pixels are this module's own.
//!
//! All text is set in DejaVu Sans, embedded in the library (`data/assets`, with its licence):
//! no font is looked up on the system. It is registered with `plotters`
//! (`plotters::style::register_font`, `plotters`' only source of fonts), but the text of the
//! charts, like the maps' title and legend, is set by this module with `ab_glyph`, glyph by
//! glyph at their exact positions: `plotters` 0.3.7 drops each glyph's left side bearing, so
//! its letters sit unevenly.
//!
//! Files are written atomically with [`crate::write_atomic`]. Drawing is clipped at the image
//! border, and NaN, infinite or empty input is skipped or refused with an error, never a
//! panic.

use std::io::Write as _;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _, point};
use image::codecs::png::PngEncoder;
use image::{ImageError, Rgb, RgbImage};

use crate::{Error, Result};

mod charts;

pub use charts::{PANEL_HEIGHT, PANEL_WIDTH, Panel, Series, write_chart, write_confusion, write_per_class_bars};

/// Background of class maps, and colour of unlabelled (`None`) map pixels.
pub const BACKGROUND: [u8; 3] = [0, 0, 0];
/// Text of class maps.
const TEXT: [u8; 3] = [235, 235, 235];
/// The 1 px outline around a class map.
const FRAME: [u8; 3] = [110, 110, 110];

/// Space around the content of a class map image.
const MARGIN: u32 = 12;
/// The largest side of an image, and the largest area of one drawn whole in memory (class maps
/// are drawn a strip at a time and have no limit of area).
const MAX_SIDE: u64 = 1 << 16;
const MAX_PIXELS: u64 = 1 << 28;

// ---------------------------------------------------------------------------------------------
// The font

/// DejaVu Sans (see `data/assets/LICENSE-DejaVu.txt`).
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The embedded font, parsed once.
fn font() -> Result<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or_else(|| Error::Invalid("the embedded font (DejaVu Sans) cannot be read".into()))
}

/// Characters drawn as they are; control characters become spaces.
fn printable(c: char) -> char {
    if c.is_control() { ' ' } else { c }
}

/// Width in pixels of `text` set at `px` pixels (the height from the font's ascent to its
/// descent), rounded up.
fn text_width(text: &str, px: f32) -> Result<u64> {
    let font = font()?.as_scaled(PxScale::from(px));
    let mut width = 0.0f32;
    let mut previous = None;
    for c in text.chars().map(printable) {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            width += font.kern(p, id);
        }
        width += font.h_advance(id);
        previous = Some(id);
    }
    Ok(width.max(0.0).ceil() as u64)
}

/// The ascent and the height of capitals of the font at `px` pixels, in pixels.
fn font_metrics(px: f32) -> Result<(f32, f32)> {
    let font = font()?;
    let scaled = font.as_scaled(PxScale::from(px));
    // Outline bounds run upwards in font units: their height is the capitals' height.
    let capital = font.outline(font.glyph_id('H')).map_or(0.0, |o| (o.bounds.max.y - o.bounds.min.y).abs());
    Ok((scaled.ascent(), capital * scaled.v_scale_factor()))
}

/// Sets `text` at `px` pixels and calls `pixel(x, y, coverage)` for each pixel a glyph covers,
/// `coverage` in `(0, 1]`, in the line's own coordinates: x from the start of the line
/// rightwards, y downwards, the baseline at `baseline`.
fn rasterise(text: &str, px: f32, baseline: f32, mut pixel: impl FnMut(i64, i64, f32)) -> Result<()> {
    let font = font()?;
    let scaled = font.as_scaled(PxScale::from(px));
    let mut caret = 0.0f32;
    let mut previous = None;
    for c in text.chars().map(printable) {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            caret += scaled.kern(p, id);
        }
        previous = Some(id);
        let glyph = id.with_scale_and_position(px, point(caret, baseline));
        caret += scaled.h_advance(id);
        let Some(outline) = font.outline_glyph(glyph) else { continue };
        let bounds = outline.px_bounds();
        let (left, top) = (bounds.min.x as i64, bounds.min.y as i64);
        outline.draw(|x, y, coverage| {
            if coverage > 0.0 {
                pixel(left + i64::from(x), top + i64::from(y), coverage.min(1.0));
            }
        });
    }
    Ok(())
}

/// Blends pixel `(x, y)` of `img` towards `color` by `coverage`; nothing outside the image.
fn blend(img: &mut RgbImage, (x, y): (i64, i64), color: [u8; 3], coverage: f32) {
    let (Ok(x), Ok(y)) = (u32::try_from(x), u32::try_from(y)) else { return };
    if x >= img.width() || y >= img.height() {
        return;
    }
    let pixel = img.get_pixel_mut(x, y);
    for (channel, &target) in pixel.0.iter_mut().zip(&color) {
        let blended = f32::from(*channel) + (f32::from(target) - f32::from(*channel)) * coverage;
        *channel = blended.round().clamp(0.0, 255.0) as u8;
    }
}

/// Draws `text` at `px` pixels (ascent to descent) with the top-left corner of its line at
/// `(x, y)`, anti-aliased: each pixel is blended towards `color` by the glyph's coverage of it.
/// Drawing is clipped at the image border.
fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, px: f32, color: [u8; 3]) -> Result<()> {
    let (ascent, _) = font_metrics(px)?;
    rasterise(text, px, ascent, |gx, gy, coverage| {
        blend(img, (x.saturating_add(gx), y.saturating_add(gy)), color, coverage);
    })
}

/// `text` cut to at most `max_chars` characters, ending with `...` when cut.
fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{}\u{2026}", kept.trim_end())
}

// ---------------------------------------------------------------------------------------------
// Drawing primitives

/// Fills a `w x h` rectangle whose top-left corner is `(x, y)`, clipped to the image.
fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: u64, h: u64, color: [u8; 3]) {
    let clip = |from: i64, len: u64, size: u32| {
        let end = from.saturating_add(i64::try_from(len).unwrap_or(i64::MAX));
        (from.clamp(0, i64::from(size)) as u32, end.clamp(0, i64::from(size)) as u32)
    };
    let (x0, x1) = clip(x, w, img.width());
    let (y0, y1) = clip(y, h, img.height());
    for py in y0..y1 {
        for px in x0..x1 {
            img.put_pixel(px, py, Rgb(color));
        }
    }
}

/// Draws the 1 px outline of a `w x h` rectangle whose top-left corner is `(x, y)`.
fn stroke_rect(img: &mut RgbImage, x: i64, y: i64, w: u64, h: u64, color: [u8; 3]) {
    let right = x.saturating_add(i64::try_from(w).unwrap_or(i64::MAX)) - 1;
    let bottom = y.saturating_add(i64::try_from(h).unwrap_or(i64::MAX)) - 1;
    fill_rect(img, x, y, w, 1, color);
    fill_rect(img, x, bottom, w, 1, color);
    fill_rect(img, x, y, 1, h, color);
    fill_rect(img, right, y, 1, h, color);
}

/// Checks that a `width x height` image is reasonable to draw (`max_pixels` bounds its area),
/// and converts its size.
fn image_size(width: u64, height: u64, max_pixels: u64, what: &str) -> Result<(u32, u32)> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE || width * height > max_pixels {
        return Err(Error::Invalid(format!(
            "{what} would be {width} x {height} pixels, which this renderer does not draw"
        )));
    }
    // Both fit: MAX_SIDE < u32::MAX.
    Ok((width as u32, height as u32))
}

/// Encodes `img` as PNG into `path`, atomically.
fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    crate::write_atomic(path, |out| {
        img.write_with_encoder(PngEncoder::new(out)).map_err(|e| match e {
            ImageError::IoError(e) => Error::io(path, e),
            other => Error::Invalid(format!("{}: cannot encode PNG: {other}", path.display())),
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Colours

/// Clearly distinct colours, all readable on black, for the first classes.
const FIXED_PALETTE: [[u8; 3]; 20] = [
    [230, 25, 75],   // red
    [60, 180, 75],   // green
    [255, 225, 25],  // yellow
    [70, 140, 255],  // blue
    [245, 130, 48],  // orange
    [175, 85, 225],  // purple
    [70, 240, 240],  // cyan
    [240, 50, 230],  // magenta
    [210, 245, 60],  // lime
    [250, 190, 212], // pink
    [0, 160, 150],   // teal
    [220, 190, 255], // lavender
    [170, 110, 40],  // brown
    [240, 230, 140], // khaki
    [140, 160, 20],  // olive
    [170, 255, 195], // mint
    [0, 200, 255],   // sky blue
    [160, 160, 160], // grey
    [255, 255, 255], // white
    [255, 120, 110], // salmon
];

/// A distinct colour per class index `0..n`, readable on a black background; deterministic,
/// and `palette(n)` is a prefix of `palette(m)` for `n < m`.
///
/// The first 20 colours are a fixed qualitative palette; further ones step around the colour
/// wheel by the golden angle, cycling through three saturation/brightness levels, skipping
/// those too close to a colour already taken.
pub fn palette(n: usize) -> Vec<[u8; 3]> {
    /// Candidates closer than this (sum of channel differences) to a colour taken are skipped...
    const MIN_DISTANCE: u32 = 90;
    /// ...unless none of this many is far enough: then the farthest of them is taken.
    const TRIES: usize = 16;

    let mut colours: Vec<[u8; 3]> = FIXED_PALETTE.iter().copied().take(n).collect();
    let mut candidates = (0..).map(generated_colour);
    while colours.len() < n {
        let mut best: Option<([u8; 3], u32)> = None;
        for candidate in candidates.by_ref().take(TRIES) {
            let nearest = colours.iter().map(|&c| colour_distance(c, candidate)).min();
            let nearest = nearest.unwrap_or(u32::MAX);
            if best.is_none_or(|(_, d)| nearest > d) {
                best = Some((candidate, nearest));
            }
            if nearest >= MIN_DISTANCE {
                break;
            }
        }
        // `candidates` is endless, so there always is a best one.
        colours.extend(best.map(|(c, _)| c));
    }
    colours
}

/// Sum of the channel differences of two colours.
fn colour_distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter().zip(&b).map(|(&x, &y)| u32::from(x.abs_diff(y))).sum()
}

fn generated_colour(k: usize) -> [u8; 3] {
    const GOLDEN_ANGLE: f64 = 137.507_764;
    const LEVELS: [(f64, f64); 3] = [(0.75, 1.0), (0.45, 0.95), (0.95, 0.8)];
    let hue = (20.0 + k as f64 * GOLDEN_ANGLE) % 360.0;
    let (saturation, value) = LEVELS[k % LEVELS.len()];
    hsv_to_rgb(hue, saturation, value)
}

/// `hue` in degrees `[0, 360)`, `saturation` and `value` in `[0, 1]`.
fn hsv_to_rgb(hue: f64, saturation: f64, value: f64) -> [u8; 3] {
    let chroma = value * saturation;
    let sector = hue / 60.0;
    let x = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (r, g, b) = match sector as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = value - chroma;
    let channel = |c: f64| ((c + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [channel(r), channel(g), channel(b)]
}

// ---------------------------------------------------------------------------------------------
// Classification maps

/// The map is scaled up until its longer side reaches this many pixels...
const MIN_MAP_SIDE: usize = 300;
/// ...but by at most this factor.
const MAX_MAP_SCALE: usize = 8;
/// Size of the title and legend text, in pixels from the font's ascent to its descent.
const MAP_TEXT_PX: f32 = 17.0;
/// Height of the band the title is drawn in, above the map.
const TITLE_BAND: u32 = 16;
/// Side of a class map legend's colour swatch.
pub const LEGEND_SWATCH: u32 = 16;
/// Height of a class map legend entry.
pub const LEGEND_ROW: u32 = 22;
/// Longest title and class name drawn, in characters; longer ones are cut.
const MAX_TITLE_CHARS: usize = 100;
const MAX_NAME_CHARS: usize = 40;

/// Where the parts of a class map image lie, in pixels from its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapLayout {
    /// Side of the square block that draws one map pixel.
    pub scale: u32,
    /// Top-left corner of the map: map pixel `(row, col)` is the block at
    /// `(map_x + col * scale, map_y + row * scale)`.
    pub map_x: u32,
    pub map_y: u32,
    /// Top-left corner of the legend: the swatch of class `i` is the `LEGEND_SWATCH` square at
    /// `(legend_x, legend_y + i * LEGEND_ROW)`, its name to the right of it.
    pub legend_x: u32,
    pub legend_y: u32,
    /// Size of the whole image.
    pub width: u32,
    pub height: u32,
}

/// The factor a `height x width` map is scaled by: the smallest that makes its longer side at
/// least 300 px, within `1..=8`.
pub fn map_scale(height: usize, width: usize) -> u32 {
    let longer = height.max(width).max(1);
    MIN_MAP_SIDE.div_ceil(longer).clamp(1, MAX_MAP_SCALE) as u32
}

/// The layout of the image [`write_class_map`] draws: title on top, map below it on the left,
/// legend to the right of the map.
///
/// # Errors
/// [`Error::Invalid`] when the image would be unreasonably large.
pub fn class_map_layout(height: usize, width: usize, class_names: &[String], title: &str) -> Result<MapLayout> {
    let scale = map_scale(height, width);
    let map_w = (width as u64).saturating_mul(u64::from(scale));
    let map_h = (height as u64).saturating_mul(u64::from(scale));
    let title_w = text_width(&truncate(title, MAX_TITLE_CHARS), MAP_TEXT_PX)?;
    let mut longest_name = 0;
    for name in class_names {
        longest_name = longest_name.max(text_width(&truncate(name, MAX_NAME_CHARS), MAP_TEXT_PX)?);
    }
    let legend_w = u64::from(LEGEND_SWATCH) + 8 + longest_name;
    let legend_h = (class_names.len() as u64).saturating_mul(u64::from(LEGEND_ROW));

    let margin = u64::from(MARGIN);
    let map_x = margin;
    let map_y = 2 * margin + u64::from(TITLE_BAND);
    let legend_x = map_x.saturating_add(map_w) + 2 * margin;
    let image_w = legend_x.saturating_add(legend_w + margin).max(title_w + 2 * margin);
    let image_h = map_y.saturating_add(map_h.max(legend_h)) + margin;
    let (image_w, image_h) = image_size(image_w, image_h, u64::MAX, "the class map image")?;
    Ok(MapLayout {
        scale,
        // All below the image size, which fits in u32.
        map_x: map_x as u32,
        map_y: map_y as u32,
        legend_x: legend_x as u32,
        legend_y: map_y as u32,
        width: image_w,
        height: image_h,
    })
}

/// Writes a classification map as a PNG: each map pixel a block in its class colour
/// ([`palette`]`(class_names.len())`), unlabelled pixels black, a title above and a legend
/// (swatch and name of every class) to the right. See [`class_map_layout`] for where things go.
///
/// `labels` is row-major, `height * width`, class indexes of any unsigned type (`usize`, or the
/// `u16` of `prism_runtime`'s `Model::classify_scene`); `class_names[i]` names class index `i`.
///
/// # Errors
/// [`Error::Invalid`] for an empty map, a `labels` length other than `height * width`, a label
/// without a class name, or an image too large; [`Error::Io`] when the file cannot be written.
pub fn write_class_map<L: Copy + Into<usize>>(
    path: &Path,
    height: usize,
    width: usize,
    labels: &[Option<L>],
    class_names: &[String],
    title: &str,
) -> Result<()> {
    if height.checked_mul(width) != Some(labels.len()) {
        return Err(Error::Invalid(format!("class map of {height} x {width} pixels has {} labels", labels.len())));
    }
    write_class_map_rows(path, height, width, class_names, title, |rows| {
        Ok(labels[rows.start * width..rows.end * width].to_vec())
    })
}

/// Map rows drawn and encoded at a time by [`write_class_map_rows`].
const STRIP_ROWS: usize = 256;

/// [`write_class_map`] for a map that need not be in memory: the image is drawn and encoded a
/// strip at a time, and `rows(range)` is asked for the labels of the map rows in `range`
/// (row-major, `range.len() * width` of them), each row once, from the top. Memory is a strip's
/// (at most 256 map rows), whatever the map's size.
///
/// # Errors
/// As [`write_class_map`], and the first error `rows` returns (of the caller's type `E`,
/// unchanged); no file is left behind.
pub fn write_class_map_rows<L, F, E>(
    path: &Path,
    height: usize,
    width: usize,
    class_names: &[String],
    title: &str,
    mut rows: F,
) -> Result<(), E>
where
    L: Copy + Into<usize>,
    F: FnMut(Range<usize>) -> Result<Vec<Option<L>>, E>,
    E: From<Error>,
{
    if height == 0 || width == 0 {
        return Err(Error::Invalid(format!("class map is empty ({height} x {width})")).into());
    }
    let layout = class_map_layout(height, width, class_names, title)?;
    let colours = palette(class_names.len());
    let scale = layout.scale as usize;
    let map_y = layout.map_y as usize;
    // Strips of image rows: the title band, then STRIP_ROWS map rows at a time, and on below
    // the map in strips of the same height while the legend lasts.
    let strip = STRIP_ROWS * scale;
    let mut tops = vec![0];
    tops.extend((map_y..layout.height as usize).step_by(strip));
    tops.push(layout.height as usize);

    crate::write_atomic(path, |out| {
        let png_error = |e: png::EncodingError| match e {
            png::EncodingError::IoError(e) => Error::io(path, e),
            other => Error::Invalid(format!("{}: cannot encode PNG: {other}", path.display())),
        };
        let mut encoder = png::Encoder::new(out, layout.width, layout.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(png_error)?;
        let mut stream = writer.stream_writer().map_err(png_error)?;
        for pair in tops.windows(2) {
            let (top, bottom) = (pair[0], pair[1]);
            let first = top.saturating_sub(map_y) / scale;
            let map_rows = first.min(height)..(bottom.saturating_sub(map_y) / scale).min(height);
            let labels = if map_rows.is_empty() { Vec::new() } else { rows(map_rows.clone())? };
            if labels.len() != map_rows.len() * width {
                let reason = format!("class map rows {map_rows:?} of {width} pixels came with {} labels", labels.len());
                return Err(Error::Invalid(reason).into());
            }
            let mut img = RgbImage::from_pixel(layout.width, (bottom - top) as u32, Rgb(BACKGROUND));
            draw_map_strip(
                &mut img,
                top as i64,
                &layout,
                (map_rows.start, height, width),
                &labels,
                class_names,
                &colours,
                title,
            )?;
            stream.write_all(img.as_raw()).map_err(|e| Error::io(path, e))?;
        }
        Ok(stream.finish().map_err(png_error)?)
    })
}

/// Draws the part of a class map image that starts `top` rows down into `img`: the title, the
/// map's frame and legend where they cross it, and the map rows from `first` on (`labels`, row
/// major, `width` a row) of a map of `height` rows.
#[allow(clippy::too_many_arguments)]
fn draw_map_strip<L: Copy + Into<usize>>(
    img: &mut RgbImage,
    top: i64,
    layout: &MapLayout,
    (first, height, width): (usize, usize, usize),
    labels: &[Option<L>],
    class_names: &[String],
    colours: &[[u8; 3]],
    title: &str,
) -> Result<()> {
    let margin = i64::from(MARGIN);
    draw_text(img, margin, margin - top, &truncate(title, MAX_TITLE_CHARS), MAP_TEXT_PX, TEXT)?;

    let scale = u64::from(layout.scale);
    let (map_x, map_y) = (i64::from(layout.map_x), i64::from(layout.map_y) - top);
    let block = i64::from(layout.scale);
    let (map_w, map_h) = (width as u64 * scale, height as u64 * scale);
    stroke_rect(img, map_x - 1, map_y - 1, map_w + 2, map_h + 2, FRAME);
    for (i, label) in labels.iter().enumerate() {
        let Some(label) = label.map(Into::into) else { continue };
        let (row, col) = (first + i / width, i % width);
        let colour = colours.get(label).ok_or_else(|| {
            Error::Invalid(format!(
                "class map label {label} at row {row}, column {col} has no class name ({} names)",
                class_names.len()
            ))
        })?;
        fill_rect(img, map_x + col as i64 * block, map_y + row as i64 * block, scale, scale, *colour);
    }

    let swatch = u64::from(LEGEND_SWATCH);
    let text_x = i64::from(layout.legend_x + LEGEND_SWATCH + 8);
    for (i, (name, colour)) in class_names.iter().zip(colours).enumerate() {
        let y = i64::from(layout.legend_y) - top + i as i64 * i64::from(LEGEND_ROW);
        fill_rect(img, i64::from(layout.legend_x), y, swatch, swatch, *colour);
        draw_text(img, text_x, y, &truncate(name, MAX_NAME_CHARS), MAP_TEXT_PX, TEXT)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// A fresh folder for one test's files.
    fn test_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("prism-render-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn colour_at(img: &RgbImage, x: u32, y: u32) -> [u8; 3] {
        img.get_pixel(x, y).0
    }

    #[test]
    fn map_scale_aims_at_300_px_within_1_to_8() {
        assert_eq!(map_scale(20, 30), 8);
        assert_eq!(map_scale(100, 150), 2);
        assert_eq!(map_scale(145, 145), 3);
        assert_eq!(map_scale(610, 340), 1);
        assert_eq!(map_scale(1, 1), 8);
    }

    #[test]
    fn class_map_draws_labels_legend_and_title() -> TestResult {
        let three = names(&["corn", "grass-pasture", "woods"]);
        check_class_map("small", 20, 30, &three)?;
        // Drawn in strips of 256 map rows: three of them, and the rows below.
        check_class_map("tall", 600, 7, &three)?;
        // A legend far taller than the map.
        let many: Vec<String> = (0..40).map(|i| format!("class {i}")).collect();
        check_class_map("legend", 9, 2, &many)?;
        Ok(())
    }

    /// Draws a patterned `height x width` map (every class in it, some pixels unlabelled)
    /// and checks every pixel of it, the legend and the title in the PNG read back.
    fn check_class_map(name: &str, height: usize, width: usize, classes: &[String]) -> TestResult {
        let title = "hybridsn - Indian Pines - OA 97.3%";
        let labels: Vec<Option<usize>> = (0..height * width)
            .map(|i| {
                let (r, c) = (i / width, i % width);
                ((r + c) % 7 != 0).then_some((r / 7 + c / 10 + i) % classes.len())
            })
            .collect();
        let dir = test_dir(name);
        let path = dir.join("map.png");
        // Rows are asked for once each, in order from the top.
        let mut asked = Vec::new();
        write_class_map_rows(&path, height, width, classes, title, |rows| {
            asked.push(rows.clone());
            Ok::<_, Error>(labels[rows.start * width..rows.end * width].to_vec())
        })?;
        assert_eq!(asked.first().map(|r| r.start), Some(0), "{asked:?}");
        assert_eq!(asked.last().map(|r| r.end), Some(height), "{asked:?}");
        assert!(asked.windows(2).all(|w| w[0].end == w[1].start), "{asked:?}");
        assert!(asked.iter().all(|r| !r.is_empty() && r.len() <= STRIP_ROWS), "{asked:?}");
        let same = dir.join("same.png");
        write_class_map(&same, height, width, &labels, classes, title)?;
        assert_eq!(std::fs::read(&same)?, std::fs::read(&path)?);

        let img = image::open(&path)?.to_rgb8();
        let layout = class_map_layout(height, width, classes, title)?;
        assert_eq!((img.width(), img.height()), (layout.width, layout.height));
        let colours = palette(classes.len());
        let s = layout.scale;
        for (i, label) in labels.iter().enumerate() {
            let (row, col) = ((i / width) as u32, (i % width) as u32);
            let expected = label.map_or(BACKGROUND, |l| colours[l]);
            let (x, y) = (layout.map_x + col * s, layout.map_y + row * s);
            for (dx, dy) in [(0, 0), (s - 1, 0), (0, s - 1), (s - 1, s - 1), (s / 2, s / 2)] {
                assert_eq!(colour_at(&img, x + dx, y + dy), expected, "map pixel ({row}, {col})");
            }
        }

        // The frame: a 1 px outline just around the map, whole across the strips.
        let (left, top) = (layout.map_x - 1, layout.map_y - 1);
        let (right, bottom) = (layout.map_x + width as u32 * s, layout.map_y + height as u32 * s);
        for y in top..=bottom {
            assert_eq!((colour_at(&img, left, y), colour_at(&img, right, y)), (FRAME, FRAME), "frame at row {y}");
        }
        for x in left..=right {
            assert_eq!((colour_at(&img, x, top), colour_at(&img, x, bottom)), (FRAME, FRAME), "frame at column {x}");
        }

        // The legend holds a swatch of each class colour, in order, and names next to them.
        for (i, colour) in colours.iter().enumerate() {
            let y = layout.legend_y + i as u32 * LEGEND_ROW;
            for (dx, dy) in [(0, 0), (LEGEND_SWATCH - 1, LEGEND_SWATCH - 1)] {
                assert_eq!(colour_at(&img, layout.legend_x + dx, y + dy), *colour);
            }
            // Anti-aliased text: pixels between black and the text's grey, some of them bright.
            let name_x = layout.legend_x + LEGEND_SWATCH + 8;
            let name: Vec<[u8; 3]> = (name_x..img.width())
                .flat_map(|x| (y..y + LEGEND_SWATCH).map(move |y| (x, y)))
                .map(|(x, y)| colour_at(&img, x, y))
                .filter(|&c| c != BACKGROUND)
                .collect();
            assert!(name.len() > 50, "class {i} name has {} pixels", name.len());
            assert!(name.iter().all(|c| c[0] == c[1] && c[1] == c[2] && c[0] <= TEXT[0]), "class {i} name colours");
            assert!(name.iter().filter(|c| c[0] > 200).count() > 15, "class {i} name is faint");
        }

        // The title band, above the map's frame, is not empty.
        let title_pixels = (0..layout.map_y - 2)
            .flat_map(|y| (0..img.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| colour_at(&img, x, y) != BACKGROUND)
            .count();
        assert!(title_pixels > 200, "title has {title_pixels} pixels");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn class_map_rejects_bad_input() {
        let dir = test_dir("map-errors");
        let path = dir.join("bad.png");
        let classes = names(&["a", "b"]);
        let invalid = |r: Result<()>| matches!(r, Err(Error::Invalid(_)));
        assert!(invalid(write_class_map(&path, 2, 3, &[Some(0usize); 5], &classes, "t")));
        assert!(invalid(write_class_map(&path, 2, 3, &[Some(0usize); 7], &classes, "t")));
        let mut labels = vec![None; 6];
        labels[4] = Some(2usize);
        assert!(invalid(write_class_map(&path, 2, 3, &labels, &classes, "t")));
        // The same with the u16 labels of scene inference.
        assert!(invalid(write_class_map(&path, 2, 3, &[None, None, None, None, Some(2u16), None], &classes, "t")));
        assert!(invalid(write_class_map::<usize>(&path, 0, 3, &[], &classes, "t")));
        assert!(invalid(write_class_map::<usize>(&path, 3, 0, &[], &classes, "t")));
        assert!(invalid(write_class_map(&path, usize::MAX, 2, &[None::<usize>; 2], &classes, "t")));
        assert!(!path.exists());
    }

    #[test]
    fn palette_is_distinct_deterministic_and_visible() {
        let colours = palette(30);
        assert_eq!(colours.len(), 30);
        assert_eq!(palette(5), colours[..5]);
        for (i, a) in colours.iter().enumerate() {
            assert!(a.iter().any(|&c| c >= 150), "colour {i} {a:?} is too dark on black");
            for (j, b) in colours.iter().enumerate().skip(i + 1) {
                let distance = colour_distance(*a, *b);
                assert!(distance >= 60, "colours {i} {a:?} and {j} {b:?} are too close");
            }
        }
        assert!(palette(0).is_empty());
        let many = palette(300);
        assert_eq!(many[..30], colours);
        for (i, a) in many.iter().enumerate() {
            assert!(many[..i].iter().all(|b| b != a), "colour {i} {a:?} repeats");
        }
    }

    #[test]
    fn text_is_set_in_the_embedded_font_within_its_line() -> TestResult {
        let px = 17.0;
        let width = text_width("Grass-pasture", px)?;
        // DejaVu Sans at 17 px: about 8 to 10 px a character.
        assert!((100..130).contains(&width), "width {width}");
        assert_eq!(text_width("", px)?, 0);
        let mut img = RgbImage::from_pixel(200, 40, Rgb(BACKGROUND));
        draw_text(&mut img, 10, 5, "Grass-pasture", px, TEXT)?;
        let drawn: Vec<(u32, u32)> =
            img.enumerate_pixels().filter(|(_, _, p)| p.0 != BACKGROUND).map(|(x, y, _)| (x, y)).collect();
        assert!(drawn.len() > 150, "{} pixels", drawn.len());
        let (xs, ys): (Vec<u32>, Vec<u32>) = drawn.into_iter().unzip();
        let (left, right) = (xs.iter().min().copied(), xs.iter().max().copied());
        let (top, bottom) = (ys.iter().min().copied(), ys.iter().max().copied());
        // Within the line: from its start to its advance, from its top to its descent.
        assert!(left >= Some(10) && right < Some(10 + width as u32 + 1), "{left:?}..{right:?}");
        assert!(top >= Some(5) && bottom < Some(5 + px as u32 + 1), "{top:?}..{bottom:?}");
        // Fully covered pixels take the colour itself.
        assert!(img.pixels().any(|p| p.0 == TEXT));
        Ok(())
    }

    #[test]
    fn drawing_outside_the_image_is_clipped() -> TestResult {
        let mut img = RgbImage::from_pixel(10, 10, Rgb(BACKGROUND));
        draw_text(&mut img, -5, -3, "Hé€\n\u{0}\u{10ffff}", 17.0, TEXT)?;
        draw_text(&mut img, i64::MIN, i64::MAX, "WW", 17.0, TEXT)?;
        draw_text(&mut img, i64::MAX, i64::MIN, "WW", 17.0, TEXT)?;
        draw_text(&mut img, 8, 8, "M", 100.0, TEXT)?;
        draw_text(&mut img, 0, 0, "X", 0.0, TEXT)?;
        fill_rect(&mut img, i64::MIN, i64::MIN, u64::MAX, 3, TEXT);
        stroke_rect(&mut img, -4, -4, 30, 30, FRAME);
        assert!(img.pixels().any(|p| p.0 == TEXT));
        assert_eq!(truncate("Buildings-Grass-Trees-Drives", 10), "Buildings\u{2026}");
        assert_eq!(truncate("Woods", 5), "Woods");
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Charts

    use crate::metrics::Report;
    use charts::{BAR_ROW, BARS_WIDTH, blues, confusion_layout, series_colour, tick_label};
    use plotters::style::RGBColor;

    fn rgb(colour: RGBColor) -> [u8; 3] {
        [colour.0, colour.1, colour.2]
    }

    fn curves() -> Vec<Panel> {
        let epochs = 1..=30;
        let loss = |e: i32, k: f64| k / f64::from(e) + 0.05;
        let series = |name: &str, points: Vec<(f64, f64)>| Series { name: name.into(), points };
        vec![
            Panel {
                title: "loss".into(),
                x_label: "epoch".into(),
                y_label: "cross-entropy".into(),
                series: vec![
                    series("train", epochs.clone().map(|e| (f64::from(e), loss(e, 2.0))).collect()),
                    series(
                        "val",
                        epochs.clone().map(|e| (f64::from(e), if e == 7 { f64::NAN } else { loss(e, 2.4) })).collect(),
                    ),
                ],
            },
            Panel {
                title: "accuracy".into(),
                x_label: "epoch".into(),
                y_label: "accuracy".into(),
                series: vec![
                    series("train", epochs.clone().map(|e| (f64::from(e), 1.0 - loss(e, 0.5))).collect()),
                    series("val", epochs.map(|e| (f64::from(e), 1.0 - loss(e, 0.7))).collect()),
                ],
            },
        ]
    }

    /// Pixels of `img` of `colour` in columns `columns`.
    fn count(img: &RgbImage, columns: std::ops::Range<u32>, colour: [u8; 3]) -> usize {
        columns
            .flat_map(|x| (0..img.height()).map(move |y| (x, y)))
            .filter(|&(x, y)| colour_at(img, x, y) == colour)
            .count()
    }

    #[test]
    fn chart_draws_panels_and_series_colours_on_white() -> TestResult {
        let dir = test_dir("chart");
        let path = dir.join("curves.png");
        let panels = curves();
        write_chart(&path, &panels)?;
        let img = image::open(&path)?.to_rgb8();
        assert_eq!((img.width(), img.height()), (2 * PANEL_WIDTH, PANEL_HEIGHT));
        assert_eq!(colour_at(&img, 0, 0), [255, 255, 255]);
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        assert!(white * 10 > img.pixels().len() * 7, "mostly white: {white} pixels");
        // Each series' colour is drawn in its panel as a line (many pixels); a colour of no
        // series is not drawn at all.
        for (p, panel) in panels.iter().enumerate() {
            let columns = p as u32 * PANEL_WIDTH..(p as u32 + 1) * PANEL_WIDTH;
            for s in 0..panel.series.len() {
                let pixels = count(&img, columns.clone(), rgb(series_colour(s)));
                assert!(pixels > 400, "panel {p} series {s} has {pixels} pixels");
            }
            assert_eq!(count(&img, columns, rgb(series_colour(2))), 0);
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn chart_handles_degenerate_series() -> TestResult {
        let dir = test_dir("chart-degenerate");
        let path = dir.join("odd.png");
        let series = |name: &str, points: Vec<(f64, f64)>| Series { name: name.into(), points };
        let panels = vec![
            Panel {
                title: "single point".into(),
                series: vec![series("one", vec![(1.0, 0.5)]), series("empty", vec![])],
                ..Panel::default()
            },
            Panel {
                title: "constant, NaN and extremes".into(),
                series: vec![
                    series("flat", vec![(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)]),
                    series("nan", vec![(f64::NAN, 1.0), (1.0, f64::NAN), (f64::INFINITY, 2.0)]),
                    series("huge", vec![(-1e300, 1e300), (1e300, -1e300)]),
                    series("", vec![(0.0, 1e-300), (1.0, 1e-300)]),
                ],
                ..Panel::default()
            },
            Panel {
                title: "tiny".into(),
                series: vec![series("tiny", vec![(1e-300, 2e-300), (3e-300, 1e-300), (4e-300, 5e-300)])],
                ..Panel::default()
            },
            Panel::default(),
        ];
        write_chart(&path, &panels)?;
        let img = image::open(&path)?.to_rgb8();
        assert_eq!((img.width(), img.height()), (4 * PANEL_WIDTH, PANEL_HEIGHT));
        // The single point is drawn as a dot, the huge lines too.
        assert!(count(&img, 0..PANEL_WIDTH, rgb(series_colour(0))) > 20);
        assert!(count(&img, PANEL_WIDTH..2 * PANEL_WIDTH, rgb(series_colour(2))) > 400);

        assert!(matches!(write_chart(&dir.join("none.png"), &[]), Err(Error::Invalid(_))));
        let overflow = Panel { series: vec![series("x", vec![(0.0, -f64::MAX), (1.0, f64::MAX)])], ..Panel::default() };
        assert!(matches!(write_chart(&dir.join("overflow.png"), &[overflow]), Err(Error::Invalid(_))));
        assert!(!dir.join("none.png").exists() && !dir.join("overflow.png").exists());
        let many = vec![Panel::default(); 200];
        assert!(matches!(write_chart(&dir.join("many.png"), &many), Err(Error::Invalid(_))));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn a_nan_breaks_a_line_and_the_legend_avoids_the_lines() {
        let points = [(0.0, 0.0), (1.0, 1.0), (2.0, f64::NAN), (3.0, 0.0), (f64::INFINITY, 1.0), (5.0, 1.0)];
        let runs: Vec<&[(f64, f64)]> = charts::finite_runs(&points).collect();
        assert_eq!(runs, [&points[..2], &points[3..4], &points[5..]]);
        let series = |f: &dyn Fn(f64) -> f64| Series {
            name: "s".into(),
            points: (0..30).map(|e| (f64::from(e), f(f64::from(e)))).collect(),
        };
        let falling = series(&|e| 1.0 / (e + 1.0));
        assert_eq!(charts::legend_corner(&[falling], &(0.0..30.0), &(0.0..1.0)), (true, true));
        let rising = series(&|e| 1.0 - 1.0 / (e + 1.0));
        assert_eq!(charts::legend_corner(&[rising], &(0.0..30.0), &(0.0..1.0)), (true, false));
        // Two points far apart count as the line between them: a flat line along the top
        // weighs more than a few points at the bottom.
        let flat_top = Series { name: "flat".into(), points: vec![(0.0, 0.97), (30.0, 0.97)] };
        // (Lone points: NaNs between them.)
        let points = [0.0, 1.0, 2.0, 3.0, 4.0, 26.0, 27.0, 28.0, 29.0, 30.0].map(|x| [(x, 0.05), (x, f64::NAN)]);
        let bottom = Series { name: "bottom".into(), points: points.concat() };
        assert_eq!(charts::legend_corner(&[flat_top, bottom], &(0.0..30.0), &(0.0..1.0)), (true, false));
    }

    #[test]
    fn axes_fit_the_data_and_ticks_read_well() -> TestResult {
        let range = charts::axis_range([1.0, 30.0, f64::NAN].into_iter(), "x")?;
        assert!((range.start - (1.0 - 1.45)).abs() < 1e-12 && (range.end - 31.45).abs() < 1e-12, "{range:?}");
        let flat = charts::axis_range([0.973, 0.973].into_iter(), "y")?;
        assert!(flat.start < 0.973 && flat.end > 0.973);
        assert_eq!(charts::axis_range([0.0].into_iter(), "y")?, -1.0..1.0);
        assert_eq!(charts::axis_range(std::iter::empty(), "y")?, 0.0..1.0);
        assert!(charts::axis_range([-f64::MAX, f64::MAX].into_iter(), "y").is_err());

        assert_eq!(tick_label(20.0, 5.0), "20");
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        assert_eq!(tick_label(0.75, 0.25), "0.75");
        assert_eq!(tick_label(97.5, 2.5), "97.5");
        assert_eq!(tick_label(1e-17, 0.1), "0.0");
        assert_eq!(tick_label(-0.2, 0.1), "-0.2");
        assert_eq!(tick_label(2e7, 5e6), "2.0e7");
        assert_eq!(tick_label(3e-6, 1e-6), "3.0e-6");
        Ok(())
    }

    /// A report of four classes with recalls 100, 50, 25 and 75 %, and a fifth without samples.
    fn report() -> Result<Report> {
        let names: Vec<String> =
            ["meadows", "bare soil", "a class with a name much longer than any drawn whole", "trees", "shadows"]
                .map(String::from)
                .into();
        let confusion = vec![
            vec![4, 0, 0, 0, 0],
            vec![1, 1, 0, 0, 0],
            vec![0, 3, 1, 0, 0],
            vec![0, 0, 1, 3, 0],
            vec![0, 0, 0, 0, 0],
        ];
        Report::from_confusion(confusion, &names)
    }

    #[test]
    fn per_class_bars_are_as_long_as_the_recalls() -> TestResult {
        let dir = test_dir("bars");
        let path = dir.join("per_class.png");
        let report = report()?;
        write_per_class_bars(&path, &report, "svm - Pavia - per-class accuracy")?;
        let img = image::open(&path)?.to_rgb8();
        assert_eq!((img.width(), img.height()), (BARS_WIDTH, 142 + 5 * BAR_ROW));

        // The bars: runs of their colour down the column just right of where they start.
        let bar = rgb(charts::BAR);
        let start = (0..img.width()).find(|&x| (0..img.height()).any(|y| colour_at(&img, x, y) == bar));
        let start = start.ok_or("no bar")?;
        let mut rows = Vec::new();
        let mut y = 0;
        while y < img.height() {
            if colour_at(&img, start + 1, y) == bar {
                let top = y;
                while y < img.height() && colour_at(&img, start + 1, y) == bar {
                    y += 1;
                }
                rows.push((top + y) / 2);
            }
            y += 1;
        }
        assert_eq!(rows.len(), 4, "bars at rows {rows:?}");
        assert!(rows.windows(2).all(|w| w[1] - w[0] == BAR_ROW), "bars at rows {rows:?}");
        // From where the bars start to the last pixel of their colour in the row.
        let length = |y: u32| (start..img.width()).rev().find(|&x| colour_at(&img, x, y) == bar).map(|x| x + 1 - start);
        let lengths: Vec<f64> = rows.iter().map(|&y| f64::from(length(y).unwrap_or(0))).collect();
        let full = lengths[0];
        assert!(full > 400.0, "{lengths:?}");
        for (length, recall) in lengths.iter().zip([1.0, 0.5, 0.25, 0.75]) {
            assert!((length - recall * full).abs() <= 2.0, "{lengths:?}");
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn confusion_cells_are_coloured_by_their_share_of_the_row() -> TestResult {
        let dir = test_dir("confusion");
        let path = dir.join("confusion.png");
        let report = report()?;
        write_confusion(&path, &report, "svm - Pavia - confusion matrix")?;
        let img = image::open(&path)?.to_rgb8();
        let names: Vec<String> = report.per_class.iter().map(|c| c.name.clone()).collect();
        let layout = confusion_layout(&report, &charts::class_names(&report))?;
        assert_eq!((img.width(), img.height()), (layout.width, layout.height));
        assert!(layout.count_px > 0, "{layout:?}");
        let luminance = |c: [u8; 3]| 0.2126 * f64::from(c[0]) + 0.7152 * f64::from(c[1]) + 0.0722 * f64::from(c[2]);
        let mut cells = Vec::new();
        for (t, row) in report.confusion.iter().enumerate() {
            let total: usize = row.iter().sum();
            for (p, &count) in row.iter().enumerate() {
                let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
                let (x, y) = (layout.x0 + p as u32 * layout.cell, layout.y0 + t as u32 * layout.cell);
                // A corner of the cell, clear of its count.
                let colour = colour_at(&img, x + 1, y + 1);
                assert_eq!(colour, rgb(blues(share)), "cell ({t}, {p}) of share {share}");
                assert_eq!(colour_at(&img, x + layout.cell - 3, y + layout.cell - 3), colour);
                cells.push((share, luminance(colour)));
                // The count is written in the middle.
                let middle =
                    (x + 3..x + layout.cell - 3).flat_map(|x| (y + 3..y + layout.cell - 3).map(move |y| (x, y)));
                assert!(middle.clone().any(|(x, y)| colour_at(&img, x, y) != colour), "cell ({t}, {p}) has no count");
            }
        }
        // Darker for a larger share, the same for the same share.
        for a in &cells {
            for b in &cells {
                if a.0 < b.0 {
                    assert!(a.1 > b.1, "{a:?} {b:?}");
                } else if a.0 == b.0 {
                    assert_eq!(a.1, b.1);
                }
            }
        }
        assert!(names.len() == 5);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn many_classes_make_small_cells_without_counts() -> TestResult {
        let dir = test_dir("confusion-many");
        let k = 120;
        let names: Vec<String> = (0..k).map(|i| format!("class {i}")).collect();
        let confusion: Vec<Vec<usize>> =
            (0..k).map(|t| (0..k).map(|p| usize::from(t == p) * 1000 + p % 3).collect()).collect();
        let report = Report::from_confusion(confusion, &names)?;
        let layout = confusion_layout(&report, &names)?;
        assert_eq!((layout.cell, layout.count_px), (8, 0));
        write_confusion(&dir.join("confusion.png"), &report, "many")?;
        write_per_class_bars(&dir.join("per_class.png"), &report, "many")?;
        let img = image::open(dir.join("confusion.png"))?.to_rgb8();
        assert_eq!((img.width(), img.height()), (layout.width, layout.height));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn reports_without_classes_or_square_matrices_are_refused() -> TestResult {
        let dir = test_dir("report-errors");
        let empty =
            Report { samples: 0, oa: f64::NAN, aa: f64::NAN, kappa: f64::NAN, per_class: vec![], confusion: vec![] };
        let path = dir.join("x.png");
        assert!(matches!(write_per_class_bars(&path, &empty, "t"), Err(Error::Invalid(_))));
        assert!(matches!(write_confusion(&path, &empty, "t"), Err(Error::Invalid(_))));
        let mut ragged = report()?;
        ragged.confusion[2].pop();
        assert!(matches!(write_per_class_bars(&path, &ragged, "t"), Err(Error::Shape(_))));
        assert!(matches!(write_confusion(&path, &ragged, "t"), Err(Error::Shape(_))));
        assert!(!path.exists());

        // NaN figures draw without their bar and line.
        let mut odd = report()?;
        odd.aa = f64::NAN;
        odd.per_class[1].accuracy = Some(f64::NAN);
        odd.per_class[3].accuracy = Some(7.0);
        write_per_class_bars(&path, &odd, "")?;
        write_confusion(&path, &odd, "")?;
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
