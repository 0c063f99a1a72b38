"""The peer of `trainer bench`: the same training steps in PyTorch (same libtorch), for a ratio.

    train_pytorch.py --batch-size 64 --steps 20 --warmup 3 [--window 25 --bands 30] [--device cpu|cuda[:N]|auto]

Indian Pines with scikit-learn's whitened PCA, windows cut from the padded scene per batch
(numpy), HybridSN as a plain nn.Module (tests/python/reference.py), cross-entropy, Adam. Prints
one JSON object: samples_per_second, peak_rss_mb.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "python"))
from reference import HybridSN  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--scene", required=True)
parser.add_argument("--gt", required=True)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--window", type=int, default=25)
parser.add_argument("--bands", type=int, default=30)
parser.add_argument("--device", default="cpu")
args = parser.parse_args()

cube = np.load(args.scene).astype(np.float64)
gt = np.load(args.gt)
h, w, b = cube.shape
projected = PCA(args.bands, whiten=True).fit_transform(cube.reshape(-1, b)).reshape(h, w, args.bands)
half = args.window // 2
padded = np.zeros((args.bands, h + 2 * half, w + 2 * half), dtype=np.float32)
padded[:, half:half + h, half:half + w] = projected.transpose(2, 0, 1)
pixels = np.argwhere(gt > 0)
labels = gt[gt > 0].astype(np.int64) - 1
order = np.random.default_rng(0).permutation(len(pixels))

torch.manual_seed(0)
# "auto" as the trainer reads it: the first GPU when there is one.
device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
model = HybridSN(args.bands, args.window, int(labels.max()) + 1, {}, 0.4).to(device).train()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)


def batch(step):
    start = (step * args.batch_size) % len(order)
    ids = order[start:start + args.batch_size]
    windows = np.stack([padded[:, y:y + args.window, x:x + args.window] for y, x in pixels[ids]])
    return torch.from_numpy(windows[:, None]).to(device), torch.from_numpy(labels[ids]).to(device)


for step in range(args.warmup + args.steps):
    if step == args.warmup:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
    x, y = batch(step)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
if device.type == "cuda":
    torch.cuda.synchronize(device)
seconds = time.perf_counter() - started
print(json.dumps({
    "implementation": "pytorch",
    "batch": args.batch_size,
    "steps": args.steps,
    "samples_per_second": args.steps * args.batch_size / seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "device": str(device),
    "threads": torch.get_num_threads(),
}))
