//! `runtime serve` as its clients see it: Triton's own Python clients (tritonclient, HTTP and
//! gRPC) against a repository holding a Prism HybridSN (as `exporter --triton-repo` writes it,
//! with its config.pbtxt, and its whole-scene graph) and torchvision's ResNet-18 from `torch.onnx` (no config.pbtxt), on
//! ONNX Runtime and on tract; answers compared with onnxruntime-Python's
//! (`tests/python/serve_client.py`); SIGTERM ends the server with exit code 0. Faults over plain
//! sockets (`tests/python/serve_faults.py`): a flood past the queue's bound (and requests batched
//! together meanwhile), clients that hang up mid-request, a request over `--timeout`, SIGTERM
//! under load with every answered request received.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use prism_tests::{bin, run, run_python};

/// A running `runtime serve`, its HTTP and gRPC addresses, and its log so far.
struct Serve {
    child: Child,
    http: String,
    grpc: String,
    /// What it logged before listening.
    started: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Serve {
    /// Starts the server on free ports and waits for the line that says where it listens.
    fn start(args: &[&str]) -> Serve {
        Serve::try_start(args).unwrap_or_else(|log| panic!("runtime serve did not start:\n{log}"))
    }

    /// [`Serve::start`], or the server's log when it ends (or says nothing for two minutes)
    /// before listening.
    fn try_start(args: &[&str]) -> Result<Serve, String> {
        let mut child = Command::new(bin("runtime"))
            .args(["serve", "--http-port", "0", "--grpc-port", "0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, log) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let mut seen = Vec::new();
        loop {
            let Ok(line) = log.recv_timeout(std::time::Duration::from_secs(120)) else {
                let _ = child.kill();
                let status = child.wait().unwrap();
                return Err(format!("{}\n(exit: {status})", seen.join("\n")));
            };
            if let Some(rest) = line.strip_prefix("[serve] HTTP on http://") {
                let (http, rest) = rest.split_once(", gRPC on ").unwrap();
                let grpc = rest.split_once(',').unwrap().0;
                let started = seen.join("\n");
                return Ok(Serve { child, http: http.into(), grpc: grpc.into(), started, log });
            }
            seen.push(line);
        }
    }

    /// Sends SIGTERM and returns the exit status and the rest of the log.
    fn stop(self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.wait()
    }

    /// Waits for the server to end; its exit status and the rest of its log.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        // The reader thread sends the last lines as the pipe closes.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let log: Vec<String> = self.log.try_iter().collect();
        (status, log.join("\n"))
    }
}

/// A repository with a Prism HybridSN and its whole-scene graph, as `exporter --triton-repo`
/// writes it.
fn hybridsn_repository(d: &Path) -> std::path::PathBuf {
    let repo = d.join("repo");
    prism_tests::small_hybridsn(d, 4);
    let (run_dir, again) = (d.join("run"), d.join("again.onnx"));
    let out = run("exporter", &["--run", p(&run_dir), "--out", p(&again), "--triton-repo", p(&repo)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(repo.join("hybridsn_scene/1/model.onnx").is_file(), "no whole-scene graph in the repository");
    repo
}

/// [`hybridsn_repository`] and torchvision's ResNet-18.
fn repository(d: &Path) -> std::path::PathBuf {
    let repo = hybridsn_repository(d);
    run_python("foreign.py", &[d.to_str().unwrap()]);
    std::fs::create_dir_all(repo.join("resnet18/1")).unwrap();
    std::fs::copy(d.join("resnet18.onnx"), repo.join("resnet18/1/model.onnx")).unwrap();
    repo
}

#[test]
fn tritonclient_gets_onnxruntimes_answers_over_http_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path());
    for engine in ["ort", "tract"] {
        let args = ["--model-repository", repo.to_str().unwrap(), "--engine", engine, "--max-request-size", "16"];
        let server = Serve::start(&args);
        let out = Command::new(prism_tests::python())
            .arg(prism_tests::root().join("tests/python/serve_client.py"))
            .args([&server.http, &server.grpc, repo.to_str().unwrap(), "16", engine])
            .output()
            .unwrap();
        let (status, log) = server.stop();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{engine}:\n{report}\n{}\nserver log:\n{log}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(status.success(), "{engine}: runtime serve ended with {status} after SIGTERM:\n{log}");
        assert!(log.contains("[serve] stopped"), "{engine}: {log}");
    }
}

#[test]
fn version_policies_and_instance_kinds_are_acted_on() {
    let dir = tempfile::tempdir().unwrap();
    let repo = hybridsn_repository(dir.path());
    std::fs::remove_dir_all(repo.join("hybridsn_scene")).unwrap();
    run_python("serve_versions.py", &["prepare", p(&repo), "hybridsn"]);
    // KIND_CPU must win over `--ep cuda`, which fails on a machine without CUDA and would run
    // the model on a GPU where there is one.
    let server = Serve::start(&["--model-repository", p(&repo), "--engine", "ort", "--ep", "cuda"]);
    assert!(server.started.contains("instances: 2 on ort/cpu"), "{}", server.started);
    let out = Command::new(prism_tests::python())
        .arg(prism_tests::root().join("tests/python/serve_versions.py"))
        .args(["check", &server.http, &server.grpc, p(&repo), "hybridsn"])
        .output()
        .unwrap();
    let (status, log) = server.stop();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}\n{}\nserver log:\n{log}", String::from_utf8_lossy(&out.stderr));
    assert!(status.success(), "runtime serve ended with {status}:\n{log}");

    run_python("serve_versions.py", &["gpu", p(&repo), "hybridsn"]);
    let error = Serve::try_start(&["--model-repository", p(&repo), "--engine", "tract"]).err().unwrap();
    assert!(error.contains("KIND_GPU") && error.contains("tract runs on the CPU only"), "{error}");
    assert_eq!(error.lines().filter(|l| l.starts_with("error:")).count(), 1, "{error}");
    match Serve::try_start(&["--model-repository", p(&repo), "--engine", "ort"]) {
        // A machine with a GPU: the instance runs on it.
        Ok(server) => {
            let started = server.started.clone();
            let (status, log) = server.stop();
            assert!(started.contains("instances: 1 on ort/cuda (GPU 0)"), "{started}");
            assert!(status.success(), "{log}");
        }
        Err(error) => assert!(error.to_lowercase().contains("cuda"), "KIND_GPU without a GPU: {error}"),
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `serve_faults.py` and returns its output.
fn faults(args: &[&str]) -> String {
    let out = Command::new(prism_tests::python())
        .arg(prism_tests::root().join("tests/python/serve_faults.py"))
        .args(args)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "serve_faults.py {args:?}:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    eprint!("{report}");
    report
}

#[test]
fn floods_hangups_timeouts_and_sigterm_get_protocol_answers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python("foreign.py", &[d.to_str().unwrap()]);
    let resnet = d.join("resnet18.onnx");
    let input = ["resnet18", "input", "1,3,224,224"];

    let server = Serve::start(&["--model", resnet.to_str().unwrap(), "--queue", "2", "--sessions", "1"]);
    let report = faults(&[&["flood", &server.http], &input[..]].concat());
    let (status, log) = server.stop();
    assert!(status.success(), "{status}: {log}");
    assert!(report.contains("the server still answers"), "{report}");

    let server = Serve::start(&["--model", resnet.to_str().unwrap(), "--timeout", "0.001"]);
    let report = faults(&[&["timeout", &server.http], &input[..]].concat());
    let (status, log) = server.stop();
    assert!(status.success() && report.contains("504"), "{report}\n{log}");

    let server = Serve::start(&["--model", resnet.to_str().unwrap(), "--queue", "4"]);
    let pid = server.child.id().to_string();
    let report = faults(&[&["sigterm", &server.http], &input[..], &[&pid]].concat());
    let (status, log) = server.wait();
    assert!(status.success(), "runtime serve ended with {status} after SIGTERM under load:\n{log}");
    let received: usize = report.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let answered: usize = log
        .split("[serve] stopped: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in the log:\n{log}"));
    assert!(received > 0, "no request was answered before SIGTERM: {report}");
    assert_eq!(answered, received, "the server answered {answered} requests, the clients received {received}:\n{log}");
}
