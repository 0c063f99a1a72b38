"""The course's HybridSN protocol in plain PyTorch, as a peer for `trainer sweep`: the same
scene, PCA, windows, split ratio, architecture (tests/python/reference.py), optimiser and batch
size, written the way the course writes it (scikit-learn PCA and split, torch.optim.Adam).

    .venv/bin/python scripts/hybridsn-pytorch.py [--model hybridsn|hybridsn-bn|hybridsn-se]
        [--epochs 100] [--batch-size 128] [--seeds 0 1 2] [--test-ratio 0.9] [--no-test]

For each seed it prints the training loss of every epoch, how many of the 64 channels of the
2-D convolution (conv4) are positive after the ReLU for at least one training window (0 means
the output no longer depends on the input), how many classes the model predicts on the
training windows, and the OA on the test pixels (unless --no-test). The split and the weights
come from different random generators than Prism's, so compare rates over seeds, not runs.
It reads the scene from Prism's cache: run `target/release/trainer fetch` first.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))
from reference import HybridSN  # noqa: E402

VARIANTS = {"hybridsn": {}, "hybridsn-bn": {"batch_norm": True}, "hybridsn-se": {"se": True}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(VARIANTS), default="hybridsn")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--test-ratio", type=float, default=0.9)
    parser.add_argument("--no-test", action="store_true", help="skip the test-set OA")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/prism/indian-pines")
    args = parser.parse_args()
    try:
        cube = np.load(args.cache / "Indian_pines_corrected.npy").astype(np.float64)
        gt = np.load(args.cache / "Indian_pines_gt.npy")
    except OSError as e:
        raise SystemExit(f"error: {e.filename}: {e.strerror} (run `target/release/trainer fetch` first)")

    h, w, bands = cube.shape
    pca = PCA(n_components=30, whiten=True).fit_transform(cube.reshape(-1, bands)).reshape(h, w, 30)
    margin = 12
    padded = np.zeros((h + 2 * margin, w + 2 * margin, 30), np.float32)
    padded[margin:-margin, margin:-margin] = pca
    rows, cols = np.nonzero(gt)
    labels = gt[rows, cols].astype(np.int64) - 1

    def windows(indices):
        x = np.stack([padded[r : r + 25, c : c + 25] for r, c in zip(rows[indices], cols[indices])])
        return torch.from_numpy(x).permute(0, 3, 1, 2).unsqueeze(1).contiguous()  # [N, 1, 30, 25, 25]

    for seed in args.seeds:
        train, test = train_test_split(np.arange(len(labels)), test_size=args.test_ratio, random_state=seed, stratify=labels)
        x, y = windows(train), torch.from_numpy(labels[train])
        torch.manual_seed(seed)
        model = HybridSN(30, 25, 16, VARIANTS[args.model], 0.4)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        started = time.time()
        losses = []
        for _ in range(args.epochs):
            model.train()
            total = 0.0
            for batch in torch.randperm(len(y)).split(args.batch_size):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            losses.append(total / len(y))

        model.eval()
        conv4 = []
        hook = model.conv4.register_forward_hook(lambda _m, _i, out: conv4.append(out))
        with torch.no_grad():
            predicted = model(x).argmax(1)
        hook.remove()
        alive = int((F.relu(conv4[0]).transpose(0, 1).reshape(64, -1).amax(1) > 0).sum())
        line = (
            f"{args.model} seed {seed}: loss by epoch {' '.join(f'{l:.3f}' for l in losses)}; conv4 {alive} of 64 "
            f"channels alive; {len(predicted.unique())} of 16 classes predicted on the training windows"
        )
        if not args.no_test:
            with torch.no_grad():
                hits = sum(
                    int((model(windows(chunk)).argmax(1) == torch.from_numpy(labels[chunk])).sum())
                    for chunk in np.array_split(test, max(1, len(test) // 512))
                )
            line += f"; test OA {100 * hits / len(test):.2f} %"
        print(f"{line} ({time.time() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
