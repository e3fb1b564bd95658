"""Leaderboards: entries scored by fracbench, verified, rendered and published.

``add`` scores a submission and writes an entry (``entry``, ``store``),
``verify`` re-checks hashes and re-scores (``verify``), ``render`` draws the
Markdown and HTML boards (``ranking``, ``view``, ``render_md``, ``render_html``,
``plots``), ``publish`` pushes the board to the Hugging Face Hub (``publish``).
"""

from __future__ import annotations

from fracbench.leaderboard.entry import (
    ENTRY_LOADERS,
    ENTRY_SCHEMA,
    LeaderboardEntry,
    ModelMeta,
    load_entry,
    parse_meta,
    read_meta,
)
from fracbench.leaderboard.ranking import RankedEntry, rank_entries
from fracbench.leaderboard.render import render_board
from fracbench.leaderboard.store import Board, add_entry
from fracbench.leaderboard.verify import VerifyReport, verify_board

__all__ = [
    "ENTRY_LOADERS",
    "ENTRY_SCHEMA",
    "Board",
    "LeaderboardEntry",
    "ModelMeta",
    "RankedEntry",
    "VerifyReport",
    "add_entry",
    "load_entry",
    "parse_meta",
    "rank_entries",
    "read_meta",
    "render_board",
    "verify_board",
]
