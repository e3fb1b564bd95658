"""Paired ranks on the board: every pair of a task's entries tested on the same resampled groups.

The rule (also printed on the rendered board and in ``leaderboards/README.md``):

1. For every pair of ranked entries of a task, the main-score difference is tested with
   the paired group bootstrap (:mod:`fracbench.paired`): both stored submissions are
   re-scored on the *same* :data:`PAIRED_RESAMPLES` resamples of the test split's
   leakage groups (seed :data:`PAIRED_SEED`), giving a percentile CI and a two-sided p-value.
2. The p-values of all pairs of the task are corrected together with Holm's step-down
   method; a pair is *separated* when its corrected p-value is at most 0.05.
3. Entries are ordered by main score. The best leads class 1; going down, an entry shares
   the rank of its class leader (marked ``≈``) unless the pair (leader, entry) is separated,
   in which case it leads a new class at its own position (1, ≈1, 3, ...).
4. Rank interval: from 1 + the entries separated above it to n - the entries separated below it.
5. Entries whose stored submission cannot be re-read (missing, changed, invalid, or no
   built dataset when the pair is not cached) are not ranked; the page says why.

A pair's result depends only on the two submissions, the split and the bootstrap
settings, so it is cached in ``<board>/paired-cache.json`` keyed by the pair of
submission sha256s (and split sha256, metric, resamples, seed): adding an entry to a
task of n entries costs n paired passes, each new entry against each existing one.
"""

from __future__ import annotations

import gzip
import json
import logging
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fracbench.atomic import write_text
from fracbench.errors import DatasetNotFoundError, FracbenchError
from fracbench.leaderboard.entry import LeaderboardEntry
from fracbench.leaderboard.ranking import RankedEntry, higher_is_better
from fracbench.leaderboard.store import Board
from fracbench.metrics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from fracbench.paired import ALPHA, holm, rank_intervals, significance_classes

log = logging.getLogger(__name__)

CACHE_NAME = "paired-cache.json"
CACHE_SCHEMA = "fracbench.paired-cache/v1"
PAIRED_RESAMPLES = DEFAULT_RESAMPLES
"""Resamples of the board's paired tests (the smallest p-value they can give is 2 / (1 + 1000))."""
PAIRED_SEED = DEFAULT_SEED

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PairCell:
    """The test of one ordered pair (row entry minus column entry).

    Attributes:
        difference: main score of the row entry minus the column entry's.
        ci95: paired 95 % percentile interval of the difference.
        p_value: two-sided paired bootstrap p-value.
        p_holm: Holm-corrected over the task's pairs.
        separated: ``p_holm <= alpha``.
    """

    difference: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    p_holm: float | None
    separated: bool


@dataclass
class PairedTask:
    """A task's paired ranks, pairwise matrix and unranked entries."""

    splits_version: str
    task: str
    metric: str
    higher_is_better: bool
    n_resamples: int = PAIRED_RESAMPLES
    seed: int = PAIRED_SEED
    alpha: float = ALPHA
    order: list[str] = field(default_factory=list)
    ranks: dict[str, tuple[int, bool]] = field(default_factory=dict)
    intervals: dict[str, tuple[int, int]] = field(default_factory=dict)
    unranked: dict[str, str] = field(default_factory=dict)
    cells: dict[tuple[str, str], PairCell] = field(default_factory=dict)

    def ranked_entries(self, entries: list[LeaderboardEntry]) -> list[RankedEntry]:
        """Ranked entries in class order, then the unranked ones (by main score, as :func:`rank_entries`)."""
        from fracbench.leaderboard.ranking import rank_entries

        by_slug = {e.slug: e for e in entries}
        out = [RankedEntry(by_slug[s], i, *self.ranks[s], interval=self.intervals[s]) for i, s in enumerate(self.order, start=1)]
        rest = [r.entry for r in rank_entries([e for e in entries if e.slug not in self.ranks])]
        out += [RankedEntry(e, len(out) + i, None, False) for i, e in enumerate(rest, start=1)]
        return out


@dataclass
class PairedBoard:
    """Every task's :class:`PairedTask` and the work done to get them.

    Attributes:
        tasks: ``(splits_version, task) -> PairedTask``.
        passes: paired passes computed in this run (pairs not found in the cache).
        reused: pairs read from the cache.
    """

    tasks: dict[tuple[str, str], PairedTask] = field(default_factory=dict)
    passes: int = 0
    reused: int = 0


def pair_key(task: str, split_sha: str, metric: str, n_resamples: int, seed: int, sha_a: str, sha_b: str) -> tuple[str, bool]:
    """The cache key of a pair and whether (a, b) is stored reversed (keys order the two sha256s)."""
    lo, hi = sorted((sha_a, sha_b))
    return "|".join((task, split_sha, metric, str(n_resamples), str(seed), lo, hi)), sha_a != lo


def read_cache(board: Board) -> dict[str, dict[str, Any]]:
    """The cached pairs (empty when the file is absent or unreadable: the cache is only a cache)."""
    path = board.root / CACHE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable paired cache (%s); pairs are recomputed", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA or not isinstance(data.get("pairs"), dict):
        log.warning("%s: not a %s file; pairs are recomputed", path, CACHE_SCHEMA)
        return {}
    return {k: v for k, v in data["pairs"].items() if isinstance(v, dict)}


def write_cache(board: Board, new: dict[str, dict[str, Any]]) -> None:
    """Merge ``new`` pairs into the cache file, atomically, under the board lock."""
    with board.locked():
        pairs = read_cache(board)
        pairs.update(new)
        text = json.dumps({"schema": CACHE_SCHEMA, "pairs": dict(sorted(pairs.items()))}, indent=1, sort_keys=True, allow_nan=False)
        write_text(board.root / CACHE_NAME, text + "\n")


class _Loader:
    """Re-reads stored submissions into main-score resample vectors, one ground truth per split."""

    def __init__(self, board: Board, data: str | Path | None, n_resamples: int, seed: int, gt: Any = None):
        self.board, self.n_resamples, self.seed = board, n_resamples, seed
        self.data_dir: Path | None = None
        self.no_data: str | None = None
        self._given = gt
        try:
            from fracbench.dataset.locate import resolve_data_dir

            self.data_dir = resolve_data_dir(data)
        except DatasetNotFoundError as exc:
            self.no_data = f"no built dataset to re-read its submission ({exc})"
        self._gt: dict[tuple[str, str, str], Any] = {}
        self._draws: dict[tuple[str, str], Any] = {}

    def vector(self, entry: LeaderboardEntry) -> tuple[float, Any]:
        """The entry's main score on all images and on the shared resamples.

        Raises:
            FracbenchError: the submission cannot be re-read (message says why).
        """
        from fracbench.paired import SharedDraws
        from fracbench.dataset.groundtruth import load_split_ground_truth
        from fracbench.score import prepare, split_sha256, validated

        if self.data_dir is None and self._given is None:
            raise FracbenchError(self.no_data or "no built dataset")
        prov = entry.result.provenance
        path = self.board.entry_path(entry.splits_version, entry.task, entry.slug).parent / entry.submission.path
        try:
            stored = path.read_bytes()
            raw = stored if entry.submission.stored_as == "verbatim" else gzip.decompress(stored)
        except FileNotFoundError:
            raise FracbenchError(f"its stored submission {entry.submission.path} is absent") from None
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise FracbenchError(f"its stored submission {entry.submission.path} is not readable gzip ({exc})") from None
        import hashlib

        if hashlib.sha256(raw).hexdigest() != entry.submission.sha256:
            raise FracbenchError(f"its stored submission {entry.submission.path} no longer hashes to the recorded sha256")
        key = (prov.splits_version, prov.split, entry.task)
        if self._given is not None:
            self._gt[key] = self._given
        if key not in self._gt:
            self._gt[key] = load_split_ground_truth(self.data_dir, prov.split, entry.task, prov.splits_version)
        gt = self._gt[key]
        if split_sha256(gt) != prov.split_sha256:
            raise FracbenchError(f"the dataset at {self.data_dir} lists another {prov.split} split than the one it was scored on")
        with tempfile.TemporaryDirectory(prefix="fracbench-paired-") as tmp:
            sub = Path(tmp) / "submission.json"
            sub.write_bytes(raw)
            report, _ = validated(sub, gt=gt, split=prov.split)
        prepared = prepare(report, gt)
        dkey = (prov.splits_version, prov.split)
        if dkey not in self._draws:
            self._draws[dkey] = SharedDraws.draw([g.group_id for g in prepared.images], self.n_resamples, self.seed)
        return self._draws[dkey].metric(prepared.evaluation, entry.result.main_score.name)


def pair_board(
    board: Board | str | Path,
    entries: list[LeaderboardEntry],
    *,
    data: str | Path | None = None,
    n_resamples: int = PAIRED_RESAMPLES,
    seed: int = PAIRED_SEED,
    progress: Progress | None = None,
    write: bool = True,
    gt: Any = None,
) -> PairedBoard:
    """Test every pair of every task's entries (cached pairs reused) and rank them.

    Args:
        board: the board (its ``paired-cache.json`` is read and, with ``write``, updated).
        entries: the board's loaded entries.
        data: built dataset directory to re-read submissions with (None: ``$FRACBENCH_DATA``,
            the cache dir; none found: only cached pairs are used).
        n_resamples, seed: the paired bootstrap settings (part of the cache key).
        progress: called with a message before each submission is re-read.
        write: merge newly computed pairs into the cache file.
        gt: ground truth to re-read submissions against instead of loading it from ``data``.

    Returns:
        PairedBoard: per task, ranks, rank intervals, the pairwise matrix and the unranked entries.
    """
    from fracbench.paired import compare_pair

    board = board if isinstance(board, Board) else Board(board)
    cache = read_cache(board)
    loader: _Loader | None = None
    out = PairedBoard()
    new: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, str], list[LeaderboardEntry]] = {}
    for e in entries:
        groups.setdefault((e.splits_version, e.task), []).append(e)
    for (version, task), group in sorted(groups.items()):
        metric = group[0].result.main_score.name
        up = higher_is_better(metric, task)
        paired = PairedTask(version, task, metric, up, n_resamples, seed)
        out.tasks[(version, task)] = paired
        split_shas = [e.result.provenance.split_sha256 for e in group]
        usual = max(set(split_shas), key=split_shas.count)
        candidates = []
        for e in group:
            if e.result.main_score.value is None:
                paired.unranked[e.slug] = f"its {metric} is undefined"
            elif e.result.main_score.name != metric:
                paired.unranked[e.slug] = f"its main score is {e.result.main_score.name}, not {metric}"
            elif e.result.provenance.split_sha256 != usual:
                paired.unranked[e.slug] = "it was scored on another listing of the test split than the other entries"
            else:
                candidates.append(e)
        results: dict[tuple[str, str], dict[str, Any]] = {}
        vectors: dict[str, Any] = {}
        failed: dict[str, str] = {}

        def vector(e: LeaderboardEntry) -> Any:
            nonlocal loader
            if e.slug not in vectors and e.slug not in failed:
                if progress:
                    progress(f"re-reading {task}/{e.slug}")
                loader = loader or _Loader(board, data, n_resamples, seed, gt)
                try:
                    vectors[e.slug] = loader.vector(e)
                except FracbenchError as exc:
                    failed[e.slug] = str(exc)
            return vectors.get(e.slug)

        for i, a in enumerate(candidates):
            for b in candidates[i + 1:]:
                key, reverse = pair_key(task, usual, metric, n_resamples, seed, a.submission.sha256, b.submission.sha256)
                hit = cache.get(key) or new.get(key)
                if hit is not None:
                    out.reused += key in cache
                else:
                    va, vb = vector(a), vector(b)
                    if va is None or vb is None:
                        continue
                    lo, hi = (vb, va) if reverse else (va, vb)
                    test = compare_pair(lo, hi)
                    out.passes += 1
                    hit = new[key] = {"difference": test.difference, "ci95": test.ci95, "p_value": test.p_value, "n_defined": test.n_defined}
                results[(a.slug, b.slug)] = _oriented(hit, reverse)
        missing: set[str] = set()
        for i, a in enumerate(candidates):
            for b in candidates[i + 1:]:
                if (a.slug, b.slug) not in results:  # blame the entry that could not be re-read
                    missing |= {s for s in (a.slug, b.slug) if s in failed} or {a.slug, b.slug}
        ranked = [e for e in candidates if e.slug not in missing]
        for e in candidates:
            if e.slug in missing:
                paired.unranked[e.slug] = failed.get(e.slug) or "its pairs could not be computed (another entry's submission could not be re-read)"
        _rank(paired, ranked, results)
    if write and new:
        write_cache(board, new)
    return out


def _oriented(stored: dict[str, Any], reverse: bool) -> dict[str, Any]:
    """A cached pair as (a - b) when ``reverse`` is False, else flipped to b's view of a."""
    if not reverse:
        return stored
    ci = stored.get("ci95")
    diff = stored.get("difference")
    return {**stored, "difference": None if diff is None else -diff, "ci95": None if ci is None else (-ci[1], -ci[0])}


def _rank(paired: PairedTask, ranked: list[LeaderboardEntry], results: dict[tuple[str, str], dict[str, Any]]) -> None:
    sign = -1.0 if paired.higher_is_better else 1.0

    def key(e: LeaderboardEntry) -> tuple:
        ms = e.result.main_score
        lo, hi = ms.ci95 if ms.ci95 is not None else (ms.value, ms.value)
        return (sign * ms.value, sign * (lo if sign < 0 else hi), e.slug)

    order = [e.slug for e in sorted(ranked, key=key)]
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1:]]
    raw = [results[(a, b)] if (a, b) in results else _oriented(results[(b, a)], True) for a, b in pairs]
    adjusted = holm([r.get("p_value") for r in raw])
    separated: dict[frozenset[str], bool] = {}
    better: dict[tuple[str, str], bool] = {}
    for (a, b), r, q in zip(pairs, raw, adjusted):
        sep = q is not None and q <= paired.alpha
        diff = r.get("difference")
        ci = tuple(r["ci95"]) if r.get("ci95") is not None else None
        separated[frozenset((a, b))] = sep
        if sep and diff is not None and diff != 0:
            a_wins = (diff > 0) == paired.higher_is_better
            better[(a, b) if a_wins else (b, a)] = True
        paired.cells[(a, b)] = PairCell(diff, ci, r.get("p_value"), q, sep)
        flipped = _oriented(r, True)
        paired.cells[(b, a)] = PairCell(flipped["difference"], tuple(flipped["ci95"]) if flipped.get("ci95") else None, r.get("p_value"), q, sep)
    paired.order = order
    paired.ranks = significance_classes(order, separated)
    paired.intervals = rank_intervals(order, better)
