"""A second local server for forwarding tests: an OpenAI-compatible fake with misbehaving paths."""

from __future__ import annotations

import asyncio
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from tokenboard.gateway.mock import mock_app


def fake_upstream(seen: list[dict]) -> Starlette:
    """``/v1``: the mock model; ``/fail``: 502; ``/slow``: answers after 3 s; ``/html``: 200 HTML;
    ``/nousage``: a stream without a usage chunk. ``seen`` collects each call's headers and body."""

    async def record(request: Request) -> None:
        seen.append({"headers": dict(request.headers), "body": await request.json()})

    async def fail(request: Request) -> Response:
        await record(request)
        return JSONResponse({"error": {"message": "upstream overloaded"}}, 502)

    async def slow(request: Request) -> Response:
        await record(request)
        await asyncio.sleep(3)
        return JSONResponse({})

    async def html(request: Request) -> Response:
        await record(request)
        return Response("<html>maintenance</html>", 200, media_type="text/html")

    async def no_usage(request: Request) -> Response:
        await record(request)

        async def events():
            yield 'data: {"model": "m", "choices": [{"index": 0, "delta": {"content": "hello there"}}]}\n\n'
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    inner = mock_app()

    async def v1(scope, receive, send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        seen.append({"headers": dict(request.headers), "body": json.loads(body)})

        replayed = False

        async def replay():  # the body once, then the real channel (disconnects)
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await inner(scope, replay, send)

    return Starlette(
        routes=[
            Route("/fail/chat/completions", fail, methods=["POST"]),
            Route("/slow/chat/completions", slow, methods=["POST"]),
            Route("/html/chat/completions", html, methods=["POST"]),
            Route("/nousage/chat/completions", no_usage, methods=["POST"]),
            Mount("/", app=v1),
        ]
    )
