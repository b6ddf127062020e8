"""Test request: send chat-completion calls through the gateway and watch llm-token-limit answer."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tokenboard import access, probe, safe
from tokenboard.gateway.embedded import (
    default_api,
    default_key,
    ensure_gateway,
    key_owner,
    uses_embedded_gateway,
)
from tokenboard.safe import md
from tokenboard.ui import panels
from tokenboard.ui.access import guard_page
from tokenboard.ui.settings import app_settings
from tokenboard.views import formats
from tokenboard.views.burst import burst_figure, limit_cells, owner_note

settings = app_settings()
visitor = guard_page(settings, operator=True)
st.set_page_config(page_title="Test request · tokenboard", page_icon=":material/send:", layout="wide")
st.title("Test request")
st.caption("Send chat-completion calls through the gateway and read what `llm-token-limit` answers.")

try:
    gateway_url, api_default, configured_key = (
        ensure_gateway(settings),
        default_api(settings),
        default_key(settings),
    )
except Exception as exc:  # a port, data-dir or gateway_* setting problem: say so, keep the form usable
    st.error(
        f"The local gateway could not start ({type(exc).__name__}: {md(exc)}). Enter a gateway URL instead."
    )
    gateway_url, api_default, configured_key = "", "ai", settings.gateway.subscription_key.get_secret_value()
if uses_embedded_gateway(settings) and gateway_url:
    st.info(
        f"Using the local gateway at {md(gateway_url)} (demo subscriptions, mock model). Its tokens and 429s "
        f"reach the Usage and Throttling pages about {settings.gateway.flush_ms / 1000:g} s after each call.",
        icon=":material/hub:",
    )
any_url = access.any_url_allowed(visitor.mode, settings) or not gateway_url

left, middle, right = st.columns([3, 2, 2])
url = left.text_input(
    "Gateway URL",
    value=gateway_url,
    placeholder="https://<apim>.azure-api.net",
    disabled=not any_url,
    help=None if any_url else "Only the configured gateway: `test_request_any_url` is off.",
    key="gateway-url",
)
api_path = middle.text_input("API path", value=api_default)
key_header = right.text_input("Key header", value=settings.gateway.key_header)
at_home = bool(gateway_url) and probe.same_origin(url, gateway_url)
if configured_key and not at_home:
    left.caption(f"The configured key is only sent to {md(gateway_url)}: type a key for this URL.")
typed_key = st.text_input(
    "Subscription key",
    type="password",
    placeholder=(
        "Using the configured key; type another to override" if configured_key and at_home else "Paste a key"
    ),
    help="Sent in the key header only; never shown, logged, cached or exported. The configured key "
    "only ever goes to the configured gateway.",
)
left, middle, right = st.columns([2, 1, 1])
model = left.text_input("Model", value="gpt-4o-mini")
max_tokens = middle.number_input("Max tokens", min_value=1, max_value=32_768, value=32)
verify_tls = right.checkbox("Verify TLS", value=True, help="Untick only for a gateway you trust.")
system = st.text_input("System message", value="You are a concise assistant.")
user = st.text_area("User message", value="Say hello in five words.", height=80)
extra = st.text_area("Extra headers", placeholder="Name: value (one per line)", height=68)

try:
    request = probe.prepare(
        url, api_path, home=gateway_url, configured_key=configured_key, typed_key=typed_key, any_url=any_url,
        key_header=key_header.strip(), model=model, system=system, user=user, max_tokens=int(max_tokens),
        extra_headers=probe.parse_headers(extra), verify_tls=verify_tls,
        remaining_header=settings.gateway.remaining_tokens_header,
        consumed_header=settings.gateway.consumed_tokens_header,
        quota_header=settings.gateway.remaining_quota_header,
        retry_after_header=settings.gateway.retry_after_header,
    )  # fmt: skip
except probe.ProbeInputError as exc:
    st.warning(md(exc), icon=":material/edit:")
    st.stop()


st.caption(owner_note(key_owner(settings, url, request.key), uses_embedded_gateway(settings)))


def show_limits(result: probe.ProbeResult) -> None:
    cells = limit_cells(result)
    for cell, (label, value) in zip(st.columns(len(cells)), cells, strict=True):
        cell.metric(label, value)


send_tab, burst_tab = st.tabs(["Send once", "Burst"])
with send_tab:
    if st.button("Send once", type="primary", key="send"):
        st.session_state["probe_once"] = probe.send_once(request)
    result = st.session_state.get("probe_once")
    if result is not None:
        show_limits(result)
        if result.error:
            st.error(md(result.error), icon=":material/error:")
        elif result.status and result.status >= 400:
            st.warning(f"**{result.status}**: {md(result.message or 'no message in the answer')}")
        else:
            st.metric("Tokens used (prompt + completion)", f"{formats.whole(result.total_tokens or 0)} = "
                      f"{formats.whole(result.prompt_tokens or 0)} + "
                      f"{formats.whole(result.completion_tokens or 0)}")  # fmt: skip
            st.markdown(f"**Reply:** {md(result.reply, lines=True)}")
        with st.expander("All response headers"):
            headers = {"header": list(result.headers), "value": list(result.headers.values())}
            st.table(safe.table(pd.DataFrame(headers)), hide_index=True)

with burst_tab:
    left, middle, right = st.columns(3)
    # Enough to reach the default 10,000 tokens per minute with the mock model (~40 tokens a call).
    count = left.number_input("Requests (at most)", min_value=1, max_value=5_000, value=400)
    concurrency = middle.number_input("Concurrency", min_value=1, max_value=64, value=4)
    rate = right.number_input("Rate per second (0: as fast as possible)", min_value=0.0, value=0.0)
    start, stop = st.columns([1, 6])
    started = start.button("Start burst", type="primary", key="burst")
    stop.button("Stop", key="stop", help="Stops sending; calls in flight finish.")
    live = st.empty()
    if started:
        results: list[probe.ProbeResult] = []
        st.session_state["probe_burst"] = results  # kept as it grows, so a stopped run still shows
        for result in probe.burst(request, int(count), int(concurrency), rate or None):
            results.append(result)
            if len(results) % 5 == 1 or result.limited:
                panels.figure(burst_figure(results), key=f"live-{len(results)}", into=live)
    results = st.session_state.get("probe_burst")
    if results:
        panels.figure(burst_figure(results), key="burst-chart", into=live)
        summary = probe.summarize(results)
        cells = st.columns(4)
        cells[0].metric("Requests sent", formats.whole(summary.requests))
        cells[1].metric("Admitted before the limit", formats.whole(summary.admitted))
        cells[2].metric("Tokens admitted", formats.whole(summary.admitted_tokens))
        cells[3].metric(
            "Retry-After", "—" if summary.retry_after is None else formats.seconds(summary.retry_after)
        )
        if summary.first_limit_status:
            st.success(f"Limit reached: request {summary.first_limit_index + 1} answered "
                       f"{summary.first_limit_status}.", icon=":material/block:")  # fmt: skip
        else:
            st.info("No 429 or 403 in this run.", icon=":material/info:")
        errors = [r.error for r in results if r.error]
        if errors:
            st.error(f"{len(errors)} request(s) got no usable answer. First: {md(errors[0])}")
        st.download_button("Download the run (CSV)", probe.results_csv(results), "burst.csv", "text/csv")
