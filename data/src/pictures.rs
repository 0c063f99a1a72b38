//! PNG rendering for reports: classification maps with a legend, and training curves.
//!
//! Needs no font files nor system libraries: text is drawn with the public-domain 8x8 bitmap
//! font of `font8x8` (ASCII and Latin-1; other characters show as `?`), images are encoded
//! with `image` and written atomically with [`crate::write_atomic`]. Drawing is clipped at
//! the image border, so no input makes it panic.
//!
//! Everything is drawn in light colours on a black background ([`BACKGROUND`]), which is also
//! the colour of unlabelled map pixels.

use std::io::Write as _;
use std::ops::Range;
use std::path::Path;

use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};
use image::codecs::png::PngEncoder;
use image::{ImageError, Rgb, RgbImage};

use crate::{Error, Result};

/// Background of every image, and colour of unlabelled (`None`) map pixels.
pub const BACKGROUND: [u8; 3] = [0, 0, 0];
const TEXT: [u8; 3] = [235, 235, 235];
const DIM_TEXT: [u8; 3] = [190, 190, 190];
const FRAME: [u8; 3] = [110, 110, 110];
const GRID: [u8; 3] = [48, 48, 48];
const AXIS: [u8; 3] = [170, 170, 170];

/// Side of a glyph of the font at scale 1, in pixels.
const GLYPH: u32 = 8;
/// Space around the content of an image.
const MARGIN: u32 = 12;
/// The largest side of an image, and the largest area of one drawn whole in memory (class maps
/// are drawn a strip at a time and have no limit of area).
const MAX_SIDE: u64 = 1 << 16;
const MAX_PIXELS: u64 = 1 << 28;

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

/// A line from `from` to `to` (Bresenham), `thickness` pixels wide (down and to the right).
fn draw_line(img: &mut RgbImage, from: (i64, i64), to: (i64, i64), thickness: u64, color: [u8; 3]) {
    let (mut x, mut y) = from;
    let dx = (to.0 - x).abs();
    let dy = -(to.1 - y).abs();
    let step_x = if x < to.0 { 1 } else { -1 };
    let step_y = if y < to.1 { 1 } else { -1 };
    let mut err = dx + dy;
    loop {
        fill_rect(img, x, y, thickness, thickness, color);
        if (x, y) == to {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += step_x;
        }
        if e2 <= dx {
            err += dx;
            y += step_y;
        }
    }
}

/// The 8x8 bitmap of `c`: one byte per row, top row first, bit 0 the leftmost pixel.
/// Characters outside ASCII and Latin-1 are drawn as `?`.
fn glyph(c: char) -> [u8; 8] {
    let code = c as usize;
    match code {
        0x20..=0x7e => BASIC_LEGACY[code],
        0xa0..=0xff => LATIN_LEGACY[code - 0xa0],
        _ => BASIC_LEGACY[usize::from(b'?')],
    }
}

/// Draws `text` with its top-left corner at `(x, y)`, with the 8x8 font scaled by `scale`
/// (each glyph pixel becomes a `scale x scale` block, each character advances `8 * scale`).
/// Only the glyphs' set pixels are drawn; the rest of the image is left as it is. Drawing is
/// clipped at the image border; a scale of 0 draws nothing.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, color: [u8; 3]) {
    let block = i64::from(scale);
    let advance = i64::from(GLYPH) * block;
    for (i, c) in text.chars().enumerate() {
        let left = x.saturating_add((i as i64).saturating_mul(advance));
        if left >= i64::from(img.width()) || scale == 0 {
            break;
        }
        for (row, bits) in (0i64..).zip(glyph(c)) {
            for col in 0..8i64 {
                if (bits >> col) & 1 == 1 {
                    let px = left.saturating_add(col * block);
                    let py = y.saturating_add(row * block);
                    fill_rect(img, px, py, u64::from(scale), u64::from(scale), color);
                }
            }
        }
    }
}

/// Width in pixels of `text` drawn by [`draw_text`] at `scale`.
fn text_width(text: &str, scale: u32) -> u64 {
    text.chars().count() as u64 * u64::from(GLYPH) * u64::from(scale)
}

/// `text` cut to at most `max_chars` characters, ending with `..` when cut.
fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(2)).collect();
    format!("{kept}..")
}

/// Checks that a `width x height` image is reasonable to draw (`max_pixels` bounds its area),
/// and converts its size.
fn image_size(width: u64, height: u64, max_pixels: u64, what: &str) -> Result<(u32, u32)> {
    if width > MAX_SIDE || height > MAX_SIDE || width * height > max_pixels {
        return Err(Error::Invalid(format!(
            "{what} would be {width} x {height} pixels, larger than this renderer allows"
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
// Classification maps

/// The map is scaled up until its longer side reaches this many pixels...
const MIN_MAP_SIDE: usize = 300;
/// ...but by at most this factor.
const MAX_MAP_SCALE: usize = 8;
/// Scale of the title and legend text.
const MAP_TEXT_SCALE: u32 = 2;
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
    let title_w = text_width(&truncate(title, MAX_TITLE_CHARS), MAP_TEXT_SCALE);
    let longest_name =
        class_names.iter().map(|name| text_width(&truncate(name, MAX_NAME_CHARS), MAP_TEXT_SCALE)).max().unwrap_or(0);
    let legend_w = u64::from(LEGEND_SWATCH) + 8 + longest_name;
    let legend_h = (class_names.len() as u64).saturating_mul(u64::from(LEGEND_ROW));

    let margin = u64::from(MARGIN);
    let map_x = margin;
    let map_y = 2 * margin + u64::from(GLYPH * MAP_TEXT_SCALE);
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
/// `u16` of [`Model::classify_scene`](crate::model::Model::classify_scene)); `class_names[i]`
/// names class index `i`.
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
    draw_text(img, margin, margin - top, &truncate(title, MAX_TITLE_CHARS), MAP_TEXT_SCALE, TEXT);

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
        draw_text(img, text_x, y, &truncate(name, MAX_NAME_CHARS), MAP_TEXT_SCALE, TEXT);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Charts

/// One line series of a chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub name: String,
    /// `(x, y)` points, joined in this order; points with a NaN or infinite coordinate are
    /// skipped.
    pub points: Vec<(f64, f64)>,
}

/// A chart panel: a title, axis labels, and its series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// Width of each chart panel.
pub const PANEL_WIDTH: u32 = 520;
const PLOT_LEFT: u32 = 80;
const PLOT_RIGHT: u32 = PANEL_WIDTH - 24;
const PLOT_TOP: u32 = 56;
const PLOT_BOTTOM: u32 = PLOT_TOP + 260;
/// Top of the first legend row, and height of each.
const CHART_LEGEND_TOP: u32 = PLOT_BOTTOM + 44;
const CHART_LEGEND_ROW: u32 = 14;
/// Length of the line sample before a series name in the legend.
const LINE_SAMPLE: u32 = 20;
const CHART_TITLE_SCALE: u32 = 2;

/// Where each series' legend entry goes in its panel: `(x offset, row)`. Entries run left to
/// right from the plot's left edge and wrap when the panel is full.
fn legend_positions(series: &[Series]) -> Vec<(u32, u32)> {
    let (mut x, mut row) = (PLOT_LEFT, 0);
    series
        .iter()
        .map(|s| {
            let entry = LINE_SAMPLE + 6 + text_width(&legend_name(s), 1) as u32 + 18;
            if x > PLOT_LEFT && x + entry > PANEL_WIDTH - MARGIN {
                (x, row) = (PLOT_LEFT, row + 1);
            }
            let position = (x, row);
            x += entry;
            position
        })
        .collect()
}

fn legend_name(series: &Series) -> String {
    let max_chars = (PANEL_WIDTH - PLOT_LEFT - LINE_SAMPLE - 40) / GLYPH;
    truncate(&series.name, max_chars as usize)
}

/// Size of the image [`write_chart`] draws for `panels`: [`PANEL_WIDTH`] per panel, side by
/// side, and tall enough for the longest legend.
pub fn chart_size(panels: &[Panel]) -> (u64, u64) {
    let rows =
        panels.iter().filter_map(|p| legend_positions(&p.series).last().map(|&(_, row)| row + 1)).max().unwrap_or(1);
    let width = panels.len() as u64 * u64::from(PANEL_WIDTH);
    let height = u64::from(CHART_LEGEND_TOP) + u64::from(rows) * u64::from(CHART_LEGEND_ROW);
    (width, height + u64::from(MARGIN))
}

/// A chart axis: the value range shown, and the distance between ticks (round numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    /// `None` when the range is too odd for ticks (e.g. near the limits of f64).
    step: Option<f64>,
}

impl Axis {
    /// An axis that shows all finite `values`, widened to round numbers; `[0, 1]` when there
    /// are none, a padded range around a constant.
    fn fit(values: impl Iterator<Item = f64>) -> Axis {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold(None, |range: Option<(f64, f64)>, v| match range {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })
            .unwrap_or((0.0, 1.0));
        let (lo, hi) = if lo < hi {
            (lo, hi)
        } else {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo - pad, hi + pad)
        };
        let step = nice_step((hi - lo) / 5.0);
        match step {
            Some(step) if (lo / step).is_finite() && (hi / step).is_finite() => {
                Axis { lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step, step: Some(step) }
            }
            _ => Axis { lo, hi, step: None },
        }
    }

    /// Where `v` lies between `lo` (0) and `hi` (1), clamped to that range.
    fn fraction(&self, v: f64) -> f64 {
        let t = (v - self.lo) / (self.hi - self.lo);
        if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.5 }
    }

    /// The tick values: multiples of `step` within the range.
    fn ticks(&self) -> Vec<f64> {
        let Some(step) = self.step else {
            return Vec::new();
        };
        let first = (self.lo / step).round() as i64;
        let last = (self.hi / step).round() as i64;
        if last.saturating_sub(first) > 20 {
            return Vec::new();
        }
        (first..=last).map(|k| k as f64 * step).collect()
    }

    fn label(&self, v: f64) -> String {
        let Some(step) = self.step else {
            return format!("{v:.2e}");
        };
        let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
        if self.lo.abs().max(self.hi.abs()) >= 1e6 || step < 1e-4 {
            format!("{v:.1e}")
        } else {
            let decimals = (-step.log10().floor()).max(0.0) as usize;
            format!("{v:.decimals$}")
        }
    }
}

/// The round number (1, 2 or 5 times a power of ten) nearest `raw`; `None` when `raw` is not
/// a positive normal number.
fn nice_step(raw: f64) -> Option<f64> {
    if !raw.is_normal() || raw < 0.0 {
        return None;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let factor = match raw / magnitude {
        f if f < 1.5 => 1.0,
        f if f < 3.0 => 2.0,
        f if f < 7.0 => 5.0,
        _ => 10.0,
    };
    let step = factor * magnitude;
    (step.is_normal()).then_some(step)
}

/// Writes training curves as a PNG: `panels` side by side, each with its title, axes with
/// round-number ticks and labels, its series as 2 px lines (a single point as a dot) in the
/// colours of [`palette`], and a legend naming them. The image is [`chart_size`] large.
///
/// NaN and infinite points are skipped; a panel without points shows an empty `[0, 1]` frame.
///
/// # Errors
/// [`Error::Invalid`] when there are no panels or the image would be too large; [`Error::Io`]
/// when the file cannot be written.
pub fn write_chart(path: &Path, panels: &[Panel]) -> Result<()> {
    if panels.is_empty() {
        return Err(Error::Invalid("a chart needs at least one panel".into()));
    }
    let (width, height) = chart_size(panels);
    let (width, height) = image_size(width, height, MAX_PIXELS, "the chart")?;
    let mut img = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
    for (i, panel) in panels.iter().enumerate() {
        let left = i as i64 * i64::from(PANEL_WIDTH);
        if i > 0 {
            fill_rect(&mut img, left, 0, 1, u64::from(height), GRID);
        }
        draw_panel(&mut img, left, panel);
    }
    save_png(path, &img)
}

/// Draws `panel` with its left edge at `left`.
fn draw_panel(img: &mut RgbImage, left: i64, panel: &Panel) {
    let points = || {
        let all = panel.series.iter().flat_map(|s| s.points.iter());
        all.filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let x_axis = Axis::fit(points().map(|p| p.0));
    let y_axis = Axis::fit(points().map(|p| p.1));
    let (plot_l, plot_r) = (left + i64::from(PLOT_LEFT), left + i64::from(PLOT_RIGHT));
    let (plot_t, plot_b) = (i64::from(PLOT_TOP), i64::from(PLOT_BOTTOM));
    let to_px = |x: f64| plot_l + (x_axis.fraction(x) * (plot_r - plot_l) as f64).round() as i64;
    let to_py = |y: f64| plot_b - (y_axis.fraction(y) * (plot_b - plot_t) as f64).round() as i64;
    let (plot_w, plot_h) = ((plot_r - plot_l + 1) as u64, (plot_b - plot_t + 1) as u64);
    let glyph = i64::from(GLYPH);
    let margin = i64::from(MARGIN);

    // Title, centred, and the axis labels.
    let title_chars = ((PANEL_WIDTH - 2 * MARGIN) / (GLYPH * CHART_TITLE_SCALE)) as usize;
    let title = truncate(&panel.title, title_chars);
    let title_x = left + (i64::from(PANEL_WIDTH) - text_width(&title, CHART_TITLE_SCALE) as i64) / 2;
    draw_text(img, title_x, margin, &title, CHART_TITLE_SCALE, TEXT);
    let label_chars = ((PANEL_WIDTH - 2 * MARGIN) / GLYPH) as usize;
    draw_text(img, left + margin, plot_t - 18, &truncate(&panel.y_label, label_chars), 1, DIM_TEXT);
    let x_label = truncate(&panel.x_label, label_chars);
    let x_label_x = (plot_l + plot_r - text_width(&x_label, 1) as i64) / 2;
    draw_text(img, x_label_x, plot_b + 24, &x_label, 1, DIM_TEXT);

    // Grid, ticks and their labels, then the frame over them.
    for y in y_axis.ticks() {
        let py = to_py(y);
        fill_rect(img, plot_l, py, plot_w, 1, GRID);
        fill_rect(img, plot_l - 4, py, 4, 1, AXIS);
        let label = y_axis.label(y);
        let label_x = plot_l - 8 - text_width(&label, 1) as i64;
        draw_text(img, label_x.max(left + 2), py - glyph / 2, &label, 1, DIM_TEXT);
    }
    for x in x_axis.ticks() {
        let px = to_px(x);
        fill_rect(img, px, plot_t, 1, plot_h, GRID);
        fill_rect(img, px, plot_b + 1, 1, 4, AXIS);
        let label = x_axis.label(x);
        draw_text(img, px - text_width(&label, 1) as i64 / 2, plot_b + 8, &label, 1, DIM_TEXT);
    }
    stroke_rect(img, plot_l, plot_t, plot_w, plot_h, AXIS);

    // The series, and the legend.
    let colours = palette(panel.series.len());
    for (series, colour) in panel.series.iter().zip(&colours) {
        let pixels: Vec<(i64, i64)> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (to_px(x), to_py(y)))
            .collect();
        match pixels.as_slice() {
            [] => {}
            [(x, y)] => fill_rect(img, x - 2, y - 2, 5, 5, *colour),
            _ => {
                for pair in pixels.windows(2) {
                    draw_line(img, pair[0], pair[1], 2, *colour);
                }
            }
        }
    }
    for ((series, colour), (x, row)) in panel.series.iter().zip(&colours).zip(legend_positions(&panel.series)) {
        let x = left + i64::from(x);
        let y = i64::from(CHART_LEGEND_TOP + row * CHART_LEGEND_ROW);
        fill_rect(img, x, y + 3, u64::from(LINE_SAMPLE), 2, *colour);
        draw_text(img, x + i64::from(LINE_SAMPLE) + 6, y, &legend_name(series), 1, TEXT);
    }
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
            let name_x = layout.legend_x + LEGEND_SWATCH + 8;
            let name_pixels = (name_x..img.width())
                .flat_map(|x| (y..y + LEGEND_SWATCH).map(move |y| (x, y)))
                .filter(|&(x, y)| colour_at(&img, x, y) == TEXT)
                .count();
            assert!(name_pixels > 50, "class {i} name has {name_pixels} pixels");
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
    fn draw_text_draws_exactly_the_glyph_bits() {
        let bitmap = BASIC_LEGACY[usize::from(b'A')];
        let (x0, y0, scale) = (3u32, 2u32, 2u32);
        let mut img = RgbImage::from_pixel(30, 24, Rgb(BACKGROUND));
        draw_text(&mut img, i64::from(x0), i64::from(y0), "A", scale, TEXT);
        for (x, y, pixel) in img.enumerate_pixels() {
            let inside = (x0..x0 + 8 * scale).contains(&x) && (y0..y0 + 8 * scale).contains(&y);
            let set = inside && {
                let (col, row) = ((x - x0) / scale, (y - y0) / scale);
                (bitmap[row as usize] >> col) & 1 == 1
            };
            let expected = if set { TEXT } else { BACKGROUND };
            assert_eq!(pixel.0, expected, "pixel ({x}, {y})");
        }
        // The glyph is not blank, and a second character lands 8 * scale further right.
        assert!(img.pixels().any(|p| p.0 == TEXT));
        let mut two = RgbImage::from_pixel(30 + 8 * scale, 24, Rgb(BACKGROUND));
        draw_text(&mut two, i64::from(x0), i64::from(y0), " A", scale, TEXT);
        for (x, y, pixel) in img.enumerate_pixels() {
            assert_eq!(two.get_pixel(x + 8 * scale, y).0, pixel.0);
        }
    }

    #[test]
    fn drawing_outside_the_image_is_clipped() {
        let mut img = RgbImage::from_pixel(10, 10, Rgb(BACKGROUND));
        draw_text(&mut img, -5, -3, "Hé€\n", 1, TEXT);
        draw_text(&mut img, i64::MIN, i64::MAX, "WW", u32::MAX, TEXT);
        draw_text(&mut img, 8, 8, "M", 100, TEXT);
        draw_text(&mut img, 0, 0, "X", 0, TEXT);
        draw_line(&mut img, (-20, -20), (30, 25), 2, TEXT);
        assert!(img.pixels().any(|p| p.0 == TEXT));
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

    #[test]
    fn chart_draws_panels_and_series_colours() -> TestResult {
        let dir = test_dir("chart");
        let path = dir.join("curves.png");
        let panels = curves();
        write_chart(&path, &panels)?;
        let img = image::open(&path)?.to_rgb8();
        let (width, height) = chart_size(&panels);
        assert_eq!((u64::from(img.width()), u64::from(img.height())), (width, height));
        assert_eq!(img.width(), 2 * PANEL_WIDTH);
        // Each series' colour appears in its panel's plot area, as a line (many pixels).
        for (p, panel) in panels.iter().enumerate() {
            let left = p as u32 * PANEL_WIDTH;
            for (s, colour) in palette(panel.series.len()).iter().enumerate() {
                let count = (left + PLOT_LEFT..left + PLOT_RIGHT)
                    .flat_map(|x| (PLOT_TOP..PLOT_BOTTOM).map(move |y| (x, y)))
                    .filter(|&(x, y)| colour_at(&img, x, y) == *colour)
                    .count();
                assert!(count > 100, "panel {p} series {s} has {count} pixels");
            }
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
                    series("huge", vec![(-f64::MAX, f64::MAX), (f64::MAX, -f64::MAX)]),
                ],
                ..Panel::default()
            },
            Panel::default(),
        ];
        write_chart(&path, &panels)?;
        let img = image::open(&path)?.to_rgb8();
        assert_eq!(img.width(), 3 * PANEL_WIDTH);
        // The single point is drawn as a dot.
        assert!(img.pixels().any(|p| p.0 == palette(2)[0]));
        assert!(matches!(write_chart(&dir.join("none.png"), &[]), Err(Error::Invalid(_))));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn axis_ticks_are_round_and_cover_the_data() {
        let axis = Axis::fit([1.0, 30.0].into_iter());
        assert_eq!((axis.lo, axis.hi, axis.step), (0.0, 30.0, Some(5.0)));
        assert_eq!(axis.ticks().len(), 7);
        let flat = Axis::fit([0.973, 0.973, f64::NAN].into_iter());
        assert!(flat.lo < 0.973 && flat.hi > 0.973);
        assert_eq!(flat.label(0.9), "0.90");
        let empty = Axis::fit(std::iter::empty());
        assert_eq!((empty.lo, empty.hi), (0.0, 1.0));
    }
}
