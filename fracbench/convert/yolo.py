"""Ultralytics YOLO: the ``images/ labels/ data.yaml`` export, and reading its predictions.

One label file per image, one line per object: class ``0`` (fractured) and the
box centre, width and height divided by the image width and height (``cx cy w h``
in 0..1, 6 decimals), or with ``--segment`` the polygon's vertices likewise
normalised (YOLO-seg). Negatives get an empty label file: Ultralytics trains on
them as background images. Ultralytics finds an image's labels by replacing the
last ``/images/`` of its path with ``/labels/`` and the extension with ``.txt``.

Ultralytics rejects a whole image whose label has a coordinate outside 0..1, so
coordinates are clipped to the image first (3 FracAtlas boxes end a fraction of a
pixel past the border; the summary counts clipped objects). Ultralytics also
re-encodes in place (JPEG quality 100) every JPEG whose last two bytes are not the
end-of-image marker; 28 FracAtlas JPEGs end in padding after their last scan, so
the export appends the marker to those, after checking that the decoded pixels
are unchanged (:func:`with_end_marker`); every other file is the stored bytes.

:func:`read_yolo` reads what ``predict``/``val`` write with ``save_txt=True
save_conf=True``: the same normalised lines with the confidence appended.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

from fracbench.convert.common import ExportSummary, image_suffix, write_file
from fracbench.convert.detections import Detection, polygon_box, predictions_error
from fracbench.dataset.built import BuiltDataset
from fracbench.errors import SubmissionError

YOLO_SPLITS = {"train": "train", "validation": "val", "test": "test"}
"""fracbench split → Ultralytics split directory (Ultralytics calls validation ``val``)."""

CLASS_NAMES = {0: "fractured"}
"""The one class of every fracbench YOLO export."""

_COLUMNS = ("image", "image_id", "label", "width", "height", "boxes", "polygons")
_JPEG_SOI, _JPEG_EOI = b"\xff\xd8\xff", b"\xff\xd9"


def with_end_marker(data: bytes) -> tuple[bytes, bool]:
    """JPEG bytes that end with the end-of-image marker, pixels unchanged.

    Args:
        data: stored image bytes (PNG bytes are returned as they are).

    Returns:
        tuple: the bytes to write, and whether ``FF D9`` was appended (only when the
        image decodes to identical pixels with and without it).
    """
    if not data.startswith(_JPEG_SOI) or data.endswith(_JPEG_EOI):
        return data, False
    from PIL import Image

    patched = data + _JPEG_EOI
    with Image.open(io.BytesIO(data)) as a, Image.open(io.BytesIO(patched)) as b:
        same = (a.size, a.mode) == (b.size, b.mode) and a.tobytes() == b.tobytes()
    return (patched, True) if same else (data, False)


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
    clipped = multi = marked = 0
    for split, name in YOLO_SPLITS.items():
        for row in source.rows(split, _COLUMNS):
            image_id, (data, appended) = row["image_id"], with_end_marker(row["image"]["bytes"])
            marked += appended
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
    if marked:
        summary.notes.append(
            f"{marked} JPEG(s) ended without the end-of-image marker: FF D9 appended (pixels checked identical) "
            "so Ultralytics does not re-encode them in place"
        )
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
        f"# FracAtlas (CC BY 4.0), fracbench dataset {source.dataset_version}, "
        f"splits {source.splits_version} (manifest sha256 {source.manifest_sha256[:12]})\n"
        f"# fingerprint {source.fingerprint}; written by `fracbench export yolo`\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def read_yolo(path: str | Path, sizes: dict[str, tuple[int, int]]) -> tuple[dict[str, list[Detection]], list[str]]:
    """Read Ultralytics ``save_txt`` + ``save_conf`` label files.

    Args:
        path: the ``labels/`` directory (or the run directory holding it).
        sizes: ``(width, height)`` of every image of the dataset, by id.

    Returns:
        tuple: detections by image id, and the names of files whose stem is no image id.

    Raises:
        SubmissionError: no such directory, or lines that are not ``cls coords... conf``.
    """
    root = Path(path)
    if not root.is_dir():
        raise SubmissionError(f"{root}: not a directory; pass the Ultralytics run's labels/ directory (predict with save_txt=True save_conf=True)")
    files = sorted(root.glob("*.txt"))
    if not files and (root / "labels").is_dir():
        root, files = root / "labels", sorted((root / "labels").glob("*.txt"))
    out: dict[str, list[Detection]] = {}
    unknown, problems = [], []
    for f in files:
        image_id = f.stem
        if image_id not in sizes:
            unknown.append(f.name)
            continue
        width, height = sizes[image_id]
        dets = out.setdefault(image_id, [])
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            det, why = _yolo_line(line.split(), width, height)
            if why:
                problems.append(f"{f.name} line {n}: {why}")
            elif det is not None:
                dets.append(det)
    if problems:
        raise predictions_error(root, "not Ultralytics save_txt+save_conf labels", problems)
    return out, unknown


def _yolo_line(fields: list[str], width: int, height: int) -> tuple[Detection | None, str | None]:
    try:
        values = [float(v) for v in fields]
    except ValueError:
        return None, f"expected numbers, found {' '.join(fields)[:60]!r}"
    n = len(values)
    if n == 5 or (n >= 7 and n % 2 == 1):
        return None, f"{n} fields and no confidence; predict with save_conf=True (expected cls coords... conf)"
    if n < 5:
        return None, f"expected 'cls cx cy w h conf' (6 fields) or 'cls x1 y1 ... conf', found {n} field(s)"
    if values[0] != 0:
        return None, f"class {fields[0]}; fracbench exports have one class, 0 = fractured"
    score = values[-1]
    if not 0.0 <= score <= 1.0:
        return None, f"confidence {fields[-1]} outside 0..1"
    if n == 6:
        return Detection(score, bbox=box_from_yolo(*values[1:5], width, height)), None
    polygon = polygon_from_yolo(values[1:-1], width, height)
    return Detection(score, bbox=polygon_box([polygon]), polygon=[polygon]), None
