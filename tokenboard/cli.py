"""``python -m tokenboard``: the same queries as the dashboard, for scripts and cron.

Results go to stdout; problems go to stderr as one line each, and the exit status
says whose problem it is: 2 for the command line or its input (unknown query,
mistyped parameter, bad file), 1 for the backend or the store. A user's mistake is
never answered with a traceback (``--debug`` shows one for developers).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tokenboard import export, kql
from tokenboard.config import SECRETS_FILES, ConfigError, Settings
from tokenboard.settings import load_settings

if TYPE_CHECKING:
    from tokenboard.backends import Backend

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_DAYS = 3_660  # of demo traffic: ten years
MAX_ROWS = 100_000_000  # of demo metric rows (10M take under a minute)
PROG = "python -m tokenboard"
NAME = "tokenboard"


class CliError(Exception):
    """A problem worth one line on stderr and the given exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        self.code = code
        super().__init__(message)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see: {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = argv[:1] == ["--debug"]
    if debug:
        argv = argv[1:]
    try:
        if argv[:1] == ["gateway"]:  # everything after the word belongs to the gateway's own CLI
            return _run_gateway(argv[1:])
        if argv[:1] == ["serve"]:  # ...and after this one, to Streamlit
            return _serve(argv[1:])
        _own_stderr(debug)
        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except CliError as exc:
        return fail(str(exc), exc.code)
    except (kql.QueryError, ConfigError) as exc:
        return fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:  # e.g. `... | head`: the reader left, nothing to report
        _silence_stdout()
        return EXIT_FAILED
    except Exception as exc:
        if debug:
            raise
        if _is_bad_store_file(exc):
            return fail(str(exc), EXIT_USAGE)
        if _is_runtime_failure(exc):
            return fail(str(exc), EXIT_FAILED)
        return fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", EXIT_FAILED)


def _own_stderr(debug: bool) -> None:
    """stderr carries the CLI's own lines only. Libraries log to the root logger, which with no
    handler prints every warning (azure-identity lists each credential it tried, on ten lines;
    the store logs what it repairs, which the CLI words as one line of its own): a NullHandler
    takes them, and Python warnings go the same way. ``--debug`` shows it all."""
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        return
    root = logging.getLogger()
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())
    logging.captureWarnings(True)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Token usage and throttling of LLMs behind an AI gateway.")
    parser.add_argument("--debug", action="store_true", help="show a traceback on unexpected errors")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    queries = commands.add_parser("queries", help="list the query files and their parameters")
    queries.add_argument("--format", choices=("text", "json"), default="text")
    queries.set_defaults(handler=cmd_queries)

    query = commands.add_parser("query", help="run a query file and print its result")
    query.add_argument("name", help="query name (see: queries)")
    _add_params(query)
    query.add_argument("--format", choices=("csv", "json"), default="csv")
    _add_data_dir(query)
    query.set_defaults(handler=cmd_query)

    seed = commands.add_parser("seed", help="fill the local store with demo telemetry")
    seed.add_argument(
        "--seed", type=_seed_number, default=7, help="random seed; the same seed gives the same data"
    )
    seed.add_argument(
        "--days", type=_days, default=30, help=f"days of traffic (default 30, at most {MAX_DAYS:,})"
    )
    seed.add_argument(
        "--rows",
        type=_row_count,
        default=None,
        help=f"scale to about this many metric rows (at most {MAX_ROWS:,})",
    )
    seed.add_argument("--end", default=None, help="end of the traffic, ISO 8601 UTC (default: now)")
    seed.add_argument("--force", action="store_true", help="replace what the store already holds")
    _add_data_dir(seed)
    seed.set_defaults(handler=cmd_seed)

    imp = commands.add_parser("import", help="append a CSV exported from the Azure portal's Logs blade")
    imp.add_argument("file", type=Path, help="the CSV file")
    imp.add_argument("--table", required=True, choices=("customMetrics", "requests", "dependencies"))
    imp.add_argument("--rejects", type=Path, default=None, help="also write the bad rows to this CSV")
    imp.add_argument("--dry-run", action="store_true", help="check the file, write nothing")
    _add_data_dir(imp)
    imp.set_defaults(handler=cmd_import)

    report = commands.add_parser("report", help="build a report as CSV (no name: list the reports)")
    report.add_argument("name", nargs="?", default=None)
    _add_params(report)
    _add_data_dir(report)
    report.set_defaults(handler=cmd_report)

    gateway = commands.add_parser("gateway", help="the local AI gateway (see: gateway --help)")
    gateway.add_argument("args", nargs=argparse.REMAINDER)
    gateway.set_defaults(handler=lambda args: _run_gateway(args.args))

    serve = commands.add_parser(
        "serve", help="start the dashboard (Streamlit options follow, e.g. --server.port 8600)"
    )
    serve.add_argument("args", nargs=argparse.REMAINDER)
    serve.set_defaults(handler=lambda args: _serve(args.args))
    return parser


def _serve(args: list[str]) -> int:
    from tokenboard.serve import main

    return main(args)


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a query parameter, repeatable (lists: a,b,c or a JSON array; times: ISO 8601, ago(1h))",
    )


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="local store directory (default: data_dir)"
    )


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_DAYS:,}, not {text}")
    return value


def _row_count(text: str) -> int:
    return _whole(text, 1, MAX_ROWS)


def _seed_number(text: str) -> int:
    return _whole(text, 0, 2**32 - 1)


def _whole(text: str, least: int, most: int) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not least <= value <= most:
        raise argparse.ArgumentTypeError(f"must be from {least:,} to {most:,}, not {value:,}")
    return value


# --- commands -------------------------------------------------------------------------


def cmd_queries(args: argparse.Namespace) -> int:
    queries = kql.catalog()
    if args.format == "json":
        listing = [
            {"name": q.name, "title": q.title, "params": [dataclasses.asdict(p) for p in q.params]}
            for q in queries.values()
        ]
        _write_text(json.dumps(listing, ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    lines = []
    for q in queries.values():
        lines += [q.name, f"  {q.title}"]
        width = max((len(p.name) for p in q.params), default=0)
        for p in q.params:
            default = f" = {p.default}" if p.default is not None else " (required)"
            lines.append(f"    {p.name:<{width}}  {p.type}{default}  {p.doc}".rstrip())
        lines.append("")
    _write_text("\n".join(lines))
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    params = parse_params(args.param)
    check_params(kql.get_query(args.name), params)  # bad input fails before any backend starts
    backend = _backend(_settings(args.data_dir))
    result = backend.run_query(backend.bind(args.name, params))
    for warning in [*result.warnings, *backend.notices()]:
        _warn(warning)
    if backend.store is not None and backend.store.is_empty():
        _warn(f"the local store in {backend.store.data_dir} is empty (fill it: {PROG} seed)")
    _write_bytes(export.to_csv(result.frame) if args.format == "csv" else export.to_json(result.frame))
    return EXIT_OK


def cmd_seed(args: argparse.Namespace) -> int:
    from tokenboard.store import Store

    try:
        end = kql.parse_value("datetime", args.end) if args.end else None
    except kql.QueryError as exc:
        raise CliError(f"--end: {exc}") from None
    settings = _settings(args.data_dir)
    store = Store(settings.store.data_dir)
    if not store.is_empty():
        if not args.force:
            raise CliError(
                f"the store in {store.data_dir} already holds "
                f"{store.row_count('customMetrics'):,} metric rows and {store.row_count('requests'):,} "
                "request rows; pass --force to replace them"
            )
        store.clear()
    demo = _optional_module("tokenboard.demo", "the demo generator")
    summary = demo.seed(store, settings, days=args.days, seed=args.seed, end=end, rows=args.rows)
    _write_text(
        f"Seeded {summary.metric_rows:,} metric rows, {summary.request_rows:,} request rows and "
        f"{summary.dependency_rows:,} backend calls into {store.data_dir} in {summary.seconds:.1f} s\n"
    )
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from tokenboard import importer
    from tokenboard.store import Store

    settings = _settings(args.data_dir)
    store = Store(settings.store.data_dir)
    try:
        result = importer.import_csv(
            args.file, args.table, None if args.dry_run else store, rejects=args.rejects
        )
    except importer.ImportFileError as exc:
        raise CliError(str(exc)) from None
    for problem in result.bad_rows[: importer.MAX_REPORTED]:
        _warn(f"{args.file}:{problem.line}: {problem.message}")
    if len(result.bad_rows) > importer.MAX_REPORTED:
        _warn(f"... and {len(result.bad_rows) - importer.MAX_REPORTED:,} more bad rows")
    if result.ignored_columns:
        _warn(f"ignored columns not in {args.table}: {', '.join(result.ignored_columns)}")
    verb = "Checked" if args.dry_run else "Imported"
    where = "" if args.dry_run else f" into {args.table} in {store.data_dir}"
    message = f"{verb} {result.rows:,} rows{where}"
    if result.bad_rows:
        message += f"; skipped {len(result.bad_rows):,} bad rows"
        if args.rejects:
            message += f" (written to {args.rejects})"
    _write_text(message + "\n")
    return EXIT_USAGE if result.bad_rows else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    reports = _optional_module("tokenboard.reports", "reports")
    if args.name is None:
        for name, report in reports.REPORTS.items():
            title = getattr(report, "title", "")
            _write_text(f"{name}  {title}".rstrip() + "\n")
        return EXIT_OK
    if args.name not in reports.REPORTS:
        raise CliError(f"unknown report '{args.name}' (known: {', '.join(sorted(reports.REPORTS))})")
    params = parse_params(args.param)
    for query_name in getattr(reports.REPORTS[args.name], "queries", ()):
        for param in kql.get_query(query_name).params:
            if param.name in params:
                check_value(param, params[param.name])
    backend = _backend(_settings(args.data_dir))
    frame = reports.build_report(args.name, backend, params)
    for notice in backend.notices():
        _warn(notice)
    _write_bytes(export.to_csv(frame))
    return EXIT_OK


def _run_gateway(argv: list[str]) -> int:
    gateway_cli = _optional_module("tokenboard.gateway.cli", "the local gateway")
    return int(gateway_cli.main(list(argv)) or 0)


# --- settings, backend, parameters ----------------------------------------------------


def _settings(data_dir: Path | None) -> Settings:
    """Settings as the dashboard sees them (secrets files, then ``TOKENBOARD_*`` variables)."""
    settings = load_settings(files=SECRETS_FILES)
    return settings.replace(data_dir=data_dir) if data_dir is not None else settings


def _backend(settings: Settings) -> Backend:
    from tokenboard.backends import make_backend

    return make_backend(settings)


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``key=value`` strings into a dict; the binder parses each value by its declared type."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--param '{pair}' must look like key=value")
        if key in params:
            raise CliError(f"--param '{key}' is given twice")
        params[key] = value
    return params


VALUE_HINTS = {
    "datetime": "use ISO 8601 like 2026-11-24T13:00:00Z, now() or ago(6h)",
    "long": "use a whole number",
    "real": "use a number",
    "bool": "use true or false",
    "timespan": "use e.g. 30s, 15m, 1h, 7d",
    "dynamic": 'use a,b,c or a JSON array like ["a","b"]',
}


def check_params(query: kql.QueryFile, params: dict[str, str]) -> None:
    """Every name declared and every value well-typed, with the parameter named in the error."""
    for key, text in params.items():
        check_value(query.param(key), text)
    kql.resolve(query, params)


def check_value(param: kql.Param, text: str) -> None:
    if param.type == "string":
        return
    try:
        kql.parse_value(param.type, text)
    except kql.QueryError as exc:
        hint = None if isinstance(exc, kql.OutOfRange) else VALUE_HINTS.get(param.type)
        raise CliError(f"--param {param.name}: {exc}" + (f" ({hint})" if hint else "")) from None


def _optional_module(name: str, what: str) -> Any:
    """Import a part written separately; a missing one is a clear message, not a traceback."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise CliError(f"{what} is not available in this installation ({name} is missing)", 1) from None
        raise


def _is_bad_store_file(exc: Exception) -> bool:
    """A store file edited into the wrong shape: bad input, like a bad CSV."""
    from tokenboard.backends.base import StoreManifestError
    from tokenboard.store import ManifestError

    return isinstance(exc, (ManifestError, StoreManifestError))


def _is_runtime_failure(exc: Exception) -> bool:
    """Our own worded failures of the backend or the store (their messages are for users)."""
    from tokenboard.backends.base import BackendError
    from tokenboard.store import StoreError

    return isinstance(exc, (BackendError, StoreError, OSError))


# --- output -----------------------------------------------------------------------------


def _write_bytes(payload: bytes) -> None:
    sys.stdout.buffer.write(payload)
    sys.stdout.buffer.flush()


def _write_text(text: str) -> None:
    _write_bytes(text.encode("utf-8"))


def _warn(message: str) -> None:
    sys.stderr.buffer.write(f"{NAME}: warning: {_one_line(message)}\n".encode())
    sys.stderr.flush()


def fail(message: str, code: int) -> int:
    """Print ``tokenboard: error: message`` as one line; returns ``code``."""
    sys.stderr.buffer.write(f"{NAME}: error: {_one_line(message)}\n".encode())
    sys.stderr.flush()
    return code


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
