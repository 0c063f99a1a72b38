"""Writes the fuzz targets' seed corpora into fuzz/corpus/TARGET (committed; small).

    .venv/bin/python fuzz/make_seeds.py        # the project's Python (numpy, pillow, onnx)

Arrays come from tests/fixtures/arrays (files MATLAB, SciPy, hdf5storage and NumPy wrote; see
tests/fixtures/make_arrays.py). Images, ONNX models and run-directory JSON are made here, with
fixed contents, so the same files come out every time. Inputs that libFuzzer found and that led
to fixes are kept in the same folders under names starting with `found-`; this script leaves
them alone.
"""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT.parent / "tests" / "fixtures" / "arrays"
CORPUS = ROOT / "corpus"


def target(name):
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if not old.name.startswith("found-"):
            old.unlink()
    return folder


def arrays():
    npy, mat5, mat73 = target("npy"), target("mat5"), target("mat73")
    for f in sorted(FIXTURES.iterdir()):
        if f.suffix == ".npy":
            shutil.copy(f, npy / f.name)
        elif f.suffix == ".mat":
            is_v73 = f.read_bytes()[512:520] == b"\x89HDF\r\n\x1a\n"
            shutil.copy(f, (mat73 if is_v73 else mat5) / f.name)


def images():
    folder = target("image")
    rng = np.random.default_rng(31)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), "RGB")
    grey = rgb.convert("L")
    seeds = {
        "rgb.png": (rgb, "PNG", {}),
        "grey.png": (grey, "PNG", {}),
        "rgba.png": (rgb.convert("RGBA"), "PNG", {}),
        "palette.png": (rgb.convert("P"), "PNG", {}),
        "tall.png": (rgb.resize((2, 40)), "PNG", {}),
        "rgb.jpg": (rgb, "JPEG", {"quality": 80}),
        "grey.jpg": (grey, "JPEG", {"quality": 80}),
        "progressive.jpg": (rgb, "JPEG", {"quality": 60, "progressive": True}),
        "subsampled.jpg": (rgb.resize((17, 9)), "JPEG", {"quality": 50, "subsampling": 2}),
    }
    for name, (image, fmt, options) in seeds.items():
        out = io.BytesIO()
        image.save(out, fmt, **options)
        (folder / name).write_bytes(out.getvalue())
    # 16-bit greyscale PNG.
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 65536, (5, 7), dtype=np.uint16)).save(out, "PNG")
    (folder / "grey16.png").write_bytes(out.getvalue())


def tensor(name, shape, rng):
    values = rng.standard_normal(shape).astype(np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, shape, values.tobytes(), raw=True)


def models():
    rng = np.random.default_rng(31)
    metadata = {
        "prism.task": "image",
        "prism.model": "tiny",
        "prism.class_names": json.dumps(["a", "b", "c"]),
        "prism.preprocessing": json.dumps({"resize": 10, "crop": 8}),
    }
    # Conv -> BatchNormalization -> Relu -> MaxPool -> GlobalAveragePool -> Flatten -> Gemm ->
    # Softmax: the operators of Prism's image models, small.
    nodes = [
        helper.make_node("Conv", ["image", "conv.weight", "conv.bias"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.mean", "bn.var"], ["b"]),
        helper.make_node("Relu", ["b"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    initializers = [
        tensor("conv.weight", [4, 3, 3, 3], rng),
        tensor("conv.bias", [4], rng),
        tensor("bn.weight", [4], rng),
        tensor("bn.bias", [4], rng),
        tensor("bn.mean", [4], rng),
        helper.make_tensor("bn.var", TensorProto.FLOAT, [4], [1.0, 0.5, 2.0, 1.5]),
        tensor("fc.weight", [3, 4], rng),
        tensor("fc.bias", [3], rng),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializers,
    )
    image = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="prism")
    image.ir_version = 8
    helper.set_model_props(image, metadata)

    # A 3-D convolution, Reshape with a constant shape and MatMul: HybridSN's operators.
    nodes = [
        helper.make_node("Conv", ["window", "conv3d.weight"], ["c"], kernel_shape=[3, 3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc.weight"], ["m"]),
        helper.make_node("Add", ["m", "fc.bias"], ["logits"]),
    ]
    initializers = [
        tensor("conv3d.weight", [2, 1, 3, 3, 3], rng),
        helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 2 * 2 * 3 * 3]),
        tensor("fc.weight", [36, 4], rng),
        tensor("fc.bias", [4], rng),
    ]
    graph = helper.make_graph(
        nodes,
        "scene",
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", 1, 4, 5, 5])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        initializers,
    )
    scene = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="prism")
    scene.ir_version = 7
    helper.set_model_props(
        scene,
        {
            "prism.task": "scene",
            "prism.preprocessing": json.dumps({"window": 5, "pad_value": [0.0] * 4, "class_values": [1, 2, 3, 4]}),
            "prism.input": json.dumps({"bands": 4}),
        },
    )
    for model in (image, scene):
        onnx.checker.check_model(model)
    for name in ("onnx_info", "onnx_tract"):
        folder = target(name)
        (folder / "image.onnx").write_bytes(image.SerializeToString())
        (folder / "scene.onnx").write_bytes(scene.SerializeToString())


def run_json():
    folder = target("run_json")
    hybridsn = {"arch": "hybridsn", "bands": 3, "window": 9, "classes": 2, "variant": {"batch_norm": True, "se": True}}
    pca = {
        "mean": [0.5, 0.25, 0.125, 1.0],
        "components": [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.6, 0.8]],
        "explained_variance": [2.0, 1.0, 0.5],
        "whiten": True,
    }
    scene = {"task": "scene", "raw_bands": 4, "window": 9, "pca": pca, "class_names": ["x", "y"], "class_values": [3, 7]}
    resnet = {"arch": "resnet", "depth": 18, "classes": 3, "image_size": 32, "se": False, "spm": True}
    image = {
        "task": "image",
        "resize": 36,
        "crop": 32,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "class_names": ["a", "b", "c"],
    }
    block = {"arch": "block", "block": "mpm", "channels": 8, "size": 12, "pools": [6, 3]}
    metrics = {"oa": 0.97, "aa": 0.95, "kappa": 0.96, "per_class": [0.9, 1.0], "confusion": [[9, 1], [0, 10]]}

    def config(model):
        return {"prism_version": "0.1.0", "model": model, "data": {"name": "seed"}, "train": {"seed": 31}}

    seeds = {
        "hybridsn": [config(hybridsn), scene, metrics],
        "resnet": [config(resnet), image],
        "block": [config(block), None, {}],
    }
    for name, files in seeds.items():
        # config.json, NUL, preprocessing.json, NUL, metrics.json (see fuzz_targets/run_json.rs).
        parts = [json.dumps(f, indent=1) if f is not None else "" for f in files]
        (folder / name).write_bytes("\0".join(parts).encode())


def serve():
    """Requests as Triton's clients send them, and config.pbtxt as the exporter and Triton's
    documentation write it. The gRPC seeds are encoded with tritonclient's own messages."""
    from tritonclient.grpc import service_pb2

    http = target("serve_http")
    values = np.arange(12, dtype=np.float32).reshape(2, 2, 3) / 7
    inputs = {"name": "x", "shape": [2, 2, 3], "datatype": "FP32"}
    json_bodies = {
        "nested.json": {"id": "1", "inputs": [{**inputs, "data": values.tolist()}]},
        "flat.json": {"inputs": [{**inputs, "data": values.ravel().tolist()}], "outputs": [{"name": "y"}]},
        "fp16.json": {"inputs": [{**inputs, "datatype": "FP16", "data": values.ravel().tolist()}]},
    }
    for name, body in json_bodies.items():
        (http / name).write_bytes(json.dumps(body).encode())
    # The binary tensor data extension: the target reads "<header length>\n" first.
    header = json.dumps(
        {
            "inputs": [{**inputs, "parameters": {"binary_data_size": values.nbytes}}],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    (http / "binary").write_bytes(b"%d\n" % len(header) + header + values.tobytes())

    grpc = target("serve_grpc")
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name="x", datatype="FP32", shape=[2, 2, 3])
    raw = service_pb2.ModelInferRequest(model_name="m", id="1", inputs=[tensor])
    raw.raw_input_contents.append(values.tobytes())
    raw.outputs.add(name="y")
    (grpc / "raw").write_bytes(raw.SerializeToString())
    typed = service_pb2.ModelInferRequest(model_name="m", model_version="1", inputs=[tensor])
    typed.inputs[0].contents.fp32_contents.extend(values.ravel().tolist())
    (grpc / "typed").write_bytes(typed.SerializeToString())

    config = target("serve_config")
    (config / "exporter.pbtxt").write_text(
        'name: "hybridsn"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 64\n'
        'input [\n  {\n    name: "x"\n    data_type: TYPE_FP32\n    dims: [ 2, 3 ]\n  }\n]\n'
        'output [\n  {\n    name: "y"\n    data_type: TYPE_FP32\n    dims: [ 5 ]\n  }\n]\n'
        "dynamic_batching { }\n"
    )
    (config / "triton.pbtxt").write_text(
        '# as Triton\'s documentation writes them\nbackend: "onnxruntime"\nmax_batch_size: 8\n'
        'version_policy: { latest: { num_versions: 1 } }\n'
        'instance_group [ { count: 2 kind: KIND_CPU }, { count: 1 kind: KIND_GPU gpus: [ 0 ] } ]\n'
        "dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }\n"
        'parameters { key: "k" value: { string_value: "v" } }\n'
    )


def safetensors():
    """Weights files as safetensors' own writer makes them: float32 tensors, a float16 one, and
    PyTorch's int64 batch-norm counter."""
    from safetensors.numpy import save

    folder = target("safetensors")
    rng = np.random.default_rng(31)
    f32 = {"conv.weight": rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "conv.bias": np.zeros(4, np.float32)}
    counter = {"bn.num_batches_tracked": np.array(7, dtype=np.int64)}
    (folder / "f32.safetensors").write_bytes(save(f32, metadata={"format": "pt"}))
    (folder / "counter.safetensors").write_bytes(save({**f32, **counter}))
    (folder / "f16.safetensors").write_bytes(save({"fc.weight": np.ones((3, 2), np.float16)}))
    (folder / "empty.safetensors").write_bytes(save({"e": np.zeros((0, 3), np.float32)}))


arrays()
images()
models()
run_json()
serve()
safetensors()
for folder in sorted(CORPUS.iterdir()):
    files = list(folder.iterdir())
    print(f"{folder.name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")
