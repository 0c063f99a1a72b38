//! The runtime as users run it: images through an exported model against the trainer's own
//! predictions, a whole scene with ground truth, a torchvision model exported by `torch.onnx`
//! against onnxruntime-Python, concurrent callers, and one-line errors.

use std::path::{Path, PathBuf};

use prism_data::images as preprocess;
use prism_runtime::model::{LoadOptions, Model};
use prism_tests::{Tolerance, assert_close, assert_one_line_error, run, run_python};
use prism_trainer::model::TchModel;
use serde_json::Value;

/// Three classes of 80 x 96 images with distinct colours and noise.
fn image_folder(root: &Path) -> PathBuf {
    let dir = root.join("images");
    let colours = [("amber", [200u8, 140, 20]), ("blue", [20, 60, 200]), ("green", [30, 170, 60])];
    for (c, (class, rgb)) in colours.iter().enumerate() {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..8 {
            let img = image::RgbImage::from_fn(96, 80, |x, y| {
                let noise = ((x * 31 + y * 17 + i * 7 + c as u32 * 13) % 60) as u8;
                image::Rgb(rgb.map(|v| v.saturating_add(noise)))
            });
            img.save(dir.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    dir
}

fn stdout_json_lines(out: &std::process::Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Train ResNet-18 briefly on an image folder, export it, and classify every image with the
/// runtime: its top-1 label equals the trainer's own prediction for the same image.
#[test]
fn image_top1_equals_the_trainers_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let images = image_folder(dir.path());
    let run_dir = dir.path().join("run");
    let fit = run(
        "trainer",
        &[
            "fit",
            "--model",
            "resnet18",
            "--images",
            images.to_str().unwrap(),
            "--image-size",
            "64",
            "--resize",
            "72",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--test-ratio",
            "0.25",
            "--device",
            "cpu",
            "--out",
            run_dir.to_str().unwrap(),
        ],
    );
    assert!(fit.status.success(), "{}", String::from_utf8_lossy(&fit.stderr));
    let onnx = dir.path().join("garbage.onnx");
    let export = run("exporter", &["--run", run_dir.to_str().unwrap(), "--out", onnx.to_str().unwrap()]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    // int8, calibrated on the training photos split.json lists, checked on the 6 held-out ones
    // (after 2 epochs some may be near ties between two classes: the threshold allows 3 to flip).
    let int8 = dir.path().join("garbage.int8.onnx");
    let (run_dir_arg, int8_arg) = (run_dir.to_str().unwrap(), int8.to_str().unwrap());
    let args = ["--run", run_dir_arg, "--out", int8_arg, "--precision", "int8", "--min-agreement", "50", "--json"];
    let export = run("exporter", &args);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let report: Value = serde_json::from_slice(&export.stdout).unwrap();
    let checks = report["lowered"]["agreement"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["on"] == "images" && c["engine"] == "ort" && c["status"] == "pass"), "{report}");
    assert!(checks.iter().all(|c| c["samples"] == 6 || c["status"] == "skipped"), "{report}");
    assert!(report["lowered"]["quantized"].as_array().unwrap().len() >= 20, "ResNet-18's convolutions: {report}");

    // The trainer's predictions: its weights, its preprocessing, its forward.
    let run_config: prism_models::run::RunConfig =
        serde_json::from_slice(&std::fs::read(run_dir.join("config.json")).unwrap()).unwrap();
    let mut model = TchModel::new(run_config.model, tch::Device::Cpu).unwrap();
    model.load(&run_dir.join("model.safetensors")).unwrap();
    let preprocessing: prism_models::run::Preprocessing =
        serde_json::from_slice(&std::fs::read(run_dir.join("preprocessing.json")).unwrap()).unwrap();
    let prism_models::run::Preprocessing::Image(p) = preprocessing else { panic!("not an image run") };

    for engine in ["ort", "tract"] {
        let out = run(
            "runtime",
            &[
                "infer",
                "--model",
                onnx.to_str().unwrap(),
                images.to_str().unwrap(),
                "--top",
                "1",
                "--json",
                "--engine",
                engine,
            ],
        );
        let lines = stdout_json_lines(&out);
        assert_eq!(lines.len(), 24);
        for line in lines {
            assert_eq!(line["engine"], engine);
            let file = PathBuf::from(line["file"].as_str().unwrap());
            let img = preprocess::load_rgb(&file).unwrap();
            let chw = preprocess::eval_transform(&img, p.resize as u32, p.crop as u32);
            let x = tch::Tensor::from_slice(&chw).view([1, 3, p.crop as i64, p.crop as i64]);
            let x = prism_trainer::data::normalise(&x, &p);
            let logits = tch::no_grad(|| model.forward(&x, false)).unwrap();
            let expected = logits.argmax(1, false).int64_value(&[0]);
            assert_eq!(line["top"][0]["index"], expected, "{}: {engine} disagrees with the trainer", file.display());
            let class = file.parent().unwrap().file_name().unwrap().to_str().unwrap();
            assert_eq!(line["top"][0]["label"], p.class_names[expected as usize], "{class}");
        }
    }
}

/// Fine-tuning from torchvision weights: the backbone starts from them and stays frozen, the
/// classifier is replaced for the new class count.
#[test]
fn fine_tuning_from_torchvision_weights_keeps_a_frozen_backbone() {
    let dir = tempfile::tempdir().unwrap();
    let images = image_folder(dir.path());
    let init = dir.path().join("resnet18.safetensors");
    run_python("save_torchvision.py", &["resnet18", init.to_str().unwrap()]);
    let run_dir = dir.path().join("run");
    let fit = run(
        "trainer",
        &[
            "fit",
            "--model",
            "resnet18",
            "--images",
            images.to_str().unwrap(),
            "--image-size",
            "64",
            "--resize",
            "72",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--init",
            init.to_str().unwrap(),
            "--freeze",
            "backbone",
            "--out",
            run_dir.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&fit.stderr);
    assert!(fit.status.success(), "{stderr}");
    assert!(stderr.contains("another class count"), "{stderr}");
    let before = prism_trainer::checkpoint::load(&init).unwrap().0;
    let after = prism_trainer::checkpoint::load(&run_dir.join("model.safetensors")).unwrap().0;
    for name in ["conv1.weight", "layer1.0.conv1.weight", "layer4.1.conv2.weight", "layer4.1.bn2.weight"] {
        assert!(before[name].equal(&after[name]), "{name} changed although the backbone is frozen");
    }
    assert_eq!(after["fc.weight"].size(), vec![3, 512]);
}

/// A scene through the whole-scene graph and window by window gives the same labels, from a
/// C-order `.npy`, from numpy's Fortran-order copy of it, from scipy's MAT-file of it and from
/// hdf5storage's MATLAB v7.3 one (all
/// read a tile at a time; the scene is two default tiles high, and `--tile 7` cuts it into a
/// hundred, so the tiles' margins are checked too), and the runtime reports OA/AA/kappa
/// against the ground truth, writes the label array and draws the maps from it; the library's
/// row bands give the same answer.
#[test]
fn scene_inference_with_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A PyTorch-made HybridSN run (15 PCA components of 30 raw bands, 11 x 11 windows).
    let onnx = prism_tests::small_hybridsn(d, 1);
    assert!(d.join("hybridsn.scene.onnx").exists());

    let (h, w, bands) = (300usize, 19usize, 30usize);
    // Patches of five spectra under noise, so that an untrained model's labels vary.
    let cube: Vec<f32> = (0..h * w * bands)
        .map(|i| {
            let (y, x, b) = (i / bands / w, i / bands % w, i % bands);
            let patch = ((y / 6 + x / 4) % 5) as f32;
            0.1 + ((i * 7919) % 997) as f32 / 997.0 + 2.0 * patch * (1.0 + (b % 7) as f32 * 0.3)
        })
        .collect();
    let labels: Vec<i64> = (0..h * w).map(|i| [0, 1, 2, 3, 4][(i * 31) % 5]).collect();
    let scene = d.join("scene.npy");
    let gt = d.join("gt.npy");
    use prism_data::formats::{read_npy, write_npy};
    use prism_data::{NumArray, NumData};
    write_npy(&scene, &NumArray::new(vec![h, w, bands], NumData::F32(cube)).unwrap()).unwrap();
    write_npy(&gt, &NumArray::new(vec![h, w], NumData::I64(labels.clone())).unwrap()).unwrap();

    let fortran = d.join("fortran.npy");
    let mat = d.join("matlab.mat");
    // MATLAB v7.3 files (HDF5, values in compressed chunks), as hdf5storage writes them.
    let (mat73, gt73) = (d.join("matlab73.mat"), d.join("gt73.mat"));
    let made = std::process::Command::new(prism_tests::python())
        .args(["-c", "import sys, numpy as np, scipy.io, hdf5storage; a = np.load(sys.argv[1]); np.save(sys.argv[2], np.asfortranarray(a)); assert np.load(sys.argv[2]).flags.f_contiguous; scipy.io.savemat(sys.argv[3], {'cube': a}, do_compression=True); save = lambda path, v: hdf5storage.savemat(path, v, format='7.3', matlab_compatible=True, store_python_metadata=False); save(sys.argv[4], {'cube': a}); save(sys.argv[6], {'gt': np.load(sys.argv[5]).astype(np.uint8)})"])
        .args([&scene, &fortran, &mat, &mat73, &gt, &gt73])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    let mut maps = Vec::new();
    let cases: [(&PathBuf, &str, &[&str], &PathBuf); 8] = [
        (&scene, "scene", &[], &gt),
        (&scene, "window", &["--windows-only"], &gt),
        (&fortran, "scene", &[], &gt),
        (&fortran, "window", &["--windows-only"], &gt),
        // Tiles smaller than the window's margins, a hundred of them.
        (&scene, "scene", &["--tile", "7"], &gt),
        (&fortran, "window", &["--windows-only", "--tile", "7"], &gt),
        // scipy's compressed MAT-file of the same cube, unpacked to a temporary .npy.
        (&mat, "scene", &["--tile", "100"], &gt),
        // MATLAB v7.3 files of the cube and of the ground truth.
        (&mat73, "scene", &[], &gt73),
    ];
    for (case, (file, graph, extra, gt)) in cases.into_iter().enumerate() {
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let out_dir = d.join(format!("{case}"));
        let mut args = vec![
            "infer",
            "--model",
            onnx.to_str().unwrap(),
            file.to_str().unwrap(),
            "--gt",
            gt.to_str().unwrap(),
            "--json",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend(extra);
        let line = stdout_json_lines(&run("runtime", &args)).remove(0);
        assert_eq!(line["graph"], graph);
        assert_eq!((line["height"].as_u64(), line["width"].as_u64()), (Some(h as u64), Some(w as u64)));
        let oa = line["oa"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&oa));
        assert!(
            out_dir.join(format!("{stem}.map.png")).exists()
                && out_dir.join(format!("{stem}.map_labelled.png")).exists()
        );
        for (key, name) in [("per_class_png", "per_class"), ("confusion_png", "confusion")] {
            let path = out_dir.join(format!("{stem}.{name}.png"));
            assert_eq!(line[key].as_str(), path.to_str());
            assert!(image::open(&path).is_ok(), "{} is not a PNG", path.display());
        }
        let map = read_npy(&out_dir.join(format!("{stem}.labels.npy"))).unwrap();
        assert_eq!(map.shape, vec![h, w]);
        let map = map.to_i64().unwrap();
        assert!(map.iter().all(|v| (1..=4).contains(v)), "labels are the ground truth's values 1..4");
        // OA recomputed from the label array.
        let (hits, n) = labels
            .iter()
            .zip(&map)
            .filter(|(t, _)| **t != 0)
            .fold((0, 0), |(h, n), (t, p)| (h + usize::from(t == p), n + 1));
        assert!((oa - hits as f64 / n as f64).abs() < 1e-12);
        // The maps are drawn from the label array (in strips: 300 rows at scale 1 make two):
        // each pixel in its class's colour, the labelled map black where the truth is 0.
        let layout = prism_data::pictures::class_map_layout(h, w, &[], "").unwrap();
        assert_eq!(layout.scale, 1);
        let colours = prism_data::pictures::palette(4);
        for (png, keep_all) in [("map", true), ("map_labelled", false)] {
            let img = image::open(out_dir.join(format!("{stem}.{png}.png"))).unwrap().to_rgb8();
            for (i, (&v, &t)) in map.iter().zip(&labels).enumerate() {
                let expected =
                    if keep_all || t != 0 { colours[v as usize - 1] } else { prism_data::pictures::BACKGROUND };
                let (x, y) = (layout.map_x + (i % w) as u32, layout.map_y + (i / w) as u32);
                assert_eq!(img.get_pixel(x, y).0, expected, "{png} of case {case} at pixel {i}");
            }
        }
        let near_tile_edge: std::collections::BTreeSet<i64> = map[140 * w..160 * w].iter().copied().collect();
        assert!(
            near_tile_edge.len() >= 3,
            "{file:?} {graph}: the labels near the tiles' edge take only the values {near_tile_edge:?}, too few to check the tiles' margins"
        );
        maps.push(map);
    }
    assert_eq!(maps[0], maps[1], "the whole-scene graph and the window graph disagree");
    assert_eq!(maps[0], maps[2], "the Fortran-order copy's scene graph labels differ");
    assert_eq!(maps[0], maps[3], "the Fortran-order copy's window graph labels differ");
    assert_eq!(maps[0], maps[4], "7-pixel tiles change the scene graph's labels");
    assert_eq!(maps[0], maps[5], "7-pixel tiles change the window graph's labels");
    assert_eq!(maps[0], maps[6], "the MAT-file's labels differ");
    assert_eq!(maps[0], maps[7], "the MATLAB v7.3 file's labels differ");

    // The library hands the answer over a band of tiles' rows at a time, from the top, the
    // same answer as the command line's.
    let model = Model::load(&onnx, &LoadOptions { tile: Some(100), ..LoadOptions::default() }).unwrap();
    let source = prism_data::scene::open_scene(&scene, None).unwrap();
    let (mut bands, mut classes) = (Vec::new(), Vec::new());
    model
        .classify_scene_rows(&*source, None, 32, &|_, _| {}, &mut |first, rows| {
            bands.push((first, rows.len() / w));
            classes.extend_from_slice(rows);
            Ok(())
        })
        .unwrap();
    assert_eq!(bands, [(0, 100), (100, 100), (200, 100)]);
    let values: Vec<i64> = classes.iter().map(|c| i64::from(c.expect("every pixel classified")) + 1).collect();
    assert_eq!(values, maps[0], "classify_scene_rows differs from runtime infer");
}

/// torchvision's ResNet-18 exported by `torch.onnx` (no Prism metadata) runs with
/// `--preprocess imagenet --labels`, and its probabilities equal onnxruntime-Python's on
/// torchvision's preprocessing of the same images.
#[test]
fn a_torch_onnx_model_runs_with_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python("foreign.py", &[d.to_str().unwrap()]);
    let expected: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(d.join("expected.json")).unwrap()).unwrap();
    let onnx = d.join("resnet18.onnx");
    let labels = d.join("labels.txt");
    let no_flags = run("runtime", &["infer", "--model", onnx.to_str().unwrap(), d.join("images").to_str().unwrap()]);
    assert_one_line_error(&no_flags, "--preprocess imagenet");
    for engine in ["ort", "tract"] {
        let out = run(
            "runtime",
            &[
                "infer",
                "--model",
                onnx.to_str().unwrap(),
                d.join("images").to_str().unwrap(),
                "--preprocess",
                "imagenet",
                "--labels",
                labels.to_str().unwrap(),
                "--top",
                "1000",
                "--json",
                "--engine",
                engine,
            ],
        );
        let lines = stdout_json_lines(&out);
        assert_eq!(lines.len(), 3);
        for line in lines {
            let file = PathBuf::from(line["file"].as_str().unwrap());
            let theirs: Vec<f32> = expected[file.file_name().unwrap().to_str().unwrap()]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let mut ours = vec![0f32; 1000];
            for p in line["top"].as_array().unwrap() {
                ours[p["index"].as_u64().unwrap() as usize] = p["probability"].as_f64().unwrap() as f32;
                assert_eq!(p["label"], format!("label-{}", p["index"]));
            }
            assert_close(&format!("{engine} {}", file.display()), &ours, &theirs, Tolerance::APPROX);
        }
    }
}

/// One `Model` shared by threads (a pool of two engines) gives each caller its own answer.
#[test]
fn a_model_serves_concurrent_callers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python("foreign.py", &[d.to_str().unwrap()]);
    let options = LoadOptions {
        sessions: 2,
        image_pipeline: Some(prism_runtime::model::ImagePipeline::imagenet()),
        ..Default::default()
    };
    let model = Model::load(&d.join("resnet18.onnx"), &options).unwrap();
    let images: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| preprocess::load_rgb(&d.join("images").join(format!("{n}.png"))).unwrap())
        .collect();
    let alone: Vec<usize> =
        images.iter().map(|img| model.classify_images(std::slice::from_ref(img), 1).unwrap()[0][0].index).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (model, images) = (&model, &images);
                s.spawn(move || {
                    (i % 3, model.classify_images(std::slice::from_ref(&images[i % 3]), 1).unwrap()[0][0].index)
                })
            })
            .collect();
        for h in handles {
            let (which, index) = h.join().unwrap();
            assert_eq!(index, alone[which]);
        }
    });
}

/// MAT-files MATLAB itself saved (`-v6`, `-v7`, `-v7.3`: the test files of pymatreader's
/// source distribution on PyPI, so this test needs PyPI) list and read as SciPy and h5py list
/// and read them; what is not a real numeric array is refused in one line naming it; the three
/// formats of one workspace read alike; MATLAB 4 files are refused by name; and boxes of a matrix MATLAB cut into compressed chunks
/// read as parts of the whole.
#[test]
fn matlab_written_files_read_as_scipy_and_h5py_read_them_needs_pypi() {
    use prism_data::formats::{MatArray, list_mat_variables, read_mat};
    use prism_data::{NumArray, NumData};
    use std::collections::HashMap;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python("matlab_files.py", &[d.to_str().unwrap()]);
    let expected: Value = serde_json::from_slice(&std::fs::read(d.join("expected.json")).unwrap()).unwrap();
    let (listings, errors) =
        (expected["mat_variables"].as_object().unwrap(), expected["mat_errors"].as_object().unwrap());
    let arrays: HashMap<(&str, &str), &Value> = expected["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| ((e["file"].as_str().unwrap(), e["key"].as_str().unwrap()), e))
        .collect();
    let assert_same = |what: &str, ours: &NumArray, theirs: &Value| {
        assert_eq!(ours.dtype(), theirs["dtype"], "{what}: dtype");
        assert_eq!(serde_json::json!(ours.shape), theirs["shape"], "{what}: shape");
        let values = theirs["values"].as_array().unwrap();
        let float = |i: usize| values[i].as_str().unwrap().parse::<f64>().unwrap();
        let same = match &ours.data {
            NumData::F64(v) => {
                v.len() == values.len() && v.iter().enumerate().all(|(i, x)| x.to_bits() == float(i).to_bits())
            }
            NumData::F32(v) => {
                v.len() == values.len() && v.iter().enumerate().all(|(i, x)| x.to_bits() == (float(i) as f32).to_bits())
            }
            NumData::U64(v) => v.iter().map(|&x| Value::from(x)).eq(values.iter().cloned()),
            other => other.to_i64().unwrap().into_iter().map(Value::from).eq(values.iter().cloned()),
        };
        assert!(same, "{what}: values differ");
    };
    for (file, word) in errors {
        let message = list_mat_variables(&d.join(file)).unwrap_err().to_string();
        assert!(message.contains(word.as_str().unwrap()) && message.contains(file.as_str()), "{message}");
    }
    let (mut read, mut refused) = (0, 0);
    for (file, listing) in listings {
        let path = d.join(file);
        let ours = list_mat_variables(&path).unwrap_or_else(|e| panic!("{e}"));
        let ours: Vec<Value> = ours.iter().map(|v| serde_json::json!([v.name, v.shape, v.class])).collect();
        assert_eq!(&Value::from(ours), listing, "{file}: listing");
        for variable in listing.as_array().unwrap() {
            let name = variable[0].as_str().unwrap();
            match (read_mat(&path, Some(name)), arrays.get(&(file.as_str(), name))) {
                (Ok(ours), Some(theirs)) => {
                    assert_same(&format!("{file} `{name}`"), &ours, theirs);
                    read += 1;
                }
                (Err(err), None) => {
                    let message = err.to_string();
                    assert!(
                        message.contains(&format!("variable `{name}`: ")) && !message.contains('\n'),
                        "{file}: {message}"
                    );
                    refused += 1;
                }
                (ours, theirs) => panic!("{file} `{name}`: read {ours:?}, expected {theirs:?}"),
            }
        }
    }
    assert!(
        errors.len() == 2 && read >= 30 && refused >= 40,
        "{} refused whole, {read} variables read, {refused} refused",
        errors.len()
    );
    for (file, v73) in [("v6.mat", "v73.mat"), ("v7.mat", "v73.mat"), ("sparse_v7.mat", "sparse_v73.mat")] {
        // Alike but for the size of structs, which a v7.3 file does not store.
        let unsized_structs = |listing: &Value| -> Vec<Value> {
            let blank = |v: &Value| if v[2] == "struct" { serde_json::json!([v[0], [], "struct"]) } else { v.clone() };
            listing.as_array().unwrap().iter().map(blank).collect()
        };
        assert_eq!(unsized_structs(&listings[file]), unsized_structs(&listings[v73]), "{file} and {v73}");
        for &(_, name) in arrays.keys().filter(|(f, _)| *f == file) {
            assert_eq!(
                read_mat(&d.join(file), Some(name)).unwrap(),
                read_mat(&d.join(v73), Some(name)).unwrap(),
                "{file} `{name}`"
            );
        }
    }
    let path = d.join("v73.mat");
    let whole = read_mat(&path, Some("a_matrix")).unwrap();
    let NumData::F64(values) = &whole.data else { panic!("a_matrix is {}", whole.dtype()) };
    let matrix = MatArray::open(&path, Some("a_matrix")).unwrap().expect("a v7.3 variable");
    assert_eq!(matrix.chunk_shape(), Some(vec![50, 100]), "MATLAB's chunks of a_matrix");
    for (rows, columns) in
        [(0..100, 0..100), (3..4, 0..100), (0..100, 49..51), (17..83, 20..77), (99..100, 99..100), (5..5, 0..3)]
    {
        let NumData::F64(part) = matrix.read_box(&[rows.clone(), columns.clone()]).unwrap() else {
            panic!("a_matrix box is not double")
        };
        // The box in MATLAB's column-major order; `values` are in C order.
        let expected: Vec<f64> = columns.clone().flat_map(|c| rows.clone().map(move |r| values[r * 100 + c])).collect();
        assert_eq!(part, expected, "a_matrix[{rows:?}, {columns:?}]");
    }
}

/// Bad input: one line on stderr, a non-zero exit, no panic.
#[test]
fn runtime_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python("foreign.py", &[d.to_str().unwrap()]);
    let onnx = d.join("resnet18.onnx");
    let image = d.join("images/a.png");
    let flags = ["--preprocess", "imagenet"];
    let infer = |model: &Path, input: &Path, extra: &[&str]| {
        let mut args = vec!["infer", "--model", model.to_str().unwrap(), input.to_str().unwrap()];
        args.extend(extra);
        run("runtime", &args)
    };
    assert_one_line_error(&infer(&d.join("missing.onnx"), &image, &flags), "missing.onnx");
    let text = d.join("notes.onnx");
    std::fs::write(&text, "these are not the weights you are looking for").unwrap();
    assert_one_line_error(&infer(&text, &image, &flags), "not a valid ONNX model");
    let truncated = d.join("truncated.onnx");
    let bytes = std::fs::read(&onnx).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_one_line_error(&infer(&truncated, &image, &flags), "truncated");
    let broken = d.join("broken.jpg");
    std::fs::write(&broken, b"\xff\xd8\xff\xe0 a jpeg header and nothing else").unwrap();
    assert_one_line_error(&infer(&onnx, &broken, &flags), "broken.jpg");
    assert_one_line_error(&infer(&onnx, &d.join("missing.png"), &flags), "missing.png");
    // A GPU this machine does not have (none here; not index 99 on a GPU machine either).
    assert_one_line_error(
        &infer(&onnx, &image, &["--preprocess", "imagenet", "--engine", "ort", "--ep", "cuda", "--gpu", "99"]),
        "CUDA",
    );
    assert_one_line_error(&run("runtime", &["info", truncated.to_str().unwrap()]), "truncated");
    // An ORT_DYLIB_PATH that names nothing is said, not passed over for another library.
    let mut args = vec!["infer", "--model", onnx.to_str().unwrap(), image.to_str().unwrap(), "--engine", "ort"];
    args.extend(flags);
    let out = std::process::Command::new(prism_tests::bin("runtime"))
        .args(&args)
        .env("ORT_DYLIB_PATH", d.join("nowhere.so"))
        .output()
        .unwrap();
    assert_one_line_error(&out, "nowhere.so (ORT_DYLIB_PATH) does not exist");
    // With --engine auto too: a library the user named is not swapped for tract in silence.
    let auto = infer(&onnx, &image, &["--preprocess", "imagenet", "--ort-library", "/etc/hostname"]);
    assert_one_line_error(&auto, "/etc/hostname");
    assert_one_line_error(&infer(&onnx, &image, &["--topk", "3"]), "unexpected argument '--topk'");

    // A cube with the wrong number of bands for a scene model.
    let scene_model = prism_tests::small_hybridsn(d, 1);
    let cube = d.join("cube.npy");
    use prism_data::formats::write_npy;
    use prism_data::{NumArray, NumData};
    write_npy(&cube, &NumArray::new(vec![12, 12, 29], NumData::F32(vec![0.5; 12 * 12 * 29])).unwrap()).unwrap();
    assert_one_line_error(&infer(&scene_model, &cube, &[]), "the scene has 29 bands, the model takes 30");
    // A cube with a no-data NaN, which would spread through every window around it.
    let mut values = vec![0.5f32; 12 * 12 * 30];
    values[(3 * 12 + 4) * 30 + 7] = f32::NAN;
    write_npy(&cube, &NumArray::new(vec![12, 12, 30], NumData::F32(values)).unwrap()).unwrap();
    assert_one_line_error(
        &infer(&scene_model, &cube, &[]),
        "1 NaN or infinite values, the first at row 3, column 4, band 7",
    );
    // A compressed MATLAB 5 scene is unpacked into TMPDIR: a temporary folder that cannot be made
    // is said; an uncompressed one and a v7.3 one are read in place (and here fail later, on their
    // number of bands).
    let arrays = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/arrays");
    let no_temp = text.join("tmp");
    let infer_in = |scene: &Path, key: &str| {
        let args = ["infer", "--model", scene_model.to_str().unwrap(), scene.to_str().unwrap(), "--key", key];
        std::process::Command::new(prism_tests::bin("runtime")).args(args).env("TMPDIR", &no_temp).output().unwrap()
    };
    assert_one_line_error(
        &infer_in(&arrays.join("cube_u16_z.mat"), "cube"),
        "cannot unpack it into the temporary folder",
    );
    assert_one_line_error(
        &infer_in(&arrays.join("layouts_v73.mat"), "deflate"),
        "the scene has 11 bands, the model takes 30",
    );
    assert_one_line_error(&infer_in(&arrays.join("cube_u16.mat"), "cube"), "the scene has 6 bands, the model takes 30");
    // A directory where a model file belongs: the cause is said once.
    let out = run("runtime", &["info", d.to_str().unwrap()]);
    assert_one_line_error(&out, "Is a directory");
    assert_eq!(String::from_utf8_lossy(&out.stderr).matches("Is a directory").count(), 1);
}

/// Output into a pipe whose reader has gone (`runtime info m.onnx | head -1`) ends the program
/// as other Unix tools end, by SIGPIPE, not with a panic in `println!`.
#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    run_python("foreign.py", &[dir.path().to_str().unwrap()]);
    let onnx = dir.path().join("resnet18.onnx");
    for (name, args) in
        [("runtime", vec!["info", onnx.to_str().unwrap()]), ("trainer", vec!["summary", "--model", "hybridsn"])]
    {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(prism_tests::bin(name)).args(&args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(out.status.signal(), Some(13), "{name} should end by SIGPIPE: {:?} {stderr}", out.status);
    }
}
