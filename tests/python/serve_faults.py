"""Faults against `runtime serve`, over plain HTTP/1.1 sockets (no client library smoothing them).

    serve_faults.py flood HTTP_ADDR MODEL INPUT SHAPE
    serve_faults.py sigterm HTTP_ADDR MODEL INPUT SHAPE PID
    serve_faults.py timeout HTTP_ADDR MODEL INPUT SHAPE

SHAPE is the input's shape with its batch, comma-separated (1,3,224,224).

flood: 48 clients at once against a server with a small queue: every answer is 200 or 503 with
the protocol's {"error": ...}, some of each, and /metrics shows batches of more than one request
on average (dynamic batching at work); then 20 clients that send half a body and hang up,
10 that send a whole request and hang up without reading; then the server still answers.

sigterm: 8 clients send requests one after another; after 1.5 s the server gets SIGTERM. Every
answer must be whole (200 with the outputs, or 503 with an error); a client stops at the first
refused or reset connection. Prints `answered N`, the 200s received, which the caller compares
with the count the server logs as it stops.

timeout: one request to a server whose --timeout is shorter than the model takes: 504 with the
protocol's error.
"""

import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

import numpy as np

mode, addr, model, input_name, shape = sys.argv[1:6]
host, port = addr.rsplit(":", 1)
shape = [int(d) for d in shape.split(",")]
x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
header = json.dumps({
    "inputs": [{"name": input_name, "shape": shape, "datatype": "FP32",
                "parameters": {"binary_data_size": x.nbytes}}],
    "parameters": {"binary_data_output": True},
}).encode()
body = header + x.tobytes()
path = f"/v2/models/{model}/infer"
headers = {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream",
           "Connection": "close"}


def fail(what):
    print(f"FAILED: {what}", flush=True)
    os._exit(1)


def post():
    """One request: (status, parsed JSON header) or raises on a refused or broken connection."""
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        length = response.getheader("Inference-Header-Content-Length")
        head = json.loads(data[:int(length)] if length else data)
        if response.status == 200:
            sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
            if sum(sizes) + len(data[:int(length)]) != len(data):
                fail(f"a 200 answer whose binary part is {len(data)} bytes, not what its header says")
        elif "error" not in head:
            fail(f"status {response.status} without the protocol's error: {head}")
        return response.status, head
    finally:
        conn.close()


def flood():
    statuses, errors = [], []
    lock = threading.Lock()

    def client():
        status, head = post()
        with lock:
            statuses.append(status)
            if status != 200:
                errors.append(head["error"])

    threads = [threading.Thread(target=client) for _ in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = {s: statuses.count(s) for s in set(statuses)}
    print(f"flood of 48: {counts}", flush=True)
    if set(statuses) - {200, 503} or 200 not in statuses or 503 not in statuses:
        fail(f"expected 200s and 503s, got {counts}")
    if not all("queue is full" in e for e in errors):
        fail(f"503 without the reason: {errors[:3]}")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/metrics")
    metrics = dict(line.rsplit(" ", 1) for line in conn.getresponse().read().decode().splitlines()
                   if line.startswith("prism_batch_size_"))
    batches = float(metrics.get(f'prism_batch_size_count{{model="{model}"}}', 0))
    rows = float(metrics.get(f'prism_batch_size_sum{{model="{model}"}}', 0))
    print(f"{rows:.0f} requests ran in {batches:.0f} batches", flush=True)
    if not rows > batches > 0:
        fail("no request was batched with another")

    request_head = (f"POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {len(body)}\r\n"
                    f"Inference-Header-Content-Length: {len(header)}\r\n\r\n").encode()
    for _ in range(20):
        with socket.create_connection((host, int(port))) as s:
            s.sendall(request_head + body[:len(body) // 2])
    for _ in range(10):
        with socket.create_connection((host, int(port))) as s:
            s.sendall(request_head + body)
    print("30 clients hung up mid-request", flush=True)
    time.sleep(1)
    status, head = post()
    if status != 200:
        fail(f"after the faults the server answered {status}: {head}")
    print("the server still answers", flush=True)


def sigterm(pid):
    answered, problems = [], []
    lock = threading.Lock()

    def client():
        while True:
            try:
                status, _ = post()
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
                return
            except Exception as e:  # noqa: BLE001 - anything else is a broken answer
                with lock:
                    problems.append(repr(e))
                return
            with lock:
                if status == 200:
                    answered.append(1)
                elif status != 503:
                    problems.append(f"status {status}")

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    os.kill(pid, signal.SIGTERM)
    for t in threads:
        t.join()
    if problems:
        fail(f"broken answers under SIGTERM: {problems[:3]}")
    print(f"answered {len(answered)}", flush=True)


def timeout():
    status, head = post()
    if status != 504 or "no answer within" not in head["error"]:
        fail(f"expected 504 for a request over --timeout, got {status}: {head}")
    print(f"504: {head['error']}", flush=True)


if mode == "flood":
    flood()
elif mode == "timeout":
    timeout()
else:
    sigterm(int(sys.argv[6]))
