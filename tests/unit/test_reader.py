"""read_release on the synthetic release: every quirk, every source cross-check, every bad input."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fracbench.errors import AnnotationError, MissingFilesError, ReleaseError, ReleaseNotFoundError
from fracbench.release import annotations as ann
from fracbench.release import known
from fracbench.release.images import inspect_jpeg
from fracbench.release.reader import LABEL_RULE, read_release
from tests.data.fracatlas.generate import EXPECTED, plan

COCO = "Annotations/COCO JSON/COCO_fracture_masks.json"
VOC = "Annotations/PASCAL VOC"
YOLO = "Annotations/YOLO"


@pytest.fixture
def copy(synthetic_release, tmp_path) -> Path:
    """A private copy of the synthetic release to break."""
    return Path(shutil.copytree(synthetic_release, tmp_path / "FracAtlas"))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_bytes().decode()
    assert old in text, old
    path.write_bytes(text.replace(old, new, 1).encode())


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> str:
    message = str(exc.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def test_one_record_per_row_sorted(parsed_release):
    ids = [r.image_id for r in parsed_release.records]
    assert ids == sorted(ids) and len(ids) == EXPECTED["images"]
    assert all(r.present and r.sha256 and len(r.sha256) == 64 for r in parsed_release.records)
    assert parsed_release.missing == [] and parsed_release.warnings == []
    assert parsed_release.root.name == "FracAtlas"


def test_parent_dir_is_accepted(synthetic_release, parsed_release):
    assert read_release(synthetic_release.parent).fingerprint == parsed_release.fingerprint


def test_folder_decides_and_every_disagreement_is_a_conflict(parsed_release):
    by_id = parsed_release.by_id()
    assert sorted(i for i, r in by_id.items() if r.fractured) == EXPECTED["fractured"]
    (conflict,) = parsed_release.label_conflicts
    assert [conflict.image_id] == EXPECTED["label_conflicts"]
    assert conflict.decided is True and conflict.rule == LABEL_RULE
    assert conflict.sources["folder"] is True and conflict.sources["csv_fractured"] is False
    assert all(conflict.sources[k] for k in ("csv_fracture_count", "coco", "yolo", "voc", "vgg", "legacy_split"))
    assert by_id[conflict.image_id].quality_flags == ("label_conflict",)


def test_instances_come_from_coco_in_the_oriented_frame(parsed_release):
    planned = plan()
    for record in parsed_release.records:
        p = planned[record.image_id]
        assert (record.width, record.height) == p.size
        assert [i.bbox for i in record.instances] == p.boxes
        assert [list(i.polygons[0]) for i in record.instances] == p.polygons
        assert record.fracture_count == len(p.boxes)
        for inst in record.instances:
            x, y, w, h = inst.bbox
            assert 0 <= x and x + w <= record.width and 0 <= y and y + h <= record.height


def test_exif_orientation(parsed_release):
    by_id = parsed_release.by_id()
    assert sorted(i for i, r in by_id.items() if "exif_rotated" in r.quality_flags) == EXPECTED["exif_rotated"]
    for image_id, orientation in EXPECTED["orientation"].items():
        r = by_id[image_id]
        assert r.exif_orientation == orientation
        swapped = orientation in (6, 8)
        assert (r.stored_width, r.stored_height) == ((r.height, r.width) if swapped else (r.width, r.height))
    rotated_fractured = [i for i in EXPECTED["exif_rotated"] if i in EXPECTED["fractured"]]
    assert rotated_fractured and all(by_id[i].instances for i in rotated_fractured)
    assert not [d for d in parsed_release.box_disagreements if d.image_id in EXPECTED["exif_rotated"]]


def test_truncated_greyscale_flags(parsed_release):
    by_id = parsed_release.by_id()
    assert sorted(i for i, r in by_id.items() if r.truncated) == EXPECTED["truncated"]
    assert all(by_id[i].quality_flags == ("truncated",) for i in EXPECTED["truncated"])
    grey = sorted(i for i, r in by_id.items() if "grayscale" in r.quality_flags)
    assert grey == sorted(EXPECTED["greyscale"]) and all(by_id[i].mode == "L" for i in grey)
    assert {r.mode for r in by_id.values()} == {"L", "RGB"}


def test_inspect_jpeg_matches_reader(synthetic_release, parsed_release):
    for record in parsed_release.records:
        facts = inspect_jpeg(synthetic_release / record.path)
        assert facts.truncated == record.truncated and facts.sha256 == record.sha256
        assert facts.orientation == record.exif_orientation


def test_legacy_split_and_flags(parsed_release):
    assert parsed_release.legacy_split == EXPECTED["legacy_split"]
    planned = plan()
    for r in parsed_release.records:
        assert {k: int(getattr(r, k)) for k in ("hand", "leg", "hip", "shoulder", "mixed", "hardware")} == {
            k: planned[r.image_id].flags[k] for k in ("hand", "leg", "hip", "shoulder", "mixed", "hardware")}


def test_planted_vgg_disagreement_only(parsed_release):
    found = {d.image_id: d.source for d in parsed_release.box_disagreements}
    assert found == EXPECTED["box_disagreements"]
    (d,) = parsed_release.box_disagreements
    assert "COCO has 2 polygons, VGG 1" in d.detail
    assert "box_disagreement" in parsed_release.by_id()[d.image_id].quality_flags


def test_synthetic_release_is_unknown_with_a_warning(synthetic_release, caplog):
    with caplog.at_level(logging.WARNING, logger="fracbench.release.known"):
        r = read_release(synthetic_release)
    assert r.identity == "unknown" and r.identity_note.startswith("unknown: ")
    assert "dataset.csv" in r.identity_note and "36 JPEGs" in r.identity_note
    assert "unknown FracAtlas release" in caplog.text


def test_recognised_when_digests_match(synthetic_release, monkeypatch, parsed_release, copy):
    """The identification logic, with the synthetic release's digests pinned as if it were 2023's."""
    sums = {}
    for p in sorted(synthetic_release.rglob("*")):
        if p.is_file():
            sums[p.relative_to(synthetic_release).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    meta = {k: v for k, v in sums.items() if not k.startswith("images/")}
    images = {k: v for k, v in sums.items() if k.startswith("images/")}
    pinned = dataclasses.replace(known.FRACATLAS_2023, metadata_digest=known.manifest_digest(meta.items()),
                                 image_digest=known.manifest_digest(images.items()),
                                 fingerprint=known.manifest_digest(sums.items()))
    monkeypatch.setattr(known, "FRACATLAS_2023", pinned)
    full = read_release(synthetic_release)
    assert (full.identity, full.identity_note) == ("fracatlas-2023", "FracAtlas 2023 release, complete")
    assert full.fingerprint == pinned.fingerprint == parsed_release.fingerprint
    assert read_release(synthetic_release, hash_files=False).identity_note.endswith("images not hashed (hash_files=False)")
    (copy / "images/Non_fractured/IMG0000000.jpg").unlink()
    partial = read_release(copy, allow_missing=True)
    assert partial.identity_note == "FracAtlas 2023 release, partial: 1 images absent"
    (copy / "images/Non_fractured/IMG0000010.jpg").write_bytes((copy / "images/Non_fractured/IMG0000016.jpg").read_bytes())
    shutil.copy(synthetic_release / "images/Non_fractured/IMG0000000.jpg", copy / "images/Non_fractured/")
    changed = read_release(copy)
    assert changed.identity == "unknown" and "image bytes differ" in changed.identity_note


def test_missing_files_named(copy):
    (copy / "images/Non_fractured/IMG0000000.jpg").unlink()
    (copy / "images/Fractured/IMG0000005.jpg").unlink()
    (copy / YOLO / "IMG0000010.txt").unlink()
    expected = ["Annotations/YOLO/IMG0000010.txt", "images/Fractured/IMG0000005.jpg",
                "images/Non_fractured/IMG0000000.jpg"]
    with pytest.raises(MissingFilesError) as exc:
        read_release(copy)
    assert exc.value.missing == expected
    _one_line(exc, "3 release files are absent", *expected, "allow_missing")
    r = read_release(copy, allow_missing=True)
    assert r.missing == expected
    by_id = r.by_id()
    for image_id, size in (("IMG0000000", plan()["IMG0000000"].size), ("IMG0000005", plan()["IMG0000005"].size)):
        rec = by_id[image_id]
        assert not rec.present and rec.quality_flags == ("missing",)
        assert (rec.width, rec.height) == size and rec.sha256 is None and rec.mode is None
    assert by_id["IMG0000005"].fractured and len(by_id["IMG0000005"].instances) == 2
    assert by_id["IMG0000005"].path == "images/Fractured/IMG0000005.jpg"


def test_missing_message_is_truncated_but_list_complete(copy):
    for p in sorted((copy / "images/Non_fractured").glob("*.jpg"))[:15]:
        p.unlink()
    with pytest.raises(MissingFilesError) as exc:
        read_release(copy)
    assert len(exc.value.missing) == 15
    _one_line(exc, "15 release files are absent", "and 5 more")


def test_coco_file_required_even_with_allow_missing(copy):
    (copy / COCO).unlink()
    with pytest.raises(MissingFilesError) as exc:
        read_release(copy, allow_missing=True)
    _one_line(exc, "COCO_fracture_masks.json", "required")


@pytest.mark.parametrize("where", ["empty", "nowhere", "images_only"])
def test_not_a_release(tmp_path, where):
    target = tmp_path / "x"
    if where != "nowhere":
        target.mkdir()
    if where == "images_only":
        (target / "images").mkdir()
    with pytest.raises(ReleaseNotFoundError) as exc:
        read_release(target)
    _one_line(exc, str(target), "expected dataset.csv")


@pytest.mark.parametrize(
    ("file", "old", "new", "needles"),
    [
        ("dataset.csv", "image_id,hand", "id,hand", ["dataset.csv:1", "wrong header"]),
        ("dataset.csv", "IMG0000003.jpg,", "IMG0000003.jpg,1,", ["dataset.csv:5", "expected 13 fields, found 14"]),
        ("dataset.csv", "IMG0000004.jpg,0", "IMG0000004.jpg,2", ["dataset.csv:6", "hand of IMG0000004.jpg", "found '2'"]),
        ("dataset.csv", "IMG0000004.jpg", "IMG4.jpg", ["dataset.csv:6", "expected IMGnnnnnnn.jpg"]),
        (COCO, '"category_id": 0', '"category_id": 3', [COCO, "category_id", "found 3"]),
        (COCO, '"image_id": 1,', '"image_id": 99,', [COCO, "image_id", "found 99"]),
        (COCO, '"annotations": [', '"annotations": [[', [COCO, "invalid JSON"]),
        (f"{YOLO}/IMG0000003.txt", "0 ", "1 ", [f"{YOLO}/IMG0000003.txt:1", "class: expected 0"]),
        (f"{VOC}/IMG0000003.xml", "</annotation>", "", [f"{VOC}/IMG0000003.xml", "invalid XML"]),
        (f"{VOC}/IMG0000003.xml", "<width>", "<width>x", [f"{VOC}/IMG0000003.xml", "<width>: expected an integer"]),
        ("Utilities/Fracture Split/test.csv", "image_id", "name", ["test.csv:1", "expected 'image_id'"]),
    ],
)
def test_malformed_metadata(copy, file, old, new, needles):
    _edit(copy / file, old, new)
    with pytest.raises(AnnotationError) as exc:
        read_release(copy)
    _one_line(exc, *needles)


def test_coco_box_outside_image(copy):
    doc = json.loads((copy / COCO).read_text())
    doc["annotations"][0]["bbox"][0] = 500.0
    (copy / COCO).write_text(json.dumps(doc))
    with pytest.raises(AnnotationError) as exc:
        read_release(copy)
    _one_line(exc, COCO, "annotation id 0", "IMG0000003.jpg", "outside the image", "expected within 64x96")


@pytest.mark.parametrize("file", ["dataset.csv", COCO, "Annotations/VGG JSON/VGG_fracture_masks.json"])
def test_empty_metadata_file(copy, file):
    (copy / file).write_bytes(b"")
    with pytest.raises(AnnotationError) as exc:
        read_release(copy)
    _one_line(exc, file, "empty file (0 bytes)")


@pytest.mark.parametrize(("content", "needle"), [(b"", "empty file"), (b"\x89PNG\r\n\x1a\n" + b"0" * 64, "not a readable JPEG")])
def test_bad_image_file(copy, content, needle):
    (copy / "images/Non_fractured/IMG0000010.jpg").write_bytes(content)
    with pytest.raises(ReleaseError) as exc:
        read_release(copy)
    _one_line(exc, "images/Non_fractured/IMG0000010.jpg", needle)


def test_line_endings_and_bom_do_not_matter(copy, parsed_release):
    csv_path = copy / "dataset.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes().replace(b"\r\n", b"\n") + b"\n")
    coco = copy / COCO
    coco.write_text(json.dumps(json.loads(coco.read_text())))
    r = read_release(copy)
    assert r.records == parsed_release.records
    assert r.fingerprint != parsed_release.fingerprint


def test_voc_and_yolo_disagreements(copy):
    voc = copy / VOC / "IMG0000003.xml"
    xmin = int(re.search(r"<xmin>(\d+)</xmin>", voc.read_text()).group(1))
    _edit(voc, f"<xmin>{xmin}</xmin>", f"<xmin>{xmin + 3}</xmin>")
    yolo = copy / YOLO / "IMG0000005.txt"
    first = yolo.read_text().splitlines()[0].split()
    yolo.write_text(yolo.read_text().replace(first[1], f"{float(first[1]) + 0.05:.4f}", 1))
    (copy / YOLO / "IMG0000000.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    r = read_release(copy)
    found = {(d.image_id, d.source): d for d in r.box_disagreements}
    d = found[("IMG0000003", "PASCAL VOC")]
    assert 2.0 < d.max_abs_px < 4.0 and "box 0" in d.detail
    assert 1.0 < found[("IMG0000005", "YOLO")].max_abs_px < 0.05 * 112 + 1
    assert "COCO has 0 boxes, YOLO 1" in found[("IMG0000000", "YOLO")].detail
    conflict = next(c for c in r.label_conflicts if c.image_id == "IMG0000000")
    assert conflict.decided is False and conflict.sources == {**{k: False for k in conflict.sources}, "yolo": True}


def test_annotation_frame_checked_against_oriented_size(copy):
    voc = copy / VOC / "IMG0000009.xml"  # orientation 8: oriented 160x128, stored 128x160
    _edit(voc, "<width>160</width>", "<width>128</width>")
    _edit(voc, "<height>128</height>", "<height>160</height>")
    r = read_release(copy)
    d = next(d for d in r.box_disagreements if d.image_id == "IMG0000009")
    assert d.source == "PASCAL VOC size" and "128x160" in d.detail and "160x128" in d.detail


def test_image_in_both_folders_and_stray_files(copy):
    shutil.copy(copy / "images/Fractured/IMG0000003.jpg", copy / "images/Non_fractured/")
    shutil.copy(copy / "images/Fractured/IMG0000003.jpg", copy / "images/Non_fractured/IMG0009999.jpg")
    r = read_release(copy)
    rec = r.by_id()["IMG0000003"]
    assert rec.fractured and rec.path == "images/Fractured/IMG0000003.jpg"
    assert "in_both_folders" in rec.quality_flags and "label_conflict" in rec.quality_flags
    assert any("IMG0009999" in w and "no dataset.csv row" in w for w in r.warnings)
    assert any("IMG0000003" in w and "both" in w for w in r.warnings)


def test_hash_files_false_and_progress(synthetic_release):
    calls = []
    r = read_release(synthetic_release, hash_files=False, progress=lambda d, t: calls.append((d, t)))
    assert all(x.sha256 is None for x in r.records)
    assert sorted(x.image_id for x in r.records if x.truncated) == EXPECTED["truncated"]
    assert calls[-1] == (EXPECTED["images"], EXPECTED["images"]) and len(calls) == EXPECTED["images"]


@settings(max_examples=200, deadline=None)
@given(size=st.tuples(st.integers(50, 3000), st.integers(50, 3000)), data=st.data())
def test_tolerances_absorb_format_rounding_only(size, data):
    """A box written exactly as the release writes it never disagrees; 1 px beyond the rounding always does."""
    W, H = size
    x = data.draw(st.floats(0, W - 2)); y = data.draw(st.floats(0, H - 2))
    w = data.draw(st.floats(1, W - x)); h = data.draw(st.floats(1, H - y))
    coco = ann.coco_corners((x, y, w, h))
    yolo = tuple(float(f"{v:.4f}") for v in ((x + w / 2) / W, (y + h / 2) / H, w / W, h / H))
    assert ann.yolo_excess(coco, ann.yolo_corners(yolo, W, H), W, H) <= 0
    assert ann.voc_excess(coco, (int(x), int(y), int(x + w), int(y + h))) <= 0
    shifted = (x + 1.0 + 2 * 1.5 * ann.YOLO_QUANTUM * W + 0.01, y, x + w, y + h)  # beyond rounding both ways
    assert ann.yolo_excess(shifted, ann.yolo_corners(yolo, W, H), W, H) > 0
    assert ann.voc_excess((x + 2.01, y, x + w, y + h), (int(x), int(y), int(x + w), int(y + h))) > 0


def test_repeated_coco_annotation_ids_are_a_warning_and_every_annotation_is_kept(copy, parsed_release):
    doc = json.loads((copy / COCO).read_text())
    assert len(doc["annotations"]) >= 3
    for ann in doc["annotations"][:3]:
        ann["id"] = 99999
    (copy / COCO).write_text(json.dumps(doc))
    again = read_release(copy)
    (warning,) = [w for w in again.warnings if "annotation id" in w]
    assert warning.startswith(f"{COCO}: annotations: 1 annotation id(s) repeated") and "99999 (3x)" in warning
    count = lambda r: sum(len(x.instances) for x in r.records)  # noqa: E731
    assert count(again) == count(parsed_release), "no annotation is dropped"
    assert not [w for w in parsed_release.warnings if "annotation id" in w]
