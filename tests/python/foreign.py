"""A model Prism did not make: torchvision's ResNet-18 (seeded random weights) exported by
torch.onnx, images, a label file, and onnxruntime-Python's answers with torchvision's own
preprocessing, for the runtime's `--preprocess imagenet --labels` path.

    foreign.py OUT_DIR

Writes OUT_DIR/resnet18.onnx (opset 17, symbolic batch), OUT_DIR/labels.txt (1000 names),
OUT_DIR/images/{a,b,c}.png (256 x 256, so torchvision's Resize(256) leaves them as they are and
both sides see the same pixels) and OUT_DIR/expected.json: for each image, the softmax of
onnxruntime's output on the torchvision-preprocessed image.
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
import torch
import torchvision
from PIL import Image
from torchvision import transforms

out = sys.argv[1]
os.makedirs(os.path.join(out, "images"), exist_ok=True)
torch.manual_seed(3)
model = torchvision.models.resnet18(weights=None).eval()
# Random init gives nearly uniform outputs; spread the logits so the ranking is clear.
with torch.no_grad():
    model.fc.weight.mul_(20.0)
onnx_path = os.path.join(out, "resnet18.onnx")
torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), onnx_path, dynamo=False, opset_version=17,
                  input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
with open(os.path.join(out, "labels.txt"), "w") as f:
    f.write("\n".join(f"label-{i}" for i in range(1000)) + "\n")

rng = np.random.default_rng(5)
preprocess = transforms.Compose([
    transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
    transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
])
session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
expected = {}
for name in ["a", "b", "c"]:
    pixels = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    pixels[64:192, 64:192] = rng.integers(0, 255, 3)
    path = os.path.join(out, "images", f"{name}.png")
    Image.fromarray(pixels).save(path)
    x = preprocess(Image.open(path).convert("RGB"))[None].numpy()
    logits = session.run(None, {"input": x})[0][0].astype(np.float64)
    p = np.exp(logits - logits.max())
    expected[f"{name}.png"] = (p / p.sum()).tolist()
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f)
