"""The synthetic release generator writes the real layout and plants what it says it does."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fracbench.release.images import decode
from tests.data.fracatlas.generate import EXPECTED, generate, plan

REAL_COLUMNS = ("image_id,hand,leg,hip,shoulder,mixed,hardware,multiscan,fractured,"
                "fracture_count,frontal,lateral,oblique")


def _image(root: Path, image_id: str) -> Path:
    hits = list((root / "images").glob(f"*/{image_id}.jpg"))
    assert len(hits) == 1, hits
    return hits[0]


def test_layout_matches_real_release(synthetic_release):
    root = synthetic_release
    for rel in ("dataset.csv", "Annotations/COCO JSON/COCO_fracture_masks.json",
                "Annotations/VGG JSON/VGG_fracture_masks.json", "Annotations/YOLO/labels.txt",
                "Utilities/Fracture Split/train.csv", "Utilities/Fracture Split/valid.csv",
                "Utilities/Fracture Split/test.csv"):
        assert (root / rel).is_file(), rel
    jpgs = sorted(p.stem for p in (root / "images").glob("*/*.jpg"))
    assert len(jpgs) == EXPECTED["images"]
    assert sorted(p.stem for p in (root / "Annotations/YOLO").glob("IMG*.txt")) == jpgs
    assert sorted(p.stem for p in (root / "Annotations/PASCAL VOC").glob("*.xml")) == jpgs
    assert sorted(p.stem for p in (root / "images/Fractured").glob("*.jpg")) == EXPECTED["fractured"]


def test_line_endings_like_real_release(synthetic_release):
    root = synthetic_release
    data = (root / "dataset.csv").read_bytes()
    assert data.startswith(REAL_COLUMNS.encode() + b"\r\n")
    assert not data.endswith(b"\n")  # no final newline
    assert data.count(b"\r\n") == EXPECTED["images"]
    coco = (root / "Annotations/COCO JSON/COCO_fracture_masks.json").read_bytes()
    assert coco.endswith(b"}\r\n") and b"\n" not in coco.replace(b"\r\n", b"")
    assert (root / "Annotations/YOLO/labels.txt").read_bytes() == b"fractured\r\n"
    test_csv = (root / "Utilities/Fracture Split/test.csv").read_bytes()
    assert test_csv.startswith(b"image_id\r\n") and test_csv.endswith(b".jpg\r\n")
    assert b"\r" not in (root / "Annotations/PASCAL VOC/IMG0000003.xml").read_bytes()


def test_coco_category_zero_and_boxes_match_plan(synthetic_release):
    coco = json.loads((synthetic_release / "Annotations/COCO JSON/COCO_fracture_masks.json").read_text())
    assert coco["categories"] == [{"id": 0, "name": "fractured"}]
    assert {a["category_id"] for a in coco["annotations"]} == {0}
    assert len(coco["annotations"]) == EXPECTED["annotations"]
    names = {i["id"]: i["file_name"][:-4] for i in coco["images"]}
    planned = plan()
    got: dict[str, list] = {}
    for a in coco["annotations"]:
        got.setdefault(names[a["image_id"]], []).append(tuple(a["bbox"]))
    assert got == {k: p.boxes for k, p in planned.items() if p.boxes}
    for i in coco["images"]:
        assert (i["width"], i["height"]) == planned[i["file_name"][:-4]].size


def test_csv_flags_and_conflict(synthetic_release):
    with open(synthetic_release / "dataset.csv", newline="") as fh:
        rows = {r["image_id"][:-4]: r for r in csv.DictReader(fh)}
    assert sorted(k for k, r in rows.items() if r["fractured"] == "1") == EXPECTED["csv_fractured"]
    (conflict,) = EXPECTED["label_conflicts"]
    assert rows[conflict]["fractured"] == "0" and rows[conflict]["fracture_count"] == "1"
    assert conflict in EXPECTED["legacy_split"]["test"]
    for r in rows.values():  # mixed exactly when several regions, like the real release
        assert int(r["mixed"]) == (sum(int(r[k]) for k in ("hand", "leg", "hip", "shoulder")) > 1)


def test_planted_image_quirks(synthetic_release):
    root = synthetic_release
    planned = plan()
    for image_id, p in planned.items():
        d = decode(_image(root, image_id))
        assert d.image.size == p.size, image_id
        assert d.mode == p.mode, image_id
        assert d.truncated == (image_id in EXPECTED["truncated"]), image_id
        assert d.orientation == EXPECTED["orientation"].get(image_id, 1), image_id
    for image_id in EXPECTED["truncated"]:
        assert not _image(root, image_id).read_bytes().endswith(b"\xff\xd9")
        with Image.open(_image(root, image_id)) as im, pytest.raises(OSError):
            im.load()
    assert sorted(EXPECTED["greyscale"]) == sorted(k for k, p in planned.items() if p.mode == "L")


def test_rotated_fractured_image_is_stored_in_the_other_frame(synthetic_release):
    rotated = [i for i in EXPECTED["exif_rotated"] if i in EXPECTED["fractured"]]
    assert rotated, "a rotated fractured image must be planted"
    with Image.open(_image(synthetic_release, rotated[0])) as im:
        stored = im.size
    assert stored[::-1] == plan()[rotated[0]].size  # orientation 6/8 swaps width and height


def test_duplicates(synthetic_release):
    root = synthetic_release
    sha = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "images").glob("*/*.jpg")}
    by_hash: dict[str, list[str]] = {}
    for k, v in sha.items():
        by_hash.setdefault(v, []).append(k)
    assert sorted(sorted(g) for g in by_hash.values() if len(g) > 1) == EXPECTED["exact_duplicates"]
    for group in EXPECTED["pixel_duplicates"]:
        arrays = [np.asarray(decode(_image(root, i)).image) for i in group]
        assert len({sha[i] for i in group}) == len(group)
        assert all(np.array_equal(arrays[0], a) for a in arrays[1:])
    for group in EXPECTED["near_duplicates"]:
        images = [decode(_image(root, i)).image.convert("L") for i in group]
        small = [np.asarray(im.resize((16, 16), Image.Resampling.BOX), dtype=float) for im in images]
        assert not all(np.array_equal(np.asarray(images[0]), np.asarray(im)) for im in images[1:])
        assert all(np.abs(small[0] - s).mean() < 12 for s in small[1:]), group


def test_deterministic_and_script(tmp_path):
    first = generate(tmp_path / "a")
    result = subprocess.run([sys.executable, "tests/data/fracatlas/generate.py", str(tmp_path / "b")],
                            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    second = Path(result.stdout.strip())
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    with pytest.raises(FileExistsError):
        generate(tmp_path / "a")
