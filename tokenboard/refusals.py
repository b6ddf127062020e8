"""How a refused call is answered: APIM's own policy errors and Azure OpenAI's rate-limit error.

The local gateway, its mock backend and the demo traffic all word refusals here, so the bodies
the dashboard reads back (``Response-Body`` when APIM logs payloads) are the ones Azure sends.
APIM's own errors are ``{"statusCode": ..., "message": ...}``; a backend's are ``{"error": ...}``:
that difference is what tells them apart when no dependencies are logged.
"""

from __future__ import annotations

from datetime import timedelta

from tokenboard.export import json_text, timespan_text

CONTENT_SAFETY_MESSAGE = "Request failed content safety check."
BODY_BYTES_LOGGED = 1024  # like APIM's "Number of payload bytes to log"


def token_limit_message(retry_after: int) -> str:
    """``llm-token-limit`` over tokens-per-minute (429)."""
    return f"Token limit is exceeded. Try again in {retry_after} seconds."


def quota_message(seconds_left: int) -> str:
    """``llm-token-limit`` over its token quota (403)."""
    left = timespan_text(timedelta(seconds=seconds_left))
    return f"Token quota is exceeded. Quota will be replenished in {left}."


def apim_body(status: int, message: str) -> str:
    """The JSON body of an error APIM answers itself."""
    return json_text({"statusCode": status, "message": message})


def backend_limit_body(retry_after: int, operation: str = "ChatCompletions_Create") -> str:
    """Azure OpenAI's 429 when a deployment is over its own tokens-per-minute limit."""
    message = (
        f"Requests to the {operation} Operation under Azure OpenAI API version 2024-10-21 have exceeded "
        "token rate limit of your current AIServices S0 pricing tier. "
        f"Please retry after {retry_after} seconds. "
        "Please contact Azure support service if you would like to further increase the default rate limit."
    )
    return json_text({"error": {"code": "429", "message": message}})


def logged_body(body: bytes | str) -> str:
    """What APIM keeps of a body it logs: the first BODY_BYTES_LOGGED bytes, as text."""
    raw = body.encode() if isinstance(body, str) else body
    return raw[:BODY_BYTES_LOGGED].decode("utf-8", errors="replace")
