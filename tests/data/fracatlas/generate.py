"""Write a miniature synthetic FracAtlas release in the exact layout of the real one.

Run ``python tests/data/fracatlas/generate.py OUT_DIR`` or call :func:`generate`. The
release has 36 small images (64-160 px) of synthetic "bones" (bright capsules on a dark,
noisy background) and carries every quirk of the 2023 release on purpose:

* file formats byte-for-byte like the real ones: ``dataset.csv`` (CRLF, ``.jpg`` ids, no
  final newline), the COCO JSON (category id 0, CRLF, Prettier-style layout), YOLO
  ``IMG*.txt`` (``%.4f`` normalised cx cy w h, LF; empty for negatives) + ``labels.txt``
  (CRLF), PASCAL VOC XML (integer pixels truncated towards zero, depth 3), VGG JSON
  (closed polygons, one line), and the authors' split CSVs (CRLF);
* an EXIF-rotated fractured image (orientation 6) whose annotations are in the rotated
  frame, and two rotated negatives (orientations 8 and 3);
* truncated JPEGs (no EOI marker), greyscale (mode ``L``) images among RGB ones;
* a byte-identical pair, a pixel-identical pair (same scan data, an extra JPEG comment),
  a re-encoded pair (different quality), a cropped and a padded near-duplicate, and a
  fractured image whose re-encoded copy sits in ``Non_fractured`` (mixed labels);
* a VGG entry missing one of its image's two polygons (as in 4 real entries);
* a label conflict like IMG0003298: in ``images/Fractured``, in the COCO file and the
  authors' test split, ``fracture_count=1`` but ``fractured=0`` in ``dataset.csv``.

:data:`EXPECTED` says what was planted; :func:`plan` gives every image's labels and
annotations (the ground truth a reader must reproduce). Output is deterministic.
"""

from __future__ import annotations

import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SEED = 20230822
N_IMAGES = 36
CSV_FLAGS = ("hand", "leg", "hip", "shoulder", "mixed", "hardware", "multiscan",
             "fractured", "fracture_count", "frontal", "lateral", "oblique")


def _id(n: int) -> str:
    return f"IMG{n:07d}"


FRACTURED = [_id(n) for n in (3, 5, 8, 11, 14, 17, 20, 24, 27, 30)]
"""Ids in ``images/Fractured`` (all annotated in COCO/VGG/YOLO/VOC)."""

TWO_BOXES = [_id(n) for n in (5, 14, 27)]
CONFLICT = _id(17)
SPLIT = {"train": [_id(n) for n in (3, 5, 8, 11, 14, 24, 27)], "validation": [_id(30)],
         "test": [_id(17), _id(20)]}
ORIENTATION = {_id(11): 6, _id(9): 8, _id(15): 3}
GREYSCALE = [_id(n) for n in (4, 8, 25)]
TRUNCATED = [_id(33), _id(34)]
QUALITY = {_id(13): 55, _id(21): 60}  # re-encodes; everything else is quality 90
VGG_DROPS_SECOND = _id(27)  # like 4 real images: VGG lacks a polygon that COCO has

EXPECTED = {
    "images": N_IMAGES,
    "fractured": sorted(FRACTURED),            # by the folder rule
    "csv_fractured": sorted(set(FRACTURED) - {CONFLICT}),
    "annotations": len(FRACTURED) + len(TWO_BOXES),
    "label_conflicts": [CONFLICT],
    "truncated": TRUNCATED,
    "exif_rotated": sorted(ORIENTATION),
    "orientation": ORIENTATION,
    "greyscale": GREYSCALE,
    # byte-identical files
    "exact_duplicates": [[_id(1), _id(2)]],
    # identical decoded pixels, different bytes (exact groups not repeated here)
    "pixel_duplicates": [[_id(6), _id(7)]],
    # the same radiograph re-encoded, cropped or padded (not pixel-identical)
    "near_duplicates": [[_id(12), _id(13)], [_id(18), _id(19), _id(22)], [_id(20), _id(21)]],
    # duplicate groups whose members carry different labels (folder rule)
    "mixed_label_groups": [[_id(20), _id(21)]],
    "legacy_split": SPLIT,
    # annotation sources that disagree with COCO: {image_id: source}
    "box_disagreements": {VGG_DROPS_SECOND: "VGG JSON"},
}
"""What the generator planted, by image id (groups sorted)."""


@dataclass
class PlannedImage:
    """One synthetic image: what every source will say about it.

    ``boxes`` are COCO ``(x, y, w, h)`` in the oriented (annotation) frame; ``polygons``
    one flat polygon per box. ``size`` is the oriented ``(width, height)``.
    """

    image_id: str
    folder: str
    size: tuple[int, int]
    mode: str
    flags: dict[str, int]
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    polygons: list[list[float]] = field(default_factory=list)
    bones: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    tissue: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)


_SIZES = [(96, 128), (128, 96), (112, 144), (144, 112), (128, 128), (160, 128), (128, 160),
          (80, 112), (64, 96), (120, 150)]
_COPIES = {_id(2): _id(1), _id(7): _id(6), _id(13): _id(12), _id(19): _id(18),
           _id(22): _id(18), _id(21): _id(20)}
_CROP, _PAD = 4, 3


def plan() -> dict[str, PlannedImage]:
    """The deterministic plan of the synthetic release, keyed by image id."""
    rng = np.random.default_rng(SEED)
    out: dict[str, PlannedImage] = {}
    for n in range(N_IMAGES):
        iid = _id(n)
        size = _SIZES[int(rng.integers(len(_SIZES)))]
        if iid == _id(11):
            size = (128, 96)  # stored 96x128, orientation 6 makes it landscape
        if iid == _id(18):
            size = (160, 144)  # the cropped/padded radiograph: big enough to stay similar
        regions = [0, 0, 0, 0]
        regions[int(rng.integers(4))] = 1
        if rng.random() < 0.15:
            regions[int(rng.integers(4))] = 1
        views = [0, 0, 0]
        views[int(rng.integers(3))] = 1
        if rng.random() < 0.2:
            views[int(rng.integers(3))] = 1
        flags = dict(zip(("hand", "leg", "hip", "shoulder"), regions))
        flags["mixed"] = int(sum(regions) > 1)
        flags["hardware"] = int(rng.random() < 0.1)
        flags["multiscan"] = int(rng.random() < 0.2)
        flags.update(zip(("frontal", "lateral", "oblique"), views))
        bones = []
        w, h = size
        for _ in range(int(rng.integers(1, 4))):
            angle = rng.uniform(0, math.pi)  # any direction, through a point near the centre
            cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
            half = rng.uniform(0.3, 0.45) * min(w, h)
            dx, dy = half * math.cos(angle), half * math.sin(angle)
            bones.append((cx - dx, cy - dy, cx + dx, cy + dy, rng.uniform(0.05, 0.1) * min(w, h)))
        tissue = (rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h,
                  rng.uniform(0.3, 0.6) * w, rng.uniform(0.3, 0.6) * h, rng.uniform(40, 90))
        folder = "Fractured" if iid in FRACTURED else "Non_fractured"
        p = PlannedImage(iid, folder, size, "L" if iid in GREYSCALE else "RGB", flags, bones=bones,
                         tissue=tissue)
        if iid in FRACTURED:
            for k in range(2 if iid in TWO_BOXES else 1):
                x0, y0, x1, y1, r = bones[k % len(bones)]
                t = (0.35, 0.65)[k] + rng.uniform(-0.05, 0.05)
                cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                poly = []
                for j in range(7):
                    a = 2 * math.pi * j / 7 + rng.uniform(-0.2, 0.2)
                    rad = r * rng.uniform(1.1, 1.6)
                    px = min(max(cx + rad * math.cos(a), 0.5), w - 0.5)
                    py = min(max(cy + rad * math.sin(a), 0.5), h - 0.5)
                    poly += [float(px), float(py)]
                xs, ys = poly[0::2], poly[1::2]
                p.boxes.append((min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))
                p.polygons.append(poly)
        p.flags["fractured"] = int(iid in FRACTURED and iid != CONFLICT)
        p.flags["fracture_count"] = len(p.boxes)
        out[iid] = p
    for copy, orig in _COPIES.items():  # copies show the original radiograph
        o, c = out[orig], out[copy]
        c.size, c.mode, c.bones, c.tissue = o.size, o.mode, o.bones, o.tissue
        if copy == _id(19):
            c.size = (o.size[0] - 2 * _CROP, o.size[1] - 2 * _CROP)
        if copy == _id(22):
            c.size = (o.size[0] + 2 * _PAD, o.size[1] + 2 * _PAD)
    return out


def _render(p: PlannedImage, rng: np.random.Generator) -> Image.Image:
    """Grey 'radiograph' in the oriented frame: bright capsules, dark fracture lines, noise."""
    w, h = p.size
    scale = 4  # draw large and downsample, for smooth anti-aliased edges
    im = Image.new("L", (w * scale, h * scale), 0)
    draw = ImageDraw.Draw(im)
    tx, ty, rx, ry, value = p.tissue  # soft tissue: a large faint blob around the bones
    draw.ellipse([(tx - rx) * scale, (ty - ry) * scale, (tx + rx) * scale, (ty + ry) * scale],
                 fill=int(value))
    for x0, y0, x1, y1, r in p.bones:
        for width, value in ((2 * r, 150), (1.2 * r, 205)):  # cortex, then brighter core
            draw.line([(x0 * scale, y0 * scale), (x1 * scale, y1 * scale)], fill=value,
                      width=int(width * scale))
            for x, y in ((x0, y0), (x1, y1)):  # rounded bone ends (condyles)
                rr = width * 0.65 * scale
                draw.ellipse([x * scale - rr, y * scale - rr, x * scale + rr, y * scale + rr],
                             fill=value)
    for (bx, by, bw, bh) in p.boxes:  # a dark fracture line through the box centre
        cx, cy = (bx + bw / 2) * scale, (by + bh / 2) * scale
        draw.line([(cx - bw * scale / 2, cy - bh * scale / 4), (cx + bw * scale / 2, cy + bh * scale / 4)],
                  fill=40, width=max(2, scale))
    im = im.resize((w, h), Image.Resampling.LANCZOS).filter(ImageFilter.GaussianBlur(0.8))
    yy, xx = np.mgrid[0:h, 0:w]
    vignette = 30 * (1 - ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2)
    pixels = np.asarray(im, dtype=np.float64) + vignette + rng.normal(0, 6, (h, w))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")


_STORE = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}
"""Oriented -> stored pixels: the inverse of what a viewer applies for each EXIF tag."""


def _jpeg(image: Image.Image, mode: str, quality: int, orientation: int = 1) -> bytes:
    if orientation != 1:
        image = image.transpose(_STORE[orientation])
    buf = io.BytesIO()
    kwargs = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    image.convert(mode).save(buf, "JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def _with_comment(data: bytes, text: bytes) -> bytes:
    """Insert a COM segment after SOI: other bytes, identical decoded pixels."""
    segment = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
    return data[:2] + segment + data[2:]


def _images(planned: dict[str, PlannedImage]) -> dict[str, bytes]:
    rng = np.random.default_rng(SEED + 1)
    pixels: dict[str, Image.Image] = {}
    files: dict[str, bytes] = {}
    for iid, p in planned.items():
        if iid in _COPIES:
            continue
        pixels[iid] = _render(p, rng)
        files[iid] = _jpeg(pixels[iid], p.mode, 90, ORIENTATION.get(iid, 1))
    for copy, orig in _COPIES.items():
        src, mode = pixels[orig], planned[orig].mode
        if copy == _id(2):
            files[copy] = files[orig]
        elif copy == _id(7):
            files[copy] = _with_comment(files[orig], b"fracbench synthetic copy")
        elif copy == _id(19):
            w, h = src.size
            files[copy] = _jpeg(src.crop((_CROP, _CROP, w - _CROP, h - _CROP)), mode, 90)
        elif copy == _id(22):
            w, h = src.size
            padded = Image.new("L", (w + 2 * _PAD, h + 2 * _PAD), 8)
            padded.paste(src, (_PAD, _PAD))
            files[copy] = _jpeg(padded, mode, 90)
        else:
            files[copy] = _jpeg(src, mode, QUALITY[copy])
    for iid in TRUNCATED:  # cut inside the scan data: no EOI marker, like the real 59
        files[iid] = files[iid][: int(len(files[iid]) * 0.6)]
    return files


def _crlf(lines: list[str], final_newline: bool = True) -> str:
    return "\r\n".join(lines) + ("\r\n" if final_newline else "")


def _num(v: float) -> str:
    return repr(float(v))


def _wrapped(values: list[str], indent: int, width: int = 80) -> list[str]:
    """Prettier-style number list: as many per line as fit in ``width``."""
    lines, cur = [], ""
    for i, v in enumerate(values):
        tok = v + ("," if i < len(values) - 1 else "")
        if cur and indent + len(cur) + 1 + len(tok) > width:
            lines.append(" " * indent + cur)
            cur = tok
        else:
            cur = f"{cur} {tok}" if cur else tok
    lines.append(" " * indent + cur)
    return lines


def _coco(planned: dict[str, PlannedImage]) -> str:
    fractured = [p for p in planned.values() if p.folder == "Fractured"]
    lines = ["{", '  "info": { "description": "my-project-name" },', '  "images": [']
    for k, p in enumerate(fractured, start=1):
        end = "," if k < len(fractured) else ""
        lines.append(f'    {{ "id": {k}, "width": {p.size[0]}, "height": {p.size[1]}, '
                     f'"file_name": "{p.image_id}.jpg" }}{end}')
    lines += ["  ],", '  "annotations": [']
    anns = [(k, box, poly) for k, p in enumerate(fractured, start=1)
            for box, poly in zip(p.boxes, p.polygons)]
    for aid, (k, box, poly) in enumerate(anns):
        xs, ys = poly[0::2], poly[1::2]
        area = 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs))))
        lines += ["    {", f'      "id": {aid},', '      "iscrowd": 0,', f'      "image_id": {k},',
                  '      "category_id": 0,', '      "segmentation": [', "        ["]
        lines += _wrapped([_num(v) for v in poly], 10)
        lines += ["        ]", "      ],", '      "bbox": [']
        lines += _wrapped([_num(v) for v in box], 8)
        lines += ["      ],", f'      "area": {_num(area)}', "    }" + ("," if aid < len(anns) - 1 else "")]
    lines += ["  ],", '  "categories": [{ "id": 0, "name": "fractured" }]', "}"]
    return _crlf(lines)


def _vgg(planned: dict[str, PlannedImage], files: dict[str, bytes]) -> str:
    entries = {}
    for p in planned.values():
        if p.folder != "Fractured":
            continue
        regions = {}
        for k, poly in enumerate(p.polygons[:1] if p.image_id == VGG_DROPS_SECOND else p.polygons):
            xs, ys = poly[0::2] + poly[:1], poly[1::2] + poly[1:2]  # VGG closes polygons
            regions[str(k)] = {"shape_attributes": {"name": "polygon", "all_points_x": xs,
                                                    "all_points_y": ys},
                               "region_attributes": {"label": "fractured"}}
        name = f"{p.image_id}.jpg"
        entries[name] = {"fileref": "", "size": len(files[p.image_id]), "filename": name,
                         "base64_img_data": "", "file_attributes": {}, "regions": regions}
    return json.dumps(entries, separators=(",", ":"))


def _voc(p: PlannedImage) -> str:
    lines = ["<annotation>", "  <folder>PASCAL VOC</folder>", f"  <filename>{p.image_id}.jpg</filename>",
             "  <source>", "    <database>MLBFR</database>", "  </source>", "  <size>",
             f"    <width>{p.size[0]}</width>", f"    <height>{p.size[1]}</height>",
             "    <depth>3</depth>", "  </size>", "  <segmented>0</segmented>"]
    for x, y, w, h in p.boxes:
        lines += ["  <object>", "    <name>fractured</name>", "    <pose>Unspecified</pose>",
                  "    <truncated>0</truncated>", "    <difficult>0</difficult>", "    <bndbox>",
                  f"      <xmin>{int(x)}</xmin>", f"      <ymin>{int(y)}</ymin>",
                  f"      <xmax>{int(x + w)}</xmax>", f"      <ymax>{int(y + h)}</ymax>",
                  "    </bndbox>", "  </object>"]
    return "\n".join(lines + ["</annotation>", ""])


def _yolo(p: PlannedImage) -> str:
    W, H = p.size
    return "".join(f"0 {(x + w / 2) / W:.4f} {(y + h / 2) / H:.4f} {w / W:.4f} {h / H:.4f}\n"
                   for x, y, w, h in p.boxes)


def generate(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write the synthetic release under ``out_dir/FracAtlas``.

    Args:
        out_dir: parent directory (created if needed).
        overwrite: replace files of an existing synthetic release.

    Returns:
        Path: the ``FracAtlas/`` directory.

    Raises:
        FileExistsError: ``out_dir/FracAtlas`` exists and ``overwrite`` is False.
    """
    root = Path(out_dir) / "FracAtlas"
    if root.exists() and not overwrite:
        raise FileExistsError(f"{root} already exists; pass overwrite=True to replace it")
    planned = plan()
    files = _images(planned)
    ann = root / "Annotations"
    for d in ("images/Fractured", "images/Non_fractured", "Annotations/COCO JSON", "Annotations/YOLO",
              "Annotations/PASCAL VOC", "Annotations/VGG JSON", "Utilities/Fracture Split"):
        (root / d).mkdir(parents=True, exist_ok=True)
    rows = ["image_id," + ",".join(CSV_FLAGS)]
    for iid, p in planned.items():
        (root / "images" / p.folder / f"{iid}.jpg").write_bytes(files[iid])
        (ann / "YOLO" / f"{iid}.txt").write_bytes(_yolo(p).encode())
        (ann / "PASCAL VOC" / f"{iid}.xml").write_bytes(_voc(p).encode())
        rows.append(f"{iid}.jpg," + ",".join(str(p.flags[k]) for k in CSV_FLAGS))
    (root / "dataset.csv").write_bytes(_crlf(rows, final_newline=False).encode())
    (ann / "YOLO" / "labels.txt").write_bytes(b"fractured\r\n")
    (ann / "COCO JSON" / "COCO_fracture_masks.json").write_bytes(_coco(planned).encode())
    (ann / "VGG JSON" / "VGG_fracture_masks.json").write_bytes(_vgg(planned, files).encode())
    for name, key in (("train", "train"), ("valid", "validation"), ("test", "test")):
        lines = ["image_id"] + [f"{i}.jpg" for i in SPLIT[key]]
        (root / "Utilities" / "Fracture Split" / f"{name}.csv").write_bytes(_crlf(lines).encode())
    return root


def main(argv: list[str] | None = None) -> int:
    """Command line: ``generate.py OUT_DIR [--overwrite]``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: generate.py OUT_DIR [--overwrite]")
        return 2
    root = generate(args[0], overwrite="--overwrite" in args[1:])
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
