"""tokenboard: token usage and throttling of LLMs behind an AI gateway."""

__version__ = "0.1.0"
