"""The peer of `runtime bench`: the same ONNX file and batch on onnxruntime's Python package.

    ort_python.py MODEL.onnx --batch 1,64 [--size 145x145] [--warmup 3] [--runs 20]

Inputs as `runtime bench` makes them (a fixed pattern in [0, 1)); prints one JSON object per
batch size with p50_ms and throughput (samples/s, or pixels/s for whole-scene graphs).
"""

import argparse
import json
import time

import numpy as np
import onnxruntime as ort

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--batch", default="1")
parser.add_argument("--size", default="145x145")
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--runs", type=int, default=20)
args = parser.parse_args()

session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
scene = meta.get("prism.graph") == "scene"
inp = session.get_inputs()[0]
h, w = (int(v) for v in args.size.split("x"))
for batch in [1] if scene else [int(b) for b in args.batch.split(",")]:
    dims = []
    for i, d in enumerate(inp.shape):
        if i == 0:
            dims.append(batch)
        elif isinstance(d, int):
            dims.append(d)
        else:
            dims.append(h if i == 2 else w)
    n = int(np.prod(dims))
    x = ((np.arange(n, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(1000)).astype(np.float32).reshape(dims) / 1000
    for _ in range(args.warmup):
        session.run(None, {inp.name: x})
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        session.run(None, {inp.name: x})
        times.append((time.perf_counter() - t) * 1e3)
    units = dims[2] * dims[3] if scene else batch
    print(json.dumps({
        "engine": "onnxruntime-python", "batch": batch,
        "p50_ms": float(np.percentile(times, 50)),
        "throughput": units / (np.mean(times) / 1e3),
        "unit": "pixels/s" if scene else "samples/s",
    }))
