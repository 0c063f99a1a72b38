#!/usr/bin/env bash
# Prepares a checkout: a project-local Python environment (.venv) with the pinned PyTorch and
# ONNX Runtime, a link .venv/libtorch for the trainer's build, and release builds of the three
# binaries. Changes nothing outside the checkout but Cargo's and pip's caches. A second run with
# everything present takes seconds.
#
#   scripts/setup.sh          what the pipeline needs
#   scripts/setup.sh --test   also the Python packages the tests compare against
#
# Environment:
#   LIBTORCH=/path/to/libtorch   build the trainer against this libtorch 2.11.0 instead
#   PRISM_PYTHON=python3.12      the interpreter that creates .venv (default: python3)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

with_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$arg' (try --help)" ;;
  esac
done

command -v cargo >/dev/null || die "cargo not found: install Rust from https://rustup.rs"

# 1. The Python environment.
if [ ! -x "$venv/bin/python" ]; then
  python=${PRISM_PYTHON:-python3}
  command -v "$python" >/dev/null || die "$python not found: install Python 3.10 or newer"
  say "creating $venv with $($python --version 2>&1)"
  "$python" -m venv "$venv" || die "could not create $venv (on Debian/Ubuntu: apt install python3-venv)"
fi
py="$venv/bin/python"

# 2. The pinned packages that are missing or at another version.
requirements=("$root/scripts/requirements.txt")
[ "$with_tests" = 1 ] && requirements+=("$root/scripts/requirements-test.txt")
missing=$("$py" - "${requirements[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for path in sys.argv[1:]:
    for line in open(path):
        spec = line.split("#")[0].strip()
        if not spec:
            continue
        name, _, pinned = spec.partition("==")
        name = name.split("[")[0]  # tritonclient[http,grpc]: the package, without its extras
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed is None or installed.split("+")[0] != pinned:
            print(spec)
PY
)
if [ -n "${LIBTORCH:-}" ] && [ "$with_tests" = 0 ]; then
  # The user's own libtorch builds the trainer; PyTorch itself is only needed by the tests.
  missing=$(printf '%s\n' "$missing" | grep -v '^torch==' || true)
fi
if printf '%s\n' "$missing" | grep -q '^torch=='; then
  # PyTorch with its CUDA libraries takes about 5 GB installed and as much again while pip
  # downloads and unpacks it; a full disk otherwise ends in a long pip traceback.
  free_gb=$(df -Pk "$root" | awk 'NR == 2 { print int($4 / 1048576) }')
  [ "$free_gb" -ge 12 ] || die "only $free_gb GB free on the disk that holds $root: installing PyTorch needs about 12 GB (and the builds about 12 more)"
fi
if [ -n "$missing" ]; then
  say "installing into .venv: $(echo $missing) (PyTorch is a 5 GB download the first time)"
  "$py" -m pip install --quiet --disable-pip-version-check $missing || die "pip could not install: $(echo $missing)"
fi

# 3. libtorch for the trainer: .cargo/config.toml points LIBTORCH at .venv/libtorch unless the
#    environment sets it.
if [ -z "${LIBTORCH:-}" ]; then
  torch_dir=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))') \
    || die "PyTorch in $venv does not import"
  [ "$(readlink "$venv/libtorch" 2>/dev/null)" = "$torch_dir" ] || ln -sfn "$torch_dir" "$venv/libtorch"
else
  [ -d "$LIBTORCH/lib" ] || die "LIBTORCH=$LIBTORCH has no lib/ folder"
fi

# 4. The binaries.
say "building trainer, exporter and runtime (release; the first build takes several minutes)"
cargo build --release --locked --manifest-path "$root/Cargo.toml" \
  -p prism-trainer -p prism-exporter -p prism-runtime --bins \
  || die "the build failed (see above)"
say "ready: $root/target/release/{trainer,exporter,runtime}"
