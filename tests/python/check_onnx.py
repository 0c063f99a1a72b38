"""ONNX's own checker and onnxruntime's Python package on exported files: the peers the exporter
is checked against.

    check_onnx.py JOBS.json

JOBS.json holds a list of jobs; prints a JSON list with one report per job.

    {"kind": "model", "onnx": PATH, "input": SAMPLE.safetensors, "tensor": "input",
     "output": OUT.safetensors}
        onnx.checker.check_model(full_check=True); runs the model in onnxruntime (CPU) on the
        tensor and writes every output under its name. Report: {"ops": {op: count},
        "initializers": [names], "unused_initializers": [...], "node_names_unique": bool,
        "metadata": {key: value}, "inputs"/"outputs": [{"name", "shape"}], "opset", "ir_version",
        "producer"}.

    {"kind": "scene", "window_onnx": PATH, "scene_onnx": PATH, "preprocessing": JSON,
     "height": H, "width": W, "seed": N, "low": a, "high": b, "output": OUT.safetensors}
        A random raw scene [1, raw_bands, H, W] (uniform in [low, high)), the scene graph on it,
        and the window graph on every window cut from the scene padded with the PCA mean
        (window // 2 before, (window - 1) // 2 after), written as `scene` [1, R, H, W],
        `dense` [1, C, H, W] and `windows` [H * W, C] (row-major over pixels).
"""

import collections
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file


def session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def dims(value):
    return [d.dim_param if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim]


def check_model(job):
    model = onnx.load(job["onnx"])
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    names = [node.name for node in graph.node]
    report = {
        "ops": dict(collections.Counter(node.op_type for node in graph.node)),
        "initializers": [t.name for t in graph.initializer],
        "unused_initializers": [t.name for t in graph.initializer if t.name not in read],
        "node_names_unique": len(names) == len(set(names)) and all(names),
        "metadata": {p.key: p.value for p in model.metadata_props},
        "inputs": [{"name": v.name, "shape": dims(v)} for v in graph.input],
        "outputs": [{"name": v.name, "shape": dims(v)} for v in graph.output],
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
        "ir_version": model.ir_version,
        "producer": [model.producer_name, model.producer_version],
        "doc_string": model.doc_string,
    }
    if job.get("input"):
        x = load_file(job["input"])[job.get("tensor", "input")]
        sess = session(job["onnx"])
        outputs = sess.run(None, {sess.get_inputs()[0].name: x})
        save_file({o.name: np.ascontiguousarray(v) for o, v in zip(sess.get_outputs(), outputs)}, job["output"])
    return report


def check_scene(job):
    with open(job["preprocessing"]) as f:
        pre = json.load(f)
    raw, window = pre["raw_bands"], pre["window"]
    mean = np.asarray(pre["pca"]["mean"], dtype=np.float32)
    h, w = job["height"], job["width"]
    rng = np.random.default_rng(job.get("seed", 0))
    scene = rng.uniform(job.get("low", 0.0), job.get("high", 0.6), size=(1, raw, h, w)).astype(np.float32)
    for path in (job["window_onnx"], job["scene_onnx"]):
        onnx.checker.check_model(onnx.load(path), full_check=True)
    dense = session(job["scene_onnx"]).run(["logits"], {"spectra": scene})[0]
    before, after = window // 2, (window - 1) // 2
    padded = np.broadcast_to(mean[None, :, None, None], (1, raw, h + before + after, w + before + after)).copy()
    padded[:, :, before:before + h, before:before + w] = scene
    windows = np.stack([padded[0, :, i:i + window, j:j + window] for i in range(h) for j in range(w)])
    per_window = session(job["window_onnx"]).run(["logits"], {"spectra": windows})[0]
    save_file({"scene": scene, "dense": np.ascontiguousarray(dense), "windows": per_window}, job["output"])
    return {"max_abs": float(np.abs(dense[0].reshape(dense.shape[1], -1).T - per_window).max())}


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    reports = []
    for job in jobs:
        kind = job.get("kind", "model")
        reports.append(check_scene(job) if kind == "scene" else check_model(job))
    print(json.dumps(reports))


if __name__ == "__main__":
    main()
