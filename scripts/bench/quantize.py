"""Prism's int8 and fp16 exports against float32 and against the peer a user would reach for:
onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights, uint8 activations) on
the same float32 files with the same calibration inputs. Run by scripts/bench-quantize.sh.
Scene runs (HybridSN: window and whole-scene graphs) and image runs (ResNet: photos decoded
with PIL, resized and cropped as torchvision does; the exporter decodes its own) alike.

    quantize.py RUN_DIR WORK_DIR RUNTIME_BIN CALIBRATION RUNS

Reads the files the exporter wrote in WORK_DIR (fp32.onnx, int8.onnx, fp16.onnx and their
.scene.onnx), makes the peer's (peer.onnx, peer.scene.onnx), and prints one Markdown report:
sizes; labels against float32 on the whole scene and on held-out windows; OA on the run's test
pixels; speed on ONNX Runtime's CPU provider and on tract through `runtime bench` (the same
process for every file, in this run); multiply-accumulates per second against this machine's
own float32 and int8 matrix-product peak, measured here by onnxruntime's MatMul and
MatMulInteger on one square matrix.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, TensorProto
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

run_dir, work, runtime, calibration, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
config = json.load(open(os.path.join(run_dir, "config.json")))
pre = json.load(open(os.path.join(run_dir, "preprocessing.json")))
split = json.load(open(os.path.join(run_dir, "split.json")))
cache = os.environ.get("PRISM_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "prism"
)
image_run = pre["task"] == "image"
input_name = "image" if image_run else "spectra"


def spread(items, count):
    """The exporter's choice: `count` items spread evenly (calibrate::spread)."""
    return items if count >= len(items) else [items[i * len(items) // count] for i in range(count)]


if image_run:
    from PIL import Image

    def photos(items):
        """RGB in [0, 1], shorter side resized, centre crop: the evaluation transform."""
        out = []
        for path, _ in items:
            img = Image.open(path).convert("RGB")
            w, h = img.size
            scale = pre["resize"] / min(w, h)
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
            w, h = img.size
            left, top = round((w - pre["crop"]) / 2), round((h - pre["crop"]) / 2)
            img = img.crop((left, top, left + pre["crop"], top + pre["crop"]))
            out.append(np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0)
        return np.ascontiguousarray(np.stack(out))

    calib = photos(spread(split["train"], calibration))
    heldout_items = spread(split["test"], 1000)
    heldout = photos(heldout_items)
    heldout_truth = np.array([c for _, c in heldout_items])
else:
    cache = os.environ.get("PRISM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "prism"
    )
    data = config["data"]
    scene_path = data.get("data") or os.path.join(cache, "indian-pines", "Indian_pines_corrected.npy")
    gt_path = data.get("gt") or os.path.join(cache, "indian-pines", "Indian_pines_gt.npy")
    scene = np.load(scene_path).astype(np.float32)  # height x width x bands
    gt = np.load(gt_path)
    height, width, bands = scene.shape
    window = pre["window"]
    mean = np.asarray(pre["pca"]["mean"], np.float32)
    class_values = pre["class_values"]

    def windows(pixels):
        """Windows centred on pixels, outside pixels at the PCA mean, as runtime infer cuts them."""
        half = window // 2
        padded = np.broadcast_to(mean, (height + window, width + window, bands)).copy()
        padded[half : half + height, half : half + width] = scene
        out = np.stack([padded[y : y + window, x : x + window] for y, x in pixels])
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    calib = windows(spread(split["train"], calibration))
    heldout_pixels = spread(split["test"], 1000)
    heldout = windows(heldout_pixels)
    whole = np.ascontiguousarray(scene.transpose(2, 0, 1)[None])
    test = np.zeros((height, width), bool)
    for y, x in split["test"]:
        test[y, x] = True
    truth = np.vectorize(lambda v: class_values.index(v) if v in class_values else -1)(gt)
    heldout_truth = np.array([truth[y, x] for y, x in heldout_pixels])


class Reader(CalibrationDataReader):
    def __init__(self, batches):
        self.batches = iter(batches)

    def get_next(self):
        return next(self.batches, None)


def peer(src, dst, batches):
    quantize_static(src, dst, Reader(batches), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


t = time.perf_counter()
peer(f"{work}/fp32.onnx", f"{work}/peer.onnx", [{input_name: calib[i : i + 16]} for i in range(0, len(calib), 16)])
if not image_run:
    peer(f"{work}/fp32.scene.onnx", f"{work}/peer.scene.onnx", [{"spectra": calib[i : i + 1]} for i in range(len(calib))])
peer_seconds = time.perf_counter() - t

options = ort.SessionOptions()
options.intra_op_num_threads = os.cpu_count()


def probabilities(path, x, batch=64):
    s = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(["probabilities"], {input_name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


names = ["fp32", "int8", "fp16", "peer"]
window_labels = {name: probabilities(f"{work}/{name}.onnx", heldout).argmax(1) for name in names}
if not image_run:
    scene_labels = {name: probabilities(f"{work}/{name}.scene.onnx", whole, 1)[0].argmax(0) for name in names}


failures = []


def bench(path, engine, extra):
    """Median milliseconds from `runtime bench`, or None (and the error kept for the notes)."""
    out = subprocess.run([runtime, "bench", "--model", path, "--engines", engine, "--runs", str(runs), "--warmup", "1",
                          "--json", *extra], capture_output=True, text=True)
    if out.returncode != 0:
        failures.append(f"{os.path.basename(path)} on {engine}: {out.stderr.strip().splitlines()[-1]}")
        return None
    return json.loads(out.stdout.splitlines()[-1])["p50_ms"]


def conv_macs(path, x):
    """Multiply-accumulates of every Conv, Gemm and MatMul on input `x`, split by int8 nodes
    (weight from a DequantizeLinear) and float ones; output shapes from a run with every such
    node's output exposed (shape inference cannot follow the graph's run-time Reshape)."""
    m = onnx.load(path)
    nodes = [n for n in m.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    known = {o.name for o in m.graph.output}
    for n in nodes:
        if n.output[0] not in known:
            m.graph.output.append(helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None))
    s = ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
    shapes = dict(zip([n.output[0] for n in nodes], [v.shape for v in s.run([n.output[0] for n in nodes], {input_name: x})]))
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    producers = {o: n for n in m.graph.node for o in n.output}
    total = {"int8": 0, "float": 0}
    for n in nodes:
        w_name = n.input[1]
        quantized = w_name in producers and producers[w_name].op_type == "DequantizeLinear"
        if quantized:
            w_name = producers[w_name].input[0]
        wdims = inits[w_name]
        out = shapes[n.output[0]]
        if n.op_type == "Conv":
            macs = int(np.prod(out)) * int(np.prod(wdims[1:]))
        else:
            macs = int(np.prod(out)) * wdims[0 if n.op_type == "MatMul" else 1]
        total["int8" if quantized else "float"] += macs
    return total


def peak(sizes=(2048, 3072), repeat=5):
    """float32 MatMul and uint8 x int8 MatMulInteger on square products: the best
    multiply-accumulates per second over the sizes and repeats."""
    def model(op, a_type, b_type, out_type, n):
        g = helper.make_graph([helper.make_node(op, ["a", "b"], ["c"])], "peak",
                              [helper.make_tensor_value_info("a", a_type, [n, n]), helper.make_tensor_value_info("b", b_type, [n, n])],
                              [helper.make_tensor_value_info("c", out_type, [n, n])])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()
    rng = np.random.default_rng(0)
    result = {"float32": 0.0, "int8": 0.0}
    for n in sizes:
        cases = {
            "float32": (model("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT, n),
                        rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)),
            "int8": (model("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, n),
                     rng.integers(0, 255, (n, n), np.uint8), rng.integers(-127, 127, (n, n), np.int8)),
        }
        for name, (bytes_, a, b) in cases.items():
            s = ort.InferenceSession(bytes_, options, providers=["CPUExecutionProvider"])
            s.run(None, {"a": a, "b": b})
            for _ in range(repeat):
                t = time.perf_counter()
                s.run(None, {"a": a, "b": b})
                result[name] = max(result[name], n ** 3 / (time.perf_counter() - t))
    return result


peaks = peak()


def timings(name, graph, extra):
    row = {}
    for engine in ["ort", "tract"]:
        if name == "fp16" and engine == "tract":
            continue  # tract computes float16 in software on x86-64: minutes per scene
        row[engine] = bench(graph, engine, extra)
    return row


def ratio(fp32, row, engine):
    return f"{row[engine]:.1f} ({fp32[engine] / row[engine]:.2f}x)" if row.get(engine) else ("fails" if engine in row else "not timed")


def macs_table(rows, graph_of, x):
    print("Multiply-accumulates and where they run (ONNX Runtime, CPU):")
    print()
    print("| file | GMAC in int8 nodes | GMAC in float nodes | achieved GMAC/s | of float32 peak | of int8 peak |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["name"] == "fp16" or not r["time"].get("ort"):
            continue
        macs = conv_macs(graph_of(r["name"]), x)
        rate = (macs["int8"] + macs["float"]) / (r["time"]["ort"] / 1e3)
        print(f"| {r['name']} | {macs['int8'] / 1e9:.2f} | {macs['float'] / 1e9:.2f} | {rate / 1e9:.1f} | "
              f"{100 * rate / peaks['float32']:.0f} % | {100 * rate / peaks['int8']:.0f} % |")


print(f"Calibration: {calibration} training {'photos' if image_run else 'windows'} (the same for Prism and the peer); peer quantized in {peer_seconds:.1f} s")
print(f"Peak on this machine (onnxruntime MatMul / MatMulInteger, {os.cpu_count()} threads, best of 2048^3 and 3072^3): "
      f"float32 {peaks['float32'] / 1e9:.1f} GMAC/s, int8 {peaks['int8'] / 1e9:.1f} GMAC/s")
if image_run:
    batch = 32
    print(f"Run: {run_dir} ({config['model']['arch']}, {pre['crop']} x {pre['crop']} photos, {len(pre['class_names'])} classes); "
          f"held-out photos: {len(heldout)}; {runs} timed runs each, median, batches of 1 and {batch}")
    print()
    print(f"| file | size | vs fp32 | top-1 = fp32 | accuracy | ort ms, batch 1 | tract ms, batch 1 | ort ms, batch {batch} | tract ms, batch {batch} |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in names:
        graph = f"{work}/{name}.onnx"
        rows.append({"name": name, "time": timings(name, graph, ["--batch", str(batch)]), "one": timings(name, graph, ["--batch", "1"])})
        r, fp = rows[-1], rows[0]
        print(f"| {name} | {os.path.getsize(graph) / 1e6:.1f} MB | {100 * os.path.getsize(graph) / os.path.getsize(f'{work}/fp32.onnx'):.1f} % | "
              f"{100 * (window_labels[name] == window_labels['fp32']).mean():.2f} % | {100 * (window_labels[name] == heldout_truth).mean():.2f} % | "
              f"{ratio(fp['one'], r['one'], 'ort')} | {ratio(fp['one'], r['one'], 'tract')} | {ratio(fp['time'], r['time'], 'ort')} | {ratio(fp['time'], r['time'], 'tract')} |")
    print()
    macs_table(rows, lambda name: f"{work}/{name}.onnx", heldout[:batch])
else:
    size = f"{height}x{width}"
    print(f"Run: {run_dir} ({config['model']['arch']}, {window} x {window} windows, {pre['raw_bands']} raw bands, PCA to {len(pre['pca']['components'])})")
    print(f"Scene {size} ({test.sum()} test pixels); held-out windows: {len(heldout_pixels)}; {runs} timed runs each, median")
    print()
    print("| file | size | vs fp32 | scene labels = fp32 | windows = fp32 | OA test (scene) | OA held-out windows | ort scene ms | tract scene ms | ort windows x64 ms | tract windows x64 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in names:
        scene_graph = f"{work}/{name}.scene.onnx"
        rows.append({"name": name, "time": timings(name, scene_graph, ["--size", size]), "windows": timings(name, f"{work}/{name}.onnx", ["--batch", "64"])})
        r, fp = rows[-1], rows[0]
        print(f"| {name} | {os.path.getsize(scene_graph) / 1e6:.1f} MB | {100 * os.path.getsize(scene_graph) / os.path.getsize(f'{work}/fp32.scene.onnx'):.1f} % | "
              f"{100 * (scene_labels[name] == scene_labels['fp32']).mean():.2f} % | {100 * (window_labels[name] == window_labels['fp32']).mean():.2f} % | "
              f"{100 * (scene_labels[name][test] == truth[test]).mean():.2f} % | {100 * (window_labels[name] == heldout_truth).mean():.2f} % | "
              f"{ratio(fp['time'], r['time'], 'ort')} | {ratio(fp['time'], r['time'], 'tract')} | {ratio(fp['windows'], r['windows'], 'ort')} | {ratio(fp['windows'], r['windows'], 'tract')} |")
    print()
    macs_table(rows, lambda name: f"{work}/{name}.scene.onnx", whole)

print()
print("fp16 is not timed on tract: tract 0.23 computes float16 in software on x86-64 (minutes per scene).")
for failure in failures:
    print(f"Failed: {failure}")
