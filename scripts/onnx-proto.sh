#!/usr/bin/env bash
# Regenerates onnx/proto/onnx.proto3 from the onnx.proto of the onnx Python package in .venv (the
# version pinned in scripts/requirements-test.txt), turned into proto3 as ONNX's own
# gen_proto.py --proto3 does: `syntax = "proto3"` and no `optional` labels. The wire format is
# the same; prost then gives plain fields instead of Options.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py="$root/.venv/bin/python"
src=$("$py" -c 'import os, onnx; print(os.path.join(os.path.dirname(onnx.__file__), "onnx.proto"))')
version=$("$py" -c 'import onnx; print(onnx.__version__)')
out="$root/onnx/proto/onnx.proto3"
{
  echo "// ONNX's onnx.proto (Apache-2.0) from the onnx $version Python package on PyPI, turned into proto3 as"
  echo "// ONNX's own gen_proto.py --proto3 does: \`syntax = \"proto3\"\` and no \`optional\` labels (the wire"
  echo "// format is unchanged). Regenerate with scripts/onnx-proto.sh."
  echo
  sed -e 's/^syntax = "proto2";/syntax = "proto3";/' -e 's/^\(\s*\)optional /\1/' "$src"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out (onnx $version)"
