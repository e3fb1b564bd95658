"""Compare two submissions on one metric with a paired group bootstrap.

A Result JSON holds no predictions, so comparisons take the two *submission*
files and the built dataset: both are validated against the same split, both
evaluations see exactly the same resampled leakage groups, and the difference
A - B gets a percentile interval and a two-sided p-value
(:func:`fracbench.metrics.bootstrap.paired_difference`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fracbench import PROTOCOL_VERSION
from fracbench.dataset.groundtruth import GroundTruth
from fracbench.errors import ScoringError
from fracbench.metrics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, draw_groups, paired_difference, percentile_interval, resample_values
from fracbench.score import prepare, split_sha256, validated
from fracbench.validate import read_document

COMPARISON_SCHEMA = "fracbench.comparison/v1"


class ComparedSubmission(BaseModel):
    """One side of a comparison."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    model: str
    value: float | None
    ci95: tuple[float, float] | None


class Comparison(BaseModel):
    """The paired comparison of submissions A and B on one metric (``difference`` = A - B)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(default=COMPARISON_SCHEMA, alias="schema")
    protocol_version: str = PROTOCOL_VERSION
    task: str
    splits_version: str
    split: str
    split_sha256: str
    metric: str
    higher_is_better: bool
    a: ComparedSubmission
    b: ComparedSubmission
    difference: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    n_resamples: int
    n_defined: int
    seed: int

    def to_json(self) -> str:
        """2-space indented JSON with a trailing newline."""
        return self.model_dump_json(indent=2, by_alias=True) + "\n"


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
    docs = [read_document(path_a), read_document(path_b)]
    (task_a, split_a), (task_b, split_b) = [(d.data.get("task"), d.data.get("split")) if isinstance(d.data, dict) else (None, None) for d in docs]
    if isinstance(task_a, str) and isinstance(task_b, str) and task_a != task_b:
        raise ScoringError(f"{path_a} is a {task_a!r} submission but {path_b} is {task_b!r}; compare needs two submissions of the same task")
    if split is None and isinstance(split_a, str) and isinstance(split_b, str) and split_a != split_b:
        raise ScoringError(f"{path_a} is for split {split_a!r} but {path_b} for {split_b!r}; compare needs the same split (or pass --split)")
    report_a, gt = validated(docs[0], data=data, split=split, gt=gt)
    report_b, _ = validated(docs[1], data=data, split=gt.split, gt=gt)
    prep_a, prep_b = prepare(report_a, gt), prepare(report_b, gt)
    spec = prep_a.spec
    metric = metric or spec.main_score
    if metric not in spec.metrics:
        raise ScoringError(f"--metric: {metric!r} is not a {spec.name} metric; expected one of {', '.join(spec.metrics)}")
    resamples = draw_groups([g.group_id for g in prep_a.images], n_resamples, seed)
    ones = np.ones((1, len(prep_a.images)))
    point_a = float(prep_a.evaluation.compute(ones)[metric][0])
    point_b = float(prep_b.evaluation.compute(ones)[metric][0])
    boot_a = resample_values(prep_a.evaluation, resamples)[metric]
    boot_b = resample_values(prep_b.evaluation, resamples)[metric]
    paired = paired_difference(point_a, point_b, boot_a, boot_b)

    def side(path: str | Path, report, point: float, boot: np.ndarray) -> ComparedSubmission:
        finite = bool(np.isfinite(point))
        return ComparedSubmission(
            path=str(path),
            sha256=report.sha256 or "",
            model=report.submission.model.name,
            value=point if finite else None,
            ci95=percentile_interval(boot) if finite else None,
        )

    return Comparison(
        task=spec.name,
        splits_version=gt.splits_version,
        split=gt.split,
        split_sha256=split_sha256(gt),
        metric=metric,
        higher_is_better=spec.higher_is_better[metric],
        a=side(path_a, report_a, point_a, boot_a),
        b=side(path_b, report_b, point_b, boot_b),
        difference=paired.difference,
        ci95=paired.ci95,
        p_value=paired.p_value,
        n_resamples=n_resamples,
        n_defined=paired.n_defined,
        seed=seed,
    )
