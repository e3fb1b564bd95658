"""Do images of one patient or study sit next to each other in id order? Measure, then group.

FracAtlas has no patient identifier. Its ids are sequential, and two views of one
wrist, or a repeat exposure, may have been numbered one after the other. This module
measures that with the data (:class:`NeighbourStudy`): how often ids ``n`` and ``n+k``
share body region, view, hardware and label for each lag ``k``, and how similar
consecutive images are against random pairs with the same region and hardware flags.

The grouping rule it supports is deliberately conservative: ids ``n`` and ``n+1``
(both present) are *same-study neighbours* when their region and hardware flags agree
(``hand, leg, hip, shoulder, mixed, hardware``; the view may differ) and their 16x16
equalised contents correlate at least ``neighbour_tiny``. The report gives the share
of such pairs among consecutive and among random pairs with the same flags, so the
precision of the rule is an estimate, not an assertion. Two views that do not look
alike (frontal and lateral) are *not* caught, and nothing here can prove that two
images come from one patient. ``region_run_groups`` (maximal runs of consecutive ids
with one body region) is the broad alternative, offered for a lead to weigh.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from fracbench.release import similarity as sim
from fracbench.release.records import ImageRecord

REGION = ("hand", "leg", "hip", "shoulder", "mixed")
VIEW = ("frontal", "lateral", "oblique")
RULE_FLAGS = (*REGION, "hardware")
"""Flags two neighbours must share (region and hardware; the view may differ)."""
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
LAGS = (1, 2, 3, 5, 10, 50, 200)
RANDOM_PAIRS = 100_000
THRESHOLD_GRID = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
SEED = 0


class PairSet(BaseModel):
    """The content correlation over one set of pairs."""

    pairs: int
    quantiles: list[float] = Field(description="at NeighbourStudy.quantile_levels")
    at_or_above_threshold: float = Field(description="share of pairs with correlation >= the threshold")


class LagAgreement(BaseModel):
    """Shares of pairs ``(n, n+lag)`` (both present) agreeing on each attribute."""

    pairs: int
    region: float
    view: float
    hardware: float
    label: float
    median_correlation: float


class ThresholdRow(BaseModel):
    """The neighbour rule at one correlation threshold."""

    pairs: int = Field(description="consecutive same-flag pairs at or above it")
    consecutive_share: float
    random_share: float
    estimated_precision: float


class NeighbourStudy(BaseModel):
    """Consecutive ids against random pairs; see the module docstring."""

    seed: int = SEED
    threshold: float
    rule_flags: list[str] = list(RULE_FLAGS)
    quantile_levels: list[float] = list(QUANTILES)
    consecutive: PairSet
    consecutive_same_flags: PairSet
    random: PairSet
    random_same_flags: PairSet
    by_lag: dict[str, LagAgreement]
    enrichment: float = Field(description="consecutive vs random same-flag share above the threshold")
    estimated_precision: float = Field(
        description="1 - random/consecutive share above the threshold: the share of grouped pairs "
                    "that chance alone would not explain")
    neighbour_pairs: int
    by_threshold: dict[str, ThresholdRow] = Field(description="the rule at other correlation thresholds")
    region_runs: int = Field(description="maximal runs of consecutive ids with one region (singletons included)")
    largest_region_run: int
    borderline: list[tuple[str, str, float]] = Field(
        description="consecutive same-flag pairs within 0.1 of the threshold, by correlation descending")


def neighbour_pairs(
    records: Sequence[ImageRecord], prints: Sequence[sim.ImageFingerprint], threshold: float
) -> tuple[NeighbourStudy, list[tuple[str, str]], list[tuple[str, str]]]:
    """Measure the id-order signal; list the neighbour pairs and the same-region links.

    Args:
        records: the audited (present) records, in id order, aligned with ``prints``.
        prints: their fingerprints.
        threshold: the ``neighbour_tiny`` correlation.

    Returns:
        tuple: the study, the neighbour pairs ``(id_n, id_n+1)`` and the same-region links
        ``(id_n, id_n+1)`` whose components are the region runs.
    """
    n = len(records)
    tiny = sim.tiny_vectors(np.stack([p.square for p in prints])) if n else np.zeros((0, 1), np.float32)
    flags = np.array([[getattr(r, f) for f in RULE_FLAGS] for r in records], dtype=bool).reshape(n, -1)
    views = np.array([[getattr(r, f) for f in VIEW] for r in records], dtype=bool).reshape(n, -1)
    labels = np.array([r.fractured for r in records], dtype=bool)
    numbers = np.array([int(r.image_id[3:]) if r.image_id[3:].isdigit() else -10 * (k + 1)
                        for k, r in enumerate(records)])
    position = {int(v): k for k, v in enumerate(numbers)}

    def lagged(lag: int) -> tuple[np.ndarray, np.ndarray]:
        a = np.array([k for k, v in enumerate(numbers) if int(v) + lag in position], dtype=int)
        return a, np.array([position[int(numbers[k]) + lag] for k in a], dtype=int)

    def corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", tiny[a], tiny[b]) if len(a) else np.zeros(0)

    a, b = lagged(1)
    cons_corr = corr(a, b)
    cons_same = (flags[a] == flags[b]).all(axis=1)
    rng = np.random.default_rng(SEED)
    ra, rb = rng.integers(max(n, 1), size=RANDOM_PAIRS), rng.integers(max(n, 1), size=RANDOM_PAIRS)
    keep = ra != rb
    ra, rb = ra[keep], rb[keep]
    rand_corr = corr(ra, rb)
    rand_same = (flags[ra] == flags[rb]).all(axis=1)
    cons_set = _pair_set(cons_corr[cons_same], threshold)
    rand_set = _pair_set(rand_corr[rand_same], threshold)
    hit_cons, hit_rand = cons_set.at_or_above_threshold, rand_set.at_or_above_threshold
    chosen = cons_same & (cons_corr >= threshold)
    pairs = [(records[i].image_id, records[j].image_id) for i, j in zip(a[chosen], b[chosen])]
    same_region = (flags[a, : len(REGION)] == flags[b, : len(REGION)]).all(axis=1)
    links = [(records[i].image_id, records[j].image_id) for i, j in zip(a[same_region], b[same_region])]
    runs = _run_lengths(n, a[same_region])
    near = np.nonzero(cons_same & (np.abs(cons_corr - threshold) <= 0.1))[0]
    near = near[np.argsort(-cons_corr[near], kind="stable")]
    by_lag = {}
    for lag in LAGS:
        la, lb = lagged(lag)
        if len(la):
            by_lag[str(lag)] = LagAgreement(
                pairs=len(la),
                region=_share((flags[la, : len(REGION)] == flags[lb, : len(REGION)]).all(axis=1)),
                view=_share((views[la] == views[lb]).all(axis=1)),
                hardware=_share(flags[la, -1] == flags[lb, -1]),
                label=_share(labels[la] == labels[lb]),
                median_correlation=round(float(np.median(corr(la, lb))), 4),
            )
    study = NeighbourStudy(
        threshold=threshold,
        consecutive=_pair_set(cons_corr, threshold),
        consecutive_same_flags=cons_set,
        random=_pair_set(rand_corr, threshold),
        random_same_flags=rand_set,
        by_lag=by_lag,
        enrichment=round(hit_cons / hit_rand, 2) if hit_rand else 0.0,
        estimated_precision=round(max(0.0, 1 - hit_rand / hit_cons), 3) if hit_cons else 0.0,
        neighbour_pairs=len(pairs),
        by_threshold={f"{t:g}": _threshold_row(cons_corr[cons_same], rand_corr[rand_same], t)
                      for t in THRESHOLD_GRID},
        region_runs=len(runs),
        largest_region_run=max(runs, default=0),
        borderline=[(records[a[k]].image_id, records[b[k]].image_id, round(float(cons_corr[k]), 4)) for k in near],
    )
    return study, pairs, links


def _run_lengths(n: int, linked_starts: np.ndarray) -> list[int]:
    """Sizes of the components of a path graph over ``n`` nodes with edges ``k -> k+1``."""
    linked = np.zeros(max(n - 1, 0), dtype=bool)
    linked[linked_starts] = True
    runs, current = [], 1
    for link in linked:
        if link:
            current += 1
        else:
            runs.append(current)
            current = 1
    if n:
        runs.append(current)
    return runs


def _threshold_row(consecutive: np.ndarray, random: np.ndarray, threshold: float) -> ThresholdRow:
    cons = float((consecutive >= threshold).mean()) if len(consecutive) else 0.0
    rand = float((random >= threshold).mean()) if len(random) else 0.0
    return ThresholdRow(pairs=int((consecutive >= threshold).sum()), consecutive_share=round(cons, 5),
                        random_share=round(rand, 5),
                        estimated_precision=round(max(0.0, 1 - rand / cons), 3) if cons else 0.0)


def _pair_set(values: np.ndarray, threshold: float) -> PairSet:
    if not len(values):
        return PairSet(pairs=0, quantiles=[], at_or_above_threshold=0.0)
    return PairSet(
        pairs=int(len(values)),
        quantiles=[round(float(q), 4) for q in np.quantile(values, QUANTILES)],
        at_or_above_threshold=round(float((values >= threshold).mean()), 5),
    )


def _share(mask: np.ndarray) -> float:
    return round(float(mask.mean()), 4) if len(mask) else 0.0
