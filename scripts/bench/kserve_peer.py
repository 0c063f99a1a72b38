"""The peer server of scripts/bench-serve.sh: KServe's Python model server (kserve on PyPI)
wrapping onnxruntime-Python on the same ONNX files, what a user would otherwise deploy.

    kserve_peer.py HTTP_PORT GRPC_PORT NAME=FILE.onnx...

Each request runs on its own (KServe's model server has no dynamic batching of its own); the
ONNX Runtime session uses every core, as `runtime serve`'s does.
"""

import sys

import kserve
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse


class OnnxModel(kserve.Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.ready = True

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        names = [o.name for o in self.session.get_outputs()]
        outputs = []
        for name, value in zip(names, self.session.run(None, {self.input: x})):
            output = InferOutput(name=name, shape=list(value.shape), datatype="FP32")
            output.set_data_from_numpy(value, binary_data=payload.use_binary_outputs)
            outputs.append(output)
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=outputs,
                             use_binary_outputs=payload.use_binary_outputs)


if __name__ == "__main__":
    http_port, grpc_port = int(sys.argv[1]), int(sys.argv[2])
    models = [OnnxModel(*spec.split("=", 1)) for spec in sys.argv[3:]]
    kserve.ModelServer(http_port=http_port, grpc_port=grpc_port, enable_docs_url=False).start(models)
