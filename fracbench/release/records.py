"""Typed records of one FracAtlas release: one :class:`ImageRecord` per image id.

Coordinates everywhere are pixels of the EXIF-corrected image at original
resolution (the frame the annotations use), boxes are ``(x, y, w, h)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REGIONS = ("hand", "leg", "hip", "shoulder", "mixed")
"""Body-region values. ``mixed`` also covers any image with more than one region flag."""

VIEWS = ("frontal", "lateral", "oblique", "multiple", "none")
"""View values: one flag set, several (``multiple``) or none."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One annotated fracture.

    Attributes:
        bbox: ``(x, y, w, h)`` in pixels.
        polygons: COCO-style polygons, each a flat ``(x1, y1, x2, y2, ...)``; may be empty
            where a source gives only a box.
    """

    bbox: tuple[float, float, float, float]
    polygons: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """Everything the release says about one image, after every quirk is handled.

    Attributes:
        image_id: release id without extension, e.g. ``IMG0000019``.
        path: path of the JPEG relative to the release root (``images/Fractured/...``).
        present: False when the file is absent from a partial mirror (``--allow-missing``).
        fractured: the decided label (see ``fracbench.release.reader`` for the rule).
        width, height: size after EXIF orientation (None only if absent and unannotated).
        stored_width, stored_height: size of the stored pixels before orientation.
        exif_orientation: EXIF orientation tag, 1 where absent.
        mode: Pillow mode of the stored JPEG (``L`` or ``RGB``), None if absent.
        truncated: the JPEG decodes only with truncated-image recovery.
        sha256: digest of the file bytes, None if absent.
        hand, leg, hip, shoulder, mixed, hardware, multiscan, frontal, lateral, oblique:
            the ``dataset.csv`` flags.
        fracture_count: ``dataset.csv`` fracture count.
        instances: annotated fractures (COCO boxes and polygons).
        quality_flags: any of ``missing``, ``truncated``, ``no_eoi`` (no JPEG end marker but
            decodes fully), ``exif_rotated``, ``grayscale``, ``label_conflict``,
            ``box_disagreement``, ``in_both_folders`` (order: ``reader.FLAG_ORDER``).
    """

    image_id: str
    path: str
    present: bool
    fractured: bool
    width: int | None
    height: int | None
    stored_width: int | None
    stored_height: int | None
    exif_orientation: int
    mode: str | None
    truncated: bool
    sha256: str | None
    hand: bool
    leg: bool
    hip: bool
    shoulder: bool
    mixed: bool
    hardware: bool
    multiscan: bool
    frontal: bool
    lateral: bool
    oblique: bool
    fracture_count: int
    instances: tuple[Instance, ...] = ()
    quality_flags: tuple[str, ...] = ()

    @property
    def region(self) -> str:
        """One body region: the single flag set, else ``mixed``."""
        flags = [r for r in ("hand", "leg", "hip", "shoulder") if getattr(self, r)]
        if self.mixed or len(flags) != 1:
            return "mixed"
        return flags[0]

    @property
    def view(self) -> str:
        """One view: the single flag set, ``multiple`` or ``none``."""
        flags = [v for v in ("frontal", "lateral", "oblique") if getattr(self, v)]
        if not flags:
            return "none"
        return flags[0] if len(flags) == 1 else "multiple"


@dataclass(frozen=True, slots=True)
class LabelConflict:
    """Sources that disagree on whether one image is fractured.

    Attributes:
        image_id: the image.
        sources: each source's verdict, keyed by ``folder``, ``folder_copy``,
            ``csv_fractured``, ``csv_fracture_count``, ``coco``, ``yolo``, ``voc``, ``vgg``,
            ``legacy_split`` (absent sources left out).
        decided: the label the documented rule chose.
        rule: the rule, in words.
    """

    image_id: str
    sources: dict[str, bool]
    decided: bool
    rule: str


@dataclass(frozen=True, slots=True)
class BoxDisagreement:
    """A source disagreeing with the COCO annotation of one image beyond the tolerance.

    Attributes:
        image_id: the image.
        source: ``PASCAL VOC``, ``YOLO``, ``VGG JSON``, ``COCO size`` or ``PASCAL VOC size``.
        detail: what differs, in words.
        max_abs_px: the largest excess over the tolerance in pixels (``inf`` when the
            number of boxes or polygons differs).
    """

    image_id: str
    source: str
    detail: str
    max_abs_px: float


@dataclass
class Release:
    """A parsed FracAtlas release.

    Attributes:
        root: the ``FracAtlas/`` directory.
        identity: ``fracatlas-2023``, ``figshare-v7`` or ``unknown``.
        identity_note: how the identity was established (or what differs).
        fingerprint: a digest identifying the release contents (see ``release.known``).
        records: one record per ``dataset.csv`` row, sorted by image id.
        missing: paths (relative to ``root``) that are absent.
        label_conflicts: every label disagreement between sources.
        box_disagreements: every COCO/YOLO/VOC disagreement beyond 1 px.
        legacy_split: the authors' split, ``{"train"|"validation"|"test": [image ids]}``.
        warnings: anything else a user should know.
    """

    root: Path
    identity: str
    identity_note: str
    fingerprint: str
    records: list[ImageRecord]
    missing: list[str] = field(default_factory=list)
    label_conflicts: list[LabelConflict] = field(default_factory=list)
    box_disagreements: list[BoxDisagreement] = field(default_factory=list)
    legacy_split: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def by_id(self) -> dict[str, ImageRecord]:
        """Records keyed by image id."""
        return {r.image_id: r for r in self.records}
