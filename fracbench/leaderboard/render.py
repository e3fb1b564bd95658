"""Write a board's rendered views: ``README.md`` (Markdown) and ``index.html``.

Only verified numbers are published: every entry is checked as ``fracbench
leaderboard verify`` checks it (hash, schema, place, stored submission, and
re-scoring that submission) before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fracbench.atomic import write_text
from fracbench.errors import LeaderboardError
from fracbench.leaderboard.render_html import render_html
from fracbench.leaderboard.render_md import render_markdown
from fracbench.leaderboard.store import Board, Scorer
from fracbench.leaderboard.verify import VerifyReport, verify_board


def render_board(
    board: Board | str | Path,
    *,
    data: str | Path | None = None,
    scorer: Scorer | None = None,
    allow_unverified: bool = False,
    report: VerifyReport | None = None,
    paired: bool = True,
    reports: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Verify every entry of a board, then render it to ``<board>/README.md`` and ``<board>/index.html``.

    Args:
        board: the board directory or :class:`Board`.
        data: built dataset to re-score the stored submissions with, and to re-read them for
            paired ranks of pairs not yet in ``paired-cache.json`` and for reports (default:
            ``$FRACBENCH_DATA``, then the cache dir).
        scorer: scoring function (tests); default the real scorer.
        allow_unverified: render entries that could not be re-scored, marked
            "unverified" on both pages; otherwise such an entry stops the render.
        report: a :func:`verify_board` report of this board already made (then
            ``data`` and ``scorer`` are not used for verification).
        paired: rank by paired tests (:mod:`fracbench.leaderboard.paired`); False: by CI overlap.
        reports: also (re)write each entry's report page, ``<task>/reports/<slug>.html``
            (no error gallery: a board holds no dataset images).
        progress: called with a message as submissions are re-read.

    Returns:
        list[Path]: the files written.

    Raises:
        LeaderboardError: an entry fails verification (edited, misplaced, stored
            submission absent or changed, re-scores differently), or could not be
            re-scored and ``allow_unverified`` is False. Nothing is written then.
    """
    board = board if isinstance(board, Board) else Board(board)
    if report is None:
        report = verify_board(board, data=data, scorer=scorer) if board.root.is_dir() else VerifyReport(board=str(board.root))
    failed = [c for c in report.entries if c.status == "failed"]
    if failed:
        raise LeaderboardError(
            f"{board.root}: not rendered, {len(failed)} entr{'y fails' if len(failed) == 1 else 'ies fail'} "
            f"verification, first {failed[0].path}: {failed[0].problems[0]}; run `fracbench leaderboard verify`"
        )
    unverified = report.unverified()
    if unverified and not allow_unverified:
        first = unverified[0]
        raise LeaderboardError(
            f"{board.root}: not rendered, {len(unverified)} entr{'y' if len(unverified) == 1 else 'ies'} could not be "
            f"re-scored, first {first.path}: {'; '.join(first.notes)}; pass --data DIR (the built dataset) to "
            "verify them, or --allow-unverified to publish them marked unverified"
        )
    marked = {c.path: "; ".join(c.notes) for c in unverified}  # keyed as view.entry_key keys entries
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
        write_text(board.root / "README.md", render_markdown(entries, unverified=marked, paired=pairs)),
        write_text(board.root / "index.html", render_html(entries, unverified=marked, paired=pairs, reports=links)),
        *written,
    ]
