"""The C API benchmark's measurements (scripts/bench-capi.sh builds and prepares everything):
stripped sizes, what each binary links (ldd), and process start to first answer for Prism's C
example and for ONNX Runtime's own C API (ort_c_peer), in the same run.

    capi.py WORK RUNS

Each command runs once to warm the file cache, then RUNS times; a run is a whole process: load
the library and the model, read the input, answer once, exit ("cold" for the process, warm for
the file cache). Then, where this process may write /proc/sys/vm/drop_caches (root), each runs
COLD_RUNS more times (default 3) after the kernel's page cache is dropped: the libraries, the
model and the input read from the disk, as on a device's first start. Prints Markdown tables
and a JSON line per measurement.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

work, runs = sys.argv[1], int(sys.argv[2])
cold_runs = int(os.environ.get("COLD_RUNS", "3"))
with open(os.path.join(work, "plan.json")) as f:
    plan = json.load(f)


def stripped_size(path):
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, os.path.basename(path))
        shutil.copy(path, copy)
        subprocess.run(["strip", "--strip-all", copy], check=True)
        return os.path.getsize(copy)


def linked(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return ", ".join(n for n in names if not n.startswith("linux-vdso")) or "(static)"


print("| file | stripped | links (ldd) |")
print("|---|---:|---|")
for name, path in plan["files"].items():
    size = stripped_size(path)
    print(f"| {name} | {size / 1e6:.1f} MB | {linked(path)} |")
    print(json.dumps({"file": name, "stripped_bytes": size}), file=sys.stderr)


def seconds(command):
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"capi.py: {command[0]} failed: {done.stderr.strip()}")
    return elapsed


def drop_page_cache():
    """Empties the kernel's page cache; False where this process may not."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


cold = cold_runs > 0 and drop_page_cache()
print()
print(f"Process start to first answer, median of {runs} runs (min), seconds; ratio = Prism / ONNX Runtime's C API;"
      + (f" cold cache: median of {cold_runs} runs, each after the page cache was dropped" if cold else " cold cache not measured (dropping the page cache needs root)"))
print()
print("| model | program | engine | median | min | ratio | cold cache | ratio |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for case in plan["timings"]:
    peer = None
    # Interleaved, so that a noisy neighbour slows every program of a case alike.
    commands = [case["peer"]] + [p["command"] for p in case["prism"]]
    for command in commands:
        seconds(command)
    times = [[] for _ in commands]
    for _ in range(runs):
        for i, command in enumerate(commands):
            times[i].append(seconds(command))
    cold_times = [[] for _ in commands]
    for _ in range(cold_runs if cold else 0):
        for i, command in enumerate(commands):
            drop_page_cache()
            cold_times[i].append(seconds(command))
    peer = statistics.median(times[0])
    peer_cold = statistics.median(cold_times[0]) if cold else None
    rows = [("ONNX Runtime C API", "ort", times[0], cold_times[0])] + [
        (p["program"], p["engine"], t, c) for p, t, c in zip(case["prism"], times[1:], cold_times[1:])]
    for program, engine, t, c in rows:
        median = statistics.median(t)
        ratio = median / peer
        cold_median = statistics.median(c) if c else None
        cold_cells = f"{cold_median:.3f} | {cold_median / peer_cold:.2f}" if c else "- | -"
        print(f"| {case['model']} | {program} | {engine} | {median:.3f} | {min(t):.3f} | {ratio:.2f} | {cold_cells} |")
        record = {"model": case["model"], "program": program, "engine": engine, "median_s": median,
                  "min_s": min(t), "ratio_to_ort_c": ratio, "cold_median_s": cold_median,
                  "cold_ratio_to_ort_c": cold_median / peer_cold if c else None}
        print(json.dumps(record), file=sys.stderr)
