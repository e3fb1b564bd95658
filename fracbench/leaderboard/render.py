"""Write a board's rendered views: ``README.md`` (Markdown) and ``index.html``."""

from __future__ import annotations

from pathlib import Path

from fracbench.atomic import write_text
from fracbench.leaderboard.render_html import render_html
from fracbench.leaderboard.render_md import render_markdown
from fracbench.leaderboard.store import Board


def render_board(board: Board | str | Path) -> list[Path]:
    """Render every entry of a board to ``<board>/README.md`` and ``<board>/index.html``.

    Entries are loaded with their hash and schema checked: a board with a
    tampered entry is not rendered.

    Args:
        board: the board directory or :class:`Board`.

    Returns:
        list[Path]: the two files written.

    Raises:
        LeaderboardError: an entry fails its hash or schema check (run ``verify``).
    """
    board = board if isinstance(board, Board) else Board(board)
    entries = board.load_entries()
    return [
        write_text(board.root / "README.md", render_markdown(entries)),
        write_text(board.root / "index.html", render_html(entries)),
    ]
