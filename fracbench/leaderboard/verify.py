"""Verify a board: every entry's hash, schema and place, and re-score what can be.

An entry passes when its file hashes to its ``entry_sha256``, it validates, it
sits where its slug/task/splits version say, its stored submission hashes to
the recorded sha256, and (when the submission and a built dataset are there)
re-scoring that submission with the recorded bootstrap settings reproduces the
stored Result, up to the time stamp and fracbench version. Editing a number
breaks the hash; editing a number *and* re-sealing the hash breaks re-scoring.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from fracbench.errors import DatasetNotFoundError, FracbenchError, LeaderboardError
from fracbench.leaderboard.entry import LeaderboardEntry, load_entry
from fracbench.leaderboard import store
from fracbench.leaderboard.store import BOARD_PREFIX, Board, Scorer
from fracbench.metrics.bootstrap import MAX_RESAMPLES

IGNORED_ON_RESCORE = {("provenance", "scored_at"), ("provenance", "fracbench_version")}
"""Result fields that legitimately differ between scoring runs."""

REL_TOL = 1e-9
"""Re-scored floats must agree to this relative tolerance (platform rounding only)."""


class EntryCheck(BaseModel):
    """The verdict on one entry file.

    Attributes:
        path: the entry, relative to the board.
        status: ``ok`` (checks passed and re-scoring reproduced it), ``failed`` (edited,
            misplaced, stored submission absent or changed, or re-scoring differs), or
            ``unverified`` (checks passed but it could not be re-scored: no dataset, another
            dataset, or ``--no-rescore``).
        problems: why it failed, one line each.
        notes: why re-scoring was skipped, and other remarks.
    """

    path: str
    status: Literal["ok", "failed", "unverified"] = "ok"
    problems: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class VerifyReport(BaseModel):
    """Every entry's verdict plus board-level remarks.

    Attributes:
        board: the board directory.
        rescore_skipped: why nothing was re-scored (no dataset, no scorer), if so.
        entries: one check per entry file.
        notes: board-level remarks (orphan submission files).
    """

    board: str
    rescore_requested: bool = True
    rescore_skipped: str | None = None
    entries: list[EntryCheck] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No entry failed (hashes, schema, files and, where done, re-scoring)."""
        return all(e.status != "failed" for e in self.entries)

    @property
    def verified(self) -> bool:
        """Every entry was re-scored and reproduced its stored numbers."""
        return all(e.status == "ok" for e in self.entries)

    def unverified(self) -> list[EntryCheck]:
        """The entries whose numbers could not be checked by re-scoring."""
        return [e for e in self.entries if e.status == "unverified"]


def diff_results(stored: Any, rescored: Any, path: tuple[str, ...] = (), *, limit: int = 8) -> list[str]:
    """Where two Result dicts differ, as ``result.a.b: stored X, re-scored Y`` lines.

    Floats compare with relative tolerance :data:`REL_TOL`; fields in
    :data:`IGNORED_ON_RESCORE` are skipped.
    """
    out: list[str] = []

    def walk(a: Any, b: Any, where: tuple[str, ...]) -> None:
        if len(out) >= limit or where in IGNORED_ON_RESCORE:
            return
        name = "result." + ".".join(where) if where else "result"
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if key not in a or key not in b:
                    if (*where, key) not in IGNORED_ON_RESCORE:
                        side = "stored only" if key in a else "re-scored only"
                        out.append(f"{name}.{key}: {side}")
                    continue
                walk(a[key], b[key], (*where, key))
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                out.append(f"{name}: stored {len(a)} values, re-scored {len(b)}")
                return
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, (*where, str(i)))
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12):
                out.append(f"{name}: stored {a!r}, re-scored {b!r}")
        elif a != b:
            out.append(f"{name}: stored {a!r}, re-scored {b!r}")

    walk(stored, rescored, path)
    return out


def _place_problems(board: Board, path: Path, entry: LeaderboardEntry) -> list[str]:
    problems = []
    version_dir, task_dir = path.parent.parent.name, path.parent.name
    if version_dir != f"{BOARD_PREFIX}{entry.splits_version}":
        problems.append(f"splits_version {entry.splits_version!r} but the file is under {version_dir}/")
    if task_dir != entry.task or entry.result.task != entry.task:
        problems.append(f"task {entry.task!r} (result: {entry.result.task!r}) but the file is under {task_dir}/")
    if path.stem != entry.slug:
        problems.append(f"slug {entry.slug!r} but the file is named {path.name}")
    if entry.submission.path != f"submissions/{entry.slug}.json.gz":
        problems.append(f"submission.path {entry.submission.path!r} is not submissions/{entry.slug}.json.gz")
    if entry.result.provenance.splits_version != entry.splits_version:
        problems.append(
            f"result scored on splits {entry.result.provenance.splits_version!r}, entry says {entry.splits_version!r}"
        )
    if entry.result.provenance.submission_sha256 != entry.submission.sha256:
        problems.append("result.provenance.submission_sha256 differs from submission.sha256")
    return problems


def _rescore(
    entry: LeaderboardEntry, raw: bytes, scorer: Scorer, data: Path, check: EntryCheck
) -> None:
    prov = entry.result.provenance
    n = prov.bootstrap.n_resamples
    if not 0 <= n <= MAX_RESAMPLES:  # checked here so no scorer is ever asked for unbounded work
        check.problems.append(
            f"result.provenance.bootstrap.n_resamples: expected 0 to {MAX_RESAMPLES:,} (what fracbench "
            f"scores with), found {n:,}; fracbench did not score this entry"
        )
        return
    with tempfile.TemporaryDirectory(prefix="fracbench-verify-") as tmp:
        sub = Path(tmp) / (f"{entry.slug}.json.gz" if entry.submission.stored_as == "verbatim" else f"{entry.slug}.json")
        sub.write_bytes(raw)
        try:
            again = scorer(sub, data=data, split=prov.split, n_resamples=prov.bootstrap.n_resamples, seed=prov.bootstrap.seed)
        except FracbenchError as exc:
            check.problems.append(f"re-scoring the stored submission failed: {exc}")
            return
    if again.provenance.dataset_fingerprint != prov.dataset_fingerprint:
        check.notes.append(
            f"not re-scored: the dataset at {data} has fingerprint {again.provenance.dataset_fingerprint[:12]}..., "
            f"the entry was scored against {prov.dataset_fingerprint[:12]}... (build the dataset from the complete release)"
        )
        return
    stored = entry.result.model_dump(mode="json", by_alias=True)
    check.problems.extend(diff_results(stored, again.model_dump(mode="json", by_alias=True)))


def verify_board(
    board: Board | str | Path,
    *,
    data: str | Path | None = None,
    scorer: Scorer | None = None,
    rescore: bool = True,
    progress: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Check every entry on a board; re-score those whose submission is stored.

    Args:
        board: the board directory or :class:`Board`.
        data: built dataset directory (``--data``; else ``$FRACBENCH_DATA``, cache dir).
        scorer: scoring function; defaults to ``fracbench.score.score_submission``.
        rescore: False checks hashes, schema and files only.
        progress: called with each entry's relative path before it is checked.

    Returns:
        VerifyReport: one :class:`EntryCheck` per entry file; ``report.ok`` is the verdict.

    Raises:
        LeaderboardError: the board directory does not exist.
    """
    board = board if isinstance(board, Board) else Board(board)
    if not board.root.is_dir():
        raise LeaderboardError(f"{board.root}: no leaderboard directory here; pass --board DIR")
    report = VerifyReport(board=str(board.root), rescore_requested=rescore)
    data_dir: Path | None = None
    if not rescore:
        report.rescore_skipped = "re-scoring not requested"
    else:
        try:
            from fracbench.dataset.locate import resolve_data_dir

            data_dir = resolve_data_dir(data)
            scorer = scorer or store.default_scorer()
        except (DatasetNotFoundError, LeaderboardError) as exc:
            report.rescore_skipped = str(exc)
            data_dir = None

    seen: dict[str, str] = {}
    for path in board.entry_files():
        rel = board.relative(path)
        if progress:
            progress(rel)
        check = EntryCheck(path=rel)
        report.entries.append(check)
        try:
            entry = load_entry(path)
        except LeaderboardError as exc:
            check.problems.append(str(exc).removeprefix(f"{path}: "))
            check.status = "failed"
            continue
        check.problems.extend(_place_problems(board, path, entry))
        first = seen.setdefault(entry.submission.sha256, rel)
        if first != rel:
            check.problems.append(f"same submission as {first}")
        sub_path = path.parent / entry.submission.path
        raw = None
        try:
            stored = sub_path.read_bytes()
            raw = stored if entry.submission.stored_as == "verbatim" else gzip.decompress(stored)
        except FileNotFoundError:
            # Without it nothing backs the numbers: deleting it is how a re-sealed forgery would hide.
            check.problems.append(
                f"stored submission {entry.submission.path} is absent, so the entry's numbers cannot be "
                "re-scored; restore the file or remove the entry"
            )
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            check.problems.append(f"{entry.submission.path} is not a readable gzip file ({exc})")
        if raw is not None:
            sha = hashlib.sha256(raw).hexdigest()
            if sha != entry.submission.sha256:
                check.problems.append(
                    f"{entry.submission.path} holds a submission hashing to {sha[:12]}..., the entry records "
                    f"{entry.submission.sha256[:12]}...: the stored submission was changed"
                )
            elif data_dir is not None and scorer is not None:
                _rescore(entry, raw, scorer, data_dir, check)
            else:
                check.notes.append(f"not re-scored: {report.rescore_skipped}")
        if check.problems:
            check.status = "failed"
        elif check.notes:
            check.status = "unverified"

    referenced = {p.parent / "submissions" / f"{p.stem}.json.gz" for p in board.entry_files()}
    for sub in sorted(board.root.glob(f"{BOARD_PREFIX}*/*/submissions/*.json.gz")):
        if sub not in referenced:
            report.notes.append(f"{board.relative(sub)}: no entry refers to this submission file")
    return report
