"""Gateway throughput and added latency over the mock backend alone.

Serves (1) the mock model alone and (2) the gateway with its built-in mock model, each with uvicorn
on a loopback port in a subprocess, and drives both with the same closed-loop load (C concurrent
keep-alive clients, N requests). "Added latency" is the gateway's latency minus the mock's alone,
at the median and p95: what the key check, prompt tokenizing, limiter and telemetry cost.

    .venv/bin/python bench/gateway.py [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Summarise our token usage."}],
        "max_tokens": 16}  # fmt: skip

MOCK_ALONE = """
import sys, uvicorn
from tokenboard.gateway.mock import mock_app
from tokenboard.gateway.server import bind, uvicorn_server
sock = bind("127.0.0.1", int(sys.argv[1]))
uvicorn_server(mock_app()).run(sockets=[sock])
"""


def free_port() -> int:
    sys.path.insert(0, str(ROOT))
    from tokenboard.gateway.server import bind

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    return port


def start(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/")
            return process
        except httpx.ConnectError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"server on port {port} did not start")


async def load(port: int, path: str, headers: dict[str, str], total: int, concurrency: int
               ) -> tuple[float, list[float]]:  # fmt: skip
    """Closed loop over raw keep-alive HTTP/1.1 connections: the client costs microseconds, not the
    milliseconds a full client library would add to both sides of the comparison."""
    body = json.dumps(BODY).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{head}"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
    latencies: list[float] = []
    remaining = iter(range(total))

    async def call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
        t0 = time.perf_counter()
        writer.write(request)
        header = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", header).group(1))
        await reader.readexactly(length)
        if not header.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"unexpected answer: {header.splitlines()[0].decode()}")
        return (time.perf_counter() - t0) * 1000

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(20):  # warm-up: connection, tokenizer, first imports
            await call(reader, writer)
        await barrier.wait()
        for _ in remaining:
            latencies.append(await call(reader, writer))
        writer.close()

    barrier = asyncio.Barrier(concurrency + 1)
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await barrier.wait()
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    return total / (time.perf_counter() - started), latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, default=16, help="clients for the throughput run")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENBOARD_")}
    env |= {"PYTHONPATH": str(ROOT), "TOKENBOARD_GATEWAY_SUBSCRIPTIONS": "bench=bench-key-0123456789"}
    key = {"Ocp-Apim-Subscription-Key": "bench-key-0123456789"}
    with tempfile.TemporaryDirectory() as data_dir:
        mock_port, gateway_port = free_port(), free_port()
        mock = start([sys.executable, "-c", MOCK_ALONE, str(mock_port)], mock_port, env)
        gateway = start(
            [sys.executable, "-m", "tokenboard.gateway", "--port", str(gateway_port), "--data-dir", data_dir,
             "--tokens-per-minute", "1000000000"],
            gateway_port, env,
        )  # fmt: skip
        targets = {"mock alone": (mock_port, "/v1/chat/completions", {}),
                   "gateway + mock": (gateway_port, "/ai/chat/completions", key)}  # fmt: skip
        try:
            latency = {name: asyncio.run(load(*t, args.requests, 1)) for name, t in targets.items()}
            throughput = {
                name: asyncio.run(load(*t, args.requests, args.concurrency)) for name, t in targets.items()
            }
        finally:
            for process in (mock, gateway):
                process.terminate()
                process.wait(15)
        count = (
            "from tokenboard.store import Store; import sys; print(Store(sys.argv[1]).row_count('requests'))"
        )
        rows = subprocess.run([sys.executable, "-c", count, data_dir], cwd=ROOT, env=env, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip

    print(f"{args.requests} requests per run over loopback, {os.cpu_count()} CPUs")
    print(f"{'':16} {'1 client: p50 ms':>17} {'p95 ms':>8} {f'{args.concurrency} clients: req/s':>18}")
    for name in targets:
        lat = latency[name][1]
        print(
            f"{name:16} {statistics.median(lat):17.2f} {percentile(lat, 95):8.2f} {throughput[name][0]:18.0f}"
        )
    alone, through = latency["mock alone"][1], latency["gateway + mock"][1]
    added_median = statistics.median(through) - statistics.median(alone)
    added_p95 = percentile(through, 95) - percentile(alone, 95)
    print(f"gateway throughput: {throughput['gateway + mock'][0]:.0f} requests/s (target >= 500)")
    print(f"added latency: median {added_median:.2f} ms (target < 2 ms), p95 {added_p95:.2f} ms")
    print(f"requests rows the gateway flushed to its store: {rows}")


if __name__ == "__main__":
    main()
