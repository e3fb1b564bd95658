"""Ultralytics YOLO layout: ``images/{train,val,test}/``, ``labels/...``, ``data.yaml``.

One label file per image, one line per object: class ``0`` (fractured) and the
box centre, width and height divided by the image width and height (``cx cy w h``
in 0..1, 6 decimals), or with ``--segment`` the polygon's vertices likewise
normalised (YOLO-seg). Negatives get an empty label file: Ultralytics trains on
them as background images. Ultralytics finds an image's labels by replacing the
last ``/images/`` of its path with ``/labels/`` and the extension with ``.txt``.

Ultralytics rejects a whole image whose label has a coordinate outside 0..1, so
coordinates are clipped to the image first (3 FracAtlas boxes end a fraction of a
pixel past the border; the summary counts clipped objects).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fracbench.convert.export import BuiltDataset, ExportSummary, image_suffix, write_file

YOLO_SPLITS = {"train": "train", "validation": "val", "test": "test"}
"""fracbench split → Ultralytics split directory (Ultralytics calls validation ``val``)."""

CLASS_NAMES = {0: "fractured"}
"""The one class of every fracbench YOLO export."""

_COLUMNS = ("image", "image_id", "label", "width", "height", "boxes", "polygons")


def box_to_yolo(box: Sequence[float], width: int, height: int) -> tuple[tuple[float, float, float, float], bool]:
    """Normalise an ``[x, y, w, h]`` pixel box to YOLO ``(cx, cy, w, h)``, clipped to the image.

    Args:
        box: ``[x, y, w, h]`` in pixels.
        width, height: the image size in pixels.

    Returns:
        tuple: ``(cx, cy, w, h)`` in 0..1, and whether clipping changed the box.
    """
    x0, y0 = max(0.0, box[0]), max(0.0, box[1])
    x1, y1 = min(float(width), box[0] + box[2]), min(float(height), box[1] + box[3])
    clipped = (x0, y0, x1, y1) != (box[0], box[1], box[0] + box[2], box[1] + box[3])
    return ((x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height), clipped


def box_from_yolo(cx: float, cy: float, w: float, h: float, width: int, height: int) -> list[float]:
    """YOLO normalised ``cx cy w h`` back to an ``[x, y, w, h]`` pixel box."""
    return [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]


def polygon_to_yolo(polygon: Sequence[float], width: int, height: int) -> tuple[list[float], bool]:
    """Normalise a flat ``[x1, y1, x2, y2, ...]`` pixel polygon to 0..1, clipped to the image.

    Returns:
        tuple: the normalised flat polygon, and whether clipping moved a vertex.
    """
    out, clipped = [], False
    for i, v in enumerate(polygon):
        side = width if i % 2 == 0 else height
        c = min(max(float(v), 0.0), float(side))
        clipped |= c != v
        out.append(c / side)
    return out, clipped


def polygon_from_yolo(values: Sequence[float], width: int, height: int) -> list[float]:
    """A normalised YOLO-seg polygon back to flat pixel coordinates."""
    return [v * (width if i % 2 == 0 else height) for i, v in enumerate(values)]


def label_lines(row: dict, *, segment: bool) -> tuple[list[str], int]:
    """The label-file lines of one image.

    Args:
        row: a built-dataset row with ``width``, ``height``, ``boxes`` and (segment) ``polygons``.
        segment: write YOLO-seg polygons (one line per polygon) instead of boxes.

    Returns:
        tuple: the lines (class 0, 6 decimals) and how many objects were clipped.
    """
    w, h = row["width"], row["height"]
    lines, clipped = [], 0
    if segment:
        for instance in row["polygons"]:
            for polygon in instance:
                values, moved = polygon_to_yolo(polygon, w, h)
                clipped += moved
                lines.append("0 " + " ".join(f"{v:.6f}" for v in values))
    else:
        for box in row["boxes"]:
            values, moved = box_to_yolo(box, w, h)
            clipped += moved
            lines.append("0 " + " ".join(f"{v:.6f}" for v in values))
    return lines, clipped


def write_yolo(source: BuiltDataset, tmp: Path, summary: ExportSummary, tick: Callable[[], None]) -> None:
    """Write the YOLO layout into ``tmp`` (see the module docstring).

    Args:
        source: the built dataset.
        tmp: the temporary export directory.
        summary: filled in with counts and notes; ``summary.task`` picks boxes or polygons.
        tick: called once per image.
    """
    segment = summary.task == "segmentation"
    clipped = multi = 0
    for split, name in YOLO_SPLITS.items():
        for row in source.rows(split, _COLUMNS):
            image_id, data = row["image_id"], row["image"]["bytes"]
            write_file(tmp / "images" / name / f"{image_id}{image_suffix(data, image_id)}", data)
            lines, moved = label_lines(row, segment=segment)
            clipped += moved
            multi += sum(1 for inst in row["polygons"] if len(inst) > 1) if segment else 0
            text = "".join(line + "\n" for line in lines)
            write_file(tmp / "labels" / name / f"{image_id}.txt", text.encode("ascii"))
            summary.count(name, row["label"])
            summary.objects += len(lines)
            tick()
    write_file(tmp / "data.yaml", data_yaml(summary.out, source).encode("utf-8"))
    kind = "polygons (YOLO-seg)" if segment else "boxes"
    summary.notes.append(f"labels are {kind}, class 0 = fractured; negatives have empty label files")
    if clipped:
        summary.notes.append(f"{clipped} object(s) reached past the image border and were clipped to it")
    if multi:
        summary.notes.append(f"{multi} instance(s) have several polygons; each polygon is written as its own line")
    summary.notes.append(
        f"train with: yolo {'segment' if segment else 'detect'} train data={summary.out.resolve() / 'data.yaml'}; "
        "data.yaml holds the absolute path: edit 'path' if you move the folder"
    )


def data_yaml(out: Path, source: BuiltDataset) -> str:
    """The ``data.yaml`` text: absolute ``path``, split directories and ``names``.

    ``path`` is absolute because Ultralytics resolves a relative one against its own
    datasets directory, not against the YAML file.
    """
    import yaml

    doc = {
        "path": str(Path(out).resolve()),
        "train": f"images/{YOLO_SPLITS['train']}",
        "val": f"images/{YOLO_SPLITS['validation']}",
        "test": f"images/{YOLO_SPLITS['test']}",
        "names": dict(CLASS_NAMES),
    }
    head = (
        f"# FracAtlas (CC BY 4.0), fracbench dataset {source.meta['dataset_version']}, "
        f"splits {source.splits_version} (manifest sha256 {source.manifest_sha256[:12]})\n"
        f"# fingerprint {source.meta['fingerprint']}; written by `fracbench export yolo`\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
