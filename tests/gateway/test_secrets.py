"""Subscription keys stay secret: no log line, store file, export, repr or error message holds one."""

from __future__ import annotations

import logging

from gateway_helpers import free_port

from tokenboard import probe

WRONG_KEY = "wrong-key-0123456789abcdef"


def test_keys_reach_no_log_store_file_export_or_message(make_gateway, caplog, data_dir) -> None:
    caplog.set_level(logging.DEBUG)
    gw = make_gateway(
        tokens_per_minute=60,
        gateway_max_body_bytes=3_000,
        gateway_apis=f"ai,down=http://127.0.0.1:{free_port()}/v1",
        gateway_upstream_key="upstream-key-987654321",
    )
    answers = [
        gw.chat(max_tokens=10),
        gw.chat(stream=True, max_tokens=10),
        gw.chat(key=WRONG_KEY),
        gw.chat(messages=[]),
        gw.chat(messages=[{"role": "user", "content": "x" * 4_000}]),
        gw.chat(api="down"),
        *[gw.chat(max_tokens=10) for _ in range(4)],  # into 429s
    ]
    assert {a.status_code for a in answers} >= {200, 401, 400, 413, 502, 429}
    results = list(probe.burst(probe.ProbeRequest(gateway_url=gw.url, key=gw.key), count=5))
    refused = probe.send_once(probe.ProbeRequest(gateway_url=f"http://127.0.0.1:{free_port()}", key=gw.key))
    gw.flush()

    secrets = [s.key for s in gw.config.subscriptions] + [WRONG_KEY, "upstream-key-987654321"]
    texts = {
        "log": caplog.text,
        "answers": " ".join(a.text + str(a.headers) for a in answers),
        "csv": probe.results_csv(results).decode(),
        "probe results": repr(results) + repr(refused),
        "config": repr(gw.config) + repr(gw.config.settings),
    }
    for path in data_dir.rglob("*"):
        if path.is_file() and path.name != ".gateway-keys.json":
            texts[str(path)] = path.read_bytes().decode("latin-1")
    assert any(p.endswith(".parquet") for p in texts)
    for secret in secrets:
        for where, text in texts.items():
            assert secret not in text, f"a key leaked into {where}"
