"""``fracbench build`` on the synthetic release: configs, pixels, masks, determinism, card."""

from __future__ import annotations

import io
import json
import os
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, ImageFile

from fracbench.dataset.build import build_dataset
from fracbench.dataset.features import CONFIGS, column_names
from fracbench.vocab import SPLITS
from fracbench.dataset.shards import dataset_fingerprint, file_sha256
from fracbench.errors import DatasetError, DatasetNotFoundError
from fracbench.release.images import decode
from tests.data.fracatlas.generate import EXPECTED


def rows_of(built: Path, config: str, split: str) -> list[dict]:
    return pq.read_table(sorted((built / config).glob(f"{split}-*.parquet"))).to_pylist()


def test_every_config_loads_offline_with_the_manifest_counts(built_synthetic, synthetic_manifest, parsed_release):
    from datasets import load_dataset

    expected = {s: len(synthetic_manifest.ids(s)) for s in SPLITS}
    default = load_dataset(str(built_synthetic))
    assert {s: default[s].num_rows for s in SPLITS} == expected
    assert "boxes" not in default["train"].features  # the default config is classification
    for config in ("classification", "localization", "segmentation"):
        ds = load_dataset(str(built_synthetic), config)
        assert {s: ds[s].num_rows for s in SPLITS} == expected
        assert list(ds["train"].features) == list(column_names(config))
    legacy = load_dataset(str(built_synthetic), "legacy")
    assert {s: legacy[s].num_rows for s in SPLITS} == {s: len(v) for s, v in EXPECTED["legacy_split"].items()}
    assert set(legacy["test"]["label"]) == {1}


def test_rows_match_release_records_and_manifest(built_synthetic, synthetic_manifest, parsed_release):
    records, assigned = parsed_release.by_id(), synthetic_manifest.by_id()
    for split in SPLITS:
        rows = rows_of(built_synthetic, "localization", split)
        ids = [r["image_id"] for r in rows]
        assert ids == sorted(ids) == synthetic_manifest.ids(split)
        for row in rows:
            rec, m = records[row["image_id"]], assigned[row["image_id"]]
            assert row["label"] == int(rec.fractured) == m.label
            assert (row["group_id"], row["scored"]) == (m.group_id, bool(m.scored))
            assert (row["width"], row["height"]) == (rec.width, rec.height)
            assert row["boxes"] == [list(np.float32(inst.bbox)) for inst in rec.instances]
    conflict = EXPECTED["label_conflicts"][0]
    row = next(r for s in SPLITS for r in rows_of(built_synthetic, "classification", s) if r["image_id"] == conflict)
    assert row["label_conflict"] and not row["scored"] and row["label"] == 1


def _image_cell(built: Path, image_id: str, config: str = "segmentation") -> dict:
    for split in SPLITS:
        for row in rows_of(built, config, split):
            if row["image_id"] == image_id:
                return row
    raise AssertionError(f"{image_id} not in {config}")


@pytest.mark.parametrize("image_id", sorted(EXPECTED["orientation"]))
def test_exif_rotated_images_are_stored_in_the_annotation_frame(built_synthetic, parsed_release, image_id):
    rec = parsed_release.by_id()[image_id]
    row = _image_cell(built_synthetic, image_id)
    stored = Image.open(io.BytesIO(row["image"]["bytes"]))
    assert stored.format == "PNG" and row["exif_rotated"]
    assert stored.size == (rec.width, rec.height) == (row["width"], row["height"])
    assert stored.getexif().get(0x0112) is None  # nothing left for a viewer to rotate again
    expected = decode(parsed_release.root / rec.path).image
    assert np.array_equal(np.asarray(stored), np.asarray(expected))  # lossless


@pytest.mark.parametrize("image_id", EXPECTED["truncated"])
def test_truncated_images_decode_with_default_pillow(built_synthetic, parsed_release, image_id):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    row = _image_cell(built_synthetic, image_id, "classification")
    stored = Image.open(io.BytesIO(row["image"]["bytes"]))
    stored.load()  # raises OSError if it were still truncated
    assert stored.format == "PNG" and row["truncated"]
    expected = decode(parsed_release.root / parsed_release.by_id()[image_id].path).image
    assert np.array_equal(np.asarray(stored), np.asarray(expected))


def test_images_needing_no_fix_keep_their_original_bytes(built_synthetic, parsed_release):
    fixed = set(EXPECTED["orientation"]) | set(EXPECTED["truncated"])
    seen = 0
    for split in SPLITS:
        for row in rows_of(built_synthetic, "classification", split):
            if row["image_id"] in fixed:
                continue
            original = (parsed_release.root / parsed_release.by_id()[row["image_id"]].path).read_bytes()
            assert row["image"]["bytes"] == original
            assert row["image"]["path"] == f"{row['image_id']}.jpg"
            seen += 1
    assert seen == EXPECTED["images"] - len(fixed)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools on numpy 2
def test_mask_equals_the_coco_reference_rasterisation(built_synthetic, parsed_release):
    from pycocotools.coco import COCO

    coco = COCO(str(parsed_release.root / "Annotations" / "COCO JSON" / "COCO_fracture_masks.json"))
    by_name = {Path(img["file_name"]).stem: img["id"] for img in coco.dataset["images"]}
    checked = 0
    for split in SPLITS:
        for row in rows_of(built_synthetic, "segmentation", split):
            mask = Image.open(io.BytesIO(row["mask"]["bytes"]))
            assert mask.mode == "L" and mask.size == (row["width"], row["height"])
            got = np.asarray(mask)
            assert set(np.unique(got)) <= {0, 1}
            if row["label"] == 0:
                assert not got.any()
                continue
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_name[row["image_id"]]]))
            want = np.zeros_like(got)
            for ann in anns:
                want |= coco.annToMask(ann)
            assert np.array_equal(got, want), row["image_id"]
            checked += 1
    assert checked == len(EXPECTED["fractured"])


def test_building_twice_gives_byte_identical_files(built_synthetic, parsed_release, synthetic_manifest, tmp_path):
    again = build_dataset(parsed_release, tmp_path / "fracatlas", manifest=synthetic_manifest)
    files = sorted(p.relative_to(built_synthetic) for p in built_synthetic.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert len([f for f in files if f.suffix == ".parquet"]) == 3 * len(CONFIGS)
    for rel in files:
        assert (built_synthetic / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_fracbench_json_records_identity_and_fingerprint(built_synthetic, synthetic_manifest, parsed_release):
    meta = json.loads((built_synthetic / "fracbench.json").read_text())
    assert meta["dataset_version"] == "1.0.0" and meta["schema"] == "fracbench.dataset/v1"
    assert meta["splits"] == {"version": "synthetic", "manifest_sha256": synthetic_manifest.sha256, "manifest_images": 36}
    assert meta["release"]["fingerprint"] == parsed_release.fingerprint and meta["missing"] == []
    parquet = {p.relative_to(built_synthetic).as_posix(): file_sha256(p) for p in built_synthetic.rglob("*.parquet")}
    assert meta["files"] == parquet
    assert meta["fingerprint"] == dataset_fingerprint(parquet)
    assert meta["pixels"] == {"original_jpeg": 31, "reencoded_png": 5}
    assert meta["legacy"]["counts"] == {s: len(v) for s, v in EXPECTED["legacy_split"].items()}
    umask = os.umask(0o022)
    os.umask(umask)
    assert built_synthetic.stat().st_mode & 0o777 == 0o777 & ~umask  # not the owner-only temp directory


def test_card_front_matter_declares_configs_and_features(built_synthetic, synthetic_manifest):
    text = (built_synthetic / "README.md").read_text()
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["license"] == "cc-by-4.0"
    assert set(meta["task_categories"]) == {"image-classification", "object-detection", "image-segmentation"}
    assert {"medical", "x-ray", "fracture"} <= set(meta["tags"])
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert list(configs) == list(CONFIGS) and configs["classification"]["default"] is True
    assert [d["split"] for d in configs["segmentation"]["data_files"]] == list(SPLITS)
    info = {d["config_name"]: d for d in meta["dataset_info"]}
    assert [f["name"] for f in info["segmentation"]["features"]] == list(column_names("segmentation"))
    assert "$" not in body.replace("$FRACBENCH_DATA", "")
    assert synthetic_manifest.sha256 in body and "CC BY 4.0" in body and "10.1038/s41597-023-02432-4" in body
    assert "IMG0000017" in body  # the label conflict is listed under known issues
    assert "1 groups of byte-identical files" in body and "carry both labels" in body  # from MANIFEST.json


def test_missing_images_are_left_out_and_recorded(synthetic_release, synthetic_manifest, tmp_path, caplog):
    from fracbench.release.reader import read_release

    partial = shutil.copytree(synthetic_release, tmp_path / "FracAtlas")
    gone = "IMG0000010"
    (partial / "images" / "Non_fractured" / f"{gone}.jpg").unlink()
    with caplog.at_level(logging.WARNING, logger="fracbench.dataset.build"):
        out = build_dataset(
            read_release(partial, allow_missing=True), tmp_path / "out", manifest=synthetic_manifest, allow_missing=True
        )
    assert gone in caplog.text
    meta = json.loads((out / "fracbench.json").read_text())
    assert meta["missing"] == [gone] and meta["images"] == 35
    split = synthetic_manifest.by_id()[gone].split
    assert meta["configs"]["classification"]["splits"][split]["num_examples"] == len(synthetic_manifest.ids(split)) - 1
    assert gone not in [r["image_id"] for r in rows_of(out, "classification", split)]


def test_manifest_for_another_release_is_refused(parsed_release, synthetic_manifest, tmp_path):
    from dataclasses import replace

    flipped = [replace(r, label=1 - r.label) if r.image_id == "IMG0000000" else r for r in synthetic_manifest.rows]
    other = replace(synthetic_manifest, rows=flipped)
    with pytest.raises(DatasetError, match="IMG0000000"):
        build_dataset(parsed_release, tmp_path / "x", manifest=other)
    with pytest.raises(DatasetError, match="absent from it"):
        build_dataset(parsed_release, tmp_path / "x", manifest=replace(synthetic_manifest, rows=synthetic_manifest.rows[1:]))
    assert not (tmp_path / "x").exists()


def test_existing_output_needs_overwrite(parsed_release, synthetic_manifest, tmp_path):
    out = build_dataset(parsed_release, tmp_path / "fracatlas", manifest=synthetic_manifest, ids=["IMG0000003"])
    with pytest.raises(DatasetError, match="--overwrite"):
        build_dataset(parsed_release, out, manifest=synthetic_manifest)
    build_dataset(parsed_release, out, manifest=synthetic_manifest, overwrite=True, ids=["IMG0000003", "IMG0000004"])
    assert json.loads((out / "fracbench.json").read_text())["images"] == 2


def test_interrupted_build_leaves_nothing(parsed_release, synthetic_manifest, tmp_path, monkeypatch):
    import fracbench.dataset.build as build_module

    real, calls = build_module.encode_image, []

    def failing(root, record):
        calls.append(record.image_id)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real(root, record)

    monkeypatch.setattr(build_module, "encode_image", failing)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(parsed_release, tmp_path / "fracatlas", manifest=synthetic_manifest)
    assert list(tmp_path.iterdir()) == []


def test_small_shards_split_a_config_and_still_load(parsed_release, synthetic_manifest, tmp_path):
    from datasets import load_dataset

    out = build_dataset(parsed_release, tmp_path / "fracatlas", manifest=synthetic_manifest, max_shard_bytes=1)
    train = sorted(p.name for p in (out / "classification").glob("train-*.parquet"))
    n = len(synthetic_manifest.ids("train"))
    assert len(train) == n  # every row is over the limit on its own: one row per shard
    assert train[-1].endswith(f"-of-{len(train):05d}.parquet")
    ds = load_dataset(str(out), "classification", split="train")
    assert ds.num_rows == n


def test_ids_subset_builds_only_those_images(parsed_release, synthetic_manifest, tmp_path):
    from datasets import load_dataset

    ids = ["IMG0000011", "IMG0000017", "IMG0000033"]
    out = build_dataset(parsed_release, tmp_path / "fracatlas", manifest=synthetic_manifest, ids=ids)
    meta = json.loads((out / "fracbench.json").read_text())
    assert meta["subset"] is True and meta["images"] == 3
    ds = load_dataset(str(out), "segmentation")
    assert sorted(i for split in ds.values() for i in split["image_id"]) == ids
    declared = {s for s in SPLITS if any(synthetic_manifest.by_id()[i].split == s for i in ids)}
    assert set(ds) == declared  # a split without rows is not declared (the loader rejects empty splits)


def test_fracbench_load_finds_the_build(built_synthetic, monkeypatch):
    import fracbench

    test = fracbench.load("localization", split="test", data=str(built_synthetic.parent))
    assert "boxes" in test.features and test.num_rows > 0
    monkeypatch.setenv("FRACBENCH_DATA", str(built_synthetic))
    assert fracbench.load("classification", split="validation").num_rows > 0
    with pytest.raises(DatasetError, match="did you mean 'segmentation'"):
        fracbench.load("segmentaton", split="test", data=str(built_synthetic))
    monkeypatch.setenv("FRACBENCH_DATA", str(built_synthetic.parent / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match="fracbench build"):
        fracbench.load("classification")


def test_cli_build_writes_a_loadable_dataset(synthetic_release, synthetic_manifest, tmp_path, capsys):
    from fracbench.cli import main

    out = tmp_path / "fracatlas"
    argv = ["build", "--raw", str(synthetic_release), "--out", str(out), "--manifest", str(synthetic_manifest.path)]
    assert main(argv) == 0
    assert "fingerprint" in capsys.readouterr().out
    assert (out / "fracbench.json").is_file()
    assert main(argv) == 1  # exists without --overwrite: one-line error, exit 1
    assert "--overwrite" in capsys.readouterr().err
