"""The ``fracbench`` command line: thin, it parses, calls the library and renders.

Each command group lives in its own module with a ``register(subparsers)``
function; heavy imports (torch, datasets) happen inside the command functions
so ``fracbench --help`` stays instant.

Exit codes: 0 ok, 1 invalid input or a failed check, 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from fracbench import __version__
from fracbench.errors import FracbenchError, closest

GROUPS = ("release", "download", "splits", "dataset", "hub", "scoring", "report", "leaderboard", "baseline", "convert", "quickstart")

console = Console()
err_console = Console(stderr=True)

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Control characters (terminal escape sequences) and bidi overrides: shown as escapes, never obeyed."""


def progress_bar(*, label: str = "{task.description}", console: Any = None, transient: bool = True, remaining: bool = False,
                 disable: bool = False) -> Any:
    """The CLI's one kind of progress bar for counted work: label, bar, done/total, elapsed (and remaining).

    Args:
        label: the text column (a rich ``task`` format string, or a fixed label).
        console: where it draws (default: stderr, so stdout stays clean for results).
        transient: erase it when done.
        remaining: also show the estimated time remaining.
        disable: draw nothing (e.g. on non-zero ranks of a distributed run).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=console or err_console, transient=transient, disable=disable)


def safe(value: object) -> str:
    """``value`` as text to embed in a rich markup line: markup escaped, control characters made visible.

    Every message that quotes user input or file content goes through here (the one escaping point
    of CLI output): a path like ``/tmp/[bold]x`` prints as typed, ``[x, y, w, h]`` survives, and an
    ESC in a model name cannot move the cursor.
    """
    text = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                       str(value))
    return escape(text)


class _Parser(argparse.ArgumentParser):
    """argparse with a 'did you mean' for mistyped commands and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102
        if "invalid choice" in message and self._subparsers is not None:
            for action in self._subparsers._group_actions:
                if isinstance(action, argparse._SubParsersAction):
                    bad = message.split("'")[1] if "'" in message else ""
                    near = closest(bad, action.choices)
                    if near:
                        message = f"unknown command '{bad}'. Did you mean: {near}?"
        self.print_usage(sys.stderr)
        err_console.print(f"[red]error:[/red] {safe(message)}", highlight=False)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, every command group registered."""
    import importlib

    parser = _Parser(
        prog="fracbench",
        description="FracAtlas as a benchmark: audit, frozen splits, dataset, scoring, leaderboards, baselines.",
    )
    parser.add_argument("--version", action="version", version=f"fracbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for group in GROUPS:
        module = importlib.import_module(f"fracbench.cli.{group}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FracbenchError as exc:
        err_console.print(f"[red]error:[/red] {safe(exc)}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print(
            "[red]interrupted[/red]; nothing half-written is at a final path (a download resumes from its .part)"
        )
        return 130
