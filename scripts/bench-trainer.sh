#!/usr/bin/env bash
# Training throughput of the trainer against PyTorch in Python: the same model (HybridSN on
# Indian Pines windows), batch, steps, libtorch and machine, measured one after the other in
# this run. Prints both and the ratio (prism / pytorch; 1.0 = as fast).
#
#   scripts/bench-trainer.sh [--batch-size 64] [--steps 20] [--device cpu]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" >&2
batch=64 steps=20 device=cpu
while [ $# -gt 0 ]; do
  case "$1" in
    --batch-size) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
{ read -r scene; read -r gt; } < <("$root/target/release/trainer" fetch indian-pines)
prism=$("$root/target/release/trainer" bench --batch-size "$batch" --steps "$steps" --device "$device" --json)
torch=$("$root/.venv/bin/python" "$root/scripts/bench/train_pytorch.py" --scene "$scene" --gt "$gt" \
  --batch-size "$batch" --steps "$steps" --device "$device")
"$root/.venv/bin/python" - "$prism" "$torch" <<'PY'
import json, sys
prism, torch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for r in (prism, torch):
    print(f"{r['implementation']:<8} batch {r['batch']}: {r['samples_per_second']:7.1f} samples/s, peak memory {r['peak_rss_mb']:.0f} MB ({r['device']})")
print(f"ratio prism/pytorch: {prism['samples_per_second'] / torch['samples_per_second']:.3f}")
PY
