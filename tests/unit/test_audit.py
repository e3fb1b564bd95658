"""The audit on the synthetic release: every planted duplicate found, nothing else grouped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fracbench.cli import main
from fracbench.release import similarity as sim
from fracbench.release.audit import AuditReport, AuditThresholds, audit_release, connected_groups
from fracbench.release.audit_render import write_audit
from fracbench.release.images import decode
from fracbench.release.matching import match_pair
from tests.data.fracatlas.generate import EXPECTED


@pytest.fixture(scope="module")
def report(parsed_release) -> AuditReport:
    """The audit of the synthetic release (only this module audits it)."""
    return audit_release(parsed_release, workers=1)


def _group_of(groups: list[list[str]], image_id: str) -> set[str]:
    return next((set(g) for g in groups if image_id in g), {image_id})


def test_byte_identical_pair_is_an_exact_group(report):
    assert report.exact_duplicate_groups == EXPECTED["exact_duplicates"]


def test_pixel_identical_copy_is_found_and_exact_groups_are_nested(report):
    for group in EXPECTED["pixel_duplicates"] + EXPECTED["exact_duplicates"]:
        assert set(group) in [set(g) for g in report.pixel_duplicate_groups]
    assert len(report.pixel_duplicate_groups) == len(EXPECTED["pixel_duplicates"]) + len(EXPECTED["exact_duplicates"])


@pytest.mark.parametrize("group", EXPECTED["near_duplicates"], ids=lambda g: "+".join(g))
def test_reencoded_cropped_and_padded_copies_are_one_radiograph(report, group):
    assert _group_of(report.near_duplicate_groups, group[0]) == set(group)
    assert not any(set(group) <= set(g) for g in report.pixel_duplicate_groups)


def test_distinct_images_are_not_grouped(report):
    planted = sorted(sorted(g) for k in ("exact_duplicates", "pixel_duplicates", "near_duplicates")
                     for g in EXPECTED[k])
    assert report.near_duplicate_groups == planted
    for group in report.neighbour_groups:  # consecutive planted copies may also be neighbours
        assert any(set(group) <= set(p) for p in planted), group
    # Leakage groups are the planted copies merged with the same-region id runs, nothing else.
    links = [(g[0], x) for g in [*planted, *report.region_run_groups] for x in g[1:]]
    assert report.leakage_groups == connected_groups(links)
    assert all(any(set(p) <= set(g) for g in report.leakage_groups) for p in planted)


def test_mixed_labels_and_label_conflict(report):
    assert report.mixed_label_groups == EXPECTED["mixed_label_groups"]
    assert [c.image_id for c in report.label_conflicts] == EXPECTED["label_conflicts"]
    conflict = report.label_conflicts[0]
    assert conflict.decided is True and conflict.sources["csv_fractured"] is False


def test_truncated_and_rotated_ids(report):
    assert report.truncated == EXPECTED["truncated"]
    assert report.decoded_truncated == EXPECTED["truncated"]
    assert report.exif_rotated == EXPECTED["exif_rotated"]
    assert report.images == EXPECTED["images"] == report.present


def test_scores_separate_copies_from_other_images(report):
    """The planted copies clear the threshold, every other verified pair stays under it."""
    planted = {frozenset(p) for g in EXPECTED["near_duplicates"] + EXPECTED["pixel_duplicates"]
               + EXPECTED["exact_duplicates"] for p in _pairs(g)}
    for e in report.verified_pairs:
        assert e.same_radiograph == (frozenset((e.a, e.b)) in planted), e


def _pairs(group):
    return [(a, b) for k, a in enumerate(group) for b in group[k + 1:]]


def test_written_artifacts(tmp_path, report, parsed_release):
    written = write_audit(report, parsed_release, tmp_path)
    data = json.loads((tmp_path / "audit.json").read_text())
    for key in ("images", "truncated", "exif_rotated", "label_conflicts", "exact_duplicate_groups",
                "pixel_duplicate_groups", "near_duplicate_groups", "mixed_label_groups", "neighbour_groups",
                "leakage_groups", "release", "missing", "thresholds", "neighbour_study"):
        assert key in data, key
    assert data["release"]["fingerprint"] == parsed_release.fingerprint
    assert AuditReport.model_validate(data) == report
    sheet = Image.open(written["near_duplicate_candidates.png"])
    assert sheet.width > 300 and sheet.height > 100
    assert "Same radiograph" in (tmp_path / "audit.md").read_text()


def test_cli_audit_and_one_line_error(tmp_path, synthetic_release, capsys):
    assert main(["audit", str(synthetic_release), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    assert json.loads((tmp_path / "out" / "audit.json").read_text())["images"] == EXPECTED["images"]
    capsys.readouterr()
    assert main(["audit", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "not a FracAtlas release" in err and "Traceback" not in err


def test_connected_groups_merges_chains_and_sorts():
    assert connected_groups([("c", "d"), ("b", "a"), ("d", "e")]) == [["a", "b"], ["c", "d", "e"]]
    assert connected_groups([]) == []


def test_windowed_and_padded_copies_score_as_one_radiograph(synthetic_release):
    """A narrow intensity window (a third of the pixels clipped, gamma 0.7) and black padding
    keep the detail score above the threshold; another image stays far below it."""
    image = decode(synthetic_release / "images/Non_fractured/IMG0000010.jpg").image.convert("L")
    pixels = np.asarray(image, dtype=np.float64)
    windowed = np.clip((pixels - 15) / 180, 0, 1) ** 0.7 * 255
    padded = np.zeros((pixels.shape[0] + 20, pixels.shape[1] + 12))
    padded[10:-10, 6:-6] = pixels
    variants = [Image.fromarray(v.astype(np.uint8)) for v in (windowed, padded)]
    original = sim.fingerprint("a", decode(synthetic_release / "images/Non_fractured/IMG0000010.jpg"))
    other = sim.fingerprint("b", decode(synthetic_release / "images/Non_fractured/IMG0000016.jpg"))
    threshold = AuditThresholds().detail_accept
    for variant in variants:
        fp = sim.fingerprint("v", _decoded(variant))
        assert match_pair(original.thumb, fp.thumb).detail >= threshold
        assert match_pair(other.thumb, fp.thumb).detail < 0.5


def _decoded(image: Image.Image):
    from fracbench.release.images import DecodedImage

    return DecodedImage(image, image.size, 1, False, image.mode)
