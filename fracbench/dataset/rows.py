"""One row of the built dataset per image: its columns from the record, the manifest and the pixels."""

from __future__ import annotations

from typing import Any

from fracbench.dataset.pixels import EncodedImage
from fracbench.release.records import ImageRecord
from fracbench.splits.manifest import ManifestRow


def pixel_cell(image: EncodedImage) -> dict[str, Any]:
    """An ``Image`` feature cell: the encoded bytes and the file name they are shown under."""
    return {"bytes": image.data, "path": image.filename}


def base_columns(record: ImageRecord, image: EncodedImage, row: ManifestRow, conflict: bool) -> dict[str, Any]:
    """The columns every config shares.

    Args:
        record: the image's release record (present).
        image: its stored pixels.
        row: its manifest row (group and scoring).
        conflict: the release lists a label conflict for it.

    Returns:
        dict: column name → value, in the types of :func:`fracbench.dataset.features.features_for`.
    """
    return {
        "image": pixel_cell(image),
        "image_id": record.image_id,
        "label": int(record.fractured),
        "width": int(record.width),
        "height": int(record.height),
        "region": record.region,
        "view": record.view,
        "hand": record.hand,
        "leg": record.leg,
        "hip": record.hip,
        "shoulder": record.shoulder,
        "mixed": record.mixed,
        "hardware": record.hardware,
        "multiscan": record.multiscan,
        "frontal": record.frontal,
        "lateral": record.lateral,
        "oblique": record.oblique,
        "fracture_count": int(record.fracture_count),
        "group_id": row.group_id,
        "scored": bool(row.scored),
        "truncated": record.truncated,
        "exif_rotated": record.exif_orientation != 1,
        "label_conflict": conflict or "label_conflict" in record.quality_flags,
    }


def annotation_columns(record: ImageRecord) -> dict[str, Any]:
    """``boxes`` ((n, 4) xywh) and ``polygons`` (per instance, flat polygons), float32 in the schema."""
    return {
        "boxes": [[float(v) for v in inst.bbox] for inst in record.instances],
        "polygons": [[[float(v) for v in poly] for poly in inst.polygons] for inst in record.instances],
    }
