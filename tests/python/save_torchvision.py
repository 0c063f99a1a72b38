"""Saves a torchvision model's state_dict (seeded random weights) as safetensors, as a user
saves pretrained weights for `trainer fit --init`.

    save_torchvision.py resnet18 OUT.safetensors
"""

import sys

import torch
import torchvision
from safetensors.torch import save_file

torch.manual_seed(0)
model = getattr(torchvision.models, sys.argv[1])(weights=None)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[2])
