"""Report pages of leaderboard entries, written beside them and linked from the board.

``<board>/fracatlas-<splits>/<task>/reports/<slug>.html`` is the report of the entry's
stored submission, scored with the entry's recorded bootstrap settings. A board holds
no dataset image, so these pages have no error gallery (``fracbench report --data DIR``
draws it locally).
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from fracbench.errors import FracbenchError
from fracbench.leaderboard.entry import LeaderboardEntry
from fracbench.leaderboard.store import Board

log = logging.getLogger(__name__)


def report_path(board: Board, entry: LeaderboardEntry) -> Path:
    """Where the entry's report page lives."""
    return board.entry_path(entry.splits_version, entry.task, entry.slug).parent / "reports" / f"{entry.slug}.html"


def write_entry_reports(
    board: Board, entries: list[LeaderboardEntry], *, data: str | Path | None = None, progress: Callable[[str], None] | None = None
) -> list[Path]:
    """Write every entry's report page (entries whose submission cannot be re-read are skipped, logged).

    Returns:
        list[Path]: the pages written.
    """
    from fracbench.report.page import make_report

    written = []
    for e in entries:
        if progress:
            progress(f"report {e.task}/{e.slug}")
        stored = board.entry_path(e.splits_version, e.task, e.slug).parent / e.submission.path
        try:
            raw = stored.read_bytes()
            raw = raw if e.submission.stored_as == "verbatim" else gzip.decompress(raw)
            with tempfile.TemporaryDirectory(prefix="fracbench-report-") as tmp:
                sub = Path(tmp) / f"{e.slug}.json"
                sub.write_bytes(raw)
                boot = e.result.provenance.bootstrap
                path, _, _ = make_report(sub, report_path(board, e), data=data, gallery=False,
                                         n_resamples=boot.n_resamples, seed=boot.seed, label=board.relative(stored))
            written.append(path)
        except (OSError, EOFError, zlib.error, FracbenchError) as exc:
            log.warning("%s: no report written: %s", board.relative(stored), exc)
    return written
