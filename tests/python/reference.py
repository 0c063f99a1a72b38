"""PyTorch references for Prism's architectures, written as plain nn.Modules (torchvision for
ResNet), independently of the Rust descriptions they check.

    reference.py describe CONFIGS.json
        CONFIGS.json holds a list of model configs; prints a JSON list with, for each,
        {"state": {name: shape}, "params": N, "output_shape": [...]} (for a batch of 2)
    reference.py forward JOBS.json
        JOBS.json holds a list of {"config", "weights", "input", "output"}: for each, loads the
        safetensors weights strictly, runs the eval-mode forward of tensor `input` of the input
        file and writes it as tensor `output`
    reference.py train JOBS.json
        JOBS.json holds a list of {"config", "weights", "batch", "optimizer", "lrs", "output"}:
        for each, loads the weights, then for each rate of `lrs` takes one training step on
        tensors `input` and `labels` of the batch file with torch.optim (Adam, AdamW or SGD as
        `optimizer` says: kind, weight_decay, momentum, nesterov, betas, eps) and mean
        cross-entropy, and writes the whole state dict (batch-norm statistics included)

A model config is what `trainer summary --json` prints under "config" (one Python process
serves a whole test, as importing torch takes seconds).
"""

import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from safetensors.torch import load_file, save_file


class SE(nn.Module):
    """Squeeze-and-Excitation (Hu et al. 2018), bias-free fully connected layers, r = 16."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Linear(channels, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, channels, bias=False)

    def forward(self, x):
        s = x.mean(dim=(2, 3))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class SPM(nn.Module):
    """Strip pooling module (Hou et al. 2020)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0), bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1), bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        _, _, h, w = x.shape
        column = self.bn1(self.conv1(F.adaptive_avg_pool2d(x, (h, 1)))).expand(-1, -1, h, w)
        row = self.bn2(self.conv2(F.adaptive_avg_pool2d(x, (1, w)))).expand(-1, -1, h, w)
        return x * torch.sigmoid(self.conv3(F.relu(column + row)))


class MPM(nn.Module):
    """Mixed pooling module (Hou et al. 2020): pyramid and strip branches."""

    def __init__(self, channels, pools):
        super().__init__()
        mid = max(channels // 4, 1)
        self.pools = pools

        def conv_bn(name, cin, cout, kernel, padding):
            setattr(self, f"conv{name}", nn.Conv2d(cin, cout, kernel, padding=padding, bias=False))
            setattr(self, f"bn{name}", nn.BatchNorm2d(cout))

        conv_bn("1_1", channels, mid, 1, 0)
        conv_bn("1_2", channels, mid, 1, 0)
        for name in ("2_0", "2_1", "2_2", "2_5", "2_6"):
            conv_bn(name, mid, mid, 3, 1)
        conv_bn("2_3", mid, mid, (1, 3), (0, 1))
        conv_bn("2_4", mid, mid, (3, 1), (1, 0))
        conv_bn("3", 2 * mid, channels, 1, 0)

    def unit(self, name, x):
        return getattr(self, f"bn{name}")(getattr(self, f"conv{name}")(x))

    def forward(self, x):
        _, _, h, w = x.shape
        up = dict(size=(h, w), mode="bilinear", align_corners=True)
        x1 = F.relu(self.unit("1_1", x))
        x2 = F.relu(self.unit("1_2", x))
        p0 = self.unit("2_0", x1)
        p1 = F.interpolate(self.unit("2_1", F.adaptive_avg_pool2d(x1, self.pools[0])), **up)
        p2 = F.interpolate(self.unit("2_2", F.adaptive_avg_pool2d(x1, self.pools[1])), **up)
        s1 = F.interpolate(self.unit("2_3", F.adaptive_avg_pool2d(x2, (1, w))), **up)
        s2 = F.interpolate(self.unit("2_4", F.adaptive_avg_pool2d(x2, (h, 1))), **up)
        pyramid = F.relu(self.unit("2_5", F.relu(p0 + p1 + p2)))
        strip = F.relu(self.unit("2_6", F.relu(s1 + s2)))
        out = self.unit("3", torch.cat([pyramid, strip], dim=1))
        return F.relu(x + out)


class HybridSN(nn.Module):
    """HybridSN (Roy et al. 2020) with the course's variants."""

    def __init__(self, bands, window, classes, variant, dropout):
        super().__init__()
        bn = variant.get("batch_norm", False)
        self.se = variant.get("se", False)
        self.spatial = variant.get("spatial")
        self.bn = bn
        self.conv1 = nn.Conv3d(1, 8, (7, 3, 3))
        self.conv2 = nn.Conv3d(8, 16, (5, 3, 3))
        self.conv3 = nn.Conv3d(16, 32, (3, 3, 3))
        depth = bands - 12
        folded = 32 * depth
        self.conv4 = nn.Conv2d(folded, 64, 3)
        if bn:
            self.bn1, self.bn2, self.bn3 = nn.BatchNorm3d(8), nn.BatchNorm3d(16), nn.BatchNorm3d(32)
            self.bn4 = nn.BatchNorm2d(64)
        if self.se:
            self.se1, self.se2 = SE(folded), SE(64)
        if self.spatial == "spm":
            self.spm = SPM(64)
        elif self.spatial == "mpm":
            self.mpm = MPM(64, (6, 3))
        side = window - 8
        self.fc1 = nn.Linear(64 * side * side, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, classes)
        self.dropout = nn.Dropout(dropout)

    def unit(self, n, x):
        x = getattr(self, f"conv{n}")(x)
        if self.bn:
            x = getattr(self, f"bn{n}")(x)
        return F.relu(x)

    def forward(self, x):
        x = self.unit(3, self.unit(2, self.unit(1, x)))
        n, c, d, h, w = x.shape
        x = x.reshape(n, c * d, h, w)
        if self.se:
            x = self.se1(x)
        x = self.unit(4, x)
        if self.se:
            x = self.se2(x)
        if self.spatial == "spm":
            x = self.spm(x)
        elif self.spatial == "mpm":
            x = self.mpm(x)
        x = x.flatten(1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


def resnet(depth, classes, se, spm):
    """torchvision's ResNet with SE blocks in every residual block (before the addition) and
    strip pooling after the 3x3 convolution that keeps the block's width (SPNet's placement:
    every layer4 block and the last block of layers 1-3)."""
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=classes)
    bottleneck = depth >= 50
    for stage in range(1, 5):
        blocks = getattr(model, f"layer{stage}")
        for i, block in enumerate(blocks):
            with_spm = spm and (stage == 4 or i == len(blocks) - 1)
            if se:
                block.se = SE(block.bn3.num_features if bottleneck else block.bn2.num_features)
            if with_spm:
                block.spm = SPM(block.bn2.num_features if bottleneck else block.bn1.num_features)
            if se or with_spm:
                block.forward = block_forward(block, bottleneck)
    return model


def block_forward(block, bottleneck):
    def forward(x):
        identity = x
        out = block.relu(block.bn1(block.conv1(x)))
        if not bottleneck and hasattr(block, "spm"):
            out = block.spm(out)
        out = block.bn2(block.conv2(out))
        if bottleneck:
            out = block.relu(out)
            if hasattr(block, "spm"):
                out = block.spm(out)
            out = block.bn3(block.conv3(out))
        if hasattr(block, "se"):
            out = block.se(out)
        if block.downsample is not None:
            identity = block.downsample(x)
        return block.relu(out + identity)

    return forward


def build(config):
    arch = config["arch"]
    if arch == "hybridsn":
        model = HybridSN(config["bands"], config["window"], config["classes"], config.get("variant", {}), config.get("dropout", 0.4))
        shape = (1, config["bands"], config["window"], config["window"])
    elif arch == "resnet":
        model = resnet(config["depth"], config["classes"], config.get("se", False), config.get("spm", False))
        shape = (3, config.get("image_size", 224), config.get("image_size", 224))
    elif arch == "block":
        kind, channels, size = config["block"], config["channels"], config["size"]
        model = nn.Module()
        model.block = {"se": lambda: SE(channels), "spm": lambda: SPM(channels), "mpm": lambda: MPM(channels, tuple(config["pools"]))}[kind]()
        model.forward = model.block.forward
        shape = (channels, size, size)
    else:
        raise SystemExit(f"unknown arch {arch}")
    return model, shape


def describe(config):
    model, shape = build(config)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, *shape))
    return {
        "state": {k: list(v.shape) for k, v in model.state_dict().items()},
        "params": sum(p.numel() for p in model.parameters()),
        "output_shape": list(out.shape),
    }


def forward(job):
    model, _ = build(job["config"])
    model.load_state_dict(load_file(job["weights"]), strict=True)
    model.eval()
    with torch.no_grad():
        out = model(load_file(job["input"])["input"])
    save_file({"output": out.contiguous()}, job["output"])


def train(job):
    model, _ = build(job["config"])
    model.load_state_dict(load_file(job["weights"]), strict=True)
    model.train()
    batch = load_file(job["batch"])
    o = job["optimizer"]
    params = model.parameters()
    if o["kind"] == "adam":
        opt = torch.optim.Adam(params, lr=1.0, betas=o["betas"], eps=o["eps"], weight_decay=o["weight_decay"])
    elif o["kind"] == "adamw":
        opt = torch.optim.AdamW(params, lr=1.0, betas=o["betas"], eps=o["eps"], weight_decay=o["weight_decay"])
    elif o["kind"] == "sgd":
        opt = torch.optim.SGD(params, lr=1.0, momentum=o["momentum"], nesterov=o["nesterov"], weight_decay=o["weight_decay"])
    else:
        raise SystemExit(f"unknown optimizer {o['kind']}")
    for lr in job["lrs"]:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        F.cross_entropy(model(batch["input"]), batch["labels"]).backward()
        opt.step()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, job["output"])


def main():
    command, jobs_path = sys.argv[1], sys.argv[2]
    with open(jobs_path) as f:
        jobs = json.load(f)
    if command == "describe":
        print(json.dumps([describe(config) for config in jobs]))
    elif command == "forward":
        for job in jobs:
            forward(job)
    elif command == "train":
        for job in jobs:
            train(job)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
