"""The gateway as its own process under a lowered descriptor limit (``ulimit -n 256``), held by
hundreds of slow clients: it keeps answering its health probe and its log stays a few lines."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from gateway_helpers import free_port, open_slow_clients

from tokenboard.gateway.app import STATUS_PATH

resource = pytest.importorskip("resource")
ROOT = Path(__file__).resolve().parents[2]
NOFILE = 256
SLOW_CLIENTS = 300


class GatewayProcess:
    def __init__(self, proc: subprocess.Popen, port: int, stderr: Path, key: str) -> None:
        self.proc, self.port, self.stderr_path, self.key = proc, port, stderr, key

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def probe(self) -> tuple[int, float]:
        started = time.perf_counter()
        answer = httpx.get(f"{self.url}{STATUS_PATH}", timeout=10)
        return answer.status_code, time.perf_counter() - started

    def chat(self) -> httpx.Response:
        body = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 5}
        headers = {"Ocp-Apim-Subscription-Key": self.key}
        return httpx.post(f"{self.url}/ai/chat/completions", json=body, headers=headers, timeout=10)

    def stop(self) -> str:
        """SIGTERM, wait, and return everything the gateway wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        return self.stderr_path.read_text("utf-8", errors="replace")


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENBOARD_")}
    env.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path), TOKENBOARD_DATA_DIR=str(tmp_path / "data"))

    def start(*flags: str) -> GatewayProcess:
        listing = subprocess.run(
            [sys.executable, "-m", "tokenboard", "gateway", "--list-subscriptions"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
        )  # fmt: skip
        key = listing.stdout.splitlines()[0].split("\t")[1]
        port = free_port()
        stderr = tmp_path / f"gateway-{port}.err"
        with open(stderr, "wb") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tokenboard", "gateway", "--port", str(port), *flags],
                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=handle,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE)),
            )  # fmt: skip
        gateway = GatewayProcess(proc, port, stderr, key)
        started.append(gateway)
        deadline = time.monotonic() + 30
        while True:
            try:
                if gateway.probe()[0] == 200:
                    return gateway
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.1)

    yield start
    for gateway in started:
        gateway.stop()


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        while chunk := sock.recv(4096):
            if not chunk:
                break
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_300_slow_clients_under_ulimit_256_leave_the_health_probe_answering(start_gateway) -> None:
    header_timeout = 8
    gateway = start_gateway("--header-timeout", str(header_timeout))
    clients = open_slow_clients(gateway.port, SLOW_CLIENTS)
    started = time.monotonic()
    try:
        for _ in range(10):
            status, seconds = gateway.probe()
            # Answered at once, not once slow clients are cut (latency figures: bench/slow_clients.py).
            assert status == 200 and seconds < header_timeout / 2
        assert gateway.chat().status_code == 200  # and real calls still get through
        held = len(os.listdir(f"/proc/{gateway.proc.pid}/fd"))
        assert held > 150, "the slow clients were still held while the probes were answered"
        # Every slow client is cut by the header timeout (or made room for others before).
        deadline = started + header_timeout + 3
        assert all(closed_by_server(sock, max(0.1, deadline - time.monotonic())) for sock in clients)
    finally:
        for sock in clients:
            sock.close()
    stderr = gateway.stop()
    lines = stderr.splitlines()
    assert "Traceback" not in stderr
    assert "Too many open files" not in stderr  # the cap kept accept() within the budget
    assert len(lines) < 25, stderr
    assert any("At most" in line and "open connections" in line for line in lines)


def test_accept_failing_for_want_of_descriptors_is_one_log_line_and_recovers(start_gateway) -> None:
    gateway = start_gateway()
    in_use = len(os.listdir(f"/proc/{gateway.proc.pid}/fd"))
    resource.prlimit(gateway.proc.pid, resource.RLIMIT_NOFILE, (in_use + 4, NOFILE))
    clients = open_slow_clients(gateway.port, 100)  # the kernel queues what cannot be accepted
    try:
        time.sleep(3)  # the gateway retries accept() every 0.1 s meanwhile
        assert gateway.proc.poll() is None
    finally:
        for sock in clients:
            sock.close()
        resource.prlimit(gateway.proc.pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    deadline = time.monotonic() + 10
    while True:  # the queued connections drain, then the probe answers again
        try:
            if gateway.probe()[0] == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert gateway.chat().status_code == 200
    stderr = gateway.stop()
    accept_lines = [line for line in stderr.splitlines() if "Cannot accept connections" in line]
    assert len(accept_lines) == 1, stderr  # 30 failed retries, one line
    assert "Too many open files" in accept_lines[0]
    assert "Traceback" not in stderr and len(stderr.splitlines()) < 25, stderr
