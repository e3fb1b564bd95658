"""Exports (YOLO, COCO, ImageFolder, nnU-Net) and prediction imports on a built synthetic dataset."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from fracbench.convert.coco import coco_image_id, polygon_area
from fracbench.convert.export import export_dataset
from fracbench.convert.import_preds import import_predictions, write_submission
from fracbench.convert.yolo import box_from_yolo, box_to_yolo, with_end_marker
from fracbench.dataset.groundtruth import load_ground_truth
from fracbench.errors import DatasetError, SubmissionError
from fracbench.validate import validate_submission

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def rows(built_synthetic) -> dict[str, list[dict]]:
    """Every row of the built dataset, by split (what each export must reproduce)."""
    return {s: pq.read_table(sorted((built_synthetic / "segmentation").glob(f"{s}-*.parquet"))).to_pylist() for s in SPLITS}


@pytest.fixture(scope="module")
def exports(built_synthetic, synthetic_manifest, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("exports")
    return {
        "yolo": export_dataset("yolo", out / "yolo", data=built_synthetic).out,
        "yoloseg": export_dataset("yolo", out / "yoloseg", data=built_synthetic, segment=True).out,
        "coco": export_dataset("coco", out / "coco", data=built_synthetic).out,
        "imagefolder": export_dataset("imagefolder", out / "imagefolder", data=built_synthetic).out,
        "nnunet": export_dataset("nnunet", out / "nnraw", data=built_synthetic, manifest=synthetic_manifest.path).out,
    }


# --- YOLO -------------------------------------------------------------------------------------------


def test_yolo_labels_are_normalised_boxes_to_1e6(exports, rows):
    root = exports["yolo"]
    for split, name in zip(SPLITS, ("train", "val", "test")):
        assert sorted(p.stem for p in (root / "images" / name).iterdir()) == [r["image_id"] for r in rows[split]]
        for row in rows[split]:
            w, h = row["width"], row["height"]
            image = next((root / "images" / name).glob(f"{row['image_id']}.*"))
            assert image.read_bytes() == row["image"]["bytes"]  # copied, never re-encoded
            lines = (root / "labels" / name / f"{row['image_id']}.txt").read_text().splitlines()
            assert len(lines) == len(row["boxes"])  # empty file for a negative
            for line, (x, y, bw, bh) in zip(lines, row["boxes"]):
                cls, *values = line.split()
                assert cls == "0" and all(len(v.split(".")[1]) == 6 for v in values)
                want = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
                assert np.allclose([float(v) for v in values], want, rtol=0, atol=1e-6)
    data = yaml.safe_load((root / "data.yaml").read_text())
    assert data == {"path": str(root.resolve()), "train": "images/train", "val": "images/val", "test": "images/test", "names": {0: "fractured"}}


def test_yolo_segment_writes_each_polygon_normalised(exports, rows):
    root = exports["yoloseg"]
    for row in rows["train"]:
        lines = (root / "labels" / "train" / f"{row['image_id']}.txt").read_text().splitlines()
        polygons = [p for inst in row["polygons"] for p in inst]
        assert len(lines) == len(polygons)
        for line, poly in zip(lines, polygons):
            values = np.array([float(v) for v in line.split()[1:]])
            scale = np.tile([row["width"], row["height"]], len(poly) // 2)
            assert np.allclose(values, np.array(poly) / scale, atol=1e-6)


def test_yolo_box_outside_the_image_is_clipped_not_dropped():
    (cx, cy, w, h), clipped = box_to_yolo([90.0, -2.0, 20.0, 10.0], 100, 50)
    assert clipped and max(cx + w / 2, cy + h / 2) <= 1.0 and min(cx - w / 2, cy - h / 2) >= 0.0
    assert np.allclose(box_from_yolo(cx, cy, w, h, 100, 50), [90.0, 0.0, 10.0, 8.0])


def test_yolo_jpeg_without_end_marker_gets_one_and_keeps_its_pixels():
    buf = io.BytesIO()
    Image.fromarray(np.arange(64 * 48, dtype=np.uint8).reshape(48, 64)).save(buf, "JPEG", quality=90)
    padded = buf.getvalue()[:-2] + b"\x00" * 40  # like 28 FracAtlas JPEGs: padding, no FF D9
    fixed, appended = with_end_marker(padded)
    assert appended and fixed == padded + b"\xff\xd9"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(fixed))), np.asarray(Image.open(io.BytesIO(padded))))
    assert with_end_marker(buf.getvalue()) == (buf.getvalue(), False)
    png = io.BytesIO()
    Image.new("L", (4, 4)).save(png, "PNG")
    assert with_end_marker(png.getvalue()) == (png.getvalue(), False)


@given(
    st.integers(16, 3000), st.integers(16, 3000),
    st.floats(0, 1), st.floats(0, 1), st.floats(0.001, 1), st.floats(0.001, 1),
)
def test_yolo_box_round_trip(width, height, fx, fy, fw, fh):
    box = [fx * width * (1 - fw), fy * height * (1 - fh), fw * width * (1 - fx) + 0.5, fh * height * (1 - fy) + 0.5]
    box = [box[0], box[1], min(box[2], width - box[0]), min(box[3], height - box[1])]
    values, clipped = box_to_yolo(box, width, height)
    assert not clipped
    assert np.allclose(box_from_yolo(*values, width, height), box, rtol=0, atol=1e-9 * max(width, height))


# --- COCO -------------------------------------------------------------------------------------------


def test_coco_export_loads_in_pycocotools_with_every_image(exports, rows):
    from pycocotools.coco import COCO

    root = exports["coco"]
    for split in SPLITS:
        coco = COCO(str(root / "annotations" / f"instances_{split}.json"))
        assert coco.getCatIds() == [1] and coco.loadCats(1)[0]["name"] == "fractured"
        assert sorted(coco.getImgIds()) == sorted(coco_image_id(r["image_id"]) for r in rows[split])
        anns = coco.dataset["annotations"]
        assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
        for row in rows[split]:
            img = coco.loadImgs(coco_image_id(row["image_id"]))[0]
            assert (root / "images" / img["file_name"]).read_bytes() == row["image"]["bytes"]
            assert (img["width"], img["height"], img["fracbench_id"]) == (row["width"], row["height"], row["image_id"])
            got = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
            assert [a["bbox"] for a in got] == row["boxes"]
            assert all(a["iscrowd"] == 0 and a["category_id"] == 1 for a in got)
            for a, inst in zip(got, row["polygons"]):
                assert a["segmentation"] == inst
                assert a["area"] == pytest.approx(sum(polygon_area(p) for p in inst))
                assert coco.annToMask(a).sum() > 0


def test_polygon_area_is_the_shoelace_area():
    assert polygon_area([0, 0, 4, 0, 4, 3, 0, 3]) == 12.0
    assert polygon_area([0, 0, 0, 3, 4, 3, 4, 0]) == 12.0  # orientation does not matter


@pytest.mark.parametrize("split", ["validation", "test"])
def test_coco_round_trip_gives_the_ground_truth_boxes(exports, built_synthetic, split, tmp_path):
    doc = json.loads((exports["coco"] / "annotations" / f"instances_{split}.json").read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0} for a in doc["annotations"]]
    (tmp_path / "results.json").write_text(json.dumps(results))
    sub, summary = import_predictions("coco", tmp_path / "results.json", split=split, model_name="gt", data=built_synthetic)
    gt = load_ground_truth(built_synthetic, split)
    assert [p["image_id"] for p in sub["predictions"]] == [g.image_id for g in gt.images]
    for pred, g in zip(sub["predictions"], gt.images):
        assert [b["bbox"] for b in pred["boxes"]] == [list(b) for b in g.boxes]
        assert all(b["score"] == 1.0 for b in pred["boxes"])
    assert summary.objects == sum(len(g.boxes) for g in gt.images)
    path = write_submission(sub, tmp_path / "preds.json")
    report = validate_submission(path, gt, split=split)
    assert report.ok, report.problems
    assert report.submission.task == "localization" and report.submission.splits_version == gt.splits_version


def test_coco_segmentation_round_trip_scores_perfectly(exports, built_synthetic, tmp_path):
    from fracbench.score import score_submission

    doc = json.loads((exports["coco"] / "annotations" / "instances_test.json").read_text())
    results = [
        {"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "segmentation": a["segmentation"], "score": 1.0}
        for a in doc["annotations"]
    ]
    (tmp_path / "results.json").write_text(json.dumps(results))
    sub, _ = import_predictions("coco", tmp_path / "results.json", task="segmentation", model_name="gt", data=built_synthetic)
    result = score_submission(write_submission(sub, tmp_path / "p.json"), data=built_synthetic, n_resamples=10, subgroups=False)
    assert result.metrics["mask_ap50"].value == pytest.approx(1.0)


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = mask.flatten(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {"size": list(mask.shape), "counts": ([0] if flat[0] else []) + runs}


def test_coco_rle_results_compressed_or_not_import_as_masks(exports, built_synthetic, tmp_path):
    from pycocotools import mask as mask_utils

    doc = json.loads((exports["coco"] / "annotations" / "instances_test.json").read_text())
    sizes = {img["id"]: (img["height"], img["width"]) for img in doc["images"]}
    results, want = [], {}
    for k, a in enumerate(doc["annotations"]):
        h, w = sizes[a["image_id"]]
        mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w)))
        want.setdefault(a["image_id"], []).append(mask)
        if k % 2:
            seg = _uncompressed_rle(mask)
        else:
            rle = mask_utils.encode(np.asfortranarray(mask))
            seg = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
        results.append({"image_id": a["image_id"], "segmentation": seg, "score": 0.8})  # no bbox: taken from the mask
    (tmp_path / "r.json").write_text(json.dumps(results))
    sub, _ = import_predictions("coco", tmp_path / "r.json", task="segmentation", model_name="m", data=built_synthetic)
    assert validate_submission(sub, load_ground_truth(built_synthetic, "test")).ok
    for pred in sub["predictions"]:
        masks = [mask_utils.decode({"size": i["rle"]["size"], "counts": i["rle"]["counts"].encode()}) for i in pred["instances"]]
        expected = want.get(coco_image_id(pred["image_id"]), [])
        assert len(masks) == len(expected) and all(np.array_equal(m, e) for m, e in zip(masks, expected))
    loc, _ = import_predictions("coco", tmp_path / "r.json", model_name="m", data=built_synthetic)
    assert sum(len(p["boxes"]) for p in loc["predictions"]) == len(results)
    results[0]["segmentation"]["counts"] = "not an RLE"
    (tmp_path / "r.json").write_text(json.dumps(results))
    with pytest.raises(SubmissionError, match="RLE"):
        import_predictions("coco", tmp_path / "r.json", task="segmentation", model_name="m", data=built_synthetic)


def test_coco_ids_as_names_ours_or_a_foreign_annotation_file(built_synthetic, rows, tmp_path):
    row = next(r for r in rows["test"] if r["boxes"])
    bbox = row["boxes"][0]
    foreign = {"images": [{"id": 9001, "file_name": f"some/dir/{row['image_id']}.jpg"}]}
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    for image_id, mapping in ((row["image_id"], None), (f"images/{row['image_id']}.png", None), (9001, tmp_path / "foreign.json")):
        (tmp_path / "r.json").write_text(json.dumps([{"image_id": image_id, "category_id": 0, "bbox": bbox, "score": 0.7}]))
        sub, _ = import_predictions("coco", tmp_path / "r.json", model_name="m", data=built_synthetic, annotations=mapping)
        boxes = {p["image_id"]: p["boxes"] for p in sub["predictions"]}
        assert boxes[row["image_id"]] == [{"bbox": bbox, "score": 0.7}]
        assert sum(len(b) for b in boxes.values()) == 1  # every other image: an empty list


def test_coco_other_split_dropped_unknown_id_refused(built_synthetic, rows, tmp_path):
    other = rows["train"][0]["image_id"]
    (tmp_path / "r.json").write_text(json.dumps([{"image_id": other, "bbox": [1, 1, 5, 5], "score": 0.5}]))
    sub, summary = import_predictions("coco", tmp_path / "r.json", model_name="m", data=built_synthetic)
    assert summary.other_split == 1 and all(p["boxes"] == [] for p in sub["predictions"])
    (tmp_path / "r.json").write_text(json.dumps([{"image_id": 987654, "bbox": [1, 1, 5, 5], "score": 0.5}]))
    with pytest.raises(SubmissionError, match="987654"):
        import_predictions("coco", tmp_path / "r.json", model_name="m", data=built_synthetic)


def test_coco_keeps_the_100_most_confident_objects_of_an_image(built_synthetic, rows, tmp_path):
    image_id = rows["test"][0]["image_id"]
    results = [{"image_id": image_id, "bbox": [1, 1, 4, 4], "score": k / 200} for k in range(105)]
    (tmp_path / "r.json").write_text(json.dumps(results))
    sub, summary = import_predictions("coco", tmp_path / "r.json", model_name="m", data=built_synthetic)
    boxes = next(p["boxes"] for p in sub["predictions"] if p["image_id"] == image_id)
    assert [b["score"] for b in boxes] == [k / 200 for k in range(104, 4, -1)] and summary.trimmed == 5


def test_zero_width_boxes_are_dropped_and_counted_not_fatal(built_synthetic, rows, tmp_path):
    image_id = rows["test"][0]["image_id"]
    results = [{"image_id": image_id, "bbox": [0, 5, 0, 8], "score": 0.9},  # clipped to nothing at the border
               {"image_id": image_id, "bbox": [3, 5, 6, 0.0], "score": 0.8},
               {"image_id": image_id, "bbox": [1, 1, 4, 4], "score": 0.7}]
    (tmp_path / "r.json").write_text(json.dumps(results))
    sub, summary = import_predictions("coco", tmp_path / "r.json", model_name="m", data=built_synthetic)
    boxes = next(p["boxes"] for p in sub["predictions"] if p["image_id"] == image_id)
    assert [b["score"] for b in boxes] == [0.7] and summary.degenerate == 2
    assert any("2 box(es) of zero width or height were dropped" in n for n in summary.notes)


# --- YOLO predictions ---------------------------------------------------------------------------------


def _ultralytics_labels(exports, tmp_path: Path, *, segment: bool = False, conf: float | None = 0.9) -> Path:
    """Labels as Ultralytics' save_txt + save_conf writes them (``%g`` numbers), from the exported ground truth."""
    src = exports["yoloseg" if segment else "yolo"] / "labels" / "test"
    out = tmp_path / "runs" / "predict" / "labels"
    out.mkdir(parents=True)
    for f in src.glob("*.txt"):
        lines = [[float(v) for v in line.split()] + ([conf] if conf is not None else []) for line in f.read_text().splitlines()]
        if lines:  # Ultralytics writes no file for an image without detections
            (out / f.name).write_text("".join(" ".join(f"{v:g}" for v in line) + "\n" for line in lines))
    return out


def test_yolo_predictions_import_to_pixel_boxes(exports, built_synthetic, tmp_path):
    labels = _ultralytics_labels(exports, tmp_path)
    sub, summary = import_predictions("yolo", labels.parent, model_name="yolo", data=built_synthetic)  # the run dir also works
    gt = load_ground_truth(built_synthetic, "test")
    for pred, g in zip(sub["predictions"], gt.images):
        assert len(pred["boxes"]) == len(g.boxes)
        for box, want in zip(pred["boxes"], g.boxes):
            assert box["score"] == 0.9
            assert np.allclose(box["bbox"], want, atol=1e-5 * max(g.width, g.height))
    assert summary.with_predictions == sum(1 for g in gt.images if g.boxes)
    cls, _ = import_predictions("yolo", labels, task="classification", model_name="yolo", data=built_synthetic)
    assert {p["image_id"]: p["score"] for p in cls["predictions"]} == {g.image_id: 0.9 if g.boxes else 0.0 for g in gt.images}


def test_yolo_seg_predictions_import_to_polygon_instances(exports, built_synthetic, tmp_path):
    labels = _ultralytics_labels(exports, tmp_path, segment=True)
    sub, summary = import_predictions("yolo", labels, task="segmentation", model_name="yolo-seg", data=built_synthetic)
    gt = load_ground_truth(built_synthetic, "test")
    for pred, g in zip(sub["predictions"], gt.images):
        assert [len(i["polygon"]) for i in pred["instances"]] == [len(inst) for inst in g.polygons]
        for inst, want in zip(pred["instances"], g.polygons):
            assert np.allclose(inst["polygon"][0], want[0], atol=1e-5 * max(g.width, g.height))
    assert summary.objects == sum(len(g.polygons) for g in gt.images)


def test_yolo_predictions_without_conf_or_with_another_class_are_refused(exports, built_synthetic, tmp_path):
    labels = _ultralytics_labels(exports, tmp_path, conf=None)
    with pytest.raises(SubmissionError, match="save_conf=True"):
        import_predictions("yolo", labels, model_name="m", data=built_synthetic)
    f = next(labels.glob("*.txt"))
    f.write_text("3 0.5 0.5 0.1 0.1 0.8\n")
    for other in labels.glob("*.txt"):
        if other != f:
            other.unlink()
    with pytest.raises(SubmissionError, match="class 3"):
        import_predictions("yolo", labels, model_name="m", data=built_synthetic)
    f.rename(labels / "IMG9999999.txt")
    with pytest.raises(SubmissionError, match="IMG9999999"):
        import_predictions("yolo", labels, model_name="m", data=built_synthetic)


# --- CSV ----------------------------------------------------------------------------------------------


def test_csv_scores_import_and_every_image_is_required(built_synthetic, tmp_path):
    gt = load_ground_truth(built_synthetic, "validation")
    lines = [f"{g.image_id}.jpg,{0.1 * (k + 1):.1f}" for k, g in enumerate(gt.images)]
    (tmp_path / "s.csv").write_text("filename,probability\n" + "\n".join(lines) + "\n")
    sub, _ = import_predictions("csv", tmp_path / "s.csv", split="validation", model_name="timm", data=built_synthetic, threshold=0.4)
    assert [p["score"] for p in sub["predictions"]] == [float(f"{0.1 * (k + 1):.1f}") for k in range(len(gt.images))]
    assert sub["threshold"] == 0.4 and validate_submission(sub, gt).ok
    (tmp_path / "s.csv").write_text("image_id,score\n" + "\n".join(lines[1:] + [lines[1]]) + "\n")
    with pytest.raises(SubmissionError, match="given twice"):
        import_predictions("csv", tmp_path / "s.csv", split="validation", model_name="m", data=built_synthetic)
    (tmp_path / "s.csv").write_text("image_id,score\n" + "\n".join(lines[1:]) + "\n")
    with pytest.raises(SubmissionError, match=f"no score for 1 .*{gt.images[0].image_id}"):
        import_predictions("csv", tmp_path / "s.csv", split="validation", model_name="m", data=built_synthetic)
    (tmp_path / "s.csv").write_text("id,logit\nIMG0000001,3.2\n")
    with pytest.raises(SubmissionError, match="header expected"):
        import_predictions("csv", tmp_path / "s.csv", model_name="m", data=built_synthetic)


# --- ImageFolder and nnU-Net ----------------------------------------------------------------------------


def test_imagefolder_counts_per_class_and_torchvision_reads_it(exports, rows):
    from torchvision.datasets import ImageFolder

    root = exports["imagefolder"]
    for split in SPLITS:
        for label, name in enumerate(("not_fractured", "fractured")):
            files = sorted((root / split / name).iterdir())
            want = [r for r in rows[split] if r["label"] == label]
            assert [f.stem for f in files] == [r["image_id"] for r in want]
            assert all(f.read_bytes() == r["image"]["bytes"] for f, r in zip(files, want))
    folder = ImageFolder(str(root / "train"))
    assert folder.class_to_idx == {"fractured": 0, "not_fractured": 1}  # the documented reversal
    assert len(folder) == len(rows["train"])


def test_nnunet_folds_are_the_manifest_folds_and_respect_groups(exports, synthetic_manifest, rows):
    root = exports["nnunet"]
    assert root.name == "Dataset501_FracAtlas"
    folds = json.loads((root / "splits_final.json").read_text())
    pool = sorted(r["image_id"] for s in ("train", "validation") for r in rows[s])
    assert len(folds) == 5
    by_id = synthetic_manifest.by_id()
    for k, fold in enumerate(folds):
        assert fold["val"] == sorted(i for i in pool if by_id[i].fold == k)
        assert sorted(fold["train"] + fold["val"]) == pool and not set(fold["train"]) & set(fold["val"])
    fold_of = {i: k for k, fold in enumerate(folds) for i in fold["val"]}
    for members in synthetic_manifest.groups().values():
        assert len({fold_of[m] for m in members if m in fold_of}) <= 1
    assert sorted(fold_of) == pool
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["numTraining"] == len(pool) == len(list((root / "imagesTr").iterdir()))
    assert (meta["channel_names"], meta["labels"], meta["file_ending"]) == ({"0": "X-ray"}, {"background": 0, "fracture": 1}, ".png")


def test_nnunet_images_are_greyscale_png_matching_their_labels(exports, rows):
    root = exports["nnunet"]
    for split, (images, labels) in (("validation", ("imagesTr", "labelsTr")), ("test", ("imagesTs", "labelsTs"))):
        for row in rows[split]:
            image = Image.open(root / images / f"{row['image_id']}_0000.png")
            label = root / labels / f"{row['image_id']}.png"
            assert image.format == "PNG" and image.mode == "L" and image.size == (row["width"], row["height"])
            assert label.read_bytes() == row["mask"]["bytes"]
            assert set(np.unique(np.asarray(Image.open(label)))) <= {0, 1}
            stored = Image.open(io.BytesIO(row["image"]["bytes"])).convert("L")
            assert np.array_equal(np.asarray(image), np.asarray(stored))


def test_nnunet_needs_the_manifest_the_dataset_was_built_with(built_synthetic, synthetic_manifest, tmp_path):
    from fracbench.splits.manifest import write_manifest

    with pytest.raises(DatasetError, match="--manifest"):  # 'synthetic' is not a shipped version
        export_dataset("nnunet", tmp_path / "raw", data=built_synthetic)
    other = tmp_path / "other" / "manifest.csv"
    write_manifest(other, synthetic_manifest.rows[:-1], {"version": "other"})
    with pytest.raises(DatasetError, match="built with"):
        export_dataset("nnunet", tmp_path / "raw", data=built_synthetic, manifest=other)
    assert not (tmp_path / "raw" / "Dataset501_FracAtlas").exists()


# --- atomicity and CLI ----------------------------------------------------------------------------------


def test_export_is_all_or_nothing(built_synthetic, tmp_path, monkeypatch):
    import fracbench.convert.imagefolder as imagefolder

    calls = {"n": 0}
    real = imagefolder.image_suffix

    def failing(data, image_id):
        calls["n"] += 1
        if calls["n"] == 5:
            raise DatasetError(f"image {image_id}: planted failure")
        return real(data, image_id)

    monkeypatch.setattr(imagefolder, "image_suffix", failing)
    with pytest.raises(DatasetError, match="planted failure"):
        export_dataset("imagefolder", tmp_path / "out", data=built_synthetic)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary sibling is left
    monkeypatch.undo()
    export_dataset("imagefolder", tmp_path / "out", data=built_synthetic)
    with pytest.raises(DatasetError, match="--overwrite"):
        export_dataset("imagefolder", tmp_path / "out", data=built_synthetic)
    record = json.loads((tmp_path / "out" / "fracbench_export.json").read_text())
    assert record["source"]["fingerprint"] == json.loads((built_synthetic / "fracbench.json").read_text())["fingerprint"]


def test_cli_export_and_import_preds(built_synthetic, exports, tmp_path, capsys):
    from fracbench.cli import main

    assert main(["export", "coco", "--data", str(built_synthetic), "--out", str(tmp_path / "coco"), "--task", "localization"]) == 0
    doc = json.loads((tmp_path / "coco" / "annotations" / "instances_test.json").read_text())
    assert doc["annotations"] and all("segmentation" not in a for a in doc["annotations"])
    results = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.5} for a in doc["annotations"]]
    (tmp_path / "r.json").write_text(json.dumps(results))
    out = tmp_path / "preds.json"
    argv = ["import-preds", "coco", str(tmp_path / "r.json"), "--data", str(built_synthetic), "--out", str(out), "--model-name", "det"]
    assert main(argv) == 0
    assert validate_submission(out, load_ground_truth(built_synthetic, "test")).ok
    capsys.readouterr()
    assert main(["export", "imagefolder", "--data", str(built_synthetic), "--out", str(tmp_path / "coco")]) == 1
    assert main(["export", "nnunet", "--data", str(built_synthetic), "--out", str(tmp_path / "nn"), "--segment"]) == 1
    assert main(["import-preds", "csv", str(tmp_path / "missing.csv"), "--data", str(built_synthetic), "--out", str(out), "--model-name", "m"]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "Traceback" not in err and "already exists" in err and "no such file" in err
