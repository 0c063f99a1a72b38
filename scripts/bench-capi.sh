#!/usr/bin/env bash
# What an edge program embedding Prism ships and waits for: stripped sizes of the static
# tract-only C example (and its size-first build, `--small`), of libprism.so and of the `runtime` binary (with ort, and tract only),
# what each links, and process start to first answer for HybridSN (Indian Pines shape, a
# 32 x 32 scene) and ResNet-18 (one photo) on tract and ort, against ONNX Runtime's own C API
# driven by a minimal C program (scripts/bench/ort_c_peer.c) in the same run; with the file cache
# warm, and (as root) after dropping the page cache, as on a device's first start (COLD_RUNS=3).
#
#   scripts/bench-capi.sh [--runs 10]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=10
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    *) echo "bench-capi.sh: unknown argument $1 (--runs N)" >&2; exit 2 ;;
  esac
done
cd "$root"
"$root/scripts/setup.sh" --test >&2
py="$root/.venv/bin/python"
target=${CARGO_TARGET_DIR:-$root/target}
echo "[bench-capi] building (the static tract-only build takes a while the first time)" >&2
cargo build --release --locked -p prism-runtime -p prism-exporter >&2
# The runtime CLI without ONNX Runtime, beside the static library's tract (same target folder).
cargo build --release --locked -p prism-runtime --no-default-features --features tract,cli \
  --target-dir "$target/capi-tract" >&2
shared=$(scripts/build-c-example.sh 2>/dev/null | tail -1)
static=$(scripts/build-c-example.sh --static 2>/dev/null | tail -1)
small=$(scripts/build-c-example.sh --small 2>/dev/null | tail -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" scripts/bench/ort_api_index.py "$work/ort_api_index.h"
cc -std=c11 -O2 -I "$work" scripts/bench/ort_c_peer.c -o "$work/ort_c_peer" -ldl
ort_lib=$(ls "$root"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -1)

"$root/scripts/bench/models.sh" "$work" "$py" "$target/release/exporter"
# The same input for both sides: a 32 x 32 x 200 scene (.npy for Prism, [1, 200, 32, 32] raw
# float32 for the peer's whole-scene graph) and a 256 x 256 photo (PNG for Prism, which resizes
# and crops it; its [1, 3, 224, 224] crop for the peer).
"$py" - "$work" <<'PY'
import sys, numpy as np, onnx
from PIL import Image
work = sys.argv[1]
rng = np.random.default_rng(0)
scene = (rng.random((32, 32, 200)) * 4000 + 500).astype(np.float32)
np.save(f"{work}/scene.npy", scene)
np.ascontiguousarray(scene.transpose(2, 0, 1)[None]).tofile(f"{work}/scene.f32")
photo = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
Image.fromarray(photo).save(f"{work}/photo.png")
(photo[16:240, 16:240].transpose(2, 0, 1)[None] / 255).astype(np.float32).tofile(f"{work}/photo.f32")
for m in ["hybridsn.scene", "resnet18"]:
    g = onnx.load(f"{work}/{m}.onnx", load_external_data=False).graph
    open(f"{work}/{m}.names", "w").write(f"{g.input[0].name} {g.output[0].name}\n")
PY
read -r scene_in scene_out < "$work/hybridsn.scene.names"
read -r photo_in photo_out < "$work/resnet18.names"
peer=("$work/ort_c_peer" "$ort_lib")
"$py" - "$work" <<PY
import json, sys
work = sys.argv[1]
def prism(args):
    return [{"program": "Prism C example", "engine": e, "command": ["$shared", "--engine", e] + args} for e in ["ort", "tract"]] + \
           [{"program": "Prism C example, static", "engine": "tract", "command": ["$static", "--engine", "tract"] + args},
            {"program": "Prism C example, small", "engine": "tract", "command": ["$small", "--engine", "tract"] + args}]
plan = {
  "files": {"C example, static, tract only": "$static", "C example, small (static, tract only, panics abort)": "$small",
            "libprism.so (ort + tract)": "$target/release/libprism.so",
            "runtime (ort + tract)": "$target/release/runtime", "runtime (tract only)": "$target/capi-tract/release/runtime"},
  "timings": [
    {"model": "HybridSN, 32 x 32 scene", "peer": ["${peer[0]}", "${peer[1]}", f"{work}/hybridsn.scene.onnx", "$scene_in", "$scene_out", f"{work}/scene.f32", "0", "1", "200", "32", "32"],
     "prism": prism([f"{work}/hybridsn.onnx", f"{work}/scene.npy"])},
    {"model": "ResNet-18, one photo", "peer": ["${peer[0]}", "${peer[1]}", f"{work}/resnet18.onnx", "$photo_in", "$photo_out", f"{work}/photo.f32", "0", "1", "3", "224", "224"],
     "prism": prism([f"{work}/resnet18.onnx", f"{work}/photo.png"])},
  ],
}
json.dump(plan, open(f"{work}/plan.json", "w"))
PY
echo "[bench-capi] $(date -u +%F) $(git rev-parse --short HEAD), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
"$py" scripts/bench/capi.py "$work" "$runs"
