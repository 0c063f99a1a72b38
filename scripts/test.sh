#!/usr/bin/env bash
# Runs every test: each crate's unit tests and the end-to-end tests that check Prism against
# PyTorch, torchvision, scikit-learn, ONNX's checker and onnxruntime. Installs what it needs
# first (scripts/setup.sh --test). Extra arguments go to `cargo test`, e.g. a test name filter.
#
# Tests whose names end in `_needs_shared` read ../shared/data: CI has it; elsewhere, without it,
# they print why they skip and pass. Those ending in `_needs_pypi` download test data from PyPI,
# as setup.sh downloads packages.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --test
cd "$root"
exec cargo test --release --locked --workspace "$@"
