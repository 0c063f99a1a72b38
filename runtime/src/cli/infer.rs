use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use prism_data::formats::{NpyFile, write_npy_in_pieces};
use prism_data::metrics::Report;
use prism_data::scene::{SceneSource, TruthRows, open_scene};
use prism_data::{Error, NumData, images as preprocess, pictures as render};
use prism_runtime::model::{Model, Pipeline, ScenePipeline};
use serde_json::json;

use super::{EngineArgs, ForeignArgs};

const EXAMPLES: &str = "Examples:
  runtime infer --model garbage.onnx bottle.jpg box.png          # top-5 labels of each image
  runtime infer --model garbage.onnx photos/ --top 1 --json       # every JPEG/PNG of a folder
  runtime infer --model hybridsn.onnx Indian_pines_corrected.npy --gt Indian_pines_gt.npy
  runtime infer --model resnet18.onnx cat.jpg --preprocess imagenet --labels imagenet.txt

--json prints one JSON object per line: for images
  {\"file\", \"engine\", \"provider\", \"top\": [{\"index\", \"label\", \"probability\"}, ...]}
and for a scene
  {\"file\", \"engine\", \"provider\", \"graph\", \"height\", \"width\", \"seconds\",
   \"pixels_per_second\", \"map\", \"labels\", and with --gt \"map_labelled\", \"oa\", \"aa\",
   \"kappa\", \"per_class\", \"per_class_png\", \"confusion_png\"}.
Rates are fractions in [0, 1].";

/// Classify images (top-k labels) or every pixel of a scene (a map and a label array).
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The ONNX model (a Prism export, or an image classifier made elsewhere with
    /// --preprocess and --labels).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Images (JPEG or PNG files, or folders searched recursively) for image models; one scene
    /// (.mat, MATLAB 5 or v7.3, or .npy, height x width x bands) for scene models, read a tile
    /// at a time (a compressed MATLAB 5 .mat one from a copy unpacked into the temporary folder,
    /// $TMPDIR).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Labels to print per image.
    #[arg(long, default_value_t = 5, value_parser = super::positive)]
    top: usize,
    /// Images or windows per graph run.
    #[arg(long, default_value_t = 32, value_parser = super::positive)]
    batch: usize,
    /// One JSON object per input on stdout.
    #[arg(long)]
    json: bool,
    /// Also say which engines or execution providers were tried and skipped.
    #[arg(long, short)]
    verbose: bool,

    /// Variable of the scene's .mat file [default: its only numeric variable].
    #[arg(long, help_heading = "Scenes")]
    key: Option<String>,
    /// Ground truth of the scene (height x width labels, 0 = unlabelled): prints OA, AA, kappa.
    #[arg(long, value_name = "FILE", help_heading = "Scenes")]
    gt: Option<PathBuf>,
    /// Variable of the ground truth's .mat file.
    #[arg(long, help_heading = "Scenes")]
    gt_key: Option<String>,
    /// With --gt: classify only the labelled pixels.
    #[arg(long, requires = "gt", help_heading = "Scenes")]
    labelled_only: bool,
    /// Classify window by window even when a whole-scene graph (<stem>.scene.onnx) exists.
    #[arg(long, help_heading = "Scenes")]
    windows_only: bool,
    /// Largest tile side in pixels: the scene is read and classified a tile at a time (with a
    /// margin of half a window); smaller tiles take less memory and more time.
    #[arg(long, value_name = "PIXELS", default_value_t = prism_runtime::model::TILE, value_parser = super::positive, help_heading = "Scenes")]
    tile: usize,
    /// Folder for the map PNG and the label array [default: the current folder].
    #[arg(long, value_name = "DIR", help_heading = "Scenes")]
    out: Option<PathBuf>,

    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    foreign: ForeignArgs,
}

pub fn run(args: Args) -> Result<()> {
    let mut options = args.engine.load_options();
    options.windows_only = args.windows_only;
    options.tile = Some(args.tile);
    args.foreign.apply(&mut options)?;
    let model = Model::load(&args.model, &options)?;
    if args.verbose {
        for note in model.notes() {
            eprintln!("note: {note}");
        }
    }
    match &model.info().pipeline {
        Pipeline::Image(_) => infer_images(&args, &model),
        Pipeline::Scene(_) => {
            let [scene] = args.inputs.as_slice() else {
                bail!("a scene model classifies one scene at a time, got {} inputs", args.inputs.len());
            };
            infer_scene(&args, &model, scene)
        }
        Pipeline::Tensor => bail!(
            "{} has no Prism metadata saying how to feed it: for an image classifier give --preprocess imagenet (and --labels)",
            args.model.display()
        ),
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

/// The JPEG and PNG files under `dir` and its sub-folders, sorted.
fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, found)?;
        } else if is_image(&path) {
            found.push(path);
        }
    }
    Ok(())
}

/// Files as given, folders as the JPEG and PNG files in them and their sub-folders.
fn image_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            if found.is_empty() {
                bail!("{}: no JPEG or PNG images in the folder", input.display());
            }
            files.extend(found);
        } else if input.exists() {
            files.push(input.clone());
        } else {
            bail!("{}: no such file", input.display());
        }
    }
    Ok(files)
}

fn infer_images(args: &Args, model: &Model) -> Result<()> {
    let files = image_files(&args.inputs)?;
    for chunk in files.chunks(args.batch.max(1)) {
        let images = chunk.iter().map(|f| preprocess::load_rgb(f)).collect::<prism_data::Result<Vec<_>>>()?;
        let answers = model.classify_images(&images, args.top)?;
        for (file, top) in chunk.iter().zip(answers) {
            if args.json {
                let line = json!({"file": file, "engine": model.engine(), "provider": model.provider(), "top": top});
                println!("{line}");
            } else {
                let labels: Vec<String> =
                    top.iter().map(|p| format!("{} {:.1}%", p.label, p.probability * 100.0)).collect();
                println!("{}  {}", file.display(), labels.join("  "));
            }
        }
    }
    if !args.json {
        eprintln!("{} image(s) on {} ({})", files.len(), model.engine(), model.provider());
    }
    Ok(())
}

fn infer_scene(args: &Args, model: &Model, path: &Path) -> Result<()> {
    let Pipeline::Scene(pipeline) = &model.info().pipeline else { unreachable!("checked by the caller") };
    let scene = open_scene(path, args.key.as_deref()).context("reading the scene")?;
    let (height, width, bands) = scene.size();
    if bands != pipeline.bands {
        bail!("{}: the scene has {bands} bands, the model takes {}", path.display(), pipeline.bands);
    }
    let truth = match &args.gt {
        Some(gt) => Some(open_truth(gt, args.gt_key.as_deref(), pipeline, &*scene)?),
        None => None,
    };
    let mask = match &truth {
        Some(truth) if args.labelled_only => Some(truth.labelled().context("reading the ground truth")?),
        _ => None,
    };

    let graph = if model.scene_graph().is_some() { "scene" } else { "window" };
    eprintln!(
        "{}: {} x {} pixels, {} bands; {} graph on {} ({})",
        path.display(),
        height,
        width,
        bands,
        graph,
        model.engine(),
        model.provider()
    );
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let stem = path.file_stem().map_or_else(|| "scene".to_string(), |s| s.to_string_lossy().into_owned());
    let map_path = out.join(format!("{stem}.map.png"));
    let labels_path = out.join(format!("{stem}.labels.npy"));
    let names = &model.info().class_names;

    let started = Instant::now();
    let Classified { confusion, pixels: classified } =
        classify_into(&labels_path, model, &*scene, mask.as_deref(), truth.as_ref(), args.batch)?;
    let seconds = started.elapsed().as_secs_f64();

    // The maps are drawn from the label array just written, a strip at a time.
    let labels = NpyFile::open(&labels_path)?;
    let read_rows = |rows: Range<usize>| -> prism_runtime::Result<Vec<Option<u16>>> {
        let NumData::I64(read) = labels.read_values(rows.start * width, rows.len() * width)? else {
            return Err(Error::Invalid(format!("{} is not the int64 array written", labels_path.display())).into());
        };
        Ok(read.into_iter().map(|v| pipeline.class_index(v)).collect())
    };
    let mut line = json!({
        "file": path, "engine": model.engine(), "provider": model.provider(), "graph": graph,
        "height": height, "width": width, "seconds": seconds,
        "pixels_per_second": classified as f64 / seconds.max(1e-9), "map": map_path, "labels": labels_path,
    });
    let mut title = format!("{} - {stem}", model.info().name);
    if let Some(truth) = &truth {
        let report = Report::from_confusion(confusion, names)?;
        title = format!("{title} - OA {:.2}%", report.oa * 100.0);
        let labelled_path = out.join(format!("{stem}.map_labelled.png"));
        render::write_class_map_rows(
            &labelled_path,
            height,
            width,
            names,
            &format!("{title} - labelled pixels"),
            |rows| {
                let mut classes = read_rows(rows.clone())?;
                for (c, v) in classes.iter_mut().zip(truth.rows(rows)?) {
                    *c = c.filter(|_| v != 0);
                }
                Ok::<_, prism_runtime::Error>(classes)
            },
        )?;
        line["oa"] = json!(report.oa);
        line["aa"] = json!(report.aa);
        line["kappa"] = json!(report.kappa);
        line["per_class"] = json!(report.per_class);
        line["map_labelled"] = json!(labelled_path);
        let (per_class, confusion) =
            (out.join(format!("{stem}.per_class.png")), out.join(format!("{stem}.confusion.png")));
        render::write_per_class_bars(&per_class, &report, &format!("{title} - per-class accuracy"))?;
        render::write_confusion(&confusion, &report, &format!("{title} - confusion matrix"))?;
        line["per_class_png"] = json!(per_class);
        line["confusion_png"] = json!(confusion);
        if !args.json {
            println!("{}\ncharts: {}, {}", report.table(), per_class.display(), confusion.display());
        }
        if let Some(warning) = report.chance_warning() {
            eprintln!("{warning}");
        }
    }
    render::write_class_map_rows(&map_path, height, width, names, &title, read_rows)?;
    if args.json {
        println!("{line}");
    } else {
        println!(
            "{classified} pixels in {seconds:.2} s ({:.0} pixels/s) on {} ({})\nmap: {}\nlabels: {}",
            classified as f64 / seconds.max(1e-9),
            model.engine(),
            model.provider(),
            map_path.display(),
            labels_path.display()
        );
    }
    Ok(())
}
/// Opens the ground truth, a band of rows at a time (as the scene): checks its size and that the
/// model knows each of its labels.
fn open_truth(path: &Path, key: Option<&str>, pipeline: &ScenePipeline, scene: &dyn SceneSource) -> Result<TruthRows> {
    let truth = TruthRows::open(path, key).context("reading the ground truth")?;
    truth.check_matches(scene)?;
    let classes = truth.classes().context("reading the ground truth")?;
    if let Some(v) = classes.iter().find(|v| !pipeline.class_values.contains(v)) {
        bail!("the ground truth has label {v}, which the model does not know (labels {:?})", pipeline.class_values);
    }
    Ok(truth)
}

/// What [`classify_into`] counted.
struct Classified {
    /// Rows: the ground truth's class; columns: the predicted one (empty without a truth).
    confusion: Vec<Vec<usize>>,
    pixels: usize,
}

/// Classifies `scene` into the label array at `labels_path`, written a band of rows at a time as
/// they are classified, with a progress bar; with a ground truth, counts the confusion matrix as
/// the rows come. Nothing here grows with the scene.
fn classify_into(
    labels_path: &Path,
    model: &Model,
    scene: &dyn SceneSource,
    mask: Option<&[bool]>,
    truth: Option<&TruthRows>,
    batch: usize,
) -> Result<Classified> {
    let Pipeline::Scene(pipeline) = &model.info().pipeline else { unreachable!("checked by the caller") };
    let (height, width, _) = scene.size();
    let classes = model.info().class_names.len();
    let bar = progress_bar((height * width) as u64);
    let mut counted = Classified { confusion: vec![vec![0usize; classes]; classes], pixels: 0 };
    write_npy_in_pieces(labels_path, &[height, width], "int64", |put| {
        let progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        model.classify_scene_rows(scene, mask, batch, &progress, &mut |first, rows| {
            counted.pixels += rows.iter().filter(|c| c.is_some()).count();
            if let Some(truth) = truth {
                for (v, c) in truth.rows(first..first + rows.len() / width)?.iter().zip(rows) {
                    if let (Some(t), Some(c)) = (pipeline.class_index(*v), c) {
                        let cell =
                            counted.confusion.get_mut(usize::from(t)).and_then(|row| row.get_mut(usize::from(*c)));
                        *cell.ok_or_else(|| {
                            Error::Invalid(format!("class index {c} out of range for {classes} classes"))
                        })? += 1;
                    }
                }
            }
            Ok(put(&NumData::I64(rows.iter().map(|&c| pipeline.label_value(c)).collect()))?)
        })
    })?;
    bar.finish_and_clear();
    Ok(counted)
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("classifying [{bar:30}] {pos}/{len} pixels {per_sec} ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
