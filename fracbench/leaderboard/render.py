"""Write a board's rendered views: ``README.md`` (Markdown) and ``index.html``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fracbench.atomic import write_text
from fracbench.leaderboard.render_html import render_html
from fracbench.leaderboard.render_md import render_markdown
from fracbench.leaderboard.store import Board


def render_board(
    board: Board | str | Path,
    *,
    data: str | Path | None = None,
    paired: bool = True,
    reports: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Render every entry of a board to ``<board>/README.md`` and ``<board>/index.html``.

    Entries are loaded with their hash and schema checked: a board with a
    tampered entry is not rendered.

    Args:
        board: the board directory or :class:`Board`.
        data: built dataset directory for re-reading stored submissions (paired ranks of
            pairs not yet in ``paired-cache.json``, and reports); None: ``$FRACBENCH_DATA``, cache dir.
        paired: rank by paired tests (:mod:`fracbench.leaderboard.paired`); False: by CI overlap.
        reports: also (re)write each entry's report page, ``<task>/reports/<slug>.html``
            (no error gallery: a board holds no dataset images).
        progress: called with a message as submissions are re-read.

    Returns:
        list[Path]: the files written.

    Raises:
        LeaderboardError: an entry fails its hash or schema check (run ``verify``).
    """
    board = board if isinstance(board, Board) else Board(board)
    entries = board.load_entries()
    pairs = None
    if paired:
        from fracbench.leaderboard.paired import pair_board

        pairs = pair_board(board, entries, data=data, progress=progress)
    written = []
    if reports:
        from fracbench.report.board import write_entry_reports

        written += write_entry_reports(board, entries, data=data, progress=progress)
    links = {e.slug: board.relative(p) for e in entries
             if (p := board.entry_path(e.splits_version, e.task, e.slug).parent / "reports" / f"{e.slug}.html").is_file()}
    return [
        write_text(board.root / "README.md", render_markdown(entries, paired=pairs)),
        write_text(board.root / "index.html", render_html(entries, paired=pairs, reports=links)),
        *written,
    ]
