"""The board directory: where entries live, the lock, and adding an entry.

Layout (``<board>`` is the repo's ``leaderboards/`` by default)::

    <board>/.lock                                       file lock (filelock) for read-check-write
    <board>/fracatlas-v1/<task>/<slug>.json             one entry per scored submission
    <board>/fracatlas-v1/<task>/submissions/<slug>.json.gz   the submission, for re-scoring

``add`` scores the submission itself (numbers never come from the submitter),
then, holding the lock, re-checks for duplicates and writes the submission and
the entry atomically, so two ``add`` at once lose nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from fracbench import PROTOCOL_VERSION
from fracbench.atomic import write_bytes, write_text
from fracbench.errors import LeaderboardError
from fracbench.leaderboard.entry import LeaderboardEntry, ModelMeta, SubmissionRef, dump_entry, load_entry
from fracbench.result import Result

log = logging.getLogger(__name__)

BOARD_PREFIX = "fracatlas-"
ACCEPTED_SPLITS_VERSIONS = ("v1",)
"""Splits versions a board takes entries for (one ``fracatlas-<v>/`` dir each)."""
LEADERBOARD_SPLIT = "test"
GZIP_MAGIC = b"\x1f\x8b"

Scorer = Callable[..., Result]
"""``scorer(path, *, data, split, n_resamples, seed) -> Result``, like ``fracbench.score.score_submission``."""


def default_scorer() -> Scorer:
    """``fracbench.score.score_submission``, imported on first use."""
    from fracbench.score import score_submission

    return score_submission


class Board:
    """A leaderboard directory.

    Args:
        root: the board directory (``leaderboards/``).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def version_dir(self, splits_version: str) -> Path:
        """``<board>/fracatlas-<splits_version>``."""
        return self.root / f"{BOARD_PREFIX}{splits_version}"

    def entry_path(self, splits_version: str, task: str, slug: str) -> Path:
        """Where the entry ``slug`` of ``task`` lives."""
        return self.version_dir(splits_version) / task / f"{slug}.json"

    def submission_path(self, splits_version: str, task: str, slug: str) -> Path:
        """Where the gzipped submission of entry ``slug`` lives."""
        return self.version_dir(splits_version) / task / "submissions" / f"{slug}.json.gz"

    def entry_files(self) -> list[Path]:
        """Every entry file on the board, sorted by path."""
        return sorted(p for p in self.root.glob(f"{BOARD_PREFIX}*/*/*.json") if p.is_file())

    def relative(self, path: Path) -> str:
        """``path`` relative to the board root, POSIX style, for messages."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def load_entries(self) -> list[LeaderboardEntry]:
        """Load every entry, checking hash and schema.

        Raises:
            LeaderboardError: an entry is invalid; run ``fracbench leaderboard verify`` for all.
        """
        return [load_entry(p) for p in self.entry_files()]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on ``<board>/.lock`` (``filelock``: flock on POSIX, msvcrt on Windows)."""
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / ".lock")):
            yield

    def stored_submission_hashes(self) -> dict[str, str]:
        """``{submission sha256: entry path}`` read from every entry file's raw JSON."""
        found: dict[str, str] = {}
        for path in self.entry_files():
            with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
                sha = json.loads(path.read_text(encoding="utf-8"))["submission"]["sha256"]
                found.setdefault(sha, self.relative(path))
        return found


def check_result_accepted(result: Result, *, source: str) -> None:
    """Refuse a Result scored for another splits/protocol version or split.

    Raises:
        LeaderboardError: naming the version found and the one the board takes.
    """
    prov = result.provenance
    if prov.splits_version not in ACCEPTED_SPLITS_VERSIONS:
        raise LeaderboardError(
            f"{source}: scored on splits version {prov.splits_version!r}; leaderboards accept "
            f"splits {', '.join(ACCEPTED_SPLITS_VERSIONS)} only: predict the test split of splits "
            f"{ACCEPTED_SPLITS_VERSIONS[-1]} and add that file"
        )
    if prov.protocol_version != PROTOCOL_VERSION:
        raise LeaderboardError(
            f"{source}: scored under protocol {prov.protocol_version!r}; this fracbench's board "
            f"takes protocol {PROTOCOL_VERSION!r}: re-score with a matching fracbench version"
        )
    if prov.split != LEADERBOARD_SPLIT:
        raise LeaderboardError(
            f"{source}: predictions are for the {prov.split!r} split; leaderboard entries are "
            f"scored on the {LEADERBOARD_SPLIT!r} split only"
        )


def _check_duplicates(board: Board, *, sha256: str, path: Path | None, source: str) -> None:
    existing = board.stored_submission_hashes().get(sha256)
    if existing is not None:
        raise LeaderboardError(
            f"{source}: this submission (sha256 {sha256[:12]}...) is already on the board as "
            f"{existing}; a submission is added once"
        )
    if path is not None and path.exists():
        raise LeaderboardError(
            f"{source}: slug {path.stem!r} is already taken by {board.relative(path)}; "
            "choose another `slug:` (or name) in the metadata file"
        )


def add_entry(
    board: Board | str | Path,
    submission: str | Path,
    meta: ModelMeta,
    *,
    data: str | Path | None = None,
    scorer: Scorer | None = None,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> tuple[LeaderboardEntry, Path]:
    """Score a submission and add it to the board.

    Args:
        board: the board directory or :class:`Board`.
        submission: the ``preds.json`` file (plain or gzipped JSON; stored gzipped).
        meta: validated model metadata (see :func:`~fracbench.leaderboard.entry.read_meta`).
        data: built dataset directory for scoring (``--data``).
        scorer: scoring function; defaults to ``fracbench.score.score_submission``.
        n_resamples: bootstrap resamples for the CIs (None: the scorer's default).
        seed: bootstrap seed (None: the scorer's default).

    Returns:
        tuple: the new entry and the path it was written to.

    Raises:
        LeaderboardError: duplicate submission or slug, another splits/protocol version,
            or a missing submission file.
        SubmissionError, ScoringError: from the scorer when the submission is invalid.
    """
    board = board if isinstance(board, Board) else Board(board)
    submission = Path(submission)
    try:
        raw = submission.read_bytes()
    except OSError as exc:
        raise LeaderboardError(f"{submission}: cannot read the submission file ({exc.strerror})") from None
    sha = hashlib.sha256(raw).hexdigest()
    already_gzip = raw[:2] == GZIP_MAGIC
    slug = meta.resolved_slug()
    source = str(submission)
    _check_duplicates(board, sha256=sha, path=None, source=source)  # fail fast, before scoring

    score = scorer or default_scorer()
    options = {k: v for k, v in (("n_resamples", n_resamples), ("seed", seed)) if v is not None}
    result = score(submission, data=data, split=None, **options)
    check_result_accepted(result, source=source)
    if result.provenance.submission_sha256 != sha:
        raise LeaderboardError(
            f"{source}: the scorer reports submission sha256 {result.provenance.submission_sha256[:12]}..., "
            f"the file hashes to {sha[:12]}...; was the file changed while it was scored?"
        )
    splits_version = result.provenance.splits_version
    entry = LeaderboardEntry(
        slug=slug,
        task=result.task,
        splits_version=splits_version,
        added_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        model=meta.model_copy(update={"slug": slug}),
        submission=SubmissionRef(sha256=sha, path=f"submissions/{slug}.json.gz", size=len(raw),
                                 stored_as="verbatim" if already_gzip else "gzip"),
        result=result,
    )
    text = dump_entry(entry)
    stored = raw if already_gzip else gzip.compress(raw, mtime=0)
    entry_path = board.entry_path(splits_version, result.task, slug)
    with board.locked():
        _check_duplicates(board, sha256=sha, path=entry_path, source=source)
        # The submission first: an entry on disk always has its submission beside it.
        write_bytes(board.submission_path(splits_version, result.task, slug), stored)
        write_text(entry_path, text)
    log.info("added %s", board.relative(entry_path))
    return load_entry(entry_path), entry_path
