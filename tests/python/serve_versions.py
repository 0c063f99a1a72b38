"""`runtime serve` acting on config.pbtxt's version_policy and instance_group, checked with
Triton's own clients (tritonclient[http] and [grpc]) against onnxruntime-Python.

    serve_versions.py prepare REPOSITORY MODEL
        Makes versions 2 and 3 of REPOSITORY/MODEL from its version 1 (the last initializer of
        the graph, the classifier's bias, shifted by +2 and +3, so each version answers
        differently), and gives the model a config.pbtxt that serves versions 1 and 3 on two CPU
        instances.
    serve_versions.py check HTTP_ADDR GRPC_ADDR REPOSITORY MODEL
        Versions 1 and 3 are served and 2 is not; each answers as onnxruntime-Python does on its
        own file (within 1e-5); a request naming no version gets the highest; the configuration
        says two instances of KIND_CPU.
    serve_versions.py gpu REPOSITORY MODEL
        Rewrites the config.pbtxt to ask for one KIND_GPU instance.

Prints one line per check and exits non-zero at the first that fails.
"""

import os
import shutil
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def config_text(repository, model):
    with open(os.path.join(repository, model, "config.pbtxt")) as f:
        return f.read()


def write_config(repository, model, text):
    with open(os.path.join(repository, model, "config.pbtxt"), "w") as f:
        f.write(text)


def prepare(repository, model):
    first = os.path.join(repository, model, "1", "model.onnx")
    for version, shift in ((2, 2.0), (3, 3.0)):
        graph = onnx.load(first)
        bias = graph.graph.initializer[-1]
        shifted = numpy_helper.to_array(bias) + np.float32(shift)
        bias.CopyFrom(numpy_helper.from_array(shifted.astype(np.float32), bias.name))
        os.makedirs(os.path.join(repository, model, str(version)), exist_ok=True)
        onnx.save(graph, os.path.join(repository, model, str(version), "model.onnx"))
    text = config_text(repository, model)
    text += "version_policy: { specific: { versions: [ 1, 3 ] } }\n"
    text += "instance_group [ { count: 2 kind: KIND_CPU } ]\n"
    write_config(repository, model, text)
    print(f"prepared {model}: versions 1, 2, 3; policy serves 1 and 3 on 2 CPU instances")


def check_server(http_addr, grpc_addr, repository, model):
    import onnxruntime as ort
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    http = httpclient.InferenceServerClient(http_addr)
    grpc = grpcclient.InferenceServerClient(grpc_addr)
    meta = http.get_model_metadata(model)
    check(meta["versions"] == ["1", "3"], f"metadata lists the versions served: {meta['versions']}")
    check(grpc.get_model_metadata(model).versions == ["1", "3"], "gRPC metadata lists them too")
    check(http.is_model_ready(model, "1") and http.is_model_ready(model, "3"), "versions 1 and 3 are ready")
    check(not grpc.is_model_ready(model, "2"), "version 2 is not served")
    try:
        http.get_model_metadata(model, model_version="2")
        check(False, "version 2 answered")
    except InferenceServerException as e:
        check(str(e.status()) == "404" and "served: 1, 3" in e.message(), f"version 2: {e.status()} {e.message()}")

    name = meta["inputs"][0]["name"]
    shape = [2] + [int(d) for d in meta["inputs"][0]["shape"][1:]]
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    answers = {}
    for version in ("1", "3", ""):
        tensor = httpclient.InferInput(name, shape, "FP32")
        tensor.set_data_from_numpy(x, binary_data=True)
        result = http.infer(model, [tensor], model_version=version)
        gtensor = grpcclient.InferInput(name, shape, "FP32")
        gtensor.set_data_from_numpy(x)
        gresult = grpc.infer(model, [gtensor], model_version=version)
        output = meta["outputs"][0]["name"]
        answers[version] = result.as_numpy(output)
        check(np.array_equal(answers[version], gresult.as_numpy(output)), f"version '{version}': HTTP and gRPC agree")
    for version in ("1", "3"):
        session = ort.InferenceSession(os.path.join(repository, model, version, "model.onnx"))
        expected = session.run(None, {name: x})[0]
        err = float(np.max(np.abs(answers[version] - expected) / np.maximum(1.0, np.abs(expected))))
        check(err <= 1e-5, f"version {version} answers as onnxruntime does on its own file (max error {err:.1e})")
    check(not np.allclose(answers["1"], answers["3"]), "versions 1 and 3 answer differently")
    check(np.array_equal(answers[""], answers["3"]), "no version named: the highest answers")

    config = http.get_model_config(model)
    groups = config.get("instance_group", [])
    check([(g.get("count"), g.get("kind")) for g in groups] == [(2, "KIND_CPU")], f"configuration: {groups}")


def gpu(repository, model):
    text = config_text(repository, model)
    cpu, gpu = "{ count: 2 kind: KIND_CPU }", "{ count: 1 kind: KIND_GPU }"
    check(cpu in text, "the config.pbtxt has the CPU group to replace")
    write_config(repository, model, text.replace(cpu, gpu))
    print(f"{model}: one KIND_GPU instance")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"prepare": prepare, "check": check_server, "gpu": gpu}[command](*args)
