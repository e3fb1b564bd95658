"""Integrity audit of a FracAtlas release: duplicates, label conflicts, same-study neighbours.

:func:`audit_release` turns a :class:`~fracbench.release.records.Release` into an
:class:`AuditReport`. Group lists are *nested*: byte-identical files are also
pixel-identical, and pixel-identical images are also copies of one radiograph, so
``exact_duplicate_groups`` ⊆ ``pixel_duplicate_groups`` ⊆ ``near_duplicate_groups``
(each list is the connected components of its own relation). ``leakage_groups``
merges the near-duplicate groups, the same-study-neighbour groups and the region runs
(consecutive ids showing one body region, the id-order evidence that two views of one
study sit next to each other): the splits keep each one on one side. The method and every threshold are justified in ``docs/AUDIT.md``;
the numbers that justify them are recomputed on every run and kept in the report.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fracbench import __version__
from fracbench.errors import ReleaseError
from fracbench.release import similarity as sim
from fracbench.release.images import decode
from fracbench.release.matching import PairMatch, match_pair
from fracbench.release.neighbours import NeighbourStudy, neighbour_pairs
from fracbench.release.pairs import CandidateScores, candidate_pairs
from fracbench.release.records import ImageRecord, Release

log = logging.getLogger(__name__)

SCHEMA = "fracbench.audit/v1"
DRAFT = (160, 160)
"""Draft size: libjpeg decodes at the smallest 1/2-1/8 scale still >= this (enough for every descriptor)."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: ``fingerprints``, ``pairs``, ``pixels``."""


class AuditThresholds(BaseModel):
    """Every threshold of the audit (justified with the data in ``docs/AUDIT.md``).

    Attributes:
        phash_candidate: a pair is a candidate when either pHash distance is at most this.
        tiny_candidate: ... or the 16x16 content correlation is at least this.
        view_candidate: ... or the centre-80 % or top-half views correlate at least this.
        truncated_candidate: ... or a truncated image correlates this well with the same
            top fraction of the other image.
        detail_accept: a candidate is the same radiograph when its detail score
            (:func:`fracbench.release.matching.match_pair`) is at least this.
        neighbour_tiny: consecutive ids with the same region and hardware flags are same-study
            neighbours when their 16x16 content correlation is at least this.
    """

    model_config = ConfigDict(frozen=True)

    phash_candidate: int = 4
    tiny_candidate: float = 0.96
    view_candidate: float = 0.97
    truncated_candidate: float = 0.90
    detail_accept: float = 0.84
    neighbour_tiny: float = 0.85


class ReleaseIdentity(BaseModel):
    """Which release was audited (``fingerprint`` is what the splits check)."""

    root: str
    identity: str
    identity_note: str
    fingerprint: str


class LabelConflictEntry(BaseModel):
    """One image whose sources disagree on its label."""

    image_id: str
    sources: dict[str, bool]
    decided: bool
    rule: str


class PairEvidence(BaseModel):
    """A verified candidate pair and its scores."""

    a: str
    b: str
    phash: int = Field(description="min of the full-image and content pHash distances (of 63 bits)")
    tiny: float = Field(description="16x16 content correlation")
    coarse: float
    detail: float
    scale: float
    mode: str
    same_radiograph: bool


class Histogram(BaseModel):
    """Counts per bin; ``edges`` has one more entry than ``counts``."""

    edges: list[float]
    counts: list[int]


class AuditReport(BaseModel):
    """The audit of one release (``audit.json``); see the module docstring for the groups."""

    format: str = SCHEMA
    fracbench_version: str = __version__
    release: ReleaseIdentity
    images: int
    present: int
    missing: list[str]
    truncated: list[str]
    exif_rotated: list[str]
    label_conflicts: list[LabelConflictEntry]
    exact_duplicate_groups: list[list[str]]
    pixel_duplicate_groups: list[list[str]]
    near_duplicate_groups: list[list[str]]
    mixed_label_groups: list[list[str]]
    neighbour_groups: list[list[str]]
    leakage_groups: list[list[str]]
    region_run_groups: list[list[str]] = Field(
        description="runs of consecutive ids with one body region (merged into leakage_groups; see docs/AUDIT.md)")
    thresholds: AuditThresholds
    candidate_pairs: int
    verified_pairs: list[PairEvidence] = Field(
        description="every candidate with detail >= 0.3 (accepted or not), by detail descending")
    phash_distances: Histogram = Field(description="all pairs, min of full/content pHash distance")
    tiny_correlations: Histogram = Field(description="all pairs, 16x16 content correlation")
    detail_scores: Histogram = Field(description="verified candidate pairs")
    neighbour_study: NeighbourStudy
    decoded_truncated: list[str] = Field(description="ids the audit's own decoding found truncated")
    timings_s: dict[str, float]
    warnings: list[str]


def audit_release(
    release: Release,
    *,
    progress: Progress | None = None,
    thresholds: AuditThresholds | None = None,
    workers: int | None = None,
    image_ids: Iterable[str] | None = None,
) -> AuditReport:
    """Audit a release: duplicate groups, label conflicts, same-study neighbours.

    Args:
        release: from :func:`fracbench.release.reader.read_release`.
        progress: called as ``progress(stage, done, total)``.
        thresholds: defaults to :class:`AuditThresholds` ().
        workers: processes for decoding and pair verification (default: CPU count, at
            most 8; 1 runs everything in this process).
        image_ids: audit only these (present) images, e.g. for a quick test on the real
            release; ``truncated``, ``exif_rotated`` and ``label_conflicts`` still cover the
            whole release, and ``warnings`` says that the pixel checks saw a subset.

    Returns:
        AuditReport: the findings.

    Raises:
        ReleaseError: an image cannot be decoded.
    """
    thresholds = thresholds or AuditThresholds()
    timings: dict[str, float] = {}
    warnings: list[str] = []
    records = [r for r in release.records if r.present]
    if image_ids is not None:
        wanted = set(image_ids)
        records = [r for r in records if r.image_id in wanted]
        warnings.append(f"pixel checks on a subset of {len(records)} images only (image_ids given)")
    workers = workers or min(8, os.cpu_count() or 1)
    started = time.perf_counter()
    with _executor(workers) as pool:
        prints, decoded_truncated = _fingerprints(release.root, records, pool, progress)
        timings["fingerprints"] = time.perf_counter() - started
        t = time.perf_counter()
        scores = candidate_pairs(prints, thresholds)
        timings["candidates"] = time.perf_counter() - t
        t = time.perf_counter()
        matches = _verify(prints, scores, pool, progress)
        timings["verification"] = time.perf_counter() - t
        ids = [r.image_id for r in records]
        accepted = [(ids[i], ids[j]) for (i, j), m in zip(scores.pairs, matches)
                    if m.detail >= thresholds.detail_accept]
        t = time.perf_counter()
        exact = _exact_pairs(records)
        pixel = _pixel_pairs(release.root, release.by_id(), accepted, exact, pool, progress)
        timings["pixels"] = time.perf_counter() - t
    evidence = [
        PairEvidence(a=ids[i], b=ids[j], phash=int(scores.phash[k]), tiny=round(float(scores.tiny[k]), 4),
                     coarse=m.coarse, detail=m.detail, scale=m.scale, mode=m.mode,
                     same_radiograph=m.detail >= thresholds.detail_accept)
        for k, ((i, j), m) in enumerate(zip(scores.pairs, matches))
    ]
    evidence.sort(key=lambda e: (-e.detail, e.a, e.b))
    near = [(e.a, e.b) for e in evidence if e.same_radiograph]
    exact_groups = connected_groups(exact)
    pixel_groups = connected_groups([*exact, *pixel])
    near_groups = connected_groups([*exact, *pixel, *near])
    t = time.perf_counter()
    study, neighbours, region_links = neighbour_pairs(records, prints, thresholds.neighbour_tiny)
    timings["neighbours"] = time.perf_counter() - t
    labels = {r.image_id: r.fractured for r in release.records}
    timings["total"] = time.perf_counter() - started
    return AuditReport(
        release=ReleaseIdentity(root=str(release.root), identity=release.identity,
                                identity_note=release.identity_note, fingerprint=release.fingerprint),
        images=len(release.records),
        present=sum(r.present for r in release.records),
        missing=list(release.missing),
        truncated=[r.image_id for r in release.records if r.truncated],
        exif_rotated=[r.image_id for r in release.records if r.present and r.exif_orientation != 1],
        label_conflicts=[LabelConflictEntry(image_id=c.image_id, sources=dict(c.sources), decided=c.decided,
                                            rule=c.rule) for c in release.label_conflicts],
        exact_duplicate_groups=exact_groups,
        pixel_duplicate_groups=pixel_groups,
        near_duplicate_groups=near_groups,
        mixed_label_groups=[g for g in near_groups if len({labels[i] for i in g}) > 1],
        neighbour_groups=connected_groups(neighbours),
        # Region runs are over-inclusive on purpose: ~41 % of consecutive pairs look like two
        # views of one study, most of which no similarity threshold can see (docs/AUDIT.md).
        leakage_groups=connected_groups([*exact, *pixel, *near, *neighbours, *region_links]),
        region_run_groups=connected_groups(region_links),
        thresholds=thresholds,
        candidate_pairs=len(scores.pairs),
        verified_pairs=[e for e in evidence if e.detail >= 0.3],
        phash_distances=Histogram(edges=scores.phash_edges, counts=scores.phash_counts),
        tiny_correlations=Histogram(edges=scores.tiny_edges, counts=scores.tiny_counts),
        detail_scores=_histogram([e.detail for e in evidence], np.round(np.arange(-0.2, 1.0001, 0.05), 2)),
        neighbour_study=study,
        decoded_truncated=sorted(ids[k] for k in decoded_truncated),
        timings_s={k: round(v, 2) for k, v in timings.items()},
        warnings=warnings,
    )


def connected_groups(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components (of two or more ids) of an undirected graph given by its edges.

    Returns:
        list[list[str]]: each group sorted, groups sorted by their first id.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


class _Inline(Executor):
    """An executor that runs everything in this process (``workers=1``)."""

    def map(self, fn, *iterables, timeout=None, chunksize=1):  # noqa: D102
        return map(fn, *iterables)


def _executor(workers: int) -> Executor:
    return _Inline() if workers <= 1 else ProcessPoolExecutor(max_workers=workers)


def _fingerprint_file(job: tuple[str, str]) -> tuple[sim.ImageFingerprint, bool]:
    image_id, path = job
    try:
        decoded = decode(path, draft=DRAFT)
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot decode ({exc}); expected a JPEG; re-extract the release") from None
    return sim.fingerprint(image_id, decoded), decoded.truncated


def _fingerprints(
    root: Path, records: Sequence[ImageRecord], pool: Executor, progress: Progress | None
) -> tuple[list[sim.ImageFingerprint], list[int]]:
    jobs = [(r.image_id, str(root / r.path)) for r in records]
    prints: list[sim.ImageFingerprint] = []
    truncated: list[int] = []
    for k, (fp, was_truncated) in enumerate(pool.map(_fingerprint_file, jobs, chunksize=16)):
        prints.append(fp)
        if was_truncated:
            truncated.append(k)
        if progress is not None and (k % 50 == 49 or k == len(jobs) - 1):
            progress("fingerprints", k + 1, len(jobs))
    return prints, truncated


def _match_chunk(chunk: list[tuple[np.ndarray, np.ndarray]]) -> list[PairMatch]:
    return [match_pair(a, b) for a, b in chunk]


def _verify(
    prints: Sequence[sim.ImageFingerprint], scores: CandidateScores, pool: Executor, progress: Progress | None
) -> list[PairMatch]:
    size = 64
    chunks = [[(prints[i].thumb, prints[j].thumb) for i, j in scores.pairs[s : s + size]]
              for s in range(0, len(scores.pairs), size)]
    out: list[PairMatch] = []
    for chunk in pool.map(_match_chunk, chunks):
        out.extend(chunk)
        if progress is not None:
            progress("pairs", len(out), len(scores.pairs))
    return out


def _exact_pairs(records: Sequence[ImageRecord]) -> list[tuple[str, str]]:
    """Consecutive members of every set of records sharing a file sha256."""
    by_digest: dict[str, list[str]] = {}
    for r in records:
        if r.sha256:
            by_digest.setdefault(r.sha256, []).append(r.image_id)
    return [(g[k], g[k + 1]) for g in by_digest.values() for k in range(len(g) - 1)]


def _pixel_digest(path: str) -> tuple[str, str, str]:
    """``(mode, sha256 of the decoded pixels, sha256 of their L conversion)`` of one image."""
    image = decode(path).image
    own = hashlib.sha256(image.tobytes()).hexdigest()
    grey = own if image.mode == "L" else hashlib.sha256(image.convert("L").tobytes()).hexdigest()
    return image.mode, own, grey


def _pixel_pairs(
    root: Path, by_id: dict[str, ImageRecord], near: Sequence[tuple[str, str]],
    exact: Sequence[tuple[str, str]], pool: Executor, progress: Progress | None,
) -> list[tuple[str, str]]:
    """Same-radiograph pairs of equal size whose fully decoded pixels are identical.

    Each image concerned is decoded once (full resolution, EXIF-corrected) and only digests
    of its pixels are kept; images of different modes (``L``, ``RGB``) are compared in ``L``.
    """
    exact_set = {frozenset(p) for p in exact}
    todo = [(a, b) for a, b in near if frozenset((a, b)) not in exact_set
            and (by_id[a].width, by_id[a].height) == (by_id[b].width, by_id[b].height)]
    images = sorted({i for pair in todo for i in pair})
    digests = {}
    for k, (image_id, digest) in enumerate(
            zip(images, pool.map(_pixel_digest, [str(root / by_id[i].path) for i in images], chunksize=4))):
        digests[image_id] = digest
        if progress is not None:
            progress("pixels", k + 1, len(images))
    out = []
    for a, b in todo:
        (mode_a, own_a, grey_a), (mode_b, own_b, grey_b) = digests[a], digests[b]
        if (own_a == own_b) if mode_a == mode_b else (grey_a == grey_b):
            out.append((a, b))
    return out


def _histogram(values: Sequence[float], edges: np.ndarray) -> Histogram:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts])
