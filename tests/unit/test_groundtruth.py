"""``load_ground_truth``: the labels of a built split, read without pixels, and its failures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from fracbench.dataset.groundtruth import GroundTruth, load_ground_truth
from fracbench.errors import DatasetError, DatasetNotFoundError
from tests.data.fracatlas.generate import EXPECTED


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_ground_truth_matches_the_release_and_manifest(built_synthetic, parsed_release, synthetic_manifest, split):
    gt = load_ground_truth(built_synthetic, split)
    assert isinstance(gt, GroundTruth) and gt.split == split
    assert [g.image_id for g in gt.images] == synthetic_manifest.ids(split)  # sorted by id
    meta = json.loads((built_synthetic / "fracbench.json").read_text())
    assert (gt.manifest_sha256, gt.dataset_fingerprint, gt.dataset_version) == (
        synthetic_manifest.sha256, meta["fingerprint"], "1.0.0")
    assert gt.splits_version == "synthetic"
    records, rows = parsed_release.by_id(), synthetic_manifest.by_id()
    for g in gt.images:
        rec, row = records[g.image_id], rows[g.image_id]
        assert (g.width, g.height, g.label) == (rec.width, rec.height, int(rec.fractured))
        assert (g.region, g.hardware, g.view) == (rec.region, rec.hardware, rec.view)
        assert (g.group_id, g.scored) == (row.group_id, bool(row.scored))
        assert len(g.boxes) == len(g.polygons) == len(rec.instances)
        for box, polys, inst in zip(g.boxes, g.polygons, rec.instances, strict=True):
            np.testing.assert_allclose(box, inst.bbox, rtol=1e-6)  # stored as float32
            assert [len(p) for p in polys] == [len(p) for p in inst.polygons]
            np.testing.assert_allclose(np.concatenate(polys), np.concatenate(inst.polygons), rtol=1e-6)


def test_ground_truth_is_the_same_for_every_task(built_synthetic):
    base = load_ground_truth(built_synthetic, "test")
    for task in ("classification", "localization", "segmentation"):
        assert load_ground_truth(built_synthetic, "test", task=task) == base


def test_ground_truth_never_reads_the_pixel_columns(built_synthetic, monkeypatch):
    import pyarrow.parquet as parquet

    seen = []
    real = parquet.read_table

    def spy(source, *args, columns=None, **kwargs):
        seen.append(columns)
        return real(source, *args, columns=columns, **kwargs)

    monkeypatch.setattr(parquet, "read_table", spy)
    load_ground_truth(built_synthetic, "train")
    assert seen and all(cols is not None and "image" not in cols and "mask" not in cols for cols in seen)


def test_legacy_ground_truth_is_the_authors_split(built_synthetic):
    gt = load_ground_truth(built_synthetic, "test", splits_version="legacy")
    assert [g.image_id for g in gt.images] == sorted(EXPECTED["legacy_split"]["test"])
    assert gt.splits_version == "legacy" and {g.label for g in gt.images} == {1}
    meta = json.loads((built_synthetic / "fracbench.json").read_text())
    assert gt.manifest_sha256 == meta["legacy"]["sha256"] != meta["splits"]["manifest_sha256"]
    assert all(len(g.polygons) == len(g.boxes) > 0 for g in gt.images)


def test_data_dir_resolution(built_synthetic, monkeypatch):
    assert load_ground_truth(built_synthetic.parent, "test").images  # the parent of fracatlas/ works too
    monkeypatch.setenv("FRACBENCH_DATA", str(built_synthetic))
    assert load_ground_truth(None, "test").images
    monkeypatch.setenv("FRACBENCH_DATA", str(built_synthetic.parent / "absent"))
    with pytest.raises(DatasetNotFoundError, match="absent"):
        load_ground_truth(None, "test")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "tset"}, "did you mean 'test'"),
        ({"split": "test", "task": "clasification"}, "did you mean 'classification'"),
        ({"split": "test", "splits_version": "v2"}, "built with split manifest 'synthetic'"),
    ],
)
def test_bad_arguments_are_named(built_synthetic, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        load_ground_truth(built_synthetic, **kwargs)


def test_modified_parquet_is_refused(built_synthetic, tmp_path):
    copy = shutil.copytree(built_synthetic, tmp_path / "fracatlas")
    target = copy / "segmentation" / "test-00000-of-00001.parquet"
    table = pq.read_table(target)
    pq.write_table(table.slice(1), target)  # one row fewer
    with pytest.raises(DatasetError, match="modified"):
        load_ground_truth(copy, "test")
    with pytest.raises(DatasetError, match="rows"):
        load_ground_truth(copy, "test", verify=False)


def test_broken_or_foreign_metadata_is_refused(built_synthetic, tmp_path):
    copy = shutil.copytree(built_synthetic, tmp_path / "fracatlas")
    meta = copy / "fracbench.json"
    meta.write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_ground_truth(copy, "test")
    meta.write_text(json.dumps({"schema": "something/else"}))
    with pytest.raises(DatasetError, match="schema"):
        load_ground_truth(copy, "test")
    (copy / "segmentation" / "test-00000-of-00001.parquet").unlink()
    meta.write_text((built_synthetic / "fracbench.json").read_text())
    with pytest.raises(DatasetError, match="missing"):
        load_ground_truth(copy, "test")
