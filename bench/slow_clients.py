"""The gateway's health probe under slow clients, and how fast slow clients are cut.

Starts the gateway (``python -m tokenboard gateway``) in a subprocess under a lowered open-file
limit (``ulimit -n 256`` by default), then:

1. probes ``/status-0123456789abcdef`` with no other clients (the baseline);
2. opens ``--clients`` connections that never finish a request (half idle, half stuck in the
   middle of a request head) and probes again: median and max latency, failures, the ratio to
   the baseline; a chat call must still answer 200;
3. times how long a half-sent head and a half-sent body stay open (the header and body timeouts);
4. counts the lines and bytes the gateway wrote to stderr meanwhile.

``--unguarded`` runs the same against the gateway app served by plain uvicorn (no connection
guard), the behaviour before issue 12: for comparison only (it floods stderr).

    .venv/bin/python bench/slow_clients.py [--clients 300] [--nofile 256] [--header-timeout 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "gateway")]
from gateway_helpers import open_slow_clients  # noqa: E402  (shared with the tests)

STATUS = "/status-0123456789abcdef"
UNGUARDED = """
import sys
from tokenboard.config import load_settings
from tokenboard.gateway.app import create_app
from tokenboard.gateway.config import load_gateway_config
from tokenboard.gateway.server import bind, uvicorn_server
from tokenboard.store import Store
settings = load_settings({}, {"TOKENBOARD_DATA_DIR": sys.argv[2]})
sock = bind("127.0.0.1", int(sys.argv[1]))
uvicorn_server(create_app(load_gateway_config(settings), Store(settings.data_dir))).run(sockets=[sock])
"""


class Gateway:
    def __init__(self, args: argparse.Namespace, data_dir: Path) -> None:
        from tokenboard.gateway.server import bind

        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        sock.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENBOARD_")}
        env.update(PYTHONPATH=str(ROOT), TOKENBOARD_DATA_DIR=str(data_dir))
        python = sys.executable
        listing = subprocess.run(
            [python, "-m", "tokenboard", "gateway", "--list-subscriptions"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        self.key = listing.stdout.split("\t")[1].split("\n")[0]
        if args.unguarded:
            command = [python, "-c", UNGUARDED, str(self.port), str(data_dir)]
        else:
            command = [python, "-m", "tokenboard", "gateway", "--port", str(self.port),
                       "--header-timeout", str(args.header_timeout),
                       "--body-timeout", str(args.body_timeout)]  # fmt: skip
        limit = (args.nofile, args.nofile)
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit),
        )  # fmt: skip
        self.lines = self.bytes = 0
        threading.Thread(target=self._count, daemon=True).start()
        deadline = time.monotonic() + 30
        while self.probe() is None:
            if time.monotonic() > deadline:
                raise SystemExit("the gateway did not start")
            time.sleep(0.1)

    def _count(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines += 1
            self.bytes += len(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def probe(self) -> float | None:
        """Seconds for one health probe on a new connection (raw socket: no client set-up in the
        figure); None if it failed."""
        request = f"GET {STATUS} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".encode()
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(request)
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
        except OSError:
            return None
        return time.perf_counter() - started if answer.startswith(b"HTTP/1.1 200 ") else None

    def chat(self) -> int:
        body = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 5}
        try:
            answer = httpx.post(f"{self.url}/ai/chat/completions", json=body, timeout=10,
                                headers={"Ocp-Apim-Subscription-Key": self.key})  # fmt: skip
        except httpx.HTTPError as exc:
            return -1 if not isinstance(exc, httpx.TimeoutException) else -2
        return answer.status_code

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def probes(gateway: Gateway, count: int) -> tuple[list[float], int]:
    times, failures = [], 0
    for _ in range(count):
        seconds = gateway.probe()
        if seconds is None:
            failures += 1
        else:
            times.append(seconds)
        time.sleep(0.05)
    return times, failures


def seconds_until_closed(port: int, payload: bytes, limit: float) -> float | None:
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        started = time.perf_counter()
        sock.sendall(payload)
        try:
            while sock.recv(4096):
                pass
        except TimeoutError:
            return None
        except ConnectionResetError:
            pass
        return time.perf_counter() - started


def ms(values: list[float]) -> str:
    if not values:
        return "no answers"
    return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--nofile", type=int, default=256)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--header-timeout", type=int, default=10)
    parser.add_argument("--body-timeout", type=int, default=30)
    parser.add_argument("--unguarded", action="store_true", help="plain uvicorn, for comparison")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.clients + 256)), hard))

    with tempfile.TemporaryDirectory() as tmp:
        gateway = Gateway(args, Path(tmp) / "data")
        try:
            base, base_failed = probes(gateway, args.probes)
            print(f"gateway {'(plain uvicorn) ' if args.unguarded else ''}under ulimit -n {args.nofile}")
            print(f"  probe, no other clients:      {ms(base)}, {base_failed} failed")
            clients = open_slow_clients(gateway.port, args.clients)
            loaded, loaded_failed = probes(gateway, args.probes)
            ratio = (
                f"{statistics.median(loaded) / statistics.median(base):.1f}x" if loaded and base else "n/a"
            )
            print(
                f"  probe, {args.clients} slow clients:      {ms(loaded)}, {loaded_failed} failed "
                f"(median {ratio} the baseline)"
            )
            print(f"  chat call, {args.clients} slow clients:  status {gateway.chat()}")
            for sock in clients:
                sock.close()
            time.sleep(1)
            if not args.unguarded:
                head = seconds_until_closed(gateway.port, b"POST /ai/chat/completions HTTP/1.1\r\n", 60)
                print(
                    f"  half-sent head closed after:  {head:.2f} s (header timeout {args.header_timeout} s)"
                )
                body_head = (
                    "POST /ai/chat/completions HTTP/1.1\r\nHost: g\r\n"
                    f"Ocp-Apim-Subscription-Key: {gateway.key}\r\n"
                    'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"messages":'
                ).encode()
                body = seconds_until_closed(gateway.port, body_head, 90)
                print(f"  half-sent body closed after:  {body:.2f} s (body timeout {args.body_timeout} s)")
        finally:
            gateway.stop()
        time.sleep(0.5)
        print(f"  gateway stderr: {gateway.lines:,} lines, {gateway.bytes:,} bytes")


if __name__ == "__main__":
    main()
