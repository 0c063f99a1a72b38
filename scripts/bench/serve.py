"""Load against `runtime serve` and against KServe's Python model server on the same ONNX files,
in the same run, on loopback (scripts/bench-serve.sh sets it up).

    serve.py RUNTIME PEER_PYTHON WORK REQUESTS SECONDS MEMORY_REQUESTS PROTOCOLS

For each server (one at a time, so they never share the cores), each protocol of PROTOCOLS
(`http`, `grpc`, comma-separated), each model and concurrency 1, 4, 16, 64: that many clients
send requests of one sample each until REQUESTS are answered or SECONDS pass: over HTTP each on
its own keep-alive HTTP/1.1 connection in the protocol's binary format, over gRPC each on its
own channel with Triton's tritonclient[grpc]. Throughput,
p50/p99 latency, failures. Then `runtime bench`'s offline throughput at its best batch (the
ceiling), and `runtime serve`'s resident memory after 1,000 and after MEMORY_REQUESTS requests
on the small model. Prints a Markdown table and writes WORK/serve.json.
"""

import atexit
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import onnxruntime

runtime, peer_python, work, requests, seconds, memory_requests, protocols = sys.argv[1:8]
requests, seconds, memory_requests = int(requests), float(seconds), int(memory_requests)
protocols = protocols.split(",")
here = os.path.dirname(os.path.abspath(__file__))
models = {"resnet18": f"{work}/resnet18.onnx", "hybridsn": f"{work}/hybridsn.onnx", "small": f"{work}/small.onnx"}
levels = [1, 4, 16, 64]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, names, process):
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode} before it was ready")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            ok = True
            for name in names:
                conn.request("GET", f"/v2/models/{name}/ready")
                response = conn.getresponse()
                response.read()
                ok = ok and response.status == 200
            conn.close()
            if ok:
                return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("the server was not ready within 180 s")


def graph_input(model):
    """The input's name and its shape for one sample, from the ONNX file (both servers get the same)."""
    tensor = onnxruntime.InferenceSession(models[model], providers=["CPUExecutionProvider"]).get_inputs()[0]
    return tensor.name, [1] + [int(d) for d in tensor.shape[1:]]


def http_sender(port, model, name, shape):
    """A client on its own keep-alive HTTP/1.1 connection sending the protocol's binary request;
    its `send()` returns the HTTP status (or the error)."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    header = json.dumps({"inputs": [{"name": name, "shape": shape, "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    body = header + x.tobytes()
    headers = {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}
    conn = [http.client.HTTPConnection("127.0.0.1", port, timeout=120)]

    def send():
        try:
            conn[0].request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
            response = conn[0].getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as e:
            conn[0].close()
            conn[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            return repr(e)

    return send


def grpc_sender(port, model, name, shape):
    """A client on its own gRPC channel (Triton's tritonclient[grpc], raw tensor contents, as
    Triton's clients send them); `send()` returns 200 for an answer, else the error."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    tensor = grpcclient.InferInput(name, shape, "FP32")
    tensor.set_data_from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))

    def send():
        try:
            client.infer(model, [tensor], client_timeout=120)
            return 200
        except InferenceServerException as e:
            return f"{e.status()} {e.message()}"

    return send


def load(ports, model, concurrency, total, budget, protocol="http"):
    """`concurrency` clients over `protocol` until `total` answers or `budget` seconds;
    latencies and failures."""
    name, shape = graph_input(model)
    make = grpc_sender if protocol == "grpc" else http_sender
    port = ports[protocol]
    latencies, failures = [], []
    lock = threading.Lock()
    issued = [0]
    end = time.time() + budget

    def client():
        send = make(port, model, name, shape)
        while True:
            with lock:
                if issued[0] >= total or time.time() > end:
                    break
                issued[0] += 1
            start = time.perf_counter()
            status = send()
            took = time.perf_counter() - start
            with lock:
                (latencies if status == 200 else failures).append(took if status == 200 else status)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1e3
    return {"protocol": protocol, "concurrency": concurrency, "answered": len(latencies), "failed": len(failures),
            "failures": [str(f) for f in failures[:3]], "seconds": round(wall, 2),
            "throughput": round(len(latencies) / wall, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None}


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


started = []


def stop_all():
    for process in started:
        if process.poll() is None:
            process.kill()


def serve(kind, names):
    http_port, grpc_port = free_port(), free_port()
    if kind == "prism":
        # A repository, so that the models have the names the load uses.
        repo = f"{work}/repo-{'-'.join(names)}"
        for name in names:
            os.makedirs(f"{repo}/{name}/1", exist_ok=True)
            if not os.path.exists(f"{repo}/{name}/1/model.onnx"):
                os.symlink(models[name], f"{repo}/{name}/1/model.onnx")
        args = [runtime, "serve", "--model-repository", repo, "--http-port", str(http_port), "--grpc-port",
                str(grpc_port), "--engine", "ort"]
    else:
        args = [peer_python, f"{here}/kserve_peer.py", str(http_port), str(grpc_port)]
        args += [f"{name}={models[name]}" for name in names]
    log = open(f"{work}/{kind}.log", "a")
    process = subprocess.Popen(args, stdout=log, stderr=log)
    started.append(process)
    wait_ready(http_port, names, process)
    return process, {"http": http_port, "grpc": grpc_port}


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return "killed"


atexit.register(stop_all)
results = {"levels": {}, "ceiling": {}, "memory": {}}
for kind in ["prism", "kserve"]:
    process, ports = serve(kind, ["resnet18", "hybridsn"])
    for protocol in protocols:
        for model in ["resnet18", "hybridsn"]:
            load(ports, model, 4, 20, 30, protocol)  # warm-up
            for c in levels:
                row = load(ports, model, c, requests, seconds, protocol)
                results["levels"].setdefault(protocol, {}).setdefault(model, {}).setdefault(kind, []).append(row)
                print(f"[bench-serve] {kind:6} {protocol:4} {model:8} c={c:2}: {row['throughput']:7.1f}/s "
                      f"p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms, {row['failed']} failed {row['failures']}",
                      file=sys.stderr, flush=True)
    results.setdefault("exit", {})[kind] = stop(process)

for model in ["resnet18", "hybridsn"]:
    out = subprocess.run([runtime, "bench", "--model", models[model], "--engine", "ort", "--batch", "1,4,16,64",
                          "--runs", "10", "--json"], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    best = max(rows, key=lambda r: r["throughput"])
    results["ceiling"][model] = {"batch": best["batch"], "throughput": best["throughput"], "unit": best["unit"]}

process, ports = serve("prism", ["small"])
load(ports, "small", 16, 1000, 600)
after_1000 = rss_mb(process.pid)
row = load(ports, "small", 16, memory_requests - 1000, 3600)
after_all = rss_mb(process.pid)
stop(process)
results["memory"] = {"requests": 1000 + row["answered"], "failed": row["failed"], "rss_mb_after_1000": round(after_1000, 1),
                     "rss_mb_after_all": round(after_all, 1), "ratio": round(after_all / after_1000, 3),
                     "throughput": row["throughput"]}

with open(f"{work}/serve.json", "w") as f:
    json.dump(results, f, indent=1)

print("| protocol | model | concurrency | runtime serve req/s | p50 / p99 ms | KServe + onnxruntime req/s | p50 / p99 ms | ratio | failed |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for protocol, by_model in results["levels"].items():
    for model, by_kind in by_model.items():
        for ours, theirs in zip(by_kind["prism"], by_kind["kserve"]):
            ratio = ours["throughput"] / theirs["throughput"] if theirs["throughput"] else float("inf")
            print(f"| {protocol} | {model} | {ours['concurrency']} | {ours['throughput']} | {ours['p50_ms']} / {ours['p99_ms']} | "
                  f"{theirs['throughput']} | {theirs['p50_ms']} / {theirs['p99_ms']} | {ratio:.2f} | "
                  f"{ours['failed']} / {theirs['failed']} |")
print()
for model, ceiling in results["ceiling"].items():
    for protocol, by_model in results["levels"].items():
        c16 = next(r for r in by_model[model]["prism"] if r["concurrency"] == 16)
        print(f"- {model}, {protocol}: offline ceiling (`runtime bench`, ort, best batch {ceiling['batch']}) "
              f"{ceiling['throughput']} {ceiling['unit']}; runtime serve at concurrency 16 reaches "
              f"{100 * c16['throughput'] / ceiling['throughput']:.0f} % of it")
m = results["memory"]
print(f"- memory: runtime serve's resident set {m['rss_mb_after_1000']} MB after 1,000 requests, "
      f"{m['rss_mb_after_all']} MB after {m['requests']:,} (x{m['ratio']}), {m['failed']} failed")
print(f"- exit codes after SIGTERM: {results['exit']}")
