#!/usr/bin/env python3
"""Memory benchmark: starts a release `faultline serve` with the default
configuration, runs the floods of issue 14 item 3 against it one after the
other, samples the server's RSS from /proc (peak per flood via VmHWM, reset
between floods through /proc/PID/clear_refs), checks /healthz still answers
after each, and restarts the server at the end to measure the RSS of what it
rebuilds from disk. Prints a Markdown table (docs/benchmarks.md "Memory
bounds" comes from it).

    scripts/memory-flood.py --bin target/release/faultline            # all floods
    scripts/memory-flood.py --bin … --floods series,canary --scale 0.1  # a subset, smaller

Not a test: it takes minutes and needs a release build. The bounds it
exercises have deterministic unit tests (see docs/benchmarks.md).
Standard library only: remote-write bodies are encoded by hand (protobuf, and
snappy as literal-only blocks, which every snappy decoder accepts).
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

# --- encoding -----------------------------------------------------------------


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field, payload):
    return varint((field << 3) | 2) + varint(len(payload)) + payload


def series(labels, samples):
    """labels: [(name, value)] sorted by name; samples: [(value, ts_ms)]."""
    body = b"".join(ld(1, ld(1, k.encode()) + ld(2, v.encode())) for k, v in labels)
    for v, ts in samples:
        body += ld(2, b"\x09" + struct.pack("<d", v) + b"\x10" + varint(ts))
    return ld(1, body)


def snappy_literal(raw):
    out = bytearray(varint(len(raw)))
    for i in range(0, len(raw), 65536):
        chunk = raw[i : i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + n.to_bytes(2, "little")
        out += chunk
    return bytes(out)


def now_ms():
    return int(time.time() * 1000)


# --- server -------------------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, binary, data_dir, extra_env):
        self.binary, self.data_dir, self.env = binary, data_dir, dict(os.environ, FAULTLINE_LOG="warn", **extra_env)
        self.port = free_port()
        self.proc = None

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        # Ingest needs a token: one ingest token per data dir, made once.
        if getattr(self, "token", None) is None:
            out = subprocess.run(
                [self.binary, "token", "create", "--data-dir", self.data_dir, "--scope", "ingest", "--name", f"flood-{self.port}"],
                check=True,
                capture_output=True,
                text=True,
                env=self.env,
            )
            self.token = out.stdout.strip().splitlines()[-1]
        log = open(os.path.join(os.path.dirname(self.data_dir), "serve.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}", "--otlp-grpc-listen", "off", "--otlp-http-listen", "off"],
            stdout=log,
            stderr=log,
            env=self.env,
        )
        for _ in range(300):
            if self.healthy(1.0):
                return
            time.sleep(0.1)
        raise SystemExit("the server did not come up")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def reset_peak(self):
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def healthy(self, timeout=5.0):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            c.request("GET", "/healthz")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False


def post_all(server, bodies, path, headers, concurrency):
    """POSTs every body (an iterator of bytes); returns {status: count}."""
    headers = dict(headers, Authorization=f"Bearer {server.token}")
    counts = {}
    lock = threading.Lock()
    local = threading.local()

    def one(body):
        for attempt in range(2):
            try:
                if getattr(local, "conn", None) is None:
                    local.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                local.conn.request("POST", path, body=body, headers=headers)
                r = local.conn.getresponse()
                r.read()
                st = r.status
                break
            except (OSError, http.client.HTTPException):
                local.conn = None
                st = "error"
        with lock:
            counts[st] = counts.get(st, 0) + 1

    with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
        pending = set()
        for b in bodies:
            pending.add(ex.submit(one, b))
            if len(pending) >= concurrency * 2:
                done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        concurrent.futures.wait(pending)
    return counts


RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"}
JSON = {"Content-Type": "application/json"}

# --- floods -------------------------------------------------------------------


def flood_rw_labels(s, scale):
    """174 remote-write requests, each 64 series with a 100 KiB label value."""
    n = max(1, int(174 * scale))

    def bodies():
        t = now_ms()
        for r in range(n):
            raw = b"".join(series([("__name__", "up"), ("job", "flood"), ("v", f"{r}-{i}-" + "x" * 100_000)], [(1.0, t)]) for i in range(64))
            yield snappy_literal(raw)

    return f"{n} requests × 64 series × 100 KiB label value", post_all(s, bodies(), "/api/v1/write", RW, 4)


def flood_keys(s, scale):
    """150 requests with 1 MiB identifiers (dedup key, service, routing key, fingerprint, probe name)."""
    n = max(5, int(150 * scale))
    big = "k" * ((1 << 20) // 2)

    def bodies():
        for r in range(n):
            k = f"{r}{big}"
            kind = r % 5
            if kind == 0:
                yield ("/api/v1/alerts", json.dumps({"title": "x", "dedup_key": k}).encode())
            elif kind == 1:
                yield ("/api/v1/alerts", json.dumps({"title": "x", "service": k}).encode())
            elif kind == 2:
                yield ("/v2/enqueue", json.dumps({"routing_key": k, "event_action": "trigger", "payload": {"summary": "x", "source": "s", "severity": "info"}}).encode())
            elif kind == 3:
                yield ("/api/v1/alerts/alertmanager", json.dumps({"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"a": "b"}, "fingerprint": k}]}).encode())
            else:
                yield ("/api/v1/probes/results", json.dumps({"probe": k, "location": "l", "success": False}).encode())

    counts = {}
    for path, body in bodies():
        for st, c in post_all(s, iter([body]), path, JSON, 1).items():
            counts[st] = counts.get(st, 0) + c
    return f"{n} requests with 512 KiB identifiers (5 kinds)", counts


def rw_many(s, n_requests, per_request, make_labels):
    def bodies():
        t = now_ms()
        for r in range(n_requests):
            yield snappy_literal(b"".join(series(make_labels(r * per_request + i), [(1.0, t)]) for i in range(per_request)))

    return post_all(s, bodies(), "/api/v1/write", RW, 4)


def flood_series(s, scale):
    """1M remote-write series over 9,000 jobs."""
    n = max(1, int(100 * scale))
    return f"{n * 10_000:,} series over 9,000 jobs", rw_many(s, n, 10_000, lambda i: [("__name__", f"m{i % 50}"), ("instance", f"i{i}"), ("job", f"job-{i % 9000}")])


def flood_canary(s, scale):
    """1M distinct metric names from a canary cohort (one canary-detector entry each)."""
    n = max(1, int(100 * scale))
    return f"{n * 10_000:,} distinct metric names, role=canary", rw_many(s, n, 10_000, lambda i: [("__name__", f"canary_metric_{i}"), ("job", "shop"), ("role", "canary")])


def flood_resource(s, scale):
    """1M distinct `resource` labels on pool_size (one exhaustion entry each)."""
    n = max(1, int(100 * scale))
    return f"{n * 10_000:,} distinct resource labels", rw_many(s, n, 10_000, lambda i: [("__name__", "pool_size"), ("job", "shop"), ("resource", f"pool-{i}")])


def flood_alerts(s, scale):
    """Distinct Alertmanager alerts with ~7 KiB of labels each, past the member cap."""
    n = max(64, int(25_000 * scale))
    pad = "p" * 900

    def bodies():
        for b in range(0, n, 64):
            batch = [{"labels": {"alertname": "Flood", "service": f"svc-{(b + i) % 50}", "id": str(b + i), **{f"l{j}": pad for j in range(7)}}} for i in range(min(64, n - b))]
            yield json.dumps(batch).encode()

    return f"{n:,} distinct alerts × 7 KiB labels", post_all(s, bodies(), "/api/v2/alerts", JSON, 8)


def flood_queue(s, scale):
    """Many concurrent ~7 MiB remote-write bodies: the queue must refuse past its byte budget."""
    n = max(8, int(300 * scale))

    def bodies():
        t = now_ms()
        raw = b"".join(series([("__name__", "q"), ("job", "queue"), ("v", f"{i}-" + "y" * 1000)], [(1.0, t)]) for i in range(7000))
        body = snappy_literal(raw)
        for _ in range(n):
            yield body

    return f"{n} concurrent (16) bodies of 7 MiB", post_all(s, bodies(), "/api/v1/write", RW, 16)


FLOODS = {
    "rw_labels": flood_rw_labels,
    "keys": flood_keys,
    "series": flood_series,
    "canary": flood_canary,
    "resource": flood_resource,
    "alerts": flood_alerts,
    "queue": flood_queue,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--floods", default=",".join(FLOODS))
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--bound-mb", type=float, default=512)
    ap.add_argument("--json")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="faultline-memory-")
    data = os.path.join(work, "data")
    s = Server(a.bin, data, {})
    s.start()
    rows = []
    base = s.status("VmRSS")
    print(f"started: RSS {base / 2**20:.0f} MB (work dir {work})", file=sys.stderr)
    for name in a.floods.split(","):
        s.reset_peak()
        t0 = time.time()
        what, counts = FLOODS[name](s, a.scale)
        secs = time.time() - t0
        time.sleep(3)  # let queued work drain before the after-sample
        peak, after, ok = s.status("VmHWM"), s.status("VmRSS"), s.healthy()
        rows.append({"flood": name, "what": what, "secs": round(secs, 1), "answers": counts, "peak_mb": round(peak / 2**20), "after_mb": round(after / 2**20), "healthz": ok})
        print(json.dumps(rows[-1]), file=sys.stderr)
    s.stop()
    s.start()
    time.sleep(3)
    rows.append({"flood": "restart", "what": "restart on the flooded data dir", "secs": 0, "answers": {}, "peak_mb": round(s.status("VmHWM") / 2**20), "after_mb": round(s.status("VmRSS") / 2**20), "healthz": s.healthy()})
    print(json.dumps(rows[-1]), file=sys.stderr)
    s.stop()
    disk = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs)
    print(f"| flood | what | time | answers | peak RSS | RSS after | /healthz |\n|---|---|---|---|---|---|---|")
    for r in rows:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r["answers"].items(), key=lambda kv: str(kv[0])))
        print(f"| {r['flood']} | {r['what']} | {r['secs']} s | {answers} | {r['peak_mb']} MB | {r['after_mb']} MB | {'200' if r['healthz'] else 'FAILED'} |")
    print(f"\ndata dir after all floods: {disk / 2**20:.0f} MB")
    worst = max(r["peak_mb"] for r in rows)
    print(f"worst peak RSS: {worst} MB (bound {a.bound_mb:.0f} MB): {'within' if worst <= a.bound_mb else 'OVER'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "disk_bytes": disk}, f, indent=1)
    sys.exit(0 if worst <= a.bound_mb and all(r["healthz"] for r in rows) else 1)


if __name__ == "__main__":
    main()
