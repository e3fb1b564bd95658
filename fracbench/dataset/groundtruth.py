"""Ground truth for scoring, read from a built dataset directory.

Scoring never reads the raw release: it reads the parquet files that
``fracbench build`` wrote (only the label columns, never the pixels), so the
Result can record exactly which built dataset it was scored against.
"""

from __future__ import annotations

from dataclasses import dataclass

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
