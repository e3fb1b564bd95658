"""Score a submission: validate, compute every metric with bootstrap CIs, build the Result.

The flow is one way: read the file, load the split's ground truth from the built
dataset, validate (every problem at once, :mod:`fracbench.validate`), prepare the
task's evaluation once on the scored images (:mod:`fracbench.tasks`), evaluate it on
all images and on the group-bootstrap resamples, overall and per subgroup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fracbench import PROTOCOL_VERSION, SPLITS_VERSION, __version__
from fracbench.dataset.groundtruth import GroundTruth, GTImage, load_split_ground_truth, refuse_unscorable
from fracbench.errors import ScoringError
from fracbench.metrics import Evaluation
from fracbench.metrics.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    GroupResamples,
    draw_groups,
    percentile_interval,
    resample_values,
)
from fracbench.result import (
    BootstrapInfo,
    MainScore,
    MetricValue,
    ModelInfo,
    Provenance,
    Result,
)
from fracbench.tasks import TaskSpec, get_task
from fracbench.validate import (
    Header,
    RawDocument,
    ValidationReport,
    read_document,
    validate_submission,
)
from fracbench.vocab import LEGACY_SPLITS_VERSION

log = logging.getLogger(__name__)

SUBGROUP_ATTRIBUTES = ("region", "hardware", "view")
"""Image attributes every Result breaks its metrics down by."""

LEGACY_WARNING = (
    "splits 'legacy': the authors' positive-only split (Utilities/Fracture Split, fractured images only, "
    "no negatives); for comparison with published numbers only, NOT comparable to splits v1 results and "
    "never accepted by a leaderboard"
)
"""First note of every Result scored on the legacy splits."""


Progress = Callable[[int, int], None]
"""``progress(done, total)``: resamples evaluated so far, over main score and subgroups."""


def subgroup_value(image: GTImage, attribute: str) -> str:
    """The subgroup of ``image`` for ``attribute`` (hardware as ``yes``/``no``)."""
    value = getattr(image, attribute)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def split_sha256(gt: GroundTruth) -> str:
    """sha256 of the split's canonical listing: ``image_id,group_id,label,scored`` lines, LF, id order.

    It identifies exactly which images, labels, groups and exclusions a score is
    computed on; two Results are comparable only when it is equal.
    """
    lines = ["image_id,group_id,label,scored"]
    lines += [f"{g.image_id},{g.group_id},{g.label},{int(g.scored)}" for g in sorted(gt.images, key=lambda g: g.image_id)]
    return hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest()


def validated(
    path: str | Path | RawDocument,
    *,
    data: str | Path | None = None,
    split: str | None = None,
    gt: GroundTruth | None = None,
    splits_version: str | None = None,
) -> tuple[ValidationReport, GroundTruth]:
    """Read, load the ground truth for, and validate one submission; raise if invalid.

    Args:
        path: the submission file (or its already read document).
        data: built dataset directory (ignored when ``gt`` is given).
        split: the split to score; None takes the split the submission declares.
        gt: ground truth to use instead of loading it.
        splits_version: ``v1`` or ``legacy``; None takes the one the submission declares
            (``v1`` when it declares none known).

    Returns:
        tuple: the valid report (``report.submission`` set) and the ground truth.

    Raises:
        SubmissionError: the submission is invalid; ``problems`` lists every problem.
        ScoringError: classification on the legacy splits.
    """
    doc = path if isinstance(path, RawDocument) else read_document(path)
    if doc.problems:
        report = validate_submission(doc, None)
        report.raise_for_problems()
    header = Header.of(doc.data)
    task = header.task
    split = split or header.split or "test"
    version = splits_version or header.splits_version or SPLITS_VERSION
    if gt is None:
        gt = load_split_ground_truth(data, split, task, version)
    report = validate_submission(doc, gt, split=split)
    report.raise_for_problems()
    return report, gt


@dataclass
class PreparedScoring:
    """A valid submission's evaluation, ready for resampling."""

    spec: TaskSpec
    evaluation: Evaluation
    images: list[GTImage]


def prepare(report: ValidationReport, gt: GroundTruth) -> PreparedScoring:
    """Prepare the task's evaluation on the scored images of ``gt``.

    Raises:
        ScoringError: the split has no scored image.
    """
    submission = report.submission
    spec = get_task(submission.task)
    refuse_unscorable(spec.name, gt.splits_version)
    images = [g for g in gt.images if g.scored]
    if not images:
        raise ScoringError(f"the {gt.split} split has no scored image; is the built dataset complete?")
    return PreparedScoring(spec, spec.prepare(images, submission), images)


def _metric(point: float, resampled: np.ndarray | None) -> MetricValue:
    if not np.isfinite(point):
        return MetricValue(value=None, ci95=None)
    ci = percentile_interval(resampled) if resampled is not None else None
    return MetricValue(value=float(point), ci95=ci)


def score_submission(
    path: str | Path,
    *,
    data: str | Path | None = None,
    split: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    gt: GroundTruth | None = None,
    subgroups: bool = True,
    progress: Progress | None = None,
    splits_version: str | None = None,
) -> Result:
    """Validate and score a submission file against a split.

    Args:
        path: the submission (``.json`` or ``.json.gz``).
        data: built dataset directory; default ``$FRACBENCH_DATA`` then the cache dir.
        split: ``test`` or ``validation``; None takes the split the submission declares.
        n_resamples: bootstrap resamples for the 95 % CIs (0: no CIs).
        seed: bootstrap seed; the same seed gives the same CIs to the last digit.
        gt: ground truth to score against instead of loading it from ``data``.
        subgroups: also break every metric down by region, hardware and view.
        progress: called as resamples are evaluated.
        splits_version: ``v1`` or ``legacy``; None takes the one the submission declares.

    Returns:
        Result: main score, metrics, subgroups, curves and provenance; on the legacy
        splits a Result whose ``notes`` say it is positive-only and whose
        metrics that need negatives are null.

    Raises:
        SubmissionError: the submission is invalid (every problem listed).
        DatasetNotFoundError: no built dataset was found.
        ScoringError: scoring is impossible (e.g. no scored image, classification on legacy).
    """
    if n_resamples < 0:
        raise ScoringError(f"--bootstrap: expected 0 or more resamples, found {n_resamples}")
    report, gt = validated(path, data=data, split=split, gt=gt, splits_version=splits_version)
    return score_prepared(report, gt, prepare(report, gt), n_resamples=n_resamples, seed=seed, subgroups=subgroups, progress=progress)


def score_prepared(
    report: ValidationReport,
    gt: GroundTruth,
    prepared: PreparedScoring,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    subgroups: bool = True,
    progress: Progress | None = None,
) -> Result:
    """The Result of a validated, prepared submission (what :func:`score_submission` returns).

    For callers that keep using the prepared evaluation afterwards (``fracbench report``).
    """
    spec, evaluation, images = prepared.spec, prepared.evaluation, prepared.images
    resamples = draw_groups([g.group_id for g in images], n_resamples, seed)
    groups = _subgroups(images) if subgroups else {}
    total = n_resamples * (1 + sum(len(v) for v in groups.values()))
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        if progress is not None:
            progress(done[0], total)

    metrics = metric_values(evaluation, resamples, None, tick)
    subgroup_metrics: dict[str, dict[str, dict[str, MetricValue]]] = {}
    sizes: dict[str, dict[str, dict[str, int]]] = {}
    for attribute, values in groups.items():
        subgroup_metrics[attribute], sizes[attribute] = {}, {}
        for value, index in values.items():
            subgroup_metrics[attribute][value] = metric_values(evaluation.subset(index), resamples, index, tick)
            sizes[attribute][value] = {"n_images": int(index.size), "n_fractured": int(sum(images[i].label for i in index))}
    legacy = gt.splits_version == LEGACY_SPLITS_VERSION
    if legacy:
        for values in [metrics, *(m for attr in subgroup_metrics.values() for m in attr.values())]:
            values.update({name: MetricValue(value=None, ci95=None) for name in spec.needs_negatives})
    main = metrics[spec.main_score]
    submission = report.submission
    return Result(
        notes=(legacy_notes(spec, gt, len(images)) if legacy else []) + report.warnings,
        task=spec.name,
        model=ModelInfo(**submission.model.model_dump()),
        threshold=submission.threshold,
        operating_threshold=spec.operating_threshold(submission.threshold),
        main_score=MainScore(name=spec.main_score, value=main.value, ci95=main.ci95),
        metrics=metrics,
        subgroups=subgroup_metrics,
        subgroup_sizes=sizes,
        curves=evaluation.curves(),
        provenance=Provenance(
            protocol_version=PROTOCOL_VERSION,
            splits_version=gt.splits_version,
            split=gt.split,
            split_sha256=split_sha256(gt),
            manifest_sha256=gt.manifest_sha256,
            dataset_fingerprint=gt.dataset_fingerprint,
            dataset_version=gt.dataset_version,
            fracbench_version=__version__,
            submission_sha256=report.sha256 or "",
            scored_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            n_images=len(gt.images),
            n_scored=len(images),
            bootstrap=BootstrapInfo(n_resamples=n_resamples, seed=seed),
        ),
    )


def legacy_notes(spec: TaskSpec, gt: GroundTruth, n_scored: int) -> list[str]:
    """The warnings a Result on the legacy splits carries (see :data:`LEGACY_WARNING`)."""
    notes = [LEGACY_WARNING]
    if spec.needs_negatives:
        notes.append(f"{', '.join(spec.needs_negatives)}: null, undefined without non-fractured images")
    if spec.name == "localization":
        notes.append("false positives per image (FROC) are counted over fractured images only")
    if n_scored < len(gt.images):
        notes.append(f"{len(gt.images) - n_scored} of {len(gt.images)} images predicted but not scored (label-conflict groups, as in v1)")
    return notes


def _subgroups(images: list[GTImage]) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for attribute in SUBGROUP_ATTRIBUTES:
        values = np.array([subgroup_value(g, attribute) for g in images])
        out[attribute] = {str(v): np.flatnonzero(values == v) for v in sorted(set(values.tolist()))}
    return out


def metric_values(evaluation: Evaluation, resamples: GroupResamples, index: np.ndarray | None, tick: Callable[[int], None] | None = None) -> dict[str, MetricValue]:
    """Every metric of ``evaluation`` on all its images, with a CI from ``resamples`` (``index``: its images in the split)."""
    point = evaluation.compute(np.ones((1, evaluation.n)))
    boot = resample_values(evaluation, resamples, index, progress=tick) if resamples.n_resamples else None
    return {name: _metric(float(point[name][0]), boot[name] if boot else None) for name in evaluation.names}
