"""Writes a C header of the positions of ONNX Runtime's C API functions in its `OrtApi` table,
for scripts/bench/ort_c_peer.c. pip's onnxruntime ships the library without its headers, and
no package here has `onnxruntime_c_api.h`; the table's order is ONNX Runtime's stable ABI, and
ort-sys (already in Cargo's registry: prism-runtime depends on it) binds it field by field.

    ort_api_index.py OUT.h
"""

import glob
import os
import re
import sys

cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
sources = sorted(glob.glob(os.path.join(cargo_home, "registry/src/*/ort-sys-2.0.0-rc.15/src/lib.rs")))
if not sources:
    sys.exit("ort_api_index.py: ort-sys 2.0.0-rc.15 is not in Cargo's registry: build prism-runtime first")
text = open(sources[0]).read()
body = text[text.index("pub struct OrtApi {"):]
body = body[: body.index("\n}\n")]
wanted = ["GetErrorMessage", "CreateEnv", "CreateSession", "Run", "CreateSessionOptions", "SetIntraOpNumThreads",
          "CreateTensorWithDataAsOrtValue", "GetTensorMutableData", "CreateCpuMemoryInfo", "ReleaseEnv",
          "ReleaseStatus", "ReleaseMemoryInfo", "ReleaseSession", "ReleaseValue", "ReleaseSessionOptions"]
index, found, skip = 0, {}, False
for line in body.splitlines()[1:]:
    line = line.strip()
    if line.startswith("#[cfg("):
        # Fields that exist only in WebAssembly builds are not in the native table.
        skip = 'all(target_family = "wasm"' in line and not line.startswith("#[cfg(not(")
        continue
    field = re.match(r"pub (\w+):", line)
    if not field:
        continue
    if not skip:
        found.setdefault(field.group(1), index)
        index += 1
    skip = False
missing = [w for w in wanted if w not in found]
if missing:
    sys.exit(f"ort_api_index.py: not found in OrtApi: {missing}")
with open(sys.argv[1], "w") as out:
    out.write(f"/* Positions in OrtApi, from {sources[0]} */\n")
    for name in wanted:
        out.write(f"#define ORT_{name} {found[name]}\n")
