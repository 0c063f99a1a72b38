#!/usr/bin/env bash
# Builds Prism's C library and the C example (examples/c/classify.c) against it, with the
# system's C compiler:
#
#   scripts/build-c-example.sh            # shared: target/c/classify, linked to libprism.so
#   scripts/build-c-example.sh --static   # tract only, static: target/c/classify-static
#   scripts/build-c-example.sh --small    # the same, size first: target/c/classify-small
#
# The shared build runs ONNX Runtime when its library is found (ORT_DYLIB_PATH, the project's
# .venv) and tract otherwise; the static one links libprism.a built with tract and the image
# decoders only, so it needs no ONNX Runtime, no Python and no libprism.so at run time. The small
# one trades two things for size (docs/guide.md, "C and C++"): a panic aborts the process instead
# of returning PRISM_STATUS_PANIC (no unwinding code or tables), and the program is not
# position-independent (no address randomisation of its own code, no relocations to ship).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
cc=${CC:-cc}
mkdir -p "$target/c"
# A pkg-config file for programs of the user's own: PKG_CONFIG_PATH=target/c pkg-config --cflags --libs prism
version=$(sed -n 's/^#define PRISM_VERSION "\(.*\)"/\1/p' capi/include/prism.h)
cat > "$target/c/prism.pc" <<PC
libdir=$target/release
includedir=$root/capi/include

Name: prism
Description: Prism's runtime for C and C++ (ONNX Runtime or tract)
Version: $version
Libs: -L\${libdir} -lprism -Wl,-rpath,\${libdir}
Libs.private: -lpthread -ldl -lm -lrt -lutil
Cflags: -I\${includedir}
PC
flags=(-std=c11 -O2 -Wall -Wextra -Werror -I capi/include)
# The tract-only static library (Cargo's arguments after the common ones), and the example linked
# against it: LIB OUT [LINK FLAGS...]. Its own target folder, since the same crate with other
# features would otherwise rebuild in turn. The link takes what Rust's standard library needs from
# the system (`--print native-static-libs`), with libgcc linked in, so that only the C library and
# the loader remain; unused sections are dropped (--gc-sections), and tract's assembly kernels
# need no executable stack.
build_tract() {
  cargo build --locked -p prism-capi --no-default-features --features tract,images "$@"
}
link_static() {
  local lib=$1 out=$2
  shift 2
  "$cc" "${flags[@]}" examples/c/classify.c -o "$out" "$lib" -static-libgcc -lpthread -ldl -lm -lrt -lutil \
    -Wl,--gc-sections -Wl,-z,noexecstack "$@"
  echo "$out"
}
case ${1:-} in
  "")
    cargo build --release --locked -p prism-capi
    "$cc" "${flags[@]}" examples/c/classify.c -o "$target/c/classify" \
      -L "$target/release" -lprism -Wl,-rpath,"$target/release"
    echo "$target/c/classify"
    ;;
  --static)
    # The `edge` profile (Cargo.toml) sizes it for shipping: fat LTO, optimised for size.
    build_tract --profile edge --target-dir "$target/capi-tract"
    link_static "$target/capi-tract/edge/libprism.a" "$target/c/classify-static"
    ;;
  --small)
    # RUSTFLAGS reach only the library's crates with --target given (not build scripts).
    host=$(rustc -vV | sed -n 's/^host: //p')
    RUSTFLAGS="${RUSTFLAGS:-} -C force-unwind-tables=no" \
      build_tract --profile edge-small --target "$host" --target-dir "$target/capi-small"
    link_static "$target/capi-small/$host/edge-small/libprism.a" "$target/c/classify-small" -no-pie
    ;;
  *)
    echo "usage: scripts/build-c-example.sh [--static | --small]" >&2
    exit 2
    ;;
esac
