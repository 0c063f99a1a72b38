#!/usr/bin/env bash
# Coverage-guided fuzzing of Prism's readers of outside bytes (cargo-fuzz, libFuzzer; the targets
# are in fuzz/, what each covers is in docs/fuzzing.md).
#
#   scripts/fuzz.sh list                 the targets
#   scripts/fuzz.sh TARGET SECONDS       one target for SECONDS seconds
#   scripts/fuzz.sh all SECONDS          every target, SECONDS each
#   scripts/fuzz.sh check                exit 0 when the nightly toolchain and cargo-fuzz are here
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`); says which is missing. The README's commands do not need either.
#
# Each run starts from the committed seeds (fuzz/corpus/TARGET) and grows a working corpus in
# fuzz/runs/TARGET (not committed), which later runs start from too. libFuzzer stops at the first
# finding: a panic, an allocation above MALLOC_LIMIT_MB (a file's claimed size allocated before it
# is checked), a process above RSS_LIMIT_MB, or a unit slower than TIMEOUT_S seconds. The input
# is saved in fuzz/artifacts/TARGET/ and the run fails. Its last status line (executions,
# coverage) is printed as `[fuzz] TARGET: ...` and kept with the whole log in fuzz/runs/TARGET.log.
#
# Environment: MALLOC_LIMIT_MB (default 100), RSS_LIMIT_MB (default 1024, 2048 for mat73_build;
# AddressSanitizer's own bookkeeping takes a few hundred MB, see docs/fuzzing.md), TIMEOUT_S
# (default 1), FUZZ_JOBS (cargo build jobs, default 2). Arguments after SECONDS go to libFuzzer as they are (say -seed=1 or -runs=1000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGETS=(npy npy_build mat5 mat5_build mat73 mat73_build onnx_info onnx_tract onnx_metadata run_json safetensors image
    serve_http serve_grpc serve_config)

say() { echo "[fuzz] $*" >&2; }

usage() {
    sed -n '4,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The dictionary of a target, relative to fuzz/.
dict_of() {
    case "$1" in
        npy | npy_build) echo dict/npy.dict ;;
        mat5 | mat5_build) echo dict/mat.dict ;;
        mat73 | mat73_build) echo dict/hdf5.dict ;;
        onnx_info | onnx_tract) echo dict/onnx.dict ;;
        run_json | onnx_metadata) echo dict/json.dict ;;
        safetensors) echo dict/safetensors.dict ;;
        serve_http | serve_grpc) echo dict/serve.dict ;;
        serve_config) echo dict/pbtxt.dict ;;
        image) echo dict/image.dict ;;
    esac
}

# The resident-set limit of a target, in MB: RSS_LIMIT_MB, or 2048 for mat73_build (its files may
# make the reader hold up to 1100 times their size of fill values, which AddressSanitizer keeps
# after they are freed), or 1024.
rss_of() {
    case "$1" in
        mat73_build) echo "${RSS_LIMIT_MB:-2048}" ;;
        *) echo "${RSS_LIMIT_MB:-1024}" ;;
    esac
}

# Cargo features a target needs (run_json and safetensors read run directories through the
# exporter).
features_of() {
    case "$1" in
        run_json | safetensors) echo "--features=exporter" ;;
        *) echo "" ;;
    esac
}

# What is missing to fuzz, one line each; nothing when all is here.
missing() {
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "the nightly toolchain (rustup toolchain install nightly)"
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "cargo-fuzz (cargo install cargo-fuzz)"
    fi
}

require_tools() {
    local lacking
    lacking=$(missing)
    if [[ -n "$lacking" ]]; then
        while IFS= read -r line; do say "missing: $line"; done <<<"$lacking"
        exit 3
    fi
}

run_target() {
    local target=$1 seconds=$2
    shift 2
    local dict features log summary status rss
    dict=$(dict_of "$target")
    rss=$(rss_of "$target")
    features=$(features_of "$target")
    mkdir -p "fuzz/runs/$target"
    local corpora=("runs/$target")
    [[ -d "fuzz/corpus/$target" ]] && corpora+=("corpus/$target")
    log="fuzz/runs/$target.log"
    say "$target: ${seconds}s (malloc limit ${MALLOC_LIMIT_MB:-100} MB, rss limit $rss MB, timeout ${TIMEOUT_S:-1} s)"
    status=0
    # shellcheck disable=SC2086 # $features is one word or none
    (cd fuzz && CARGO_BUILD_JOBS="${FUZZ_JOBS:-2}" cargo +nightly fuzz run --jobs 1 $features "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout="${TIMEOUT_S:-1}" -malloc_limit_mb="${MALLOC_LIMIT_MB:-100}" \
        -rss_limit_mb="$rss" -dict="$dict" -print_final_stats=1 "$@") >"$log" 2>&1 || status=$?
    summary=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    local execs
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    if [[ $status -eq 0 ]]; then
        say "$target: ok, ${execs:-?} executions; last status: ${summary:-none}"
    else
        say "$target: FAILED (exit $status); last status: ${summary:-none}; see $log and fuzz/artifacts/$target/"
        grep -E '^(==[0-9]+== ?ERROR|SUMMARY|thread .* panicked|.*panicked at)' "$log" | head -n 5 >&2 || true
    fi
    return $status
}

[[ $# -ge 1 ]] || usage
case "$1" in
    list)
        printf '%s\n' "${TARGETS[@]}"
        ;;
    check)
        lacking=$(missing)
        if [[ -n "$lacking" ]]; then
            while IFS= read -r line; do say "missing: $line"; done <<<"$lacking"
            exit 3
        fi
        ;;
    all)
        [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage
        require_tools
        seconds=$2
        shift 2
        failed=()
        for target in "${TARGETS[@]}"; do
            run_target "$target" "$seconds" "$@" || failed+=("$target")
        done
        if [[ ${#failed[@]} -gt 0 ]]; then
            say "findings in: ${failed[*]}"
            exit 1
        fi
        say "all ${#TARGETS[@]} targets ran ${seconds}s each without a finding"
        ;;
    *)
        target=$1
        [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage
        if [[ ! " ${TARGETS[*]} " =~ " $target " ]]; then
            say "unknown target '$target' (scripts/fuzz.sh list)"
            exit 2
        fi
        require_tools
        seconds=$2
        shift 2
        run_target "$target" "$seconds" "$@"
        ;;
esac
