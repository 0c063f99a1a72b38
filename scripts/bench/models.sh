#!/usr/bin/env bash
# The benchmarks' models, exported by Prism from PyTorch-initialised run directories
# (tests/python/make_run.py), so no training is needed: WORK/hybridsn.onnx (Indian Pines' shape:
# 200 raw bands, 25 x 25 windows, 16 classes; with hybridsn.scene.onnx beside it) and
# WORK/resnet18.onnx (224 x 224, 1000 classes).
#
#   scripts/bench/models.sh WORK PYTHON EXPORTER
set -euo pipefail
work=$1 py=$2 exporter=$3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cat > "$work/jobs.json" <<JSON
[{"config": {"arch": "hybridsn", "bands": 30, "window": 25, "classes": 16, "variant": {}, "dropout": 0.4},
  "dir": "$work/hybridsn", "seed": 0, "raw_bands": 200},
 {"config": {"arch": "resnet", "depth": 18, "classes": 1000, "image_size": 224},
  "dir": "$work/resnet18", "seed": 0}]
JSON
"$py" "$root/tests/python/make_run.py" "$work/jobs.json" >&2
for m in hybridsn resnet18; do
  "$exporter" --run "$work/$m" --out "$work/$m.onnx" --no-parity 2>/dev/null
done
