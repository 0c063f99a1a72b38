#!/usr/bin/env bash
# Training throughput of the trainer against PyTorch in Python: the same model (HybridSN on
# Indian Pines windows), batch, steps, libtorch and machine, measured one after the other in
# this run, in rounds that alternate the two (a slow spell of a shared machine falls on both).
# Prints the medians over the rounds and the ratio (prism / pytorch; 1.0 = as fast) of each.
#
#   scripts/bench-trainer.sh [--batch-size 64] [--steps 20] [--device cpu] [--rounds 3]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
batch=64 steps=20 device=cpu rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --batch-size) batch=${2:?--batch-size needs a number}; shift 2 ;;
    --steps) steps=${2:?--steps needs a number}; shift 2 ;;
    --device) device=${2:?--device needs a device}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    *) echo "bench-trainer.sh: unknown option $1 (--batch-size, --steps, --device, --rounds)" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh" >&2
{ read -r scene; read -r gt; } < <("$root/target/release/trainer" fetch indian-pines)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  "$root/target/release/trainer" bench --batch-size "$batch" --steps "$steps" --device "$device" --json >> "$results"
  "$root/.venv/bin/python" "$root/scripts/bench/train_pytorch.py" --scene "$scene" --gt "$gt" \
    --batch-size "$batch" --steps "$steps" --device "$device" >> "$results"
done
"$root/.venv/bin/python" - "$results" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
prism = [r for r in records if r["implementation"] != "pytorch"]
torch = [r for r in records if r["implementation"] == "pytorch"]
for rs in (prism, torch):
    r = rs[0]
    print(f"{r['implementation']:<8} batch {r['batch']}: {statistics.median(x['samples_per_second'] for x in rs):7.1f} samples/s, "
          f"peak memory {max(x['peak_rss_mb'] for x in rs):.0f} MB ({r['device']}; median and peak over {len(rs)} rounds)")
ratios = [p["samples_per_second"] / t["samples_per_second"] for p, t in zip(prism, torch)]
print(f"ratio prism/pytorch: {statistics.median(ratios):.3f} (rounds: {' '.join(f'{x:.3f}' for x in ratios)})")
PY
