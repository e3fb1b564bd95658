"""What a rendered board shows, independent of Markdown or HTML.

Groups entries by splits version and task, ranks them, picks the metric
columns and formats numbers, so both renderers show the same board.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fracbench.leaderboard.entry import LeaderboardEntry
from fracbench.leaderboard.ranking import RankedEntry, rank_entries
from fracbench.leaderboard.store import BOARD_PREFIX
from fracbench.vocab import TASKS as TASK_ORDER

"""Tabs/sections in this order; any other task follows alphabetically."""

TASK_CURVES = {"classification": ("roc",), "localization": ("froc", "pr_iou50"), "segmentation": ("pr_iou50",)}
"""Which stored curves each task plots (others are plotted if present, after these)."""


@dataclass
class TaskBoard:
    """One task's ranked board.

    Attributes:
        splits_version: e.g. ``v1``.
        task: e.g. ``classification``.
        main_score: the main score's name (from the entries).
        ranked: entries, best first.
        metrics: secondary metric names, in the task spec's order (then first-seen), without the main score.
        curves: curve kinds stored by at least one entry, plotting order.
    """

    splits_version: str
    task: str
    main_score: str
    ranked: list[RankedEntry] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    curves: list[str] = field(default_factory=list)
    paired: Any = None
    """The task's :class:`~fracbench.leaderboard.paired.PairedTask` when ranked by paired tests, else None."""

    @property
    def key(self) -> str:
        """A DOM/anchor-safe id: ``v1-classification``."""
        return f"{self.splits_version}-{self.task}"


_HIDDEN_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0/C1 controls and the bidi marks, embeddings, overrides and isolates (LRM, RLM, ALM, LRE..RLO, LRI..PDI)."""


def display_text(text: object) -> str:
    """``text`` with control and bidi-control characters removed, for a page.

    A user string can then no longer reorder what follows it (``U+202E`` turning
    ``0.91`` into ``19.0``); the HTML page also isolates each one in ``<bdi>``, so
    right-to-left names still display correctly without leaking into the cells around them.
    """
    return _HIDDEN_CONTROLS.sub("", "" if text is None else str(text))


def entry_key(entry: LeaderboardEntry) -> str:
    """The entry's file relative to the board (``fracatlas-v1/classification/x.json``), as verify names it."""
    return f"{BOARD_PREFIX}{entry.splits_version}/{entry.task}/{entry.slug}.json"


def build_boards(entries: list[LeaderboardEntry], *, tasks: tuple[str, ...] = TASK_ORDER, paired: Any = None) -> list[TaskBoard]:
    """Group, rank and describe entries per (splits version, task).

    Args:
        entries: every entry on the board.
        tasks: tasks that get a (possibly empty) board even without entries.
        paired: a :class:`~fracbench.leaderboard.paired.PairedBoard`: rank by paired tests;
            None ranks by CI overlap (:func:`~fracbench.leaderboard.ranking.rank_entries`).

    Returns:
        list[TaskBoard]: newest splits version first, tasks in :data:`TASK_ORDER`.
    """
    groups: dict[tuple[str, str], list[LeaderboardEntry]] = {}
    versions = {e.splits_version for e in entries} or {"v1"}
    for version in versions:
        for task in tasks:
            groups[(version, task)] = []
    for e in entries:
        groups.setdefault((e.splits_version, e.task), []).append(e)

    def order(item: tuple[str, str]) -> tuple:
        version, task = item
        pos = TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER)
        return (-_version_number(version), pos, task)

    boards = []
    for version, task in sorted(groups, key=order):
        group = groups[(version, task)]
        main = group[0].result.main_score.name if group else _declared_main_score(task)
        metrics: list[str] = []
        curves: list[str] = list(c for c in TASK_CURVES.get(task, ()) if any(c in e.result.curves for e in group))
        for e in group:
            metrics += [m for m in e.result.metrics if m != main and m not in metrics]
            curves += [c for c in e.result.curves if c not in curves]
        declared = _declared_metrics(task)
        metrics.sort(key=lambda m: declared.index(m) if m in declared else len(declared))
        pt = paired.tasks.get((version, task)) if paired is not None else None
        ranked = pt.ranked_entries(group) if pt is not None else rank_entries(group)
        boards.append(TaskBoard(version, task, main, ranked, metrics, curves, pt))
    return boards


def _declared_metrics(task: str) -> list[str]:
    """The task spec's metric names in its documented order (empty for an unknown task)."""
    from fracbench.errors import ScoringError
    from fracbench.tasks import get_task

    try:
        return list(get_task(task).higher_is_better)
    except ScoringError:
        return []


def _declared_main_score(task: str) -> str:
    """The main score the task's spec declares ('' for a task fracbench does not know)."""
    from fracbench.errors import ScoringError
    from fracbench.tasks import get_task

    try:
        return get_task(task).main_score
    except ScoringError:
        return ""


def _version_number(version: str) -> int:
    digits = "".join(ch for ch in version if ch.isdigit())
    return int(digits) if digits else 0


_LABEL_WORDS = {"sensitivity": "sens", "specificity": "spec", "balanced": "bal.", "accuracy": "acc.", "image": "img",
                "froc": "FROC", "cpm": "CPM", "negative": "neg.", "fp": "FP"}
"""Long words of metric names shortened in column headers (the full name stays in the header's tooltip)."""


def metric_label(name: str) -> str:
    """A compact column header for a metric name, its words separated by spaces so it can wrap.

    ``sensitivity_at_specificity_0.9`` -> ``sens @spec 0.9``; ``froc_sensitivity_at_0.125`` ->
    ``FROC @0.125``; ``balanced_accuracy`` -> ``bal. acc.``; short names (``auroc``, ``ap50``) stay.
    """
    text = display_text(name)
    if text.startswith("froc_sensitivity_at_"):
        return "FROC @" + text.removeprefix("froc_sensitivity_at_")
    words = [_LABEL_WORDS.get(w, w) for w in text.split("_")]
    return " ".join(words).replace(" at ", " @")


def fmt_value(value: float | None, digits: int = 3) -> str:
    """``0.912`` or ``—`` when undefined."""
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_ci(ci: tuple[float, float] | None, digits: int = 3) -> str:
    """``[0.889, 0.934]`` or empty."""
    return "" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def fmt_params(n: int | None) -> str:
    """Parameter count as ``25.6M`` / ``820K`` / ``—``."""
    if n is None:
        return "—"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
