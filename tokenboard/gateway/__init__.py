"""A local AI gateway that behaves like Azure API Management with the two LLM policies.

``llm-token-limit`` (``limiter.py``) and ``llm-emit-token-metric`` (``telemetry.py``) in front of
the mock model (``mock.py``) or a real OpenAI-compatible backend (``upstream.py``), served by
uvicorn (``server.py``, ``cli.py``) or embedded in the dashboard's process (``embedded.py``).
"""

from tokenboard.gateway.app import create_app
from tokenboard.gateway.config import GatewayConfig, load_gateway_config

__all__ = ["GatewayConfig", "create_app", "load_gateway_config"]
