#!/usr/bin/env bash
# Builds Prism's C library and the C example (examples/c/classify.c) against it, with the
# system's C compiler:
#
#   scripts/build-c-example.sh            # shared: target/c/classify, linked to libprism.so
#   scripts/build-c-example.sh --static   # tract only, static: target/c/classify-static
#
# The shared build runs ONNX Runtime when its library is found (ORT_DYLIB_PATH, the project's
# .venv) and tract otherwise; the static one links libprism.a built with tract and the image
# decoders only, so it needs no ONNX Runtime, no Python and no libprism.so at run time.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
cc=${CC:-cc}
mkdir -p "$target/c"
flags=(-std=c11 -O2 -Wall -Wextra -Werror -I capi/include)
case ${1:-} in
  "")
    cargo build --release --locked -p prism-capi
    "$cc" "${flags[@]}" examples/c/classify.c -o "$target/c/classify" \
      -L "$target/release" -lprism -Wl,-rpath,"$target/release"
    echo "$target/c/classify"
    ;;
  --static)
    # Its own target folder: the same crate with other features would otherwise rebuild in turn.
    cargo build --release --locked -p prism-capi --no-default-features --features tract,images \
      --target-dir "$target/capi-tract"
    # What Rust's standard library needs from the system (`--print native-static-libs`), with
    # libgcc linked in, so that only the C library and the loader remain.
    "$cc" "${flags[@]}" examples/c/classify.c -o "$target/c/classify-static" \
      "$target/capi-tract/release/libprism.a" -static-libgcc -lpthread -ldl -lm -lrt -lutil
    echo "$target/c/classify-static"
    ;;
  *)
    echo "usage: scripts/build-c-example.sh [--static]" >&2
    exit 2
    ;;
esac
