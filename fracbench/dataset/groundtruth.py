"""Ground truth for scoring, read from a built dataset directory.

Scoring never reads the raw release: it reads the parquet files that
``fracbench build`` wrote (only the label columns, never the pixels), so the
Result can record exactly which built dataset it was scored against.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fracbench.errors import DatasetError

log = logging.getLogger(__name__)

Polygon = tuple[float, ...]
"""A COCO polygon: flat ``(x1, y1, x2, y2, ...)`` in pixels."""


@dataclass(frozen=True, slots=True)
class GTImage:
    """The ground truth of one image of a split.

    Attributes:
        image_id: e.g. ``IMG0000019``.
        width, height: pixels of the EXIF-corrected image.
        label: 1 fractured, 0 not.
        boxes: one ``(x, y, w, h)`` per fracture instance.
        polygons: per instance, its COCO polygons (same order as ``boxes``).
        region: ``hand|leg|hip|shoulder|mixed``.
        hardware: orthopaedic hardware visible.
        view: ``frontal|lateral|oblique|multiple|none``.
        group_id: leakage group (bootstrap resamples whole groups).
        scored: False for images the protocol excludes (label-conflict groups); they
            must still be predicted but do not enter any metric.
    """

    image_id: str
    width: int
    height: int
    label: int
    boxes: tuple[tuple[float, float, float, float], ...]
    polygons: tuple[tuple[Polygon, ...], ...]
    region: str
    hardware: bool
    view: str
    group_id: str
    scored: bool = True


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """The ground truth of one split of one splits version.

    Attributes:
        split: ``train|validation|test`` (or a legacy split name).
        splits_version: ``v1`` or ``legacy``.
        manifest_sha256: sha256 of the split manifest the dataset was built with.
        dataset_fingerprint: fingerprint of the built dataset (``fracbench.json``).
        dataset_version: version string of the built dataset.
        images: every image of the split, sorted by image id.
    """

    split: str
    splits_version: str
    manifest_sha256: str
    dataset_fingerprint: str
    dataset_version: str
    images: tuple[GTImage, ...]

    def by_id(self) -> dict[str, GTImage]:
        """Images keyed by image id."""
        return {g.image_id: g for g in self.images}


def load_ground_truth(
    data_dir: str | Path | None,
    split: str,
    *,
    task: str | None = None,
    splits_version: str = "v1",
    verify: bool = True,
) -> GroundTruth:
    """Read the ground truth of one split from a built dataset, without its pixels.

    The labels, boxes and polygons of every task come from one config (``segmentation``
    for the fracbench splits, ``legacy`` for the authors' split), so all tasks score
    against the same rows. Only the label columns are read (parquet column projection:
    the ``image`` and ``mask`` bytes are never loaded).

    Args:
        data_dir: the built dataset directory (or its parent); None: ``$FRACBENCH_DATA``,
            then the default cache dir (see :func:`fracbench.dataset.locate.resolve_data_dir`).
        split: ``train``, ``validation`` or ``test``.
        task: optional task name, checked against ``classification``, ``localization``,
            ``segmentation``; the ground truth itself is the same for every task.
        splits_version: ``v1`` for the dataset's leakage-aware splits (whatever manifest it
            was built with; the returned ``splits_version`` names it), or ``legacy``.
        verify: check the sha256 of the parquet files read against ``fracbench.json``.

    Returns:
        GroundTruth: images sorted by id, with the manifest sha256, dataset fingerprint and
        dataset version recorded at build time.

    Raises:
        DatasetNotFoundError: no built dataset where looked.
        DatasetError: unknown split, task or splits version; ``fracbench.json`` unreadable;
            a parquet file missing, modified since the build, or inconsistent with it.
    """
    from fracbench.dataset.built import BuiltDataset
    from fracbench.dataset.features import CONFIGS, PIXEL_COLUMNS, column_names
    from fracbench.errors import did_you_mean

    built = BuiltDataset.open(data_dir, verify=verify)
    root = built.root
    tasks = [c for c in CONFIGS if c != "legacy"]
    if task is not None and task not in tasks:
        raise DatasetError(f"task {task!r} unknown{did_you_mean(task, tasks)}; expected one of {', '.join(tasks)}")
    built_version = built.splits_version
    if splits_version == "legacy":
        config, version, manifest_sha = "legacy", "legacy", built.record.legacy.get("sha256", "")
    elif splits_version in ("v1", built_version):
        if built_version != splits_version:
            log.warning(
                "%s was built with split manifest %r (sha256 %s), not %r; its splits are used",
                root, built_version, built.manifest_sha256, splits_version,
            )
        config, version, manifest_sha = "segmentation", built_version, built.manifest_sha256
    else:
        raise DatasetError(
            f"splits_version {splits_version!r}: {root} was built with split manifest {built_version!r}; "
            "pass splits_version='v1' or 'legacy', or rebuild with `fracbench build --manifest FILE`"
        )
    columns = [c for c in column_names(config) if c not in PIXEL_COLUMNS]
    table = built.table(config, split, columns)
    cols = {name: table.column(name).to_pylist() for name in columns}
    images = tuple(
        sorted(
            (
                GTImage(
                    image_id=cols["image_id"][i],
                    width=cols["width"][i],
                    height=cols["height"][i],
                    label=int(cols["label"][i]),
                    boxes=tuple(tuple(b) for b in cols["boxes"][i]),
                    polygons=tuple(tuple(tuple(p) for p in inst) for inst in cols["polygons"][i]),
                    region=cols["region"][i],
                    hardware=bool(cols["hardware"][i]),
                    view=cols["view"][i],
                    group_id=cols["group_id"][i],
                    scored=bool(cols["scored"][i]),
                )
                for i in range(table.num_rows)
            ),
            key=lambda g: g.image_id,
        )
    )
    return GroundTruth(
        split=split,
        splits_version=version,
        manifest_sha256=manifest_sha,
        dataset_fingerprint=built.fingerprint,
        dataset_version=built.dataset_version,
        images=images,
    )


def refuse_unscorable(task: str | None, splits_version: str) -> None:
    """Refuse classification on the positive-only legacy splits (AUROC etc. need negatives).

    Raises:
        ScoringError: one line saying why and what to do instead.
    """
    from fracbench.errors import ScoringError
    from fracbench.vocab import unscorable_reason

    reason = unscorable_reason(task, splits_version)
    if reason:
        raise ScoringError(reason)


def load_split_ground_truth(data: str | Path | None, split: str, task: str | None, splits_version: str = "v1") -> GroundTruth:
    """The ground truth a submission of ``task`` on ``split`` is scored against.

    :func:`load_ground_truth` after refusing what cannot be scored (classification on
    the positive-only legacy splits). Light to import: validating needs no metric code.

    Args:
        data: built dataset directory, or None for the default places (``$FRACBENCH_DATA``, the default build).
        split: ``test`` or ``validation``.
        task: the submission's task, if known.
        splits_version: ``v1`` or ``legacy`` (the authors' positive-only split).

    Raises:
        DatasetNotFoundError: no built dataset where looked.
        ScoringError: ``task`` cannot be scored on ``splits_version``.
    """
    refuse_unscorable(task, splits_version)
    return load_ground_truth(data, split, task=task, splits_version=splits_version)
