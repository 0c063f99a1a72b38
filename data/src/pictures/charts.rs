//! The charts: training curves, per-class accuracy bars and confusion matrices, drawn with
//! `plotters` into an in-memory RGB buffer, on white.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use image::RgbImage;
use plotters::coord::Shift;
use plotters::coord::ranged1d::BoldPoints;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{
    FONT_BYTES, MAX_PIXELS, MAX_SIDE, blend, font_metrics, image_size, rasterise, save_png, text_width, truncate,
};
use crate::metrics::Report;
use crate::{Error, Result};

/// The family `plotters` sets its own text in (the tick labels of its meshes, left empty here):
/// the embedded font is registered under it, as with its `ab_glyph` feature `plotters` knows
/// no other fonts (and would fail to draw even an empty label).
const FAMILY: &str = "sans-serif";

/// Text, axes and frames.
const INK: RGBColor = RGBColor(33, 33, 33);
/// Secondary text (subtitles, counts of zero).
const MUTED: RGBColor = RGBColor(110, 110, 110);
/// Grid lines.
const GRID: RGBColor = RGBColor(228, 228, 228);
/// Frames of plot areas.
const FRAME: RGBColor = RGBColor(80, 80, 80);
/// The frame of a legend.
const LEGEND_FRAME: RGBColor = RGBColor(200, 200, 200);
/// Counts of zero in a confusion matrix.
const ZERO: RGBColor = RGBColor(165, 165, 165);
/// The bars of the per-class chart.
pub(super) const BAR: RGBColor = RGBColor(49, 110, 175);

/// Line colours of chart series, in order (the qualitative palette of matplotlib, `tab10`),
/// cycling when there are more series.
const SERIES_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of the `i`-th series of a panel.
pub(super) fn series_colour(i: usize) -> RGBColor {
    SERIES_COLOURS[i % SERIES_COLOURS.len()]
}

/// Registers the embedded font with `plotters`, once.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered =
        *REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok());
    if registered { Ok(()) } else { Err(Error::Invalid("the embedded font (DejaVu Sans) cannot be read".into())) }
}

/// Any `plotters` error, as this crate's.
fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("cannot draw the chart: {e}"))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A line of text of a chart, at a pixel of the whole image.
///
/// `plotters` sets text with `ab_glyph` too, but it draws each glyph without its left side
/// bearing and at whole pixels, so letters sit unevenly ("vali dation"). Charts' text is
/// therefore set here, glyph by glyph at their exact positions, over what `plotters` drew.
struct Label {
    text: String,
    /// The anchor point.
    at: (i32, i32),
    px: f32,
    colour: RGBColor,
    /// Where the anchor lies along the line: its start, middle or end...
    along: HPos,
    /// ...and across it: the top of capitals, their middle, or the baseline (`Bottom`).
    across: VPos,
    /// Turned a quarter anticlockwise, read upwards.
    upward: bool,
}

impl Label {
    fn new(text: impl Into<String>, at: (i32, i32), px: f64, colour: RGBColor, (along, across): (HPos, VPos)) -> Label {
        Label { text: text.into(), at, px: px as f32, colour, along, across, upward: false }
    }

    fn upward(self) -> Label {
        Label { upward: true, ..self }
    }

    fn draw(&self, img: &mut RgbImage) -> Result<()> {
        let width = text_width(&self.text, self.px)? as i64;
        let (_, capital) = font_metrics(self.px)?;
        let start = match self.along {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let baseline = match self.across {
            VPos::Top => capital.round() as i64,
            VPos::Center => (capital / 2.0).round() as i64,
            VPos::Bottom => 0,
        };
        let (x, y) = (i64::from(self.at.0), i64::from(self.at.1));
        let RGBColor(r, g, b) = self.colour;
        rasterise(&self.text, self.px, 0.0, |lx, ly, coverage| {
            let at =
                if self.upward { (x + baseline + ly, y - start - lx) } else { (x + start + lx, y + baseline + ly) };
            blend(img, at, [r, g, b], coverage);
        })
    }
}

/// Draws a `width x height` picture on white with `draw`, which lets `plotters` draw into the
/// area and lists the text to set over it, and writes it to `path` as PNG.
fn render(
    path: &Path,
    (width, height): (u64, u64),
    what: &str,
    draw: impl FnOnce(&Area, &mut Vec<Label>) -> Result<()>,
) -> Result<()> {
    register_font()?;
    let (width, height) = image_size(width, height, MAX_PIXELS, what)?;
    let mut buffer = vec![255u8; width as usize * height as usize * 3];
    let mut labels = Vec::new();
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root, &mut labels)?;
        root.present().map_err(plot_error)?;
    }
    let mut img =
        RgbImage::from_raw(width, height, buffer).ok_or_else(|| plot_error("the buffer has the wrong size"))?;
    for label in &labels {
        label.draw(&mut img)?;
    }
    save_png(path, &img)
}

/// A tick label for `value` on an axis with ticks `step` apart: as many decimals as the step
/// needs (`0.25` two, `5` none), in scientific notation for very large or small values.
pub(super) fn tick_label(value: f64, step: f64) -> String {
    let step = step.abs();
    let value = if value.abs() < step * 1e-6 { 0.0 } else { value };
    if !(1e-4..1e6).contains(&value.abs().max(step)) || !step.is_normal() {
        return format!("{value:.1e}");
    }
    let exact = |d: &i32| {
        let scaled = step * 10f64.powi(*d);
        (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
    };
    let decimals = (0..=6).find(exact).unwrap_or(6) as usize;
    format!("{value:.decimals$}")
}

// ---------------------------------------------------------------------------------------------
// Training curves

/// One line series of a chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// The name in the legend; a series without one is left out of it.
    pub name: String,
    /// `(x, y)` points, joined in this order; a point with a NaN or infinite coordinate is not
    /// drawn and breaks the line.
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

/// Size of each panel of [`write_chart`]; panels stand side by side.
pub const PANEL_WIDTH: u32 = 640;
pub const PANEL_HEIGHT: u32 = 440;

/// Longest panel title and legend name drawn, in characters; longer ones are cut.
const MAX_PANEL_TITLE_CHARS: usize = 50;
const MAX_SERIES_NAME_CHARS: usize = 30;

/// Writes training curves as a PNG of [`PANEL_WIDTH`] x [`PANEL_HEIGHT`] per panel, panels side
/// by side: each with its title, a frame, axes with round-number ticks and a light grid, the
/// axis labels, its series as 2 px lines in distinct colours (a point with no finite
/// neighbour as a dot), and a legend in the corner the lines leave emptiest.
///
/// Axes fit the finite points with 5 % to spare (a constant `c` shows as `c` +- 10 %); a panel
/// without finite points shows an empty `[0, 1]` frame.
///
/// # Errors
/// [`Error::Invalid`] when there are no panels, the image would be too large, or a panel's
/// points span more than `f64` can (say from `-1e308` to `1e308`); [`Error::Io`] when the file
/// cannot be written.
pub fn write_chart(path: &Path, panels: &[Panel]) -> Result<()> {
    if panels.is_empty() {
        return Err(Error::Invalid("a chart needs at least one panel".into()));
    }
    let ranges = panels
        .iter()
        .map(|panel| {
            let points = || finite_points(panel);
            let what = |axis: &str| format!("the {axis} values of panel '{}'", panel.title);
            Ok((axis_range(points().map(|p| p.0), &what("x"))?, axis_range(points().map(|p| p.1), &what("y"))?))
        })
        .collect::<Result<Vec<_>>>()?;
    let size = (panels.len() as u64 * u64::from(PANEL_WIDTH), u64::from(PANEL_HEIGHT));
    render(path, size, "the chart", |root, labels| {
        for ((area, panel), (x_range, y_range)) in root.split_evenly((1, panels.len())).iter().zip(panels).zip(ranges) {
            draw_panel(root, area, panel, x_range, y_range, labels)?;
        }
        Ok(())
    })
}

fn finite_points(panel: &Panel) -> impl Iterator<Item = (f64, f64)> + '_ {
    panel.series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite())
}

/// The range an axis shows for `values`: the finite ones, with 5 % of their span to spare on
/// each side; `c` +- 10 % for a constant `c` (+- 1 for 0); `[0, 1]` without finite values.
pub(super) fn axis_range(values: impl Iterator<Item = f64>, what: &str) -> Result<Range<f64>> {
    let Some((lo, hi)) = values.filter(|v| v.is_finite()).fold(None, |range: Option<(f64, f64)>, v| match range {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    }) else {
        return Ok(0.0..1.0);
    };
    let magnitude = lo.abs().max(hi.abs());
    // Spans this small next to the values are flat to the eye (and too fine for ticks).
    let pad = if hi - lo > magnitude * 1e-9 {
        (hi - lo) * 0.05
    } else if magnitude > 1e-200 {
        magnitude * 0.1
    } else {
        1.0
    };
    let (lo, hi) = (lo - pad, hi + pad);
    if !(hi - lo).is_finite() {
        return Err(Error::Invalid(format!("{what} span more than a chart can show")));
    }
    Ok(lo..hi)
}

/// Tick marks and grid lines an axis asks `plotters` for (it picks round values, at most this
/// many).
const TICKS: usize = 8;
/// Size of tick labels, axis labels, legend names and titles.
const TICK_PX: f64 = 14.0;
const AXIS_PX: f64 = 15.0;
const TITLE_PX: f64 = 20.0;

/// Draws `panel` into `area` (a part of `root`, the whole image), its axes showing `x_range`
/// and `y_range`. Pixel coordinates are the whole image's: shapes drawn there go on `root`.
fn draw_panel(
    root: &Area,
    area: &Area,
    panel: &Panel,
    x_range: Range<f64>,
    y_range: Range<f64>,
    labels: &mut Vec<Label>,
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(48)
        .margin_bottom(10)
        .margin_left(10)
        .margin_right(26)
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(x_range.clone(), y_range.clone())
        .map_err(plot_error)?;
    // Grid, axes and tick marks; their labels are set below.
    let no_label = |_: &f64| String::new();
    chart
        .configure_mesh()
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(FRAME.stroke_width(1))
        .set_all_tick_mark_size(5)
        .x_labels(TICKS)
        .y_labels(TICKS)
        .x_label_formatter(&no_label)
        .y_label_formatter(&no_label)
        .draw()
        .map_err(plot_error)?;

    for (i, series) in panel.series.iter().enumerate() {
        let line = series_colour(i).stroke_width(2);
        for run in finite_runs(&series.points) {
            if let [point] = run {
                chart.draw_series([Circle::new(*point, 3, line.filled())]).map_err(plot_error)?;
            } else {
                chart.draw_series(LineSeries::new(run.iter().copied(), line)).map_err(plot_error)?;
            }
        }
    }
    // The frame, over the lines' ends.
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let (left, right, top, bottom) = (xs.start, xs.end - 1, ys.start, ys.end - 1);
    root.draw(&Rectangle::new([(left, top), (right, bottom)], FRAME.stroke_width(1))).map_err(plot_error)?;

    // The title, the ticks' labels and the axes' names.
    let (area_x, area_y) = area.get_pixel_range();
    let title = truncate(&panel.title, MAX_PANEL_TITLE_CHARS);
    let centre = (area_x.start + area_x.end) / 2;
    labels.push(Label::new(title, (centre, area_y.start + 24), TITLE_PX, INK, (HPos::Center, VPos::Center)));
    let x_ticks = chart.as_coord_spec().x_spec().key_points(BoldPoints(TICKS));
    let y_ticks = chart.as_coord_spec().y_spec().key_points(BoldPoints(TICKS));
    let step =
        |ticks: &[f64]| if ticks.len() > 1 { ticks[1] - ticks[0] } else { ticks.first().map_or(1.0, |t| t.abs()) };
    let (x_step, y_step) = (step(&x_ticks), step(&y_ticks));
    for x in x_ticks {
        let (px, _) = chart.backend_coord(&(x, y_range.start));
        let at = (px, bottom + 10);
        labels.push(Label::new(tick_label(x, x_step), at, TICK_PX, INK, (HPos::Center, VPos::Top)));
    }
    for y in y_ticks {
        let (_, py) = chart.backend_coord(&(x_range.start, y));
        let at = (left - 9, py);
        labels.push(Label::new(tick_label(y, y_step), at, TICK_PX, INK, (HPos::Right, VPos::Center)));
    }
    let x_label = truncate(&panel.x_label, MAX_PANEL_TITLE_CHARS);
    let at = ((left + right) / 2, bottom + 44);
    labels.push(Label::new(x_label, at, AXIS_PX, INK, (HPos::Center, VPos::Bottom)));
    let y_label = truncate(&panel.y_label, MAX_PANEL_TITLE_CHARS);
    let at = (area_x.start + 12, (top + bottom) / 2);
    labels.push(Label::new(y_label, at, AXIS_PX, INK, (HPos::Center, VPos::Top)).upward());

    let named: Vec<(usize, String)> = (panel.series.iter().enumerate())
        .filter(|(_, s)| !s.name.is_empty())
        .map(|(i, s)| (i, truncate(&s.name, MAX_SERIES_NAME_CHARS)))
        .collect();
    if !named.is_empty() {
        let corner = legend_corner(&panel.series, &x_range, &y_range);
        draw_legend(root, (left, right, top, bottom), corner, &named, labels)?;
    }
    Ok(())
}

/// A line of a legend, and the length of its line sample.
const LEGEND_ROW: i32 = 22;
const LEGEND_SAMPLE: i32 = 24;

/// Draws a legend of `named` series (index and name) in a corner of the plot `(left, right,
/// top, bottom)` of `root`: a line sample in each series' colour and its name, in a framed
/// white box.
fn draw_legend(
    root: &Area,
    (left, right, top, bottom): (i32, i32, i32, i32),
    (right_side, top_side): (bool, bool),
    named: &[(usize, String)],
    labels: &mut Vec<Label>,
) -> Result<()> {
    let mut widest = 0;
    for (_, name) in named {
        widest = widest.max(text_width(name, TICK_PX as f32)?.min(400) as i32);
    }
    let (width, height) = (12 + LEGEND_SAMPLE + 8 + widest + 12, 8 + named.len() as i32 * LEGEND_ROW + 6);
    let x = if right_side { right - 10 - width } else { left + 10 };
    let y = if top_side { top + 10 } else { bottom - 10 - height };
    root.draw(&Rectangle::new([(x, y), (x + width, y + height)], WHITE.mix(0.9).filled())).map_err(plot_error)?;
    root.draw(&Rectangle::new([(x, y), (x + width, y + height)], LEGEND_FRAME.stroke_width(1))).map_err(plot_error)?;
    for (row, (i, name)) in named.iter().enumerate() {
        let middle = y + 8 + row as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        let sample = [(x + 12, middle), (x + 12 + LEGEND_SAMPLE, middle)];
        root.draw(&PathElement::new(sample, series_colour(*i).stroke_width(2))).map_err(plot_error)?;
        let at = (x + 12 + LEGEND_SAMPLE + 8, middle);
        labels.push(Label::new(name.clone(), at, TICK_PX, INK, (HPos::Left, VPos::Center)));
    }
    Ok(())
}

/// The runs of consecutive finite points of `points`.
pub(super) fn finite_runs(points: &[(f64, f64)]) -> impl Iterator<Item = &[(f64, f64)]> {
    points.split(|(x, y)| !(x.is_finite() && y.is_finite())).filter(|run| !run.is_empty())
}

/// The corner of the plot where the lines of `series` pass least, for the legend, as (right
/// side?, top side?): upper right first on ties, then lower right, upper left, lower left.
/// Lines are followed through points along them, so that sparse points count as their lines.
pub(super) fn legend_corner(series: &[Series], x_range: &Range<f64>, y_range: &Range<f64>) -> (bool, bool) {
    const STEPS: u32 = 16;
    let corners = [(true, true), (true, false), (false, true), (false, false)];
    let mut counts = [0usize; 4];
    let mut count = |(x, y): (f64, f64)| {
        let fx = (x - x_range.start) / (x_range.end - x_range.start);
        let fy = (y - y_range.start) / (y_range.end - y_range.start);
        for (count, (right, top)) in counts.iter_mut().zip(corners) {
            let near_x = if right { fx > 0.45 } else { fx < 0.55 };
            let near_y = if top { fy > 0.55 } else { fy < 0.45 };
            *count += usize::from(near_x && near_y);
        }
    };
    for run in series.iter().flat_map(|s| finite_runs(&s.points)) {
        count(run[0]);
        for pair in run.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            for step in 1..=STEPS {
                let t = f64::from(step) / f64::from(STEPS);
                count((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t));
            }
        }
    }
    let emptiest = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    corners[emptiest]
}

// ---------------------------------------------------------------------------------------------
// Per-class accuracy

/// Height of a class's row in the per-class chart.
pub(super) const BAR_ROW: u32 = 26;
/// Width of the per-class chart.
pub(super) const BARS_WIDTH: u32 = 860;
/// Longest class name drawn, in characters; longer ones are cut.
const MAX_CLASS_NAME_CHARS: usize = 36;
/// Size of the values at the end of the bars.
const VALUE_PX: f64 = 13.0;
/// Height of the title and the summary line above the per-class and confusion charts.
const HEADER_HEIGHT: u32 = 62;

pub(super) fn class_names(report: &Report) -> Vec<String> {
    report.per_class.iter().map(|c| truncate(&c.name, MAX_CLASS_NAME_CHARS)).collect()
}

/// Width in pixels of the widest of `names` at `px`.
fn widest(names: &[String], px: f64) -> Result<u32> {
    let mut widest = 0;
    for name in names {
        widest = widest.max(text_width(name, px as f32)?);
    }
    Ok(widest.min(MAX_SIDE) as u32)
}

/// The line under a chart's title: OA, AA, kappa and the number of samples.
fn summary(report: &Report) -> String {
    format!(
        "OA {:.2} %    AA {:.2} %    Kappa {:.2} %    {} samples",
        report.oa * 100.0,
        report.aa * 100.0,
        report.kappa * 100.0,
        report.samples
    )
}

/// The title (centred, cut to fit) and the summary line under it, across an image `width`
/// pixels wide.
fn header(width: u32, title: &str, report: &Report, labels: &mut Vec<Label>) {
    let centre = width as i32 / 2;
    let title = truncate(title, (width as usize / 11).max(8));
    labels.push(Label::new(title, (centre, 24), TITLE_PX, INK, (HPos::Center, VPos::Center)));
    labels.push(Label::new(summary(report), (centre, 48), TICK_PX, MUTED, (HPos::Center, VPos::Center)));
}

/// Checks that `report` has classes and a square confusion matrix of as many; returns their
/// number.
fn class_count(report: &Report) -> Result<usize> {
    let n = report.per_class.len();
    if n == 0 {
        return Err(Error::Invalid("the report has no classes to draw".into()));
    }
    if report.confusion.len() != n || report.confusion.iter().any(|row| row.len() != n) {
        return Err(Error::Shape(format!("the report's confusion matrix is not {n} x {n} for its {n} classes")));
    }
    Ok(n)
}

/// Writes the per-class accuracy (recall) of `report` as a horizontal bar chart: a row per
/// class, top to bottom in class order, its name on the left and a bar as long as its recall
/// (0 to 100 %, ticks every 10 %) with the value at its end; a class without samples reads "no
/// samples" instead. A dashed line marks the average accuracy (AA); `title` and a line with
/// OA, AA and kappa head the chart. The image is 860 pixels wide and 26 a class (plus 142) high.
///
/// # Errors
/// [`Error::Invalid`] for a report without classes or an image too large, [`Error::Shape`]
/// for a confusion matrix not of the classes' size; [`Error::Io`] when the file cannot be
/// written.
pub fn write_per_class_bars(path: &Path, report: &Report, title: &str) -> Result<()> {
    let n = class_count(report)?;
    let names = class_names(report);
    let names_width = widest(&names, TICK_PX)?.min(BARS_WIDTH / 2);
    let (bottom_space, top_space) = (70u32, 10u32);
    let height = u64::from(HEADER_HEIGHT + top_space + bottom_space) + n as u64 * u64::from(BAR_ROW);
    render(path, (u64::from(BARS_WIDTH), height), "the per-class chart", |root, labels| {
        header(BARS_WIDTH, title, report, labels);
        let (_, plot) = root.split_vertically(HEADER_HEIGHT + top_space);
        // Rows from class 0 at the top: the y axis runs from n (bottom) to 0 (top).
        let mut chart = ChartBuilder::on(&plot)
            .margin_left(16)
            .margin_right(70)
            .x_label_area_size(bottom_space)
            .y_label_area_size(names_width + 16)
            .build_cartesian_2d(0.0..100.0, n as f64..0.0)
            .map_err(plot_error)?;
        let no_label = |_: &f64| String::new();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(11)
            .x_label_formatter(&no_label)
            .bold_line_style(GRID.stroke_width(1))
            .light_line_style(TRANSPARENT)
            .axis_style(FRAME.stroke_width(1))
            .set_all_tick_mark_size(5)
            .draw()
            .map_err(plot_error)?;

        // The average accuracy, dashed, behind the bars.
        let aa = report.aa * 100.0;
        if aa.is_finite() {
            let aa = aa.clamp(0.0, 100.0);
            let (x, top) = chart.backend_coord(&(aa, 0.0));
            let (_, bottom) = chart.backend_coord(&(aa, n as f64));
            for y in (top..bottom).step_by(10) {
                let dash = [(x, y), (x, (y + 6).min(bottom))];
                root.draw(&PathElement::new(dash, MUTED.stroke_width(2))).map_err(plot_error)?;
            }
            labels.push(Label::new("AA", (x, top - 3), 12.0, MUTED, (HPos::Center, VPos::Bottom)));
        }

        let row = |i: usize| i as f64;
        let recalls: Vec<Option<f64>> =
            report.per_class.iter().map(|c| c.accuracy.filter(|a| a.is_finite()).map(|a| a.clamp(0.0, 1.0))).collect();
        let bars = recalls.iter().enumerate().filter_map(|(i, recall)| {
            let recall = (*recall)?;
            let mut bar = Rectangle::new([(0.0, row(i)), (recall * 100.0, row(i + 1))], BAR.filled());
            bar.set_margin(4, 4, 0, 0);
            Some(bar)
        });
        chart.draw_series(bars).map_err(plot_error)?;
        for (i, (recall, name)) in recalls.iter().zip(&names).enumerate() {
            let (x0, middle) = chart.backend_coord(&(0.0, row(i) + 0.5));
            labels.push(Label::new(name.clone(), (x0 - 10, middle), TICK_PX, INK, (HPos::Right, VPos::Center)));
            let (text, x, colour) = match recall {
                Some(recall) => (format!("{:.1}", recall * 100.0), chart.backend_coord(&(recall * 100.0, 0.0)).0, INK),
                None => ("no samples".to_string(), x0, MUTED),
            };
            // On white, over the dashed line.
            let width = text_width(&text, VALUE_PX as f32)? as i32;
            let behind = [(x + 2, middle - 8), (x + 8 + width, middle + 8)];
            root.draw(&Rectangle::new(behind, WHITE.filled())).map_err(plot_error)?;
            labels.push(Label::new(text, (x + 5, middle), VALUE_PX, colour, (HPos::Left, VPos::Center)));
        }

        // Ticks' labels, and the axis' name.
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        for tick in (0..=100).step_by(20) {
            let (x, _) = chart.backend_coord(&(f64::from(tick), 0.0));
            labels.push(Label::new(tick.to_string(), (x, ys.end + 10), TICK_PX, INK, (HPos::Center, VPos::Top)));
        }
        let at = ((xs.start + xs.end) / 2, ys.end + 46);
        labels.push(Label::new("accuracy (recall, %)", at, AXIS_PX, INK, (HPos::Center, VPos::Bottom)));
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Confusion matrices

/// matplotlib's `Blues` colour map, from white (0) to dark blue (1), at nine even steps.
const BLUES: [[u8; 3]; 9] = [
    [247, 251, 255],
    [222, 235, 247],
    [198, 219, 239],
    [158, 202, 225],
    [107, 174, 214],
    [66, 146, 198],
    [33, 113, 181],
    [8, 81, 156],
    [8, 48, 107],
];

/// The colour of a share `t` in `[0, 1]` (clamped; NaN as 0) on [`BLUES`]: darker for more.
pub(super) fn blues(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let position = t * (BLUES.len() - 1) as f64;
    let i = (position.floor() as usize).min(BLUES.len() - 2);
    let f = position - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    RGBColor(mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2]))
}

/// Where the cells of [`write_confusion`] lie: cell `(truth, predicted)` is the `cell - 1`
/// pixels square at `(x0 + predicted * cell, y0 + truth * cell)`, a white line between cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConfusionLayout {
    pub(super) cell: u32,
    pub(super) x0: u32,
    pub(super) y0: u32,
    pub(super) width: u32,
    pub(super) height: u32,
    /// Size of the class names.
    name_px: u32,
    /// Size of the counts in the cells; 0 when they do not fit.
    pub(super) count_px: u32,
}

/// The side the matrix of a confusion matrix image aims at (cells are 8 to 48 pixels).
const MATRIX_SIDE: u32 = 640;
/// Width of the colour bar, and the space right of the matrix it takes with its labels.
const COLOUR_BAR: i32 = 16;
const COLOUR_BAR_SPACE: u32 = 130;

pub(super) fn confusion_layout(report: &Report, names: &[String]) -> Result<ConfusionLayout> {
    let n = class_count(report)?;
    let cell = (MATRIX_SIDE / u32::try_from(n).unwrap_or(u32::MAX)).clamp(8, 48);
    let name_px = (f64::from(cell) * 0.75).clamp(8.0, TICK_PX) as u32;
    let names_width = u64::from(widest(names, f64::from(name_px))?);
    let largest = report.confusion.iter().flatten().max().copied().unwrap_or(0);
    let count_px = (f64::from(cell) * 0.34).clamp(8.0, 13.0) as u32;
    let fits = text_width(&largest.to_string(), count_px as f32)? + 4 <= u64::from(cell) && count_px + 6 <= cell;
    let side = n as u64 * u64::from(cell);
    let x0 = 16 + 28 + names_width + 10;
    let y0 = u64::from(HEADER_HEIGHT) + 12;
    let width = x0 + side + u64::from(COLOUR_BAR_SPACE);
    let height = y0 + side.max(120) + 10 + names_width + 48;
    let (width, height) = image_size(width, height, MAX_PIXELS, "the confusion matrix")?;
    Ok(ConfusionLayout {
        cell,
        // Below the image's size.
        x0: x0 as u32,
        y0: y0 as u32,
        width,
        height,
        name_px,
        count_px: if fits { count_px } else { 0 },
    })
}

/// Writes the confusion matrix of `report` as a heat map: a row per true class, a column per
/// predicted class (both in class order, named on the left and below), each cell coloured by
/// its share of its row (white 0 % to dark blue 100 %, the row-normalised matrix: the diagonal
/// shows each class's recall) with its count written in it when the cells are large enough;
/// a colour bar on the right, `title` and a line with OA, AA and kappa above. Cells are 8 to 48
/// pixels, the matrix about 640 pixels a side (more with over 80 classes).
///
/// # Errors
/// [`Error::Invalid`] for a report without classes or an image too large, [`Error::Shape`]
/// for a confusion matrix not of the classes' size; [`Error::Io`] when the file cannot be
/// written.
pub fn write_confusion(path: &Path, report: &Report, title: &str) -> Result<()> {
    let names = class_names(report);
    let layout = confusion_layout(report, &names)?;
    let n = names.len();
    let size = (u64::from(layout.width), u64::from(layout.height));
    render(path, size, "the confusion matrix", |root, labels| {
        header(layout.width, title, report, labels);
        let cell = layout.cell as i32;
        let (x0, y0) = (layout.x0 as i32, layout.y0 as i32);
        let side = n as i32 * cell;
        let (name_px, count_px) = (f64::from(layout.name_px), f64::from(layout.count_px));

        for (t, row) in report.confusion.iter().enumerate() {
            let total: usize = row.iter().sum();
            let top = y0 + t as i32 * cell;
            for (p, &count) in row.iter().enumerate() {
                let share = if total > 0 { count as f64 / total as f64 } else { 0.0 };
                let left = x0 + p as i32 * cell;
                let square = [(left, top), (left + cell - 2, top + cell - 2)];
                root.draw(&Rectangle::new(square, blues(share).filled())).map_err(plot_error)?;
                if layout.count_px > 0 {
                    let colour = if share > 0.5 {
                        WHITE
                    } else if count == 0 {
                        ZERO
                    } else {
                        INK
                    };
                    let centre = (left + (cell - 1) / 2, top + (cell - 1) / 2);
                    labels.push(Label::new(count.to_string(), centre, count_px, colour, (HPos::Center, VPos::Center)));
                }
            }
        }
        let frame = Rectangle::new([(x0 - 1, y0 - 1), (x0 + side - 1, y0 + side - 1)], FRAME.stroke_width(1));
        root.draw(&frame).map_err(plot_error)?;

        // Class names: rows on the left, columns below (read upwards), and the axes' names.
        for (i, name) in names.iter().enumerate() {
            let middle = i as i32 * cell + (cell - 1) / 2;
            let anchor = (HPos::Right, VPos::Center);
            labels.push(Label::new(name.clone(), (x0 - 8, y0 + middle), name_px, INK, anchor));
            labels.push(Label::new(name.clone(), (x0 + middle, y0 + side + 8), name_px, INK, anchor).upward());
        }
        let anchor = (HPos::Center, VPos::Top);
        labels.push(Label::new("true class", (16, y0 + side / 2), AXIS_PX, INK, anchor).upward());
        let at = (x0 + side / 2, layout.height as i32 - 14);
        labels.push(Label::new("predicted class", at, AXIS_PX, INK, (HPos::Center, VPos::Bottom)));

        draw_colour_bar(root, (x0 + side + 24, y0), side.max(120), labels)
    })
}

/// The colour bar of a confusion matrix: [`blues`] from 0 (bottom) to 100 % (top), `height`
/// pixels from `(x, y)` down, with ticks every 25 %.
fn draw_colour_bar(root: &Area, (x, y): (i32, i32), height: i32, labels: &mut Vec<Label>) -> Result<()> {
    for row in 0..height {
        let line = [(x, y + row), (x + COLOUR_BAR - 1, y + row)];
        let colour = blues(1.0 - f64::from(row) / f64::from(height - 1));
        root.draw(&PathElement::new(line, colour.stroke_width(1))).map_err(plot_error)?;
    }
    let frame = Rectangle::new([(x - 1, y - 1), (x + COLOUR_BAR, y + height)], FRAME.stroke_width(1));
    root.draw(&frame).map_err(plot_error)?;
    let right = x + COLOUR_BAR;
    for percent in (0..=100).step_by(25) {
        let ty = y + ((height - 1) as f64 * (1.0 - f64::from(percent) / 100.0)).round() as i32;
        root.draw(&PathElement::new([(right, ty), (right + 4, ty)], FRAME.stroke_width(1))).map_err(plot_error)?;
        labels.push(Label::new(percent.to_string(), (right + 8, ty), 13.0, INK, (HPos::Left, VPos::Center)));
    }
    let caption = "share of the true class (%)";
    let anchor = (HPos::Center, VPos::Top);
    labels.push(Label::new(caption, (right + 44, y + height / 2), TICK_PX, INK, anchor).upward());
    Ok(())
}
