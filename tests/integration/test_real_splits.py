"""The shipped splits against the real (partial) release: ids, labels, regions, the authors' split."""

from __future__ import annotations

import csv
import io

import pytest

from fracbench.splits.legacy import RAW_FILES, load_legacy
from fracbench.splits.manifest import load_manifest

pytestmark = pytest.mark.realdata

FLAGS = ("hand", "leg", "hip", "shoulder")


def _dataset_csv(root) -> dict[str, dict[str, str]]:
    text = (root / "dataset.csv").read_bytes().decode("utf-8")
    return {r["image_id"].removesuffix(".jpg"): r for r in csv.DictReader(io.StringIO(text))}


def test_manifest_ids_equal_dataset_csv_ids_with_its_regions_and_hardware(real_release):
    rows = _dataset_csv(real_release)
    manifest = load_manifest("v1")
    assert manifest.ids() == sorted(rows)
    for r in manifest.rows:
        src = rows[r.image_id]
        flags = [f for f in FLAGS if src[f] == "1"]
        region = flags[0] if len(flags) == 1 and src["mixed"] == "0" else "mixed"
        assert (r.region, r.hardware) == (region, int(src["hardware"])), r.image_id


def test_manifest_labels_are_the_image_folders(real_release):
    fractured = {p.stem for p in (real_release / "images" / "Fractured").glob("*.jpg")}
    assert len(fractured) == 717  # every Fractured image is present even in the partial copy
    manifest = load_manifest("v1")
    assert {r.image_id for r in manifest.rows if r.label == 1} == fractured
    # dataset.csv says not fractured for IMG0003298, the folder says fractured: never scored
    assert manifest.by_id()["IMG0003298"].exclude_reason == "label_conflict"


def test_legacy_list_matches_utilities_fracture_split(real_release):
    legacy = load_legacy()
    for split, name in RAW_FILES.items():
        text = (real_release / "Utilities" / "Fracture Split" / name).read_bytes().decode("utf-8")
        ids = sorted(r["image_id"].removesuffix(".jpg") for r in csv.DictReader(io.StringIO(text)))
        assert legacy.ids[split] == ids, split


@pytest.mark.slow
def test_verify_against_the_raw_release(real_release):
    from fracbench.cli import main

    assert main(["splits", "verify", "--raw", str(real_release), "--allow-missing"]) == 0
