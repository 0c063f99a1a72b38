"""Talks to `runtime serve` with Triton's own Python clients (tritonclient[http] and [grpc]) and
checks its answers against onnxruntime-Python on the same ONNX files.

    serve_client.py HTTP_ADDR GRPC_ADDR REPOSITORY LIMIT_MIB ENGINE

For every model folder in REPOSITORY (<model>/<version>/model.onnx; a whole-scene graph too, with
a 13 x 13 scene): server and model metadata,
the configuration, then inference over HTTP with JSON tensors and with binary ones and over gRPC,
each answer and its class probabilities within 1e-5 of onnxruntime's (relative where a value
exceeds 1; 1e-4 when the server runs tract, whose kernels differ); then the protocol's errors for a wrong shape, a wrong
datatype, an unknown model and a body over the server's size limit (LIMIT_MIB, as the test
started it). Prints one line per check and exits non-zero at the first that fails.
"""

import os
import sys
import urllib.request

import numpy as np
import onnxruntime as ort
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

http_addr, grpc_addr, repository, limit_mib, engine = sys.argv[1:6]
# tract's kernels are not ONNX Runtime's: on ResNet-18 its answers differ from onnxruntime's by
# up to 3e-5 (raw, relative) and 1.7e-5 (probabilities), measured; 1e-4 for it, 1e-5 for ort.
tol = 1e-4 if engine == "tract" else 1e-5
limit = int(limit_mib) << 20
http = httpclient.InferenceServerClient(http_addr)
grpc = grpcclient.InferenceServerClient(grpc_addr)
rng = np.random.default_rng(7)


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def refused(call, status, words, what):
    try:
        call()
    except InferenceServerException as e:
        check(str(e.status()) == status and words in e.message(), f"{what}: {e.status()} {e.message()}")
        return
    check(False, f"{what}: no error")


def http_infer(model, name, x, binary, outputs):
    tensor = httpclient.InferInput(name, list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    wanted = [httpclient.InferRequestedOutput(o, binary_data=binary) for o in outputs]
    result = http.infer(model, [tensor], outputs=wanted)
    return {o: result.as_numpy(o) for o in outputs}


def grpc_infer(model, name, x, outputs):
    tensor = grpcclient.InferInput(name, list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = grpc.infer(model, [tensor], outputs=[grpcclient.InferRequestedOutput(o) for o in outputs])
    return {o: result.as_numpy(o) for o in outputs}


check(http.is_server_live() and http.is_server_ready(), "HTTP: server live and ready")
check(grpc.is_server_live() and grpc.is_server_ready(), "gRPC: server live and ready")
check(http.get_server_metadata()["name"] == "prism", "HTTP: server metadata")
check(grpc.get_server_metadata().name == "prism", "gRPC: server metadata")

for model in sorted(os.listdir(repository)):
    version = max(v for v in os.listdir(os.path.join(repository, model)) if v.isdigit())
    onnx_file = os.path.join(repository, model, version, "model.onnx")
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    outputs = [o.name for o in session.get_outputs()]

    meta = http.get_model_metadata(model)
    gmeta = grpc.get_model_metadata(model)
    shape = [int(d) for d in meta["inputs"][0]["shape"]]
    check(http.is_model_ready(model) and grpc.is_model_ready(model), f"{model}: ready")
    check(meta["inputs"][0]["name"] == graph_input.name and [o["name"] for o in meta["outputs"]] == outputs,
          f"{model}: HTTP metadata names the graph's tensors")
    check([int(d) for d in gmeta.inputs[0].shape] == shape and gmeta.inputs[0].datatype == "FP32",
          f"{model}: gRPC metadata agrees, input shape {shape}")
    check(http.get_model_metadata(model, model_version=version)["versions"] == [version]
          and grpc.is_model_ready(model, version), f"{model}: version {version} by its own path")
    refused(lambda: http.get_model_metadata(model, model_version="99"), "404", "no version 99", f"{model}: version 99")
    config = http.get_model_config(model)
    gconfig = grpc.get_model_config(model).config
    check(config["name"] == model and gconfig.max_batch_size == config.get("max_batch_size", 0),
          f"{model}: configuration, max_batch_size {gconfig.max_batch_size}")

    # A batch of 3 where the model batches; 13 for any other free dimension (a whole-scene
    # graph's height and width).
    batch = 3 if shape[0] == -1 else None
    dims = [(batch if i == 0 else 13) if d == -1 else d for i, d in enumerate(shape)]
    x = rng.standard_normal(dims).astype(np.float32)
    expected = dict(zip(outputs, session.run(None, {graph_input.name: x})))
    for label, answer in [
        ("HTTP JSON", lambda: http_infer(model, graph_input.name, x, False, outputs)),
        ("HTTP binary", lambda: http_infer(model, graph_input.name, x, True, outputs)),
        ("gRPC", lambda: grpc_infer(model, graph_input.name, x, outputs)),
    ]:
        got = answer()
        same_shapes = all(got[o].shape == expected[o].shape for o in outputs)
        # Raw outputs within `tol` of max(1, |value|) (ResNet-18's logits reach the hundreds),
        # class probabilities (softmax of [N, classes] outputs) within `tol`.
        worst = max(float((np.abs(got[o] - expected[o]) / np.maximum(1, np.abs(expected[o]))).max()) for o in outputs)
        worst_p = max([float(np.abs(softmax(got[o]) - softmax(expected[o])).max())
                       for o in outputs if expected[o].ndim == 2] or [0.0])
        check(same_shapes and worst <= tol and worst_p <= tol,
              f"{model}: {label} answers as onnxruntime (raw {worst:.2e} of max(1, |value|), probabilities {worst_p:.2e})")

    wrong = rng.standard_normal([1] + [d + 1 for d in dims[1:]]).astype(np.float32)
    refused(lambda: http_infer(model, graph_input.name, wrong, True, outputs), "400", "does not fit",
            f"{model}: HTTP wrong shape")
    refused(lambda: grpc_infer(model, graph_input.name, wrong, outputs), "StatusCode.INVALID_ARGUMENT", "does not fit",
            f"{model}: gRPC wrong shape")
    as_double = httpclient.InferInput(graph_input.name, list(x.shape), "FP64")
    as_double.set_data_from_numpy(x.astype(np.float64))
    refused(lambda: http.infer(model, [as_double]), "400", "datatype FP64", f"{model}: HTTP wrong datatype")
    gdouble = grpcclient.InferInput(graph_input.name, list(x.shape), "FP64")
    gdouble.set_data_from_numpy(x.astype(np.float64))
    refused(lambda: grpc.infer(model, [gdouble]), "StatusCode.INVALID_ARGUMENT", "datatype FP64",
            f"{model}: gRPC wrong datatype")
    if batch is not None:
        rows = limit // (4 * int(np.prod(dims[1:]))) + 1
        big = np.zeros([rows] + dims[1:], np.float32)
        refused(lambda: http_infer(model, graph_input.name, big, True, outputs), "413", f"larger than {limit_mib} MiB",
                f"{model}: HTTP body over the limit ({big.nbytes} bytes)")
        refused(lambda: grpc_infer(model, graph_input.name, big, outputs), "StatusCode.OUT_OF_RANGE", "too large",
                f"{model}: gRPC message over the limit")

refused(lambda: http.get_model_metadata("no-such-model"), "404", "unknown model", "HTTP unknown model")
refused(lambda: grpc.get_model_metadata("no-such-model"), "StatusCode.NOT_FOUND", "unknown model",
        "gRPC unknown model")
metrics = urllib.request.urlopen(f"http://{http_addr}/metrics").read().decode()
check("prism_inference_requests_total" in metrics and 'outcome="ok"' in metrics, "metrics count the requests")
