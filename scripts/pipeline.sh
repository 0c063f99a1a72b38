#!/usr/bin/env bash
# The whole pipeline on the built-in default, from the real data to a deployed model:
#   fetch Indian Pines -> train HybridSN (tch) -> export ONNX opset 17 (checked for parity)
#   -> classify every pixel of the scene with the runtime -> OA / AA / kappa and the map.
# Installs what it needs first (scripts/setup.sh). On a CUDA machine it trains the paper's
# full schedule (100 epochs, batch 128); on a CPU a short one that takes minutes.
#
# Environment: PRISM_OUT=DIR (default runs/pipeline), PRISM_EPOCHS=N to override the schedule,
# PRISM_BIN=DIR to use the trainer, exporter and runtime already built there (no setup step).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${PRISM_BIN:-}" ]; then
  bin=$PRISM_BIN
else
  "$root/scripts/setup.sh"
  bin="$root/target/release"
fi
out=${PRISM_OUT:-$root/runs/pipeline}
mkdir -p "$out"
started=$SECONDS

device=$("$bin/trainer" device)
if [ "$device" = cpu ]; then
  schedule=(--epochs "${PRISM_EPOCHS:-15}" --batch-size 32 --no-scene-map)
  echo "[pipeline] no CUDA device: a short CPU schedule (${PRISM_EPOCHS:-15} epochs, batch 32)" >&2
else
  schedule=(--epochs "${PRISM_EPOCHS:-100}" --batch-size 128)
  echo "[pipeline] training on $device with the paper's schedule" >&2
fi

echo "[pipeline] 1/3 train HybridSN on Indian Pines (10 % of the labelled pixels)" >&2
"$bin/trainer" fit --model hybridsn --dataset indian-pines --test-ratio 0.9 "${schedule[@]}" \
  --out "$out/run" --force

echo "[pipeline] 2/3 export to ONNX (opset 17) and check parity" >&2
"$bin/exporter" --run "$out/run" --opset 17 --out "$out/hybridsn.onnx"

echo "[pipeline] 3/3 classify the whole scene with the runtime" >&2
{ read -r scene; read -r gt; } < <("$bin/trainer" fetch indian-pines)
"$bin/runtime" infer --model "$out/hybridsn.onnx" "$scene" --gt "$gt" --out "$out"

echo
echo "The trainer's table counts the held-out test pixels (90 %); the runtime's counts every"
echo "labelled pixel of the scene, the 10 % seen in training included, so it reads a little higher."
echo
echo "ONNX model:  $out/hybridsn.onnx (whole-scene graph: $out/hybridsn.scene.onnx)"
echo "Map:         $out/Indian_pines_corrected.map.png"
echo "Run:         $out/run (metrics.json, curves.png, per_class.png, confusion.png, checkpoints)"
echo "Time:        $((SECONDS - started)) s to train, export and classify (setup not counted)"
