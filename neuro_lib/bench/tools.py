"""Tools: calculator calls/s, sandbox start-up p50/p95 per isolation level, the hostile suite's
table (case, contained or not, how), and fetch latency against a local HTTP server.

    neuro bench tools --runs 20 --calc-calls 20000 --fetches 50 --json

Timings measure the machine they run on (report the load); the hostile table does not depend
on timing. The hostile cases here are the suite's short form; tests/test_tools_sandbox.py holds
the full assertions.
"""
from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from neuro_lib.bench.report import make_report
from neuro_lib.tools.calculator import Calculator
from neuro_lib.tools.sandbox import Limits, PythonSandbox, namespace_available
from neuro_lib.tools.web import WebReader

HOSTILE_LIMITS = Limits(wall_s=3.0, cpu_s=1, memory_mb=256, nproc=12, fsize_mb=2, nofile=32, disk_mb=8,
                        output_bytes=4096)
_ESCAPE = f"/tmp/neuro-bench-escape-{uuid.uuid4().hex}"
# case -> code; each is judged by what the host sees afterwards, not by what the program claims
HOSTILE = {
    "infinite loop": "while True: pass",
    "sleep past the limit": "import time; time.sleep(60)",
    "memory hog": "a = []\nwhile True: a.append(bytearray(16 * 2**20))",
    "fork bomb (after nproc)": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    "ignore SIGXCPU": "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass",
    "write outside work dir": f"open({_ESCAPE!r}, 'w').write('x')",
    "fill the disk": "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * 2**20)\n    i += 1",
    "flood stdout": "import sys\nwhile True: sys.stdout.write('x' * 65536)",
    "network to 127.0.0.1": "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'x')",
    "spawn a shell": "import os\nos.system('sleep 60 >/dev/null 2>&1 &')",
    "read the environment": "import os\nprint(os.environ.get('NEURO_BENCH_SECRET', 'absent'))",
    "kill the parent": "import os\nos.kill({host}, 9)",
    "leave a daemon": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nprint('bye')",
    "deep recursion": "import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1)\nf(0)",
    "invalid unicode out": "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe')",
}


def add_arguments(p):
    p.add_argument("--runs", type=int, default=20, help="sandbox start-ups per isolation level")
    p.add_argument("--calc-calls", type=int, default=20000)
    p.add_argument("--fetches", type=int, default=50)
    p.add_argument("--no-hostile", action="store_true", help="skip the hostile suite")


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _uid_alive(uid):
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    return True
            except OSError:
                pass
    return False


def hostile_table(level: str) -> list[dict]:
    """Run every hostile case at one isolation level; judge containment from the host's side."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    os.environ["NEURO_BENCH_SECRET"] = "s3cret"
    sandbox = PythonSandbox(isolation=level, limits=HOSTILE_LIMITS)
    rows = []
    try:
        for case, code in HOSTILE.items():
            code = code.replace("{port}", str(server.getsockname()[1])).replace("{host}", str(os.getpid()))
            r = sandbox.call({"code": code})
            v = r.value or {}
            try:
                server.accept()
                connected = True
            except BlockingIOError:
                connected = False
            leaked = [p for p in [_ESCAPE] if Path(p).exists()]
            host_ok = (not _uid_alive(v.get("uid", -1)) and not Path(v.get("workdir", "/nonexistent")).exists()
                       and not leaked and not connected and "s3cret" not in v.get("stdout", "")
                       and sandbox.call({"code": "print(1)"}).ok)
            how = v.get("reason") or ("exit 0" if r.ok else r.error)
            if connected:
                how = "connected: process isolation has no network boundary"
            elif v.get("stray_files_removed"):
                how = f"{how}; stray file removed after the run"
            elif v.get("leftover_processes_killed"):
                how = f"{how}; {v['leftover_processes_killed']} leftover process(es) killed by uid"
            rows.append({"name": f"hostile: {case}", "value": int(host_ok), "unit": "contained",
                         "isolation": level, "how": how})
            for p in leaked:
                os.unlink(p)
    finally:
        server.close()
        del os.environ["NEURO_BENCH_SECRET"]
    return rows


class _Page(BaseHTTPRequestHandler):
    BODY = b"<html><body>" + b"<p>A passage of text for the reader.</p>" * 200 + b"</body></html>"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)


def run(args) -> dict:
    results = []
    calc = Calculator()
    exprs = ["2**10 / 3", "sqrt(2) * (3 + 4) - 1", "factorial(20) // 7", "(1 + 2) * 3 < 10"]
    t0 = time.perf_counter()
    for i in range(args.calc_calls):
        assert calc.call({"expression": exprs[i % len(exprs)]}).ok
    results.append({"name": "calculator", "value": args.calc_calls / (time.perf_counter() - t0), "unit": "calls/s"})

    levels = ["process"] + (["namespace"] if namespace_available() else [])
    for level in levels:
        sandbox = PythonSandbox(isolation=level, limits=Limits(wall_s=10))
        walls = []
        for _ in range(args.runs):
            t = time.perf_counter()
            assert sandbox.call({"code": "print(1)"}).ok
            walls.append(time.perf_counter() - t)
        results.append({"name": f"sandbox start-up p50 ({level})", "value": 1000 * statistics.median(walls), "unit": "ms"})
        results.append({"name": f"sandbox start-up p95 ({level})", "value": 1000 * _pct(walls, 0.95), "unit": "ms"})

    if not args.no_hostile and os.geteuid() == 0:
        for level in levels:
            results += hostile_table(level)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    reader = WebReader(allow=["127.0.0.1"])
    url = f"http://127.0.0.1:{srv.server_address[1]}/"
    walls = []
    try:
        for _ in range(args.fetches):
            t = time.perf_counter()
            assert reader.call({"url": url}).ok
            walls.append(time.perf_counter() - t)
    finally:
        srv.shutdown()
        srv.server_close()
    results.append({"name": "fetch + extract p50 (local, 8 kB page)", "value": 1000 * statistics.median(walls), "unit": "ms"})
    results.append({"name": "fetch + extract p95 (local, 8 kB page)", "value": 1000 * _pct(walls, 0.95), "unit": "ms"})
    config = {"runs": args.runs, "calc_calls": args.calc_calls, "fetches": args.fetches, "levels": levels,
              "hostile_limits": HOSTILE_LIMITS.__dict__}
    return make_report("tools", config, results)
