"""Which units of a trained HybridSN still fire: for each convolution and hidden linear layer,
how many output channels are positive after the ReLU for at least one of the run's sample
windows. A layer with none alive cuts the input off from the logits (a collapsed run answers
one class for everything).

    .venv/bin/python scripts/dead-units.py RUN_DIR

RUN_DIR is a `trainer fit` run directory. Its sample windows (`sample.safetensors`) go through
the stored PCA and PyTorch's reference module of tests/python/reference.py; the logits are
checked against the trainer's own, stored with the sample.
"""

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))
from reference import HybridSN  # noqa: E402


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    run = Path(sys.argv[1])
    config = json.loads((run / "config.json").read_text())["model"]
    if config.get("arch") != "hybridsn":
        raise SystemExit(f"error: {run} holds a {config.get('arch')} model; this script reads HybridSN runs")
    model = HybridSN(config["bands"], config["window"], config["classes"], config.get("variant", {}), config.get("dropout", 0.4))
    model.load_state_dict(load_file(run / "model.safetensors"), strict=True)
    model.eval()

    sample = load_file(run / "sample.safetensors")
    pca = json.loads((run / "preprocessing.json").read_text())["pca"]
    mean, components = torch.tensor(pca["mean"]), torch.tensor(pca["components"])
    x = torch.einsum("nbhw,kb->nkhw", sample["input"] - mean[None, :, None, None], components)
    if pca["whiten"]:
        x = x / torch.tensor(pca["explained_variance"]).sqrt()[None, :, None, None]

    outputs = {}
    layers = ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2"]
    for name in layers:
        getattr(model, name).register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
    with torch.no_grad():
        logits = model(x.unsqueeze(1))
    gap = (logits - sample["logits"]).abs().max().item()
    if gap > 1e-3:
        raise SystemExit(f"error: the reference forward differs from the trainer's logits by {gap:.2e}")

    windows = x.shape[0]
    print(f"{run}: {windows} sample windows (logits equal the trainer's within {gap:.1e})")
    for name in layers:
        out = F.relu(outputs[name])
        per_channel = out.transpose(0, 1).reshape(out.shape[1], -1)  # [channels, everything else]
        alive = int((per_channel.amax(dim=1) > 0).sum())
        print(f"  {name:6} {alive:4} of {out.shape[1]:4} channels alive")
    spread = logits.std(dim=0).max().item()
    print(f"  largest spread of a logit across the windows: {spread:.3g}" + ("  (the output ignores the input)" if spread == 0 else ""))


if __name__ == "__main__":
    main()
