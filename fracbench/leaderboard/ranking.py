"""Ranking entries by main score, with ties made visible by CI overlap.

The rule (also printed on the rendered board):

1. Entries are ordered by main score, best first (ties broken by the higher CI
   lower bound, then by slug); entries without a score come last, unranked.
2. The first entry leads tier 1. Going down the list, an entry whose 95 % CI
   overlaps the CI of the *leader of the current tier* shares that leader's rank
   and is marked ``≈`` (statistically indistinguishable from it); the first entry
   whose CI does not overlap starts a new tier and takes its own position as
   rank (competition ranking: 1, ≈1, ≈1, 4, ...).
3. Comparing with the tier leader only (not with every member) keeps tiers from
   chaining: A≈B and B≈C never put C level with A unless C overlaps A.
   An entry without a CI overlaps only an equal score.
"""

from __future__ import annotations

from dataclasses import dataclass

from fracbench.leaderboard.entry import LeaderboardEntry

LOWER_IS_BETTER = frozenset({"brier", "ece", "log_loss", "hd95", "hausdorff95", "fp_per_image", "negative_fp_rate"})
"""Fallback for metrics no task spec declares: names where a smaller value is better."""

TIE_MARK = "≈"


@dataclass(frozen=True)
class RankedEntry:
    """An entry with its place on a task's board.

    Attributes:
        entry: the leaderboard entry.
        position: 1-based position in the ordered list.
        rank: shared rank (the tier leader's position), None when unscored.
        tied: True when the rank is shared with a better tier leader through CI overlap
            (or, with paired ranks, when the paired test does not separate it from its class leader).
        interval: with paired ranks (:mod:`fracbench.leaderboard.paired`), the ranks it can take.
    """

    entry: LeaderboardEntry
    position: int
    rank: int | None
    tied: bool
    interval: tuple[int, int] | None = None

    @property
    def rank_label(self) -> str:
        """``1``, ``≈1`` or ``—``."""
        if self.rank is None:
            return "—"
        return f"{TIE_MARK}{self.rank}" if self.tied else str(self.rank)


def higher_is_better(main_score_name: str, task: str | None = None) -> bool:
    """Whether a larger value of the named score is better.

    The task's spec (``fracbench.tasks``) decides when it declares the metric;
    otherwise :data:`LOWER_IS_BETTER` does.
    """
    if task is not None:
        from fracbench.errors import ScoringError
        from fracbench.tasks import get_task

        try:
            return bool(get_task(task).higher_is_better[main_score_name])
        except (ScoringError, KeyError):
            pass
    return main_score_name not in LOWER_IS_BETTER


def _interval(entry: LeaderboardEntry) -> tuple[float, float] | None:
    ms = entry.result.main_score
    if ms.value is None:
        return None
    return tuple(ms.ci95) if ms.ci95 is not None else (ms.value, ms.value)


def overlaps(a: LeaderboardEntry, b: LeaderboardEntry) -> bool:
    """Whether the main-score CIs of two entries overlap (closed intervals)."""
    ia, ib = _interval(a), _interval(b)
    if ia is None or ib is None:
        return False
    return ia[0] <= ib[1] and ib[0] <= ia[1]


def rank_entries(entries: list[LeaderboardEntry]) -> list[RankedEntry]:
    """Order one task's entries and assign CI-overlap tiers (see module docstring).

    Args:
        entries: entries of a single task (one main score).

    Returns:
        list[RankedEntry]: best first.
    """

    def key(e: LeaderboardEntry) -> tuple:
        ms = e.result.main_score
        if ms.value is None:
            return (1, 0.0, 0.0, e.slug)
        sign = -1.0 if higher_is_better(ms.name, e.task) else 1.0
        lo, hi = _interval(e)
        bound = lo if sign < 0 else hi
        return (0, sign * ms.value, sign * bound, e.slug)

    ranked: list[RankedEntry] = []
    leader: LeaderboardEntry | None = None
    leader_rank = 0
    for position, entry in enumerate(sorted(entries, key=key), start=1):
        if entry.result.main_score.value is None:
            ranked.append(RankedEntry(entry, position, None, False))
            continue
        if leader is not None and overlaps(leader, entry):
            ranked.append(RankedEntry(entry, position, leader_rank, True))
        else:
            leader, leader_rank = entry, position
            ranked.append(RankedEntry(entry, position, position, False))
    return ranked
