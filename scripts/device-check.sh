#!/usr/bin/env bash
# The GPU checks, for a session lent the accelerator machine (../shared/DEVICE.md). That machine
# has PyTorch 2.11.0+cu130 and no Rust and no network, so the binaries and the data travel in one
# archive built here.
#
#   scripts/device-check.sh pack    here: .device/prism.tar.xz (stripped trainer, exporter and
#                                   runtime, the Indian Pines cache), about 20 MB; .device/ is
#                                   added to .git/info/exclude
#   scripts/device-check.sh train   there, with carry [".device/prism.tar.xz"]:
#     1. `trainer device` must say cuda:0 (else the loader's view of libtorch_cuda, and stop);
#     2. training throughput of the trainer against PyTorch on the same GPU, as a ratio;
#     3. scripts/pipeline.sh with these binaries (PRISM_BIN): the full schedule on CUDA;
#     4. the HybridSN sweeps (results/hybridsn-indian-pines*.sweep.json) on CUDA until
#        PRISM_CHECK_SECONDS (default 400) are spent; a run cut short saves its checkpoint;
#     5. the last finished run exported to ONNX and checked for parity (tract, ONNX Runtime CPU).
#   scripts/device-check.sh ort     there, once ONNX Runtime's CUDA provider is in place
#                                   (../shared/device/prepare-ort-gpu.sh): the pipeline's model
#                                   (else a short CUDA training and its export) and a torchvision
#                                   ResNet-18 from torch.onnx, the CUDA provider against the CPU
#                                   provider: latency and throughput, and the scene's labels;
#                                   then Indian Pines tiled 16 x 16 (2320 x 2320 pixels) on the
#                                   accelerator: time, peak memory, labels of each copy; and the
#                                   same and the benchmarks again with --tf32.
#   scripts/device-check.sh all     train, then ort, each in a process of its own
#
# Logs, figures and the sweeps' results files go to $OUT (.device/out when unset); copy the
# results files back into results/ (stop a local `trainer sweep` of the same file first: the
# copy replaces its records) and commit them. Pack again after every change: the archive holds
# the binaries as they were built. PRISM_CHECK_DEVICE=cpu runs the same steps
# on the CPU, to try the script here (PRISM_CHECK_SWEEPS naming a short sweep file, PRISM_CHECK_STEPS
# fewer timed steps than 30).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
archive=.device/prism.tar.xz
out=${OUT:-$root/.device/out}
device=${PRISM_CHECK_DEVICE:-cuda}
mkdir -p "$out"

log() { echo "[device-check] $*" | tee -a "$out/summary.txt" >&2; }

pack() {
  mkdir -p .device/pack/bin .device/pack/cache
  grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
  scripts/setup.sh >&2
  for b in trainer exporter runtime; do strip -o ".device/pack/bin/$b" "target/release/$b"; done
  { read -r scene; read -r gt; } < <(target/release/trainer fetch indian-pines)
  cp "$scene" "$gt" .device/pack/cache/
  tar -C .device/pack -cJf "$archive" bin cache
  rm -rf .device/pack
  ls -la "$archive"
  echo "device call: command \"bash scripts/device-check.sh train\", carry [\".device/prism.tar.xz\"], timeout_s 560"
}

# There: unpack, and point the loader at the machine's libtorch and ONNX Runtime.
setup_there() {
  work=/tmp/prism-check
  mkdir -p "$work"
  tar -C "$work" -xJf "$archive"
  python=$(command -v python3)
  torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  export LD_LIBRARY_PATH="$torch_lib:${LD_LIBRARY_PATH:-}"
  if [ -z "${ORT_DYLIB_PATH:-}" ]; then
    ORT_DYLIB_PATH=$("$python" -c 'import glob, os, onnxruntime; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*")))[-1])') || true
    export ORT_DYLIB_PATH
  fi
  export PRISM_CACHE="$work/cache"
  mkdir -p "$PRISM_CACHE/indian-pines" && cp "$work"/cache/*.npy "$PRISM_CACHE/indian-pines/"
  bin=$work/bin
  log "$(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
  log "torch $("$python" -c 'import torch; print(torch.__version__, torch.cuda.is_available())'), ORT library ${ORT_DYLIB_PATH:-none}"
}

train() {
  setup_there
  if [ "$device" = cuda ] && [ "$("$bin/trainer" device)" != cuda:0 ]; then
    log "the trainer sees no CUDA device; what the loader finds:"
    ldd "$bin/trainer" | grep -E 'torch|c10|cuda|not found' | tee -a "$out/summary.txt" >&2
    exit 1
  fi
  local budget=${PRISM_CHECK_SECONDS:-400} start=$SECONDS run_dirs=() scene="$PRISM_CACHE/indian-pines/Indian_pines_corrected.npy"
  local gt="$PRISM_CACHE/indian-pines/Indian_pines_gt.npy"
  for batch in 64 128; do
    prism=$("$bin/trainer" bench --batch-size "$batch" --steps "${PRISM_CHECK_STEPS:-30}" --device "$device" --json)
    torch=$("$python" scripts/bench/train_pytorch.py --scene "$scene" --gt "$gt" --batch-size "$batch" --steps "${PRISM_CHECK_STEPS:-30}" --device "$device")
    "$python" - "$prism" "$torch" <<'PY' | while read -r line; do log "$line"; done
import json, sys
prism, torch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"training throughput, HybridSN batch {prism['batch']} on {prism['device']}: trainer {prism['samples_per_second']:.0f}, "
      f"PyTorch {torch['samples_per_second']:.0f} samples/s, ratio {prism['samples_per_second'] / torch['samples_per_second']:.3f}")
PY
  done
  log "scripts/pipeline.sh on $device (log: pipeline.log)"
  if PRISM_BIN="$bin" PRISM_OUT="$work/pipeline" bash scripts/pipeline.sh > "$out/pipeline.log" 2>&1; then
    tr '\r' '\n' < "$out/pipeline.log" | grep -v '^ *$' | tail -n 24 | while read -r line; do log "pipeline: $line"; done
  else
    log "pipeline failed: $(tail -1 "$out/pipeline.log")"
  fi
  local sweeps=${PRISM_CHECK_SWEEPS:-results/hybridsn-indian-pines.sweep.json results/hybridsn-indian-pines-30.sweep.json}
  for sweep in $sweeps; do
    local left=$((budget - (SECONDS - start)))
    [ "$left" -gt 30 ] || { log "time budget spent before $sweep"; break; }
    log "trainer sweep $sweep --device $device (at most ${left} s)"
    local results runs
    { read -r results; read -r runs; } < <("$python" -c 'import json, sys; c = json.load(open(sys.argv[1])); print(c["results"]); print(c["runs"])' "$sweep")
    cp "$results" "$work/before.json" 2>/dev/null || : > "$work/before.json"
    timeout -s INT -k 60 "$left" "$bin/trainer" sweep "$sweep" --device "$device" 2>&1 | tee -a "$out/sweep.log" | grep -E '^\[|^\| |warning' >&2 || true
    # Back only when the sweep added runs: $OUT returns at most 8 files.
    if [ -f "$results" ] && ! cmp -s "$results" "$work/before.json"; then cp "$results" "${results%.json}.md" "$out/"; fi
    run_dirs+=("$runs")
  done
  local run  # the run finished last, for the export
  run=$("$python" -c 'import glob, os, sys; r = [os.path.dirname(m) for d in sys.argv[1:] for m in glob.glob(f"{d}/*/metrics.json")]; print(max(r, key=os.path.getmtime) if r else "")' "${run_dirs[@]}")
  if [ -n "$run" ]; then
    log "export of $run"
    "$bin/exporter" --run "$run" --opset 17 --out "$work/model.onnx" 2>&1 | tee -a "$out/summary.txt" >&2
  fi
}

ort() {
  setup_there
  if [ -f "$work/pipeline/hybridsn.onnx" ]; then
    cp "$work/pipeline/hybridsn.onnx" "$work/pipeline/hybridsn.scene.onnx" "$work/"
  else
    local run="$work/run"
    "$bin/trainer" fit --model hybridsn-bn --dataset indian-pines --epochs 3 --no-scene-map --force --out "$run" 2>&1 | tail -3 >&2
    "$bin/exporter" --run "$run" --out "$work/hybridsn.onnx" 2>&1 | tail -4 | tee -a "$out/summary.txt" >&2
  fi
  "$python" -c 'import sys, torch, torchvision; torch.onnx.export(torchvision.models.resnet18(), (torch.zeros(1, 3, 224, 224),), sys.argv[1], dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})' \
    "$work/resnet18.onnx" 2>&1 | tail -2 >&2 || log "torch.onnx could not export ResNet-18"
  local ep
  for ep in "$device" cpu; do
    if [ -f "$work/resnet18.onnx" ]; then
      "$bin/runtime" bench --model "$work/resnet18.onnx" --engine ort --ep "$ep" --batch 1,64 --json | tee -a "$out/bench.jsonl" | while read -r line; do log "bench resnet18 $line"; done \
        || log "ResNet-18 bench on $ep failed"
    fi
    "$bin/runtime" bench --model "$work/hybridsn.onnx" --engine ort --ep "$ep" --batch 1,64 --json | tee -a "$out/bench.jsonl" | while read -r line; do log "bench $line"; done
    "$bin/runtime" bench --model "$work/hybridsn.scene.onnx" --engine ort --ep "$ep" --json | tee -a "$out/bench.jsonl" | while read -r line; do log "bench $line"; done
    "$bin/runtime" infer --model "$work/hybridsn.onnx" --engine ort --ep "$ep" "$PRISM_CACHE/indian-pines/Indian_pines_corrected.npy" \
      --gt "$PRISM_CACHE/indian-pines/Indian_pines_gt.npy" --out "$work/maps-$ep" --json > "$out/infer-$ep.json"
    "$python" -c 'import json, sys; r = json.load(open(sys.argv[1])); print("scene on {engine}/{provider} ({graph} graph): OA {oa:.4f}, AA {aa:.4f}, kappa {kappa:.4f}, {seconds:.2f} s, {pixels_per_second:.0f} pixels/s".format(**r))' \
      "$out/infer-$ep.json" | while read -r line; do log "$line"; done
  done
  "$python" - "$work/maps-$device" "$work/maps-cpu" <<'PY' | while read -r line; do log "$line"; done
import glob, sys, numpy as np
a, b = (np.load(glob.glob(f"{d}/*.labels.npy")[0]) for d in sys.argv[1:3])
print(f"scene labels, {sys.argv[1].rsplit('-', 1)[1]} provider against cpu: {np.mean(a == b) * 100:.3f} % of {a.size} pixels equal")
PY
  big_scene
  if [ "$device" != cpu ]; then
    # ONNX Runtime's CUDA provider computes in TensorFloat-32 unless told not to; the runtime
    # tells it not to unless --tf32: the figures and the labels both ways.
    big_scene --tf32
    local model t
    for model in hybridsn.scene.onnx hybridsn.onnx resnet18.onnx; do
      [ -f "$work/$model" ] || continue
      for t in "" --tf32; do
        "$bin/runtime" bench --model "$work/$model" --engine ort --ep "$device" --batch 1,64 --json $t | tee -a "$out/bench.jsonl" \
          | while read -r line; do log "bench $model ${t:-fp32} $line"; done
      done
    done
  fi
}

# A large scene on the accelerator: Indian Pines tiled 16 x 16 (2320 x 2320 pixels, a 2.15 GB
# uint16 cube), its time, peak memory, and each copy's interior against the single scene's labels
# (the arguments go to `runtime infer`).
big_scene() {
  local k=${PRISM_CHECK_TILES:-16} big="$work/big.npy"
  "$python" -c 'import sys, numpy as np; np.save(sys.argv[2], np.tile(np.load(sys.argv[1]), (int(sys.argv[3]), int(sys.argv[3]), 1)))' \
    "$PRISM_CACHE/indian-pines/Indian_pines_corrected.npy" "$big" "$k"
  "$python" - "$bin/runtime" "$work/hybridsn.onnx" "$big" "$work/maps-big" "$device" "$work/maps-$device" "$@" <<'PY' | while read -r line; do log "$line"; done
import glob, json, resource, subprocess, sys, numpy as np
runtime, model, big, out, ep, single = sys.argv[1:7]
done = subprocess.run([runtime, "infer", "--model", model, big, "--engine", "ort", "--ep", ep, "--out", out, "--json", *sys.argv[7:]], capture_output=True, text=True)
if done.returncode != 0:
    sys.exit(print(f"large scene failed: {done.stderr.strip()}"))
r = json.loads(done.stdout)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
labels, one = np.load(r["labels"]), np.load(glob.glob(f"{single}/*.labels.npy")[0])
h, w = one.shape
inner = np.s_[12:h - 12, 12:w - 12]
copies = [labels[i * h:(i + 1) * h, j * w:(j + 1) * w][inner] == one[inner] for i in range(labels.shape[0] // h) for j in range(labels.shape[1] // w)]
print(f"large scene {r['height']} x {r['width']} on {r['engine']}/{r['provider']} ({r['graph']} graph{''.join(' ' + a for a in sys.argv[7:])}): {r['seconds']:.1f} s, "
      f"{r['pixels_per_second']:.0f} pixels/s, peak {peak:.0f} MB; copies' interiors against the single scene's labels: "
      f"{np.mean(copies) * 100:.3f} % of pixels equal, {np.mean([c.all() for c in copies]) * 100:.1f} % of copies equal throughout")
PY
  rm -f "$big"
}

case "${1:-}" in
  pack) pack ;;
  train) train ;;
  ort) ort ;;
  all) bash "$0" train || log "the train step failed"; bash "$0" ort || log "the ort step failed" ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' >&2; exit 2 ;;
esac
