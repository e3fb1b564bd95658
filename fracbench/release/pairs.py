"""All-pairs candidate search for near-duplicates (cheap scores, every pair, in row blocks).

A pair of images becomes a *candidate* (to be verified by
:func:`fracbench.release.matching.match_pair`) when any cheap channel says so:

* ``phash``: either 64-bit pHash (whole image, content) within a Hamming distance;
* ``tiny``: the 16x16 equalised contents correlate (re-encoding, resizing, windowing);
* ``centre``: the centre 80 % of one correlates with the whole of the other (a crop);
* ``top``: the top halves correlate (a copy whose lower rows are damaged or cut);
* ``truncated``: a truncated image correlates with the same top fraction of the other.

Distances of all pairs are also histogrammed, for the audit report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fracbench.release import similarity as sim

BLOCK = 512
"""Rows of the all-pairs matrices computed at once (bounds memory to a few MB per matrix)."""

VIEW_SIDE = 16
"""Side of the crop-view vectors (8x8 would be cheaper but proposes 3x the candidates at equal recall)."""
CENTRE_VIEW = (0.1, 0.1, 0.9, 0.9)
TOP_VIEW = (0.0, 0.0, 1.0, 0.5)
PHASH_EDGES = list(range(0, 65))
TINY_EDGES = [round(float(e), 2) for e in np.arange(-1.0, 1.0001, 0.05)]


@dataclass
class CandidateScores:
    """Candidate pairs and the all-pairs distributions.

    Attributes:
        pairs: ``(i, j)`` indices into the fingerprints, ``i < j``, sorted.
        phash: per pair, the smaller of the two pHash distances.
        tiny: per pair, the 16x16 content correlation.
        phash_edges, phash_counts: histogram of the pHash distance over all pairs.
        tiny_edges, tiny_counts: histogram of the content correlation over all pairs.
    """

    pairs: list[tuple[int, int]]
    phash: np.ndarray
    tiny: np.ndarray
    phash_edges: list[float] = field(default_factory=list)
    phash_counts: list[int] = field(default_factory=list)
    tiny_edges: list[float] = field(default_factory=list)
    tiny_counts: list[int] = field(default_factory=list)


def candidate_pairs(prints: Sequence[sim.ImageFingerprint], thresholds) -> CandidateScores:
    """Every pair that any cheap channel (module docstring) flags, with its cheap scores.

    Args:
        prints: one fingerprint per image.
        thresholds: an ``AuditThresholds`` (``phash_candidate``, ``tiny_candidate``,
            ``view_candidate``, ``truncated_candidate``).

    Returns:
        CandidateScores: the candidates and the all-pairs histograms.
    """
    n = len(prints)
    full = np.array([p.phash_full for p in prints], dtype=np.uint64)
    content = np.array([p.phash_content for p in prints], dtype=np.uint64)
    squares = np.stack([p.square for p in prints]) if n else np.zeros((0, sim.SQUARE_SIDE, sim.SQUARE_SIDE))
    tiny = sim.tiny_vectors(squares)
    whole = sim.tiny_vectors(squares, side=VIEW_SIDE)
    centre = sim.tiny_vectors(squares, CENTRE_VIEW, side=VIEW_SIDE)
    top = sim.tiny_vectors(squares, TOP_VIEW, side=VIEW_SIDE)
    truncated = _truncated_scores(prints, squares, tiny)
    phash_counts = np.zeros(64, dtype=np.int64)
    tiny_counts = np.zeros(len(TINY_EDGES) - 1, dtype=np.int64)
    found_i, found_j, found_h, found_c = [], [], [], []
    for start in range(0, n, BLOCK):
        rows = np.arange(start, min(n, start + BLOCK))
        upper = np.arange(n)[None, :] > rows[:, None]
        hm = np.minimum(sim.hamming(full[rows, None], full[None, :]),
                        sim.hamming(content[rows, None], content[None, :]))
        corr = tiny[rows] @ tiny.T
        phash_counts += np.bincount(hm[upper], minlength=64)[:64]
        tiny_counts += np.histogram(np.clip(corr[upper], -1, 1), bins=TINY_EDGES)[0]
        view = np.maximum(centre[rows] @ whole.T, whole[rows] @ centre.T)
        view = np.maximum(view, top[rows] @ top.T)
        flagged = (hm <= thresholds.phash_candidate) | (corr >= thresholds.tiny_candidate)
        flagged |= view >= thresholds.view_candidate
        if truncated is not None:
            flagged |= _truncated_block(truncated, rows, n) >= thresholds.truncated_candidate
        r, c = np.nonzero(flagged & upper)
        found_i.append(rows[r])
        found_j.append(c)
        found_h.append(hm[r, c])
        found_c.append(corr[r, c])
    i = np.concatenate(found_i) if found_i else np.zeros(0, dtype=int)
    j = np.concatenate(found_j) if found_j else np.zeros(0, dtype=int)
    return CandidateScores(
        pairs=[(int(a), int(b)) for a, b in zip(i, j)],
        phash=np.concatenate(found_h) if found_h else np.zeros(0, dtype=np.uint8),
        tiny=np.concatenate(found_c) if found_c else np.zeros(0, dtype=np.float32),
        phash_edges=[float(e) for e in PHASH_EDGES],
        phash_counts=[int(c) for c in phash_counts],
        tiny_edges=TINY_EDGES,
        tiny_counts=[int(c) for c in tiny_counts],
    )


def _truncated_scores(prints: Sequence[sim.ImageFingerprint], squares: np.ndarray,
                      tiny: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each truncated image against the same top fraction of every image.

    Returns:
        tuple | None: ``(indices, scores)``, indices ``(T,)`` of the truncated images and
        scores ``(T, N)``; ``None`` when no image is truncated.
    """
    kept = np.array([k for k, p in enumerate(prints) if p.kept_rows < 1], dtype=int)
    if not len(kept):
        return None
    columns = np.matmul(squares.astype(np.float32), sim.area_matrix(0.0, 1.0).T)  # (N, S, TINY_SIDE)
    scores = np.empty((len(kept), len(prints)), dtype=np.float32)
    for t, k in enumerate(kept):
        view = np.matmul(sim.area_matrix(0.0, prints[k].kept_rows), columns).reshape(len(prints), -1)
        scores[t] = sim.normalise_rows(view) @ tiny[k]
    return kept, scores


def _truncated_block(truncated: tuple[np.ndarray, np.ndarray], rows: np.ndarray, n: int) -> np.ndarray:
    """The truncated-channel scores of ``rows`` against every image (symmetrised), -1 elsewhere."""
    kept, scores = truncated
    out = np.full((len(rows), n), -1.0, dtype=np.float32)
    for t, k in enumerate(kept):
        out[:, k] = np.maximum(out[:, k], scores[t, rows])
        if rows[0] <= k <= rows[-1]:
            out[k - rows[0]] = np.maximum(out[k - rows[0]], scores[t])
    return out
