"""Helpers for tests of ``python -m tokenboard`` (imported by name: the tests folder is on sys.path)."""

from __future__ import annotations

import subprocess


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed run (and proof there is no traceback)."""
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("tokenboard: error: ")
    return lines[0]
