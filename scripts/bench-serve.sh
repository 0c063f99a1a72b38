#!/usr/bin/env bash
# `runtime serve` under load against the server a user would otherwise pick: KServe's Python
# model server (kserve 0.21.0 on PyPI) wrapping onnxruntime-Python 1.31.1 on the same ONNX
# files (scripts/bench/kserve_peer.py), on loopback, in the same run. Models: Prism's ResNet-18
# and HybridSN (Indian Pines' shape) from scripts/bench/models.sh. Also the offline ceiling
# (`runtime bench`) and resident memory after 1,000 and after --memory-requests requests.
#
#   scripts/bench-serve.sh [--requests 300] [--seconds 20] [--memory-requests 100000]
#                          [--protocols http,grpc]
#
# The peer lives in its own environment, target/bench-venv (created on the first run), so its
# dependencies never touch the project's .venv.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
requests=300 seconds=20 memory=100000 protocols=http,grpc
while [ $# -gt 0 ]; do
  case $1 in
    --requests) requests=${2:?}; shift 2 ;;
    --seconds) seconds=${2:?}; shift 2 ;;
    --memory-requests) memory=${2:?}; shift 2 ;;
    --protocols) protocols=${2:?}; shift 2 ;;
    *) echo "bench-serve.sh: unknown argument $1 (--requests N, --seconds S, --memory-requests N, --protocols http,grpc)" >&2; exit 2 ;;
  esac
done
cd "$root"
"$root/scripts/setup.sh" --test >&2
py="$root/.venv/bin/python"
target=${CARGO_TARGET_DIR:-$root/target}
peer="$target/bench-venv"
if [ ! -x "$peer/bin/python" ] || ! "$peer/bin/python" -c 'import kserve, onnxruntime' 2>/dev/null; then
  echo "[bench-serve] installing the peer into $peer: kserve==0.21.0 onnxruntime==1.31.1" >&2
  python3 -m venv "$peer"
  "$peer/bin/pip" install --quiet --disable-pip-version-check kserve==0.21.0 onnxruntime==1.31.1 >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$root/scripts/bench/models.sh" "$work" "$py" "$target/release/exporter"
# A small HybridSN (30 raw bands, 11 x 11 windows) for the memory run: fast enough for 100,000
# requests in minutes.
cat > "$work/small.json" <<JSON
[{"config": {"arch": "hybridsn", "bands": 15, "window": 11, "classes": 4, "variant": {}, "dropout": 0.4},
  "dir": "$work/small", "seed": 0, "raw_bands": 30}]
JSON
"$py" "$root/tests/python/make_run.py" "$work/small.json" >&2
"$target/release/exporter" --run "$work/small" --out "$work/small.onnx" --no-parity --no-scene 2>/dev/null
echo "[bench-serve] $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), commit $(git rev-parse --short HEAD)" >&2
"$py" "$root/scripts/bench/serve.py" "$target/release/runtime" "$peer/bin/python" "$work" "$requests" "$seconds" "$memory" "$protocols"
