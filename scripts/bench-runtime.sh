#!/usr/bin/env bash
# The runtime against onnxruntime's Python package on the same files, inputs and machine, in
# one run: HybridSN (Indian Pines shape: 200 raw bands, 25 x 25 windows, 16 classes) and
# ResNet-18 (224 x 224, 1000 classes), latency at batch 1 and throughput at a large batch, plus
# tract and the whole-scene graph. Models are exported by Prism from PyTorch-initialised run
# directories (tests/python/make_run.py), so no training is needed.
#
#   scripts/bench-runtime.sh [--runs 20] [--rounds 3]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=20
rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    *) echo "bench-runtime.sh: unknown argument $1 (--runs N, --rounds N)" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh" --test >&2
py="$root/.venv/bin/python"
bin="$root/target/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$root/scripts/bench/models.sh" "$work" "$py" "$bin/exporter"

compare() { # model batches: one round of the runtime then the Python package, appended
  local model=$1 batches=$2
  "$bin/runtime" bench --model "$work/$model.onnx" --batch "$batches" --engines ort,tract --runs "$runs" --json \
    | sed "s/^{/{\"model\":\"$model\",/" >> "$work/prism.jsonl"
  "$py" "$root/scripts/bench/ort_python.py" "$work/$model.onnx" --batch "$batches" --runs "$runs" \
    | sed "s/^{/{\"model\":\"$model\",/" >> "$work/python.jsonl"
}
# Rounds alternate the two sides, so that a slow spell of this shared machine falls on both.
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  compare hybridsn 1,64
  compare hybridsn.scene 1
  compare resnet18 1,32
done
"$py" - "$work/prism.jsonl" "$work/python.jsonl" <<'PY'
import json, sys
from collections import defaultdict
from statistics import median as med
prism, python = defaultdict(list), defaultdict(list)
for r in map(json.loads, open(sys.argv[1])):
    prism[r["model"], r["engine"], r["batch"]].append(r)
for r in map(json.loads, open(sys.argv[2])):
    python[r["model"], r["batch"]].append(r)
print("model           engine batch: prism vs onnxruntime-python, medians over rounds (ratio = prism / python throughput)")
for (model, engine, batch), rs in prism.items():
    ps = python[model, batch]
    ratios = [r["throughput"] / p["throughput"] for r, p in zip(rs, ps)]
    print(f"{model:<15} {engine:<6} batch {batch:>3}: p50 {med([r['p50_ms'] for r in rs]):8.2f} ms vs "
          f"{med([p['p50_ms'] for p in ps]):8.2f} ms, {med([r['throughput'] for r in rs]):9.1f} vs "
          f"{med([p['throughput'] for p in ps]):9.1f} {rs[0]['unit']}  ratio {med(ratios):.2f} "
          f"(rounds: {' '.join(f'{x:.2f}' for x in ratios)})")
PY
