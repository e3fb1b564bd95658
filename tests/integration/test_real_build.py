"""``fracbench build`` on the real (partial) release, loaded back with ``datasets`` offline.

The CI copy misses 249 Non_fractured images, so the build runs with ``allow_missing``.
It builds every present image (about 10 s; the ``datasets`` conversion of the four
configs takes about 5 s more and writes about 1 GB into the test's isolated HF_HOME).
The complete-release build is measured by ``benchmarks/bench_build.py``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageFile

from fracbench.dataset.build import build_dataset
from fracbench.dataset.features import CONFIGS, column_names
from fracbench.vocab import SPLITS
from fracbench.dataset.groundtruth import load_ground_truth
from fracbench.errors import SplitError

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

ROTATED_FRACTURED = "IMG0002628"  # COCO/VOC give 454x373, stored pixels are 373x454
CONFLICT = "IMG0003298"  # Fractured folder, COCO and authors' test split; fractured=0 in dataset.csv


@pytest.fixture(scope="module")
def release(real_release):
    from fracbench.release.reader import read_release

    return read_release(real_release, allow_missing=True)


@pytest.fixture(scope="module")
def manifest(release, tmp_path_factory):
    """The frozen v1 manifest; until it ships, one derived here without leakage groups."""
    from fracbench.splits.manifest import load_manifest

    try:
        return load_manifest("v1")
    except SplitError:
        from fracbench.splits.derive import LeakageEvidence, derive_rows
        from fracbench.splits.manifest import read_manifest, write_manifest

        path = tmp_path_factory.mktemp("manifest") / "manifest.csv"
        evidence = LeakageEvidence(conflict_ids=[c.image_id for c in release.label_conflicts])
        write_manifest(path, derive_rows(release.records, evidence), {"version": "provisional-test"})
        return read_manifest(path)


@pytest.fixture(scope="module")
def built(release, manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "fracatlas"
    return build_dataset(release, out, allow_missing=True, manifest=manifest)


def test_every_config_loads_offline_with_the_expected_counts(built, release, manifest, monkeypatch, real_absent):
    from datasets import load_dataset

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    present = {r.image_id for r in release.records if r.present}
    assigned = manifest.by_id()
    meta = json.loads((built / "fracbench.json").read_text())
    assert meta["missing"] == sorted(r.image_id for r in release.records if not r.present)
    assert len(meta["missing"]) == len(release.records) - len(present) == real_absent
    for config in ("classification", "localization", "segmentation"):
        ds = load_dataset(str(built), config)
        assert list(ds["train"].features) == list(column_names(config))
        for split in SPLITS:
            expected = sorted(i for i in present if assigned[i].split == split)
            assert ds[split]["image_id"] == expected
    legacy = load_dataset(str(built), "legacy")
    assert {s: legacy[s].num_rows for s in SPLITS} == {"train": 574, "validation": 82, "test": 61}
    for split in SPLITS:
        assert legacy[split]["image_id"] == sorted(release.legacy_split[split])
    assert sorted(load_dataset(str(built))) == sorted(SPLITS)  # default config
    assert set(meta["configs"]) == set(CONFIGS)


def test_real_quirks_are_fixed_in_the_stored_pixels(built, release):
    import pyarrow.parquet as pq

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    records = release.by_id()
    table = pq.read_table(sorted((built / "segmentation").glob("*.parquet")))
    rows = {r["image_id"]: r for r in table.to_pylist()}
    assert sum(r["exif_rotated"] for r in rows.values()) == 25
    rotated = rows[ROTATED_FRACTURED]
    image = Image.open(io.BytesIO(rotated["image"]["bytes"]))
    assert image.format == "PNG" and image.size == (454, 373) == (rotated["width"], rotated["height"])
    truncated = [i for i, r in rows.items() if records[i].truncated]
    assert len(truncated) == 59 and all(rows[i]["truncated"] for i in truncated)
    for image_id in truncated:
        Image.open(io.BytesIO(rows[image_id]["image"]["bytes"])).load()  # default Pillow settings
    plain = next(i for i, r in rows.items() if not r["truncated"] and not r["exif_rotated"])
    assert rows[plain]["image"]["bytes"] == (release.root / records[plain].path).read_bytes()
    assert rows[CONFLICT]["label"] == 1 and rows[CONFLICT]["label_conflict"]


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools on numpy 2
def test_real_mask_of_the_rotated_fracture_matches_coco(built, release):
    import pyarrow.parquet as pq
    from pycocotools.coco import COCO

    coco = COCO(str(release.root / "Annotations" / "COCO JSON" / "COCO_fracture_masks.json"))
    image_id = next(i["id"] for i in coco.dataset["images"] if i["file_name"].startswith(ROTATED_FRACTURED))
    want = np.zeros((373, 454), dtype=np.uint8)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
        want |= coco.annToMask(ann)
    table = pq.read_table(sorted((built / "segmentation").glob("*.parquet")), filters=[("image_id", "=", ROTATED_FRACTURED)])
    mask = np.asarray(Image.open(io.BytesIO(table.column("mask")[0].as_py()["bytes"])))
    assert want.any() and np.array_equal(mask, want)


def test_real_ground_truth_of_the_test_split(built, release, manifest):
    gt = load_ground_truth(built, "test")
    present = {r.image_id for r in release.records if r.present}
    assert [g.image_id for g in gt.images] == sorted(i for i in present if manifest.by_id()[i].split == "test")
    assert gt.manifest_sha256 == manifest.sha256
    records = release.by_id()
    for g in gt.images:
        assert len(g.boxes) == len(records[g.image_id].instances) and g.label == int(records[g.image_id].fractured)
    legacy = load_ground_truth(built, "test", splits_version="legacy")
    assert {g.label for g in legacy.images} == {1} and CONFLICT in legacy.by_id()
