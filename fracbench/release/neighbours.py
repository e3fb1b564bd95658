"""Do images of one patient or study sit next to each other in id order? Measure, then group.

FracAtlas has no patient identifier. Its ids are sequential, and two views of one
wrist, or a repeat exposure, may have been numbered one after the other. This module
measures that with the data (:class:`NeighbourStudy`): how similar consecutive ids
are, against random pairs, random pairs of the same body region, and random pairs
with the same ``dataset.csv`` flags; and how the similarity decays with the id lag.

The grouping rule it supports is deliberately conservative: ids ``n`` and ``n+1``
(both present) are *same-study neighbours* when all ten ``dataset.csv`` flags agree
and their 16x16 equalised contents correlate at least ``neighbour_tiny``. The report
gives the share of such pairs among consecutive and among random same-flag pairs, so
the precision of the rule is an estimate, not an assertion. Two views that look
different (frontal and lateral) are *not* caught, and nothing here can prove that two
images come from one patient.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from fracbench.release import similarity as sim
from fracbench.release.records import ImageRecord

FLAGS = ("hand", "leg", "hip", "shoulder", "mixed", "hardware", "multiscan", "frontal", "lateral", "oblique")
REGION_FLAGS = FLAGS[:5]
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
LAGS = (1, 2, 3, 5, 10, 50)
RANDOM_PAIRS = 200_000
SEED = 0


class PairSet(BaseModel):
    """The content correlation over one set of pairs."""

    pairs: int
    quantiles: list[float] = Field(description="at NeighbourStudy.quantile_levels")
    at_or_above_threshold: float = Field(description="share of pairs with correlation >= the threshold")


class NeighbourStudy(BaseModel):
    """Consecutive ids against random pairs (16x16 equalised content correlation)."""

    seed: int = SEED
    threshold: float
    quantile_levels: list[float] = list(QUANTILES)
    consecutive: PairSet
    consecutive_same_flags: PairSet
    random: PairSet
    random_same_region: PairSet
    random_same_flags: PairSet
    same_region_share_consecutive: float
    same_region_share_random: float
    same_flags_share_consecutive: float
    same_flags_share_random: float
    lag_median: dict[str, float] = Field(description="median correlation of ids k positions apart")
    enrichment: float = Field(description="consecutive vs random same-flag share above the threshold")
    estimated_precision: float = Field(
        description="1 - random/consecutive share above the threshold: the share of grouped pairs "
                    "that chance alone would not explain")
    neighbour_pairs: int
    borderline: list[tuple[str, str, float]] = Field(
        description="consecutive same-flag pairs within 0.1 of the threshold, by correlation descending")


def neighbour_pairs(
    records: Sequence[ImageRecord], prints: Sequence[sim.ImageFingerprint], threshold: float
) -> tuple[NeighbourStudy, list[tuple[str, str]]]:
    """Measure the id-order signal and list the same-study neighbour pairs.

    Args:
        records: the audited (present) records, in id order, aligned with ``prints``.
        prints: their fingerprints.
        threshold: the ``neighbour_tiny`` correlation.

    Returns:
        tuple: the study and the neighbour pairs ``(id_n, id_n+1)``.
    """
    n = len(records)
    tiny = sim.tiny_vectors(np.stack([p.square for p in prints])) if n else np.zeros((0, 1), np.float32)
    flags = np.array([[getattr(r, f) for f in FLAGS] for r in records], dtype=bool).reshape(n, len(FLAGS))
    numbers = np.array([int(r.image_id[3:]) if r.image_id[3:].isdigit() else -10 for r in records])
    cons = np.nonzero(numbers[1:] - numbers[:-1] == 1)[0] if n > 1 else np.zeros(0, dtype=int)
    a, b = cons, cons + 1
    cons_corr = np.einsum("ij,ij->i", tiny[a], tiny[b]) if len(a) else np.zeros(0)
    cons_same = (flags[a] == flags[b]).all(axis=1)
    cons_region = (flags[a, :5] == flags[b, :5]).all(axis=1)
    rng = np.random.default_rng(SEED)
    ra, rb = (rng.integers(n, size=RANDOM_PAIRS), rng.integers(n, size=RANDOM_PAIRS)) if n > 1 else ([], [])
    keep = np.asarray(ra) != np.asarray(rb)
    ra, rb = np.asarray(ra)[keep], np.asarray(rb)[keep]
    rand_corr = np.einsum("ij,ij->i", tiny[ra], tiny[rb]) if len(ra) else np.zeros(0)
    rand_same = (flags[ra] == flags[rb]).all(axis=1)
    rand_region = (flags[ra, :5] == flags[rb, :5]).all(axis=1)
    cons_set = _pair_set(cons_corr[cons_same], threshold)
    rand_set = _pair_set(rand_corr[rand_same], threshold)
    enrichment = cons_set.at_or_above_threshold / rand_set.at_or_above_threshold if rand_set.at_or_above_threshold else 0.0
    precision = 1 - rand_set.at_or_above_threshold / cons_set.at_or_above_threshold if cons_set.at_or_above_threshold else 0.0
    chosen = cons_same & (cons_corr >= threshold)
    pairs = [(records[i].image_id, records[i + 1].image_id) for i in a[chosen]]
    near = np.nonzero(cons_same & (np.abs(cons_corr - threshold) <= 0.1))[0]
    near = near[np.argsort(-cons_corr[near], kind="stable")]
    borderline = [(records[a[k]].image_id, records[a[k] + 1].image_id, round(float(cons_corr[k]), 4))
                  for k in near]
    lags = {}
    for lag in LAGS:
        if n > lag:
            lags[str(lag)] = round(float(np.median(np.einsum("ij,ij->i", tiny[:-lag], tiny[lag:]))), 4)
    study = NeighbourStudy(
        threshold=threshold,
        consecutive=_pair_set(cons_corr, threshold),
        consecutive_same_flags=cons_set,
        random=_pair_set(rand_corr, threshold),
        random_same_region=_pair_set(rand_corr[rand_region], threshold),
        random_same_flags=rand_set,
        same_region_share_consecutive=_share(cons_region),
        same_region_share_random=_share(rand_region),
        same_flags_share_consecutive=_share(cons_same),
        same_flags_share_random=_share(rand_same),
        lag_median=lags,
        enrichment=round(float(enrichment), 2),
        estimated_precision=round(float(max(0.0, precision)), 3),
        neighbour_pairs=len(pairs),
        borderline=borderline,
    )
    return study, pairs


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
