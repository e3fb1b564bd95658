"""read_release on the real FracAtlas release (the partial copy CI has, or a complete one; skips without it).

The partial copy lacks the 249 largest Non_fractured images (listed in its MISSING.txt); every
count that depends on it follows ``real_absent`` (249 there, 0 with a complete copy). All 59 truncated and all 25
EXIF-rotated images are small and present, so every pixel-level count below is the
release's own, not the partial copy's; only greyscale (605 in the release) is counted on
the present images. ``FRACBENCH_RAW_COMPLETE`` (a complete copy) enables one more test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fracbench.errors import MissingFilesError
from fracbench.release.images import decode
from fracbench.release.known import FRACATLAS_2023
from fracbench.release.reader import read_release

pytestmark = pytest.mark.realdata

ROTATED = {  # EXIF orientation != 1, measured with Pillow on the complete release
    "IMG0000428": 6, "IMG0000429": 8, "IMG0000435": 6, "IMG0000436": 6, "IMG0000439": 8,
    "IMG0000679": 6, "IMG0000680": 6, "IMG0000726": 8, "IMG0000789": 6, "IMG0001169": 6,
    "IMG0001268": 6, "IMG0001490": 8, "IMG0001753": 6, "IMG0001803": 6, "IMG0001825": 6,
    "IMG0001853": 6, "IMG0001861": 6, "IMG0001864": 6, "IMG0001878": 8, "IMG0001988": 6,
    "IMG0002026": 6, "IMG0002288": 3, "IMG0002289": 3, "IMG0002588": 3, "IMG0002628": 8,
}


@pytest.fixture(scope="module")
def partial(real_release):
    return read_release(real_release, allow_missing=True)


def _missing_txt(root: Path) -> list[str] | None:
    listing = root.parent / "MISSING.txt"
    if not listing.is_file():
        return None
    return sorted(line.strip().removeprefix("FracAtlas/") for line in listing.read_text().splitlines() if line.strip())


def test_counts(partial, real_absent):
    records = partial.records
    assert len(records) == 4083
    assert sum(len(r.instances) for r in records) == 922
    assert sum(r.fractured for r in records) == 717
    assert {k: len(v) for k, v in partial.legacy_split.items()} == {"train": 574, "validation": 82, "test": 61}
    assert sum(r.present for r in records) == 4083 - real_absent


def test_identity_2023(partial, real_absent):
    assert partial.identity == "fracatlas-2023"
    if real_absent:
        assert partial.identity_note == f"FracAtlas 2023 release, partial: {real_absent} images absent"
        assert partial.fingerprint != FRACATLAS_2023.fingerprint  # it covers only the files present
    else:
        assert partial.identity_note == "FracAtlas 2023 release, complete"
        assert partial.fingerprint == FRACATLAS_2023.fingerprint


def test_missing(partial, real_release, real_absent):
    assert len(partial.missing) == real_absent
    assert all(p.startswith("images/Non_fractured/") for p in partial.missing)
    absent = [r for r in partial.records if not r.present]
    assert len(absent) == real_absent and all(r.quality_flags == ("missing",) and r.width and r.height for r in absent)
    listed = _missing_txt(real_release)
    if listed is not None:
        assert partial.missing == listed


def test_without_allow_missing_names_every_absent_file(real_release, partial, real_absent):
    if not real_absent:
        assert read_release(real_release).missing == []
        return
    with pytest.raises(MissingFilesError) as exc:
        read_release(real_release)
    assert exc.value.missing == partial.missing
    assert f"{real_absent} release files are absent" in str(exc.value) and "\n" not in str(exc.value)


def test_truncated_and_validated_against_a_real_decode(partial, real_release):
    truncated = [r for r in partial.records if r.truncated]
    assert len(truncated) == 59
    assert min(r.image_id for r in truncated) == "IMG0004028" and max(r.image_id for r in truncated) == "IMG0004347"
    no_eoi = [r for r in partial.records if "no_eoi" in r.quality_flags]
    assert len(no_eoi) == 28
    # every file without an EOI marker, decoded in full: the verdicts must agree
    for r in truncated + no_eoi:
        assert decode(real_release / r.path).truncated == r.truncated, r.image_id


def test_exif_rotated_all_present(partial):
    by_id = partial.by_id()
    rotated = {i: r.exif_orientation for i, r in by_id.items() if "exif_rotated" in r.quality_flags}
    assert rotated == ROTATED
    assert all(by_id[i].present for i in ROTATED)
    r = by_id["IMG0002628"]  # fractured; annotations in the rotated frame
    assert (r.stored_width, r.stored_height, r.width, r.height) == (373, 454, 454, 373)
    assert r.fractured and r.instances
    # COCO and VOC frames agree with the oriented size for every present image
    assert not [d for d in partial.box_disagreements if d.source.endswith("size")]


def test_label_conflict_img0003298(partial):
    (conflict,) = partial.label_conflicts
    assert conflict.image_id == "IMG0003298" and conflict.decided is True
    assert conflict.sources["folder"] is True and conflict.sources["csv_fractured"] is False
    assert conflict.sources["coco"] and conflict.sources["legacy_split"] and conflict.sources["csv_fracture_count"]
    assert "IMG0003298" in partial.legacy_split["test"]


def test_sources_agree_within_tolerance(partial):
    """YOLO and VOC agree with COCO; only VGG lacks or changes polygons, on 5 images."""
    found = sorted((d.image_id, d.source) for d in partial.box_disagreements)
    assert found == [(i, "VGG JSON") for i in
                     ("IMG0000851", "IMG0002086", "IMG0002395", "IMG0002471", "IMG0002614")]


def test_modes(partial):
    present = [r for r in partial.records if r.present]
    assert {r.mode for r in present} == {"L", "RGB"}
    assert sum("grayscale" in r.quality_flags for r in present) == sum(r.mode == "L" for r in present)


@pytest.mark.skipif(not os.environ.get("FRACBENCH_RAW_COMPLETE"), reason="set FRACBENCH_RAW_COMPLETE to a complete copy")
def test_complete_release_fingerprint():
    r = read_release(os.environ["FRACBENCH_RAW_COMPLETE"])
    assert (r.identity, r.identity_note) == ("fracatlas-2023", "FracAtlas 2023 release, complete")
    assert r.fingerprint == FRACATLAS_2023.fingerprint
    assert sum("grayscale" in x.quality_flags for x in r.records) == 605
