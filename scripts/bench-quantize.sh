#!/usr/bin/env bash
# `exporter --precision int8|fp16` on a trained scene run against float32 and against
# onnxruntime.quantization's quantize_static on the same float32 files with the same
# calibration windows (what a user would do by hand), in the same run: sizes, labels against
# float32 on the whole scene and on held-out windows, OA on the test pixels, speed on ONNX
# Runtime (CPU) and tract, and multiply-accumulates per second against this machine's own
# float32 and int8 peak (scripts/bench/quantize.py).
#
#   scripts/bench-quantize.sh [--run RUN_DIR] [--calibration 256] [--runs 5]
#
# Default run: the pipeline's (runs/pipeline/run; scripts/pipeline.sh makes it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
run_dir=$root/runs/pipeline/run calibration=256 runs=5
while [ $# -gt 0 ]; do
  case $1 in
    --run) run_dir=${2:?}; shift 2 ;;
    --calibration) calibration=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    *) echo "bench-quantize.sh: unknown argument $1 (--run DIR, --calibration N, --runs N)" >&2; exit 2 ;;
  esac
done
[ -f "$run_dir/config.json" ] || { echo "bench-quantize.sh: no run at $run_dir (run scripts/pipeline.sh, or give --run DIR)" >&2; exit 2; }
"$root/scripts/setup.sh" --test >&2
bin=${CARGO_TARGET_DIR:-$root/target}/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for precision in fp32 int8 fp16; do
  echo "[bench-quantize] exporter --precision $precision" >&2
  "$bin/exporter" --run "$run_dir" --precision "$precision" --calibration "$calibration" --out "$work/$precision.onnx" >&2
done
echo "[bench-quantize] the peer (quantize_static), then the measurements" >&2
"$root/.venv/bin/python" "$root/scripts/bench/quantize.py" "$run_dir" "$work" "$bin/runtime" "$calibration" "$runs"
