"""Compare submissions on one metric with a paired group bootstrap.

A Result JSON holds no predictions, so comparisons take the *submission* files
and the built dataset: all are validated against the same split, all evaluations
see exactly the same resampled leakage groups (:class:`fracbench.paired.SharedDraws`),
and each difference A - B gets a percentile interval and a two-sided p-value
(:func:`fracbench.metrics.bootstrap.paired_difference`). Two submissions give a
:class:`Comparison`; more give a :class:`ComparisonTable` of every pair with
Holm-corrected p-values (:func:`fracbench.paired.holm`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fracbench import PROTOCOL_VERSION
from fracbench.dataset.groundtruth import GroundTruth
from fracbench.errors import ScoringError
from fracbench.metrics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, percentile_interval
from fracbench.paired import ALPHA, SharedDraws, compare_pair, holm
from fracbench.score import prepare, split_sha256, validated
from fracbench.validate import read_document

COMPARISON_SCHEMA = "fracbench.comparison/v1"
COMPARISON_TABLE_SCHEMA = "fracbench.comparison-table/v1"


class ComparedSubmission(BaseModel):
    """One side of a comparison."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    model: str
    value: float | None
    ci95: tuple[float, float] | None


class _OnOneSplit(BaseModel):
    """What every comparison records first: its schema, the protocol, and what was compared on."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(alias="schema")
    protocol_version: str = PROTOCOL_VERSION
    task: str
    splits_version: str
    split: str
    split_sha256: str
    metric: str
    higher_is_better: bool

    def to_json(self) -> str:
        """2-space indented JSON with a trailing newline."""
        return self.model_dump_json(indent=2, by_alias=True) + "\n"


class Comparison(_OnOneSplit):
    """The paired comparison of submissions A and B on one metric (``difference`` = A - B)."""

    schema_: str = Field(default=COMPARISON_SCHEMA, alias="schema")
    a: ComparedSubmission
    b: ComparedSubmission
    difference: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    n_resamples: int
    n_defined: int
    seed: int


def _prepared(paths: list[str | Path], *, data, split, metric, gt):
    """Read, validate against one split, and prepare every submission; check tasks, splits, metric."""
    docs = [read_document(p) for p in paths]
    declared = [(d.data.get("task"), d.data.get("split")) if isinstance(d.data, dict) else (None, None) for d in docs]
    (task_a, split_a), path_a = declared[0], paths[0]
    for (task_b, split_b), path_b in zip(declared[1:], paths[1:]):
        if isinstance(task_a, str) and isinstance(task_b, str) and task_a != task_b:
            raise ScoringError(f"{path_a} is a {task_a!r} submission but {path_b} is {task_b!r}; compare needs submissions of the same task")
        if split is None and isinstance(split_a, str) and isinstance(split_b, str) and split_a != split_b:
            raise ScoringError(f"{path_a} is for split {split_a!r} but {path_b} for {split_b!r}; compare needs the same split (or pass --split)")
    report, gt = validated(docs[0], data=data, split=split, gt=gt)
    reports = [report] + [validated(d, data=data, split=gt.split, gt=gt)[0] for d in docs[1:]]
    preps = [prepare(r, gt) for r in reports]
    spec = preps[0].spec
    metric = metric or spec.main_score
    if metric not in spec.metrics:
        raise ScoringError(f"--metric: {metric!r} is not a {spec.name} metric; expected one of {', '.join(spec.metrics)}")
    return reports, preps, gt, spec, metric


def _side(path: str | Path, report, point: float, boot: np.ndarray) -> ComparedSubmission:
    finite = bool(np.isfinite(point))
    return ComparedSubmission(
        path=str(path),
        sha256=report.sha256 or "",
        model=report.submission.model.name,
        value=point if finite else None,
        ci95=percentile_interval(boot) if finite else None,
    )


def compare_submissions(
    path_a: str | Path,
    path_b: str | Path,
    *,
    data: str | Path | None = None,
    split: str | None = None,
    metric: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    gt: GroundTruth | None = None,
) -> Comparison:
    """Paired bootstrap comparison of two submissions of the same task and split.

    Args:
        path_a, path_b: the submission files.
        data: built dataset directory (default ``$FRACBENCH_DATA``, then the cache dir).
        split: the split; None takes the one the submissions declare (they must agree).
        metric: the metric to compare; None is the task's main score.
        n_resamples: paired bootstrap resamples (at least 1).
        seed: bootstrap seed.
        gt: ground truth to use instead of loading it.

    Returns:
        Comparison: both values, the difference A - B, its 95 % CI and p-value.

    Raises:
        SubmissionError: either submission is invalid.
        ScoringError: different tasks or splits, or an unknown metric.
    """
    if n_resamples < 1:
        raise ScoringError(f"--bootstrap: a paired comparison needs at least 1 resample, found {n_resamples}")
    (report_a, report_b), (prep_a, prep_b), gt, spec, metric = _prepared([path_a, path_b], data=data, split=split, metric=metric, gt=gt)
    draws = SharedDraws.draw([g.group_id for g in prep_a.images], n_resamples, seed)
    a, b = draws.metric(prep_a.evaluation, metric), draws.metric(prep_b.evaluation, metric)
    paired = compare_pair(a, b)
    return Comparison(
        task=spec.name,
        splits_version=gt.splits_version,
        split=gt.split,
        split_sha256=split_sha256(gt),
        metric=metric,
        higher_is_better=spec.higher_is_better[metric],
        a=_side(path_a, report_a, *a),
        b=_side(path_b, report_b, *b),
        difference=paired.difference,
        ci95=paired.ci95,
        p_value=paired.p_value,
        n_resamples=n_resamples,
        n_defined=paired.n_defined,
        seed=seed,
    )


class PairRow(BaseModel):
    """One pair of a :class:`ComparisonTable`: submission ``a`` minus submission ``b`` (0-based indices)."""

    model_config = ConfigDict(extra="forbid")

    a: int
    b: int
    difference: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    p_holm: float | None
    n_defined: int


class ComparisonTable(_OnOneSplit):
    """Every pairwise paired comparison of several submissions on one metric.

    ``p_holm`` is Holm's step-down adjustment over all the pairs (:func:`fracbench.paired.holm`);
    a pair differs at family-wise level ``alpha`` when ``p_holm <= alpha``.
    """

    schema_: str = Field(default=COMPARISON_TABLE_SCHEMA, alias="schema")
    submissions: list[ComparedSubmission]
    pairs: list[PairRow]
    correction: str = "holm"
    alpha: float = ALPHA
    n_resamples: int
    seed: int


def compare_many(
    paths: list[str | Path],
    *,
    data: str | Path | None = None,
    split: str | None = None,
    metric: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    gt: GroundTruth | None = None,
) -> ComparisonTable:
    """Paired bootstrap comparison of every pair of two or more submissions (same draws for all).

    Args:
        paths: the submission files (at least two), listed in this order in the table.
        data, split, metric, n_resamples, seed, gt: as :func:`compare_submissions`.

    Returns:
        ComparisonTable: each submission's value and CI, and for every pair i < j the
        difference i - j, its paired 95 % CI, raw and Holm-adjusted p-values.

    Raises:
        SubmissionError: a submission is invalid.
        ScoringError: fewer than two paths, different tasks or splits, an unknown metric.
    """
    if len(paths) < 2:
        raise ScoringError(f"compare needs at least two submissions, found {len(paths)}")
    if n_resamples < 1:
        raise ScoringError(f"--bootstrap: a paired comparison needs at least 1 resample, found {n_resamples}")
    reports, preps, gt, spec, metric = _prepared(list(paths), data=data, split=split, metric=metric, gt=gt)
    draws = SharedDraws.draw([g.group_id for g in preps[0].images], n_resamples, seed)
    values = [draws.metric(p.evaluation, metric) for p in preps]
    index = [(i, j) for i in range(len(paths)) for j in range(i + 1, len(paths))]
    tests = [compare_pair(values[i], values[j]) for i, j in index]
    adjusted = holm([t.p_value for t in tests])
    return ComparisonTable(
        task=spec.name,
        splits_version=gt.splits_version,
        split=gt.split,
        split_sha256=split_sha256(gt),
        metric=metric,
        higher_is_better=spec.higher_is_better[metric],
        submissions=[_side(p, r, *v) for p, r, v in zip(paths, reports, values)],
        pairs=[
            PairRow(a=i, b=j, difference=t.difference, ci95=t.ci95, p_value=t.p_value, p_holm=q, n_defined=t.n_defined)
            for (i, j), t, q in zip(index, tests, adjusted)
        ],
        n_resamples=n_resamples,
        seed=seed,
    )
