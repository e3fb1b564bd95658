"""Read a FracAtlas release directory (the figshare zip layout) into :class:`ImageRecord` s.

Every quirk of the 2023 release is handled on purpose and flagged, never silently fixed:

* **EXIF orientation**: read from the JPEG header; sizes, boxes and polygons are in the
  EXIF-corrected frame (the annotations' frame; COCO and VOC sizes are checked against it).
* **Truncated JPEGs**: a JPEG whose last two bytes are the EOI marker ``FF D9`` has its
  whole scan (``FF D9`` cannot occur inside entropy-coded data) and is not decoded here.
  Only the others (87 of 4,083 in the release) are decoded, at 1/8 scale, which runs the
  entropy decoder over the whole scan just as a full decode does: those that decode only
  with truncated-image recovery are ``truncated`` (59); those that decode without it just
  lack the EOI marker and are flagged ``no_eoi`` (28, their scan data is complete).
* **Labels**: the folder decides (``images/Fractured`` = fractured). Every other source
  (``dataset.csv`` ``fractured`` and ``fracture_count``, COCO, YOLO, VOC, VGG, the authors'
  split) is compared with it; any disagreement is a :class:`LabelConflict`.
* **Boxes**: COCO gives the instances (boxes and polygons); YOLO, VOC and VGG are
  cross-checked against it (see ``annotations.voc_excess`` / ``yolo_excess`` for the
  tolerances) and every difference is a :class:`BoxDisagreement`.
* COCO category id 0, CRLF files and files without a final newline are all parsed as is.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fracbench.errors import AnnotationError, MissingFilesError, ReleaseNotFoundError
from fracbench.release import annotations as ann
from fracbench.release.images import JpegFacts, check_jpeg_scan, oriented_size, read_jpeg_header
from fracbench.release.known import identify
from fracbench.release.records import BoxDisagreement, ImageRecord, Instance, LabelConflict, Release

log = logging.getLogger(__name__)

CLASS_FOLDERS = {"Fractured": True, "Non_fractured": False}
DATASET_CSV = "dataset.csv"
COCO_FILE = "Annotations/COCO JSON/COCO_fracture_masks.json"
VGG_FILE = "Annotations/VGG JSON/VGG_fracture_masks.json"
YOLO_DIR = "Annotations/YOLO"
YOLO_LABELS = "Annotations/YOLO/labels.txt"
VOC_DIR = "Annotations/PASCAL VOC"
SPLIT_FILES = {"train": "Utilities/Fracture Split/train.csv",
               "validation": "Utilities/Fracture Split/valid.csv",
               "test": "Utilities/Fracture Split/test.csv"}
LABEL_RULE = ("the image's folder decides (images/Fractured = fractured); an absent image, or one "
              "stored in both folders, is fractured iff it has COCO annotations")
FLAG_ORDER = ("missing", "truncated", "no_eoi", "exif_rotated", "grayscale", "label_conflict",
              "box_disagreement", "in_both_folders")
_IMAGE_NAME = re.compile(r"IMG\d{7}\.jpg")
_LISTED = 10

Progress = Callable[[int, int], None]
"""``progress(done, total)``: images inspected so far and their number."""


def find_release_root(path: str | Path) -> Path:
    """The ``FracAtlas/`` directory: ``path`` itself or ``path/FracAtlas``.

    Raises:
        ReleaseNotFoundError: neither holds ``dataset.csv`` and ``images/``.
    """
    path = Path(path).expanduser()
    for root in (path, path / "FracAtlas"):
        if (root / DATASET_CSV).is_file() and (root / "images").is_dir():
            return root
    found = sorted(p.name for p in path.iterdir())[:8] if path.is_dir() else "no such directory"
    raise ReleaseNotFoundError(
        f"{path}: not a FracAtlas release; expected dataset.csv and images/ in it or in "
        f"{path / 'FracAtlas'}, found {found}; point to the unzipped FracAtlas/ folder "
        "or run `fracbench download`")


def read_release(
    path: str | Path, *, allow_missing: bool = False, hash_files: bool = True,
    progress: Progress | None = None, workers: int | None = None,
) -> Release:
    """Read a release directory into records, conflicts, disagreements and its identity.

    Args:
        path: the ``FracAtlas/`` directory or its parent.
        allow_missing: read a partial mirror: absent images (and per-image YOLO/VOC files,
            the VGG file, the split CSVs) are listed in ``Release.missing``; records of absent
            images get ``present=False`` and the ``missing`` flag, their size from COCO/VOC.
            ``dataset.csv`` and the COCO file are always required.
        hash_files: sha256 every image (needed for the fingerprint and duplicate checks).
        progress: called as ``progress(done, total)`` while images are inspected.
        workers: threads reading and hashing images (default: up to 8).

    Returns:
        Release: one record per ``dataset.csv`` row, sorted by image id.

    Raises:
        ReleaseNotFoundError: ``path`` holds no release.
        MissingFilesError: files are absent (``.missing`` lists every path) and
            ``allow_missing`` is False, or ``dataset.csv``/the COCO file is absent.
        AnnotationError: a metadata file is malformed (file, line and problem named).
        ReleaseError: an image is empty, not a JPEG, or undecodable.
    """
    root = find_release_root(path)
    warnings: list[str] = []
    if not (root / COCO_FILE).is_file():
        raise MissingFilesError(f"{root}: {COCO_FILE} is absent; it is required even with allow_missing "
                                "(it holds every box and polygon); re-extract the release", [COCO_FILE])
    meta = _Metadata(_read_metadata(root))
    meta.rows = ann.parse_dataset_csv(meta.files[DATASET_CSV], DATASET_CSV)
    meta.coco = ann.parse_coco(meta.files[COCO_FILE], COCO_FILE, warnings)
    if unknown := sorted(set(meta.coco) - set(meta.rows)):
        raise AnnotationError(f"{COCO_FILE}: images not in dataset.csv: {', '.join(unknown[:_LISTED])}; "
                              "expected every COCO image to have a dataset.csv row")
    on_disk = _scan_images(root, warnings)
    for image_id in sorted(set(on_disk) - set(meta.rows)):
        warnings.append(f"{image_id}: JPEG in {'/'.join(on_disk[image_id])} has no dataset.csv row; ignored")
    missing = _missing_files(root, meta, on_disk)
    if missing and not allow_missing:
        shown = ", ".join(missing[:_LISTED])
        if len(missing) > _LISTED:
            shown += f" and {len(missing) - _LISTED} more"
        raise MissingFilesError(
            f"{root}: {len(missing)} release files are absent: {shown}; expected every file dataset.csv "
            "lists; re-extract the release, or pass allow_missing=True (--allow-missing) to read a "
            "partial mirror", missing)
    if YOLO_LABELS in meta.files:
        ann.parse_yolo_labels(meta.files[YOLO_LABELS], YOLO_LABELS)
    if VGG_FILE in meta.files:
        meta.vgg = ann.parse_vgg(meta.files[VGG_FILE], VGG_FILE)
    meta.legacy = {k: ann.parse_split(meta.files[p], p) for k, p in SPLIT_FILES.items() if p in meta.files}
    meta.split_ids = {i for ids in meta.legacy.values() for i in ids}
    facts = _inspect_all(root, {i: on_disk[i] for i in meta.rows if i in on_disk}, hash_files, progress, workers)

    records, conflicts, disagreements = [], [], []
    for image_id in sorted(meta.rows):
        record, conflict, found = _assemble(image_id, meta, on_disk.get(image_id, ()), facts.get(image_id),
                                            warnings)
        records.append(record)
        conflicts += [conflict] if conflict else []
        disagreements += found

    structure = {"images": sum(len(v) for v in on_disk.values()),
                 "annotations": sum(len(c.instances) for c in meta.coco.values()),
                 "fractured": sum("Fractured" in v for v in on_disk.values()),
                 "in_both_folders": sorted(i for i, v in on_disk.items() if len(v) > 1),
                 "test_split": len(meta.legacy.get("test", []))}
    ident = identify({p: hashlib.sha256(b).hexdigest() for p, b in meta.files.items()},
                     {r.path: r.sha256 for r in records if r.present} if hash_files else None,
                     missing_images=sum(not r.present for r in records), structure=structure)
    for w in warnings:
        log.warning("%s", w)
    log.info("read %s: %d images (%d files absent), %s", root, len(records), len(missing), ident.note)
    return Release(root=root, identity=ident.identity, identity_note=ident.note, fingerprint=ident.fingerprint,
                   records=records, missing=missing, label_conflicts=conflicts,
                   box_disagreements=disagreements, legacy_split=meta.legacy, warnings=warnings)


@dataclass
class _Metadata:
    """Every metadata file's bytes (hashed for the identity) and what was parsed from them."""

    files: dict[str, bytes]
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    coco: dict[str, ann.CocoImage] = field(default_factory=dict)
    vgg: dict[str, tuple[tuple[float, ...], ...]] | None = None
    legacy: dict[str, list[str]] = field(default_factory=dict)
    split_ids: set[str] = field(default_factory=set)

    def yolo(self, image_id: str) -> tuple[tuple[float, float, float, float], ...] | None:
        rel = f"{YOLO_DIR}/{image_id}.txt"
        return ann.parse_yolo(self.files[rel], rel) if rel in self.files else None

    def voc(self, image_id: str) -> ann.VocAnnotation | None:
        rel = f"{VOC_DIR}/{image_id}.xml"
        return ann.parse_voc(self.files[rel], rel) if rel in self.files else None


def _missing_files(root: Path, meta: _Metadata, on_disk: dict[str, tuple[str, ...]]) -> list[str]:
    """Every absent file the release should have; reads the per-image YOLO/VOC files present."""
    yolo_files, voc_files = _listing(root / YOLO_DIR, ".txt"), _listing(root / VOC_DIR, ".xml")
    missing = [p for p in (VGG_FILE, YOLO_LABELS, *SPLIT_FILES.values()) if p not in meta.files]
    for i in meta.rows:
        if i not in on_disk:  # an absent image is expected where its COCO presence puts it
            missing.append(f"images/{'Fractured' if i in meta.coco else 'Non_fractured'}/{i}.jpg")
        for rel, present in ((f"{YOLO_DIR}/{i}.txt", i in yolo_files), (f"{VOC_DIR}/{i}.xml", i in voc_files)):
            if present:
                meta.files[rel] = (root / rel).read_bytes()
            else:
                missing.append(rel)
    return sorted(missing)


def _assemble(
    image_id: str, meta: _Metadata, folders: tuple[str, ...], f: JpegFacts | None, warnings: list[str]
) -> tuple[ImageRecord, LabelConflict | None, list[BoxDisagreement]]:
    """One image's record, its label conflict (if any) and its box disagreements."""
    c, yolo, voc, row = meta.coco.get(image_id), meta.yolo(image_id), meta.voc(image_id), meta.rows[image_id]
    sources = _label_sources(image_id, row, folders, c, yolo, voc, meta)
    decided = sources["folder"] if len(folders) == 1 else bool(c and c.instances)
    flags = set()
    conflict = None
    if len(set(sources.values())) > 1:
        conflict = LabelConflict(image_id, sources, decided, LABEL_RULE)
        flags.add("label_conflict")
    if f is not None:
        size = oriented_size(f.stored_size, f.orientation)
    else:
        size = (c.width, c.height) if c else (voc.width, voc.height) if voc else None
    found = _box_disagreements(image_id, size, f is not None, c, yolo, voc, meta.vgg)
    if found:
        flags.add("box_disagreement")
    if len(folders) > 1:
        flags.add("in_both_folders")
        warnings.append(f"{image_id}: stored in both images/Fractured and images/Non_fractured; "
                        "the record uses the Fractured copy")
    if f is None:
        flags.add("missing")
    else:
        flags.update(k for k, on in (("truncated", f.truncated), ("no_eoi", f.no_eoi),
                                     ("exif_rotated", f.orientation != 1), ("grayscale", f.mode == "L")) if on)
        if f.mode not in ("L", "RGB"):
            warnings.append(f"{image_id}: unexpected JPEG mode {f.mode}")
    if c and row["fracture_count"] != len(c.instances):
        warnings.append(f"{image_id}: dataset.csv fracture_count {row['fracture_count']}, "
                        f"COCO {len(c.instances)} annotations")
    folder = folders[0] if folders else ("Fractured" if decided else "Non_fractured")
    return _record(image_id, folder, decided, size, f, row, c, flags), conflict, found


def _read_metadata(root: Path) -> dict[str, bytes]:
    out = {}
    for rel in (DATASET_CSV, COCO_FILE, VGG_FILE, YOLO_LABELS, *SPLIT_FILES.values()):
        if (root / rel).is_file():
            out[rel] = (root / rel).read_bytes()
    return out


def _listing(folder: Path, suffix: str) -> set[str]:
    """Stems of ``IMG*<suffix>`` files in a folder (empty if the folder is absent)."""
    if not folder.is_dir():
        return set()
    return {n[: -len(suffix)] for n in os.listdir(folder) if n.startswith("IMG") and n.endswith(suffix)}


def _scan_images(root: Path, warnings: list[str]) -> dict[str, tuple[str, ...]]:
    """``{image_id: class folders holding it}`` (Fractured first)."""
    found: dict[str, tuple[str, ...]] = {}
    if not any((root / "images" / f).is_dir() for f in CLASS_FOLDERS):
        raise ReleaseNotFoundError(f"{root / 'images'}: expected folders {' and '.join(CLASS_FOLDERS)}, "
                                   f"found {sorted(p.name for p in (root / 'images').iterdir())[:8]}; "
                                   "point to the unzipped FracAtlas/ folder")
    for folder in CLASS_FOLDERS:
        d = root / "images" / folder
        for name in sorted(os.listdir(d)) if d.is_dir() else ():
            if _IMAGE_NAME.fullmatch(name):
                found[name[:-4]] = found.get(name[:-4], ()) + (folder,)
            elif not name.startswith("."):
                warnings.append(f"images/{folder}/{name}: not an IMGnnnnnnn.jpg file; ignored")
    return found


def _inspect_all(root: Path, where: dict[str, tuple[str, ...]], hash_files: bool,
                 progress: Progress | None, workers: int | None) -> dict[str, JpegFacts]:
    """Headers (and hashes) in threads; the few JPEGs without EOI then decoded one by one."""
    names = {i: f"images/{folders[0]}/{i}.jpg" for i, folders in where.items()}
    facts: dict[str, JpegFacts] = {}
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = {i: pool.submit(read_jpeg_header, root / rel, hash_files, rel) for i, rel in names.items()}
        for done, (i, job) in enumerate(jobs.items(), start=1):
            facts[i] = job.result()
            if progress is not None:
                progress(done, len(jobs))
    for i, f in facts.items():
        if f.no_eoi:  # serial: truncated-image recovery is a process-global switch
            facts[i] = check_jpeg_scan(root / names[i], f, names[i])
    return facts


def _label_sources(image_id: str, row: dict[str, int], folders: tuple[str, ...], coco: ann.CocoImage | None,
                   yolo: tuple | None, voc: ann.VocAnnotation | None, meta: _Metadata) -> dict[str, bool]:
    """Each source's verdict on 'fractured' (sources that are absent are left out)."""
    sources: dict[str, bool] = {}
    if folders:
        sources["folder"] = folders[0] == "Fractured"
        if len(folders) > 1:
            sources["folder_copy"] = False  # the second copy, in Non_fractured
    sources["csv_fractured"] = row["fractured"] == 1
    sources["csv_fracture_count"] = row["fracture_count"] > 0
    sources["coco"] = bool(coco and coco.instances)
    if yolo is not None:
        sources["yolo"] = bool(yolo)
    if voc is not None:
        sources["voc"] = bool(voc.boxes)
    if meta.vgg is not None:
        sources["vgg"] = bool(meta.vgg.get(image_id))
    if meta.legacy:
        sources["legacy_split"] = image_id in meta.split_ids
    return sources


def _box_disagreements(
    image_id: str, size: tuple[int, int] | None, present: bool, coco: ann.CocoImage | None,
    yolo: tuple | None, voc: ann.VocAnnotation | None, vgg: dict | None,
) -> list[BoxDisagreement]:
    """COCO (the instance source) against the oriented image size, VOC, YOLO and VGG.

    A count mismatch is reported with ``max_abs_px = inf`` (no partner at any distance).
    """
    out: list[BoxDisagreement] = []
    frames = []
    if present and size is not None:
        frames += [("COCO size", coco and (coco.width, coco.height), "JPEG after EXIF orientation", size),
                   ("PASCAL VOC size", voc and (voc.width, voc.height), "JPEG after EXIF orientation", size)]
    elif coco and voc is not None:  # no JPEG to compare with: at least the two frames must agree
        frames.append(("PASCAL VOC size", (voc.width, voc.height), "COCO", (coco.width, coco.height)))
    for source, given, other, want in frames:
        if given and tuple(given) != tuple(want):
            gap = max(abs(given[0] - want[0]), abs(given[1] - want[1]))
            out.append(BoxDisagreement(image_id, source, f"annotation frame {given[0]}x{given[1]}, {other} "
                                       f"{want[0]}x{want[1]}", float(gap)))
    boxes = [ann.coco_corners(i.bbox) for i in coco.instances] if coco else []
    frame = (coco.width, coco.height) if coco else (voc.width, voc.height) if voc else size
    checks = []
    if voc is not None:
        checks.append(("PASCAL VOC", list(voc.boxes), ann.voc_excess))
    if yolo is not None and frame is not None:
        w, h = frame
        checks.append(("YOLO", [ann.yolo_corners(b, w, h) for b in yolo],
                       lambda c, y: ann.yolo_excess(c, y, w, h)))
    for source, other, excess in checks:
        if len(other) != len(boxes):
            out.append(BoxDisagreement(image_id, source, f"COCO has {len(boxes)} boxes, {source} {len(other)}",
                                       math.inf))
        for i, j, e in ann.match_boxes(boxes, other, excess):
            if e > 0:
                raw = max(abs(a - b) for a, b in zip(boxes[i], other[j]))
                out.append(BoxDisagreement(image_id, source, f"box {i}: COCO {_fmt(boxes[i])} vs {source} "
                                           f"{_fmt(other[j])}", float(raw)))
    if vgg is not None:
        polys = [p for inst in (coco.instances if coco else ()) for p in inst.polygons]
        theirs = list(vgg.get(image_id, ()))
        if len(theirs) != len(polys):
            out.append(BoxDisagreement(image_id, "VGG JSON", f"COCO has {len(polys)} polygons, VGG {len(theirs)}",
                                       math.inf))
        for i, j, e in ann.match_boxes(polys, theirs, ann.polygon_distance):
            if e > ann.BOX_TOLERANCE_PX:
                out.append(BoxDisagreement(image_id, "VGG JSON", f"COCO polygon {i} ({len(polys[i]) // 2} points) "
                                           f"differs from VGG polygon {j} ({len(theirs[j]) // 2} points)", e))
    return out


def _fmt(box) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in box) + ")"


def _record(image_id, folder, decided, size, f: JpegFacts | None, row, coco, flags) -> ImageRecord:
    instances: tuple[Instance, ...] = coco.instances if coco else ()
    return ImageRecord(
        image_id=image_id, path=f"images/{folder}/{image_id}.jpg", present=f is not None, fractured=decided,
        width=size[0] if size else None, height=size[1] if size else None,
        stored_width=f.stored_size[0] if f else None, stored_height=f.stored_size[1] if f else None,
        exif_orientation=f.orientation if f else 1, mode=f.mode if f else None,
        truncated=bool(f and f.truncated), sha256=f.sha256 if f else None,
        **{k: bool(row[k]) for k in ("hand", "leg", "hip", "shoulder", "mixed", "hardware", "multiscan",
                                     "frontal", "lateral", "oblique")},
        fracture_count=row["fracture_count"], instances=instances,
        quality_flags=tuple(k for k in FLAG_ORDER if k in flags))
