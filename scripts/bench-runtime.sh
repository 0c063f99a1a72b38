#!/usr/bin/env bash
# The runtime against onnxruntime's Python package on the same files, inputs and machine, in
# one run: HybridSN (Indian Pines shape: 200 raw bands, 25 x 25 windows, 16 classes) and
# ResNet-18 (224 x 224, 1000 classes), latency at batch 1 and throughput at a large batch, plus
# tract and the whole-scene graph. Models are exported by Prism from PyTorch-initialised run
# directories (tests/python/make_run.py), so no training is needed.
#
#   scripts/bench-runtime.sh [--runs 20]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --test >&2
runs=20
[ "${1:-}" = --runs ] && runs=$2
py="$root/.venv/bin/python"
bin="$root/target/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/jobs.json" <<JSON
[{"config": {"arch": "hybridsn", "bands": 30, "window": 25, "classes": 16, "variant": {}, "dropout": 0.4},
  "dir": "$work/hybridsn", "seed": 0, "raw_bands": 200},
 {"config": {"arch": "resnet", "depth": 18, "classes": 1000, "image_size": 224},
  "dir": "$work/resnet18", "seed": 0}]
JSON
"$py" "$root/tests/python/make_run.py" "$work/jobs.json"
for m in hybridsn resnet18; do
  "$bin/exporter" --run "$work/$m" --out "$work/$m.onnx" --no-parity 2>/dev/null
done

compare() { # model batches
  local model=$1 batches=$2
  "$bin/runtime" bench --model "$work/$model.onnx" --batch "$batches" --engines ort,tract --runs "$runs" --json > "$work/prism.jsonl"
  "$py" "$root/scripts/bench/ort_python.py" "$work/$model.onnx" --batch "$batches" --runs "$runs" > "$work/python.jsonl"
  "$py" - "$model" "$work/prism.jsonl" "$work/python.jsonl" <<'PY'
import json, sys
model = sys.argv[1]
prism = [json.loads(l) for l in open(sys.argv[2])]
python = {r["batch"]: r for r in map(json.loads, open(sys.argv[3]))}
for r in prism:
    p = python[r["batch"]]
    print(f"{model:<15} {r['engine']:<6} batch {r['batch']:>3}: p50 {r['p50_ms']:8.2f} ms vs {p['p50_ms']:8.2f} ms, "
          f"{r['throughput']:9.1f} vs {p['throughput']:9.1f} {r['unit']}  ratio {r['throughput'] / p['throughput']:.2f}")
PY
}
echo "model           engine batch: prism vs onnxruntime-python (ratio = prism / python throughput)"
compare hybridsn 1,64
compare hybridsn.scene 1
compare resnet18 1,32
