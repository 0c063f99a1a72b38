//! The C API as a C program uses it: `examples/c/classify.c` built with the system's C compiler
//! (`scripts/build-c-example.sh`) against libprism answers as `runtime infer --json` does, on
//! torchvision's ResNet-18 from `torch.onnx` and on a Prism HybridSN export, on ONNX Runtime and
//! on tract; the static tract-only builds (`--static`, and `--small` where a panic aborts) link no
//! ONNX Runtime, give the same answers and refuse bad models with a message; and
//! valgrind finds no leak and no invalid access in a run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use prism_data::formats::{read_npy, write_npy};
use prism_data::{NumArray, NumData};
use prism_tests::{root, run, run_python};
use serde_json::Value;

/// Builds the C example once per test run (`--static`: the tract-only static one).
fn c_example(kind: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if let Some((_, path)) = built.iter().find(|(k, _)| k == kind) {
        return path.clone();
    }
    let mut command = Command::new(root().join("scripts/build-c-example.sh"));
    if !kind.is_empty() {
        command.arg(kind);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "building the C example failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim());
    built.push((kind.to_string(), path.clone()));
    path
}

fn json_lines(out: &std::process::Output, what: &str) -> Vec<Value> {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The top-k answers of two programs agree: same indexes and labels in the same order, same
/// probabilities within 1e-5.
fn assert_same_top(ours: &Value, theirs: &Value, what: &str) {
    let (ours, theirs) = (ours["top"].as_array().unwrap(), theirs["top"].as_array().unwrap());
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!((&o["index"], &o["label"]), (&t["index"], &t["label"]), "{what}");
        let (p, q) = (o["probability"].as_f64().unwrap(), t["probability"].as_f64().unwrap());
        assert!((p - q).abs() <= 1e-5, "{what}: probability {p} against runtime infer's {q}");
    }
}

/// A small HybridSN export ([`prism_tests::small_hybridsn`]) and a 41 x 23 scene for it, as
/// float32 and as uint16.
fn hybridsn(d: &Path) -> (PathBuf, [PathBuf; 2]) {
    let onnx = prism_tests::small_hybridsn(d, 2);
    let (h, w, bands) = (41usize, 23usize, 30usize);
    let cube: Vec<u16> = (0..h * w * bands)
        .map(|i| {
            let (y, x, b) = (i / bands / w, i / bands % w, i % bands);
            (100 + (i * 7919) % 997 + 400 * ((y / 6 + x / 4) % 5) * (1 + b % 7)) as u16
        })
        .collect();
    let f32_scene = d.join("scene_f32.npy");
    let u16_scene = d.join("scene_u16.npy");
    let floats = cube.iter().map(|&v| f32::from(v) / 1000.0).collect();
    write_npy(&f32_scene, &NumArray::new(vec![h, w, bands], NumData::F32(floats)).unwrap()).unwrap();
    write_npy(&u16_scene, &NumArray::new(vec![h, w, bands], NumData::U16(cube)).unwrap()).unwrap();
    (onnx, [f32_scene, u16_scene])
}

#[test]
fn the_c_example_answers_as_runtime_infer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let classify = c_example("");
    run_python("foreign.py", &[d.to_str().unwrap()]);
    let (resnet, labels) = (d.join("resnet18.onnx"), d.join("labels.txt"));
    let images: Vec<String> =
        ["a", "b", "c"].iter().map(|n| d.join(format!("images/{n}.png")).display().to_string()).collect();
    let (hybridsn, scenes) = hybridsn(d);

    for engine in ["ort", "tract"] {
        let mut c = Command::new(&classify);
        c.args(["--engine", engine, "--imagenet", "--labels", labels.to_str().unwrap(), "--top", "5"]);
        let ours = json_lines(&c.arg(&resnet).args(&images).output().unwrap(), "the C example");
        let mut args = vec!["infer", "--model", resnet.to_str().unwrap(), "--preprocess", "imagenet", "--labels"];
        args.extend([labels.to_str().unwrap(), "--top", "5", "--json", "--engine", engine]);
        args.extend(images.iter().map(String::as_str));
        let theirs = json_lines(&run("runtime", &args), "runtime infer");
        assert_eq!(ours.len(), 3);
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!((&o["file"], &o["engine"]), (&t["file"], &t["engine"]));
            assert_eq!(o["engine"], engine);
            assert_same_top(o, t, &format!("ResNet-18 on {engine}, {}", o["file"]));
        }

        for scene in &scenes {
            let out = Command::new(&classify).args(["--engine", engine]).arg(&hybridsn).arg(scene).output().unwrap();
            let ours = json_lines(&out, "the C example").remove(0);
            let out_dir = d.join(format!("infer-{engine}"));
            let args = ["infer", "--model", hybridsn.to_str().unwrap(), scene.to_str().unwrap(), "--json", "--engine"];
            let line = json_lines(
                &run("runtime", &[&args[..], &[engine, "--out", out_dir.to_str().unwrap()]].concat()),
                "runtime infer",
            )
            .remove(0);
            assert_eq!(line["graph"], "scene", "the whole-scene graph beside the model is used");
            let stem = scene.file_stem().unwrap().to_str().unwrap();
            let theirs = read_npy(&out_dir.join(format!("{stem}.labels.npy"))).unwrap().to_i64().unwrap();
            let ours: Vec<i64> = ours["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(ours.len(), 41 * 23);
            assert_eq!(
                ours,
                theirs,
                "{engine}, {}: the C example's labels differ from runtime infer's",
                scene.display()
            );
            let distinct: std::collections::BTreeSet<i64> = ours.iter().copied().collect();
            assert!(distinct.len() >= 2, "an untrained model's labels should vary: {distinct:?}");
        }
    }
}

#[test]
fn the_static_tract_builds_need_no_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shared = c_example("");
    let (hybridsn, scenes) = hybridsn(d);
    let out = Command::new(&shared).args(["--engine", "tract"]).arg(&hybridsn).arg(&scenes[0]).output().unwrap();
    let expected = json_lines(&out, "the shared example").remove(0);
    // A corrupt model, and one that made tract 0.23 panic before Prism's checks refused it.
    let garbage = d.join("corrupt.onnx");
    std::fs::write(&garbage, b"\x08\x07\x12\x04abcd:\x10\x12\x0e\x0a\x01x").unwrap();
    let undefined = root().join("fuzz/corpus/onnx_tract/found-undefined-output.onnx");
    for kind in ["--static", "--small"] {
        let program = c_example(kind);
        let ldd = Command::new("ldd").arg(&program).output().unwrap();
        let linked = String::from_utf8_lossy(&ldd.stdout).into_owned();
        for lib in linked.lines().filter_map(|l| l.split_whitespace().next()) {
            let system = ["linux-vdso", "libc.so", "libm.so", "ld-linux", "libpthread", "libdl", "librt", "libutil"];
            assert!(system.iter().any(|s| lib.contains(s)), "the {kind} example links {lib}:\n{linked}");
        }
        // No ONNX Runtime to be found: `auto` lands on tract and says so.
        let out = Command::new(&program)
            .env("ORT_DYLIB_PATH", "")
            .env_remove("VIRTUAL_ENV")
            .arg(&hybridsn)
            .arg(&scenes[0])
            .output()
            .unwrap();
        let alone = json_lines(&out, &format!("the {kind} example")).remove(0);
        assert_eq!(alone["engine"], "tract", "{kind}");
        assert_eq!(alone["labels"], expected["labels"], "{kind}");
        // Bad models are errors, not aborts, in the build where a panic would abort.
        for model in [&garbage, &undefined] {
            let out = Command::new(&program).arg(model).arg(&scenes[0]).output().unwrap();
            let message = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{kind} on {}: {message}", model.display());
            assert!(message.starts_with("classify: ") && message.lines().count() == 1, "{kind}: {message}");
        }
    }
}

#[test]
fn the_c_example_runs_clean_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "valgrind is missing: CI must have it");
        let skipped = "skipped: valgrind is not installed (CI runs this test)\n";
        let _ = std::io::Write::write_all(&mut std::io::stderr(), skipped.as_bytes());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let classify = c_example("");
    let (hybridsn, scenes) = hybridsn(d);
    run_python("foreign.py", &[d.to_str().unwrap()]);
    let (resnet, image) = (d.join("resnet18.onnx"), d.join("images/a.png"));
    let runs: [&[&str]; 2] = [
        &["--engine", "tract", hybridsn.to_str().unwrap(), scenes[1].to_str().unwrap()],
        &["--engine", "tract", "--imagenet", resnet.to_str().unwrap(), image.to_str().unwrap()],
    ];
    for args in runs {
        let out = Command::new("valgrind")
            .args(["--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,indirect"])
            .args(["--errors-for-leak-kinds=definite,indirect", "--track-origins=yes"])
            .arg(&classify)
            .args(args)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "valgrind found errors in classify {args:?}:\n{report}");
        assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
        assert_eq!(json_lines(&out, "the C example under valgrind").len(), 1);
    }
}
