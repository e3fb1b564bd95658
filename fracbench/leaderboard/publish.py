"""Publish a board (entries, stored submissions, rendered views) to a Hub dataset repo.

Uses :mod:`fracbench.dataset.hub` for planning and pushing; this module only
decides *what* a board publishes and refuses to publish a board that fails its
hash/schema/file checks.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from fracbench import __version__
from fracbench.errors import LeaderboardError
from fracbench.leaderboard.render import render_board
from fracbench.leaderboard.store import BOARD_PREFIX, Board
from fracbench.leaderboard.verify import verify_board

PUBLISHED_PATTERNS = (
    "README.md",
    "index.html",
    f"{BOARD_PREFIX}*/*/*.json",
    f"{BOARD_PREFIX}*/*/submissions/*.json.gz",
    f"{BOARD_PREFIX}*/*/reports/*.html",
    "paired-cache.json",
)
"""What a board upload holds (relative to the board); the lock and temporaries never go."""


def plan_publish(
    board: Board | str | Path,
    *,
    path_in_repo: str = "",
    render: bool = True,
    data: str | Path | None = None,
    allow_unverified: bool = False,
) -> Any:
    """Check the board, re-render it, and plan its upload.

    Args:
        board: the board directory or :class:`Board`.
        path_in_repo: repository folder to publish into ('' for the root).
        render: re-render ``README.md`` and ``index.html`` first, so they match the entries
            (re-scoring every entry, see :func:`render_board`).
        data: built dataset to re-score with when rendering.
        allow_unverified: publish entries that could not be re-scored, marked on the page.

    Returns:
        fracbench.dataset.hub.UploadPlan: every file that would be sent.

    Raises:
        LeaderboardError: an entry fails its hash/schema/file checks (nothing is planned).
        HubError: bad ``path_in_repo`` or an empty board.
    """
    from fracbench.dataset.hub import plan_upload

    board = board if isinstance(board, Board) else Board(board)
    report = verify_board(board, rescore=False)
    failed = [c for c in report.entries if c.status == "failed"]
    if failed:
        first = failed[0]
        raise LeaderboardError(
            f"{board.root}: {len(failed)} entr{'y fails' if len(failed) == 1 else 'ies fail'} verification, "
            f"first {first.path}: {first.problems[0]}; run `fracbench leaderboard verify` and fix before publishing"
        )
    if render:
        render_board(board, data=data, allow_unverified=allow_unverified)
    return plan_upload(board.root, path_in_repo=path_in_repo, allow_patterns=list(PUBLISHED_PATTERNS))


def publish_board(
    plan: Any,
    repo_id: str,
    *,
    create_pr: bool = True,
    token: str | None = None,
    api: Any = None,
) -> Any:
    """Push a planned board to a Hub dataset repository, as a pull request by default.

    Args:
        plan: from :func:`plan_publish`.
        repo_id: ``ORG/NAME`` of the dataset repository.
        create_pr: open a pull request (default) instead of committing to main.
        token: Hub token; default ``HF_TOKEN`` / the stored login.
        api: an ``HfApi``-like object (tests).

    Returns:
        fracbench.dataset.hub.PushResult: the commit and PR URLs.

    Raises:
        HubError: no token or the Hub refused.
    """
    from fracbench.dataset.hub import push

    n_entries = sum(1 for f in plan.files if _is_entry(f.path_in_repo))
    return push(
        plan,
        repo_id,
        repo_type="dataset",
        create_pr=create_pr,
        token=token,
        api=api,
        commit_message=f"Leaderboard: {n_entries} entries (fracbench {__version__})",
        commit_description="Entries scored and verified by `fracbench leaderboard`; "
        "re-check with `fracbench leaderboard verify`.",
    )


def _is_entry(path_in_repo: str) -> bool:
    """An entry file, ``[folder/]fracatlas-<v>/<task>/<slug>.json`` (not the pair cache)."""
    path = PurePosixPath(path_in_repo)
    return path.suffix == ".json" and path.parent.parent.name.startswith(BOARD_PREFIX)
