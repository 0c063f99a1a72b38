"""Synthetic run directories made with PyTorch alone: the independent reference for the exporter.

    make_run.py JOBS.json

JOBS.json holds a list of jobs, each
    {"config": <model config as in config.json>, "dir": RUN_DIR, "seed": N,
     "raw_bands": R (scenes; default 2 * bands), "samples": 4 (default),
     "torch_onnx": PATH (optional: also export the same model, normalisation included, with
                         torch.onnx.export(dynamo=False), opset 17)}
and writes, for each, the run-directory contract of models/src/run.rs:

    config.json          {"prism_version", "model", "data", "train"}
    model.safetensors    the state_dict (num_batches_tracked included): PyTorch's seeded
                         initialisation with randomised batch-norm statistics and affines, the
                         classifier scaled so that the logits spread about 3
    preprocessing.json   scenes: a random PCA (orthonormal components, largest-magnitude entry
                         positive, positive decreasing variances, a positive mean) with whitening;
                         images: ImageNet normalisation. Blocks have none.
    metrics.json         made-up metrics (oa/aa/kappa or accuracy)
    sample.safetensors   `input`: raw data (scenes [N, R, W, W] positive, reflectance-like;
                         images [N, 3, H, H] in [0, 1]; blocks [N, C, S, S] normal), and
                         `logits`: PyTorch's eval-mode output for it, the preprocessing applied in
                         PyTorch (PCA in float64, then float32)

One process serves a whole test (importing torch takes seconds). Everything is seeded: the same
jobs give the same files.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def randomise_batch_norm(model, generator):
    """Evaluation-mode batch norm that is not the identity."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                c = module.num_features
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.1)
                module.num_batches_tracked.fill_(100)


def random_pca(raw_bands, components, rng):
    """Orthonormal rows (QR of a Gaussian matrix), each with its largest-magnitude entry positive
    (scikit-learn's sign convention), variances decreasing and positive, a positive mean."""
    q, _ = np.linalg.qr(rng.normal(size=(raw_bands, components)))
    rows = q.T
    signs = np.sign(rows[np.arange(components), np.abs(rows).argmax(axis=1)])
    rows = rows * signs[:, None]
    variance = np.sort(rng.uniform(0.002, 0.05, size=components))[::-1]
    mean = rng.uniform(0.1, 0.5, size=raw_bands)
    return {
        "mean": mean.astype(np.float32),
        "components": rows.astype(np.float32),
        "explained_variance": variance.astype(np.float32),
    }


def apply_pca(x, pca):
    """[N, R, W, W] raw -> [N, 1, k, W, W], in float64 from the float32 parameters."""
    mean = pca["mean"].astype(np.float64)
    rows = pca["components"].astype(np.float64)
    scale = 1.0 / np.sqrt(pca["explained_variance"].astype(np.float64))
    x = x.double().numpy()
    y = np.einsum("kr,nrhw->nkhw", rows, x - mean[None, :, None, None]) * scale[None, :, None, None]
    return torch.from_numpy(y).float().unsqueeze(1)


class Normalised(nn.Module):
    """The model behind torchvision's Normalize, so that torch.onnx's graph takes what Prism's
    takes: RGB in [0, 1]."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


def make(job):
    config, out = job["config"], job["dir"]
    seed = job.get("seed", 0)
    samples = job.get("samples", 4)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed + 1)
    rng = np.random.default_rng(seed + 2)
    model, _ = reference.build(config)
    randomise_batch_norm(model, generator)
    model.eval()
    os.makedirs(out, exist_ok=True)

    arch = config["arch"]
    preprocessing = None
    if arch == "hybridsn":
        bands, window, classes = config["bands"], config["window"], config["classes"]
        raw = job.get("raw_bands", 2 * bands)
        pca = random_pca(raw, bands, rng)
        x = torch.from_numpy(rng.uniform(0.0, 0.6, size=(samples, raw, window, window)).astype(np.float32))
        model_input = apply_pca(x, pca)
        preprocessing = {
            "task": "scene",
            "raw_bands": raw,
            "window": window,
            "pca": {
                "mean": pca["mean"].tolist(),
                "components": pca["components"].tolist(),
                "explained_variance": pca["explained_variance"].tolist(),
                "whiten": True,
            },
            "class_names": [f"class {i + 1}" for i in range(classes)],
            "class_values": list(range(1, classes + 1)),
        }
        metrics = {"oa": 0.9, "aa": 0.85, "kappa": 0.88, "per_class": [0.9] * classes}
        data = {"name": "synthetic scene", "seed": seed}
    elif arch == "resnet":
        size, classes = config.get("image_size", 224), config["classes"]
        x = torch.rand(samples, 3, size, size, generator=generator)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        model_input = (x - mean) / std
        preprocessing = {
            "task": "image",
            "resize": round(size * 256 / 224),
            "crop": size,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "class_names": [f"class {i}" for i in range(classes)],
        }
        metrics = {"accuracy": 0.75}
        data = {"name": "synthetic images", "seed": seed}
    else:
        channels, size = config["channels"], config["size"]
        x = torch.randn(samples, channels, size, size, generator=generator)
        model_input = x
        metrics = {}
        data = {"name": "synthetic features", "seed": seed}

    with torch.no_grad():
        logits = model(model_input)
        # Randomly initialised classifiers give logits of about 0.01, which an absolute tolerance
        # of 1e-4 would barely test: scale the last layer so that the logits spread about 3.
        classifier = {"hybridsn": "fc3", "resnet": "fc"}.get(arch)
        if classifier is not None:
            scale = 3.0 / float(logits.std().clamp_min(1e-6))
            layer = getattr(model, classifier)
            layer.weight.mul_(scale)
            layer.bias.mul_(scale)
            logits = model(model_input)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out, "model.safetensors"))
    save_file({"input": x.contiguous(), "logits": logits.contiguous()}, os.path.join(out, "sample.safetensors"))
    run_config = {
        "prism_version": "0.1.0",
        "model": config,
        "data": data,
        "train": {"seed": seed, "epochs": 0, "note": "synthetic run made by tests/python/make_run.py"},
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(run_config, f)
    if preprocessing is not None:
        with open(os.path.join(out, "preprocessing.json"), "w") as f:
            json.dump(preprocessing, f)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f)

    if job.get("torch_onnx"):
        wrapped = Normalised(model).eval()
        torch.onnx.export(
            wrapped,
            (x[:1],),
            job["torch_onnx"],
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        )
    return {"dir": out, "logits_shape": list(logits.shape)}


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    print(json.dumps([make(job) for job in jobs]))


if __name__ == "__main__":
    main()
