"""The validator: every problem, with its location and expected vs found; never a traceback."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fracbench.validate as validate_mod
from fracbench.errors import SubmissionError
from fracbench.submission import ClassificationSubmission, LocalizationSubmission, SegmentationSubmission, parse_submission
from fracbench.validate import group_problems, validate_submission
from tests.synthetic_gt import (
    classification_predictions,
    localization_predictions,
    make_ground_truth,
    segmentation_predictions,
    submission,
    write_submission,
)

GT = make_ground_truth(30, seed=11, prevalence=0.4)


def _doc(task="localization"):
    preds = {"classification": classification_predictions, "localization": localization_predictions, "segmentation": segmentation_predictions}[task](GT)
    return json.loads(json.dumps(submission(GT, task, preds)))


def _problems(doc, gt=GT, **kw):
    return {(p.location, p.code): p.message for p in validate_submission(doc, gt, **kw).problems}


@pytest.mark.parametrize("task,model", [("classification", ClassificationSubmission), ("localization", LocalizationSubmission), ("segmentation", SegmentationSubmission)])
def test_valid_submissions_pass_and_are_typed(task, model, tmp_path):
    for name in ("s.json", "s.json.gz"):
        path = write_submission(tmp_path / name, _doc(task))
        report = validate_submission(path, GT)
        assert report.ok, report.problems
        assert isinstance(report.submission, model)
        assert report.task == task and report.split == "test" and report.n_predictions == len(GT.images)
        assert len(report.sha256) == 64
        report.raise_for_problems()


def test_every_problem_is_reported_at_once():
    doc = _doc()
    doc["schema"] = "fracbench.submission/v0"
    doc["splits_version"] = "v9"
    doc["extra"] = 1
    doc["threshold"] = 1.5
    doc["model"] = {"name": ""}
    preds = doc["predictions"]
    preds[1]["boxes"] = [{"bbox": [1, 2, 3], "score": 0.5}, {"bbox": [1, 2, 0, 4], "score": 2}, {"bbox": [0, 0, 5000, 4], "score": 0.1}]
    preds[2]["image_id"] = preds[0]["image_id"]
    preds[3]["image_id"] = "IMG9999999"
    preds[4]["boxes"] = [{"bbox": [1, 1, 2, 2], "score": 0.5}] * 101
    preds[5]["boxes"][:0] = [{"bbox": [1, 1, 2, 2], "score": True, "label": 1}]
    found = _problems(doc)
    expected = {
        ("schema", "wrong_schema"),
        ("splits_version", "wrong_splits_version"),
        ("extra", "unknown_field"),
        ("threshold", "bad_score"),
        ("model.name", "bad_model"),
        ("predictions[1].boxes[0].bbox", "bad_bbox"),
        ("predictions[1].boxes[1].bbox", "degenerate_box"),
        ("predictions[1].boxes[1].score", "bad_score"),
        ("predictions[1].boxes[2].bbox", "outside_image"),
        ("predictions[2].image_id", "duplicate_image_id"),
        ("predictions[3].image_id", "unknown_image_id"),
        ("predictions[4].boxes", "too_many"),
        ("predictions[5].boxes[0].score", "bad_score"),
        ("predictions[5].boxes[0].label", "unknown_field"),
        ("predictions", "missing_image"),
    }
    assert expected <= set(found), expected - set(found)
    assert "found 'fracbench.submission/v0'" in found[("schema", "wrong_schema")]
    assert "found boolean true" in found[("predictions[5].boxes[0].score", "bad_score")]
    assert "101 boxes" in found[("predictions[4].boxes", "too_many")]
    assert "expected" in found[("predictions[1].boxes[1].bbox", "degenerate_box")]
    assert f"{GT.images[1].width}x{GT.images[1].height}" in found[("predictions[1].boxes[2].bbox", "outside_image")]


def test_huge_and_odd_numbers_are_problems_not_crashes(tmp_path):
    doc = _doc()
    doc["predictions"][0]["boxes"] = [
        {"bbox": [10**400, 0, 5, 5], "score": 0.5},
        {"bbox": [0, 0, 5, 5], "score": 10**400},
        {"bbox": [0, 0, 1e300, 1e300], "score": 0.5},
        {"bbox": [0, 0, "5", 5], "score": 0.5},
        {"bbox": [0, 0, 5, 5], "score": False},
    ]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    found = {(p.location, p.code) for p in validate_submission(path, GT).problems}
    assert found == {
        ("predictions[0].boxes[0].bbox", "bad_bbox"),
        ("predictions[0].boxes[1].score", "bad_score"),
        ("predictions[0].boxes[2].bbox", "bad_bbox"),
        ("predictions[0].boxes[3].bbox", "bad_bbox"),
        ("predictions[0].boxes[4].score", "bad_score"),
    }


def test_missing_images_are_each_named():
    doc = _doc("classification")
    dropped = [p["image_id"] for p in doc["predictions"][:3]]
    doc["predictions"] = doc["predictions"][3:]
    messages = [p.message for p in validate_submission(doc, GT).problems if p.code == "missing_image"]
    assert len(messages) == 3 and all(any(i in m for m in messages) for i in dropped)


def test_box_tolerance_is_two_pixels():
    doc = _doc()
    g = GT.images[0]
    doc["predictions"][0]["boxes"] = [{"bbox": [-2, -2, g.width + 4, g.height + 4], "score": 0.5}]
    assert validate_submission(doc, GT).ok
    doc["predictions"][0]["boxes"] = [{"bbox": [-2.5, 0, 10, 10], "score": 0.5}]
    assert ("predictions[0].boxes[0].bbox", "outside_image") in _problems(doc)


def test_wrong_task_split_and_did_you_mean():
    doc = _doc("classification")
    doc["task"] = "clasification"
    doc["split"] = "validation"
    doc["predictions"][0]["score"] = float("nan")
    found = _problems(doc)
    assert "Did you mean 'classification'?" in found[("task", "unknown_task")]
    assert "--split validation" in found[("split", "wrong_split")]
    # entries are still checked, by the shape they have
    assert ("predictions[0].score", "bad_score") in found
    assert ("split", "wrong_split") not in _problems(_doc("classification") | {"split": "test"}, split="test")


def test_nan_and_infinity_literals(tmp_path):
    path = tmp_path / "p.json"
    text = json.dumps(_doc("classification")).replace('"score": ' + json.dumps(_doc("classification")["predictions"][0]["score"]), '"score": NaN', 1)
    path.write_text(text.replace(str(_doc("classification")["predictions"][1]["score"]), "Infinity", 1))
    found = {(p.location, p.code): p.message for p in validate_submission(path, GT).problems}
    assert "found NaN" in found[("predictions[0].score", "bad_score")]
    assert "found Infinity" in found[("predictions[1].score", "bad_score")]


def test_duplicate_keys(tmp_path):
    path = tmp_path / "p.json"
    text = json.dumps(_doc("classification"))
    path.write_text(text.replace('"task": "classification"', '"task": "classification", "task": "classification"'))
    assert ("task", "duplicate_key") in {(p.location, p.code) for p in validate_submission(path, GT).problems}


@pytest.mark.parametrize(
    "payload,code",
    [
        (b"", "not_json"),
        (b"\xff\xfe\x00garbage", "not_json"),
        (b'{"schema": ', "not_json"),
        (b"[" * 100_000, "not_json"),
        (b"1" * 5000, "not_json"),
        (b"\x1f\x8bnot really gzip", "bad_gzip"),
        (b"[]", "not_object"),
    ],
)
def test_unreadable_files(tmp_path, payload, code):
    path = tmp_path / "p.json"
    path.write_bytes(payload)
    report = validate_submission(path, GT)
    assert not report.ok and report.problems[0].code == code
    with pytest.raises(SubmissionError) as exc:
        report.raise_for_problems()
    assert exc.value.problems


def test_missing_file_and_directory(tmp_path):
    assert validate_submission(tmp_path / "nope.json", GT).problems[0].code == "not_found"
    assert validate_submission(tmp_path, GT).problems[0].code == "unreadable"


def test_size_limit_before_parsing_and_while_decompressing(tmp_path, monkeypatch):
    monkeypatch.setattr(validate_mod, "MAX_SUBMISSION_BYTES", 10_000)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 10_001)
    assert validate_submission(big, GT).problems[0].code == "too_large"
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * 5_000_000))
    assert bomb.stat().st_size < 10_000
    problem = validate_submission(bomb, GT).problems[0]
    assert problem.code == "too_large" and "MiB" in problem.message


def test_segmentation_masks():
    doc = _doc("segmentation")
    g0, g1 = GT.images[0], GT.images[1]
    doc["predictions"][0]["instances"] = [
        {"score": 0.5, "rle": {"size": [g0.width, g0.height], "counts": "0"}},
        {"score": 0.5, "rle": {"size": [g0.height, g0.width], "counts": "abc!"}},
        {"score": 0.5, "rle": {"size": [g0.height, g0.width], "counts": [10, 20]}},
        {"score": 0.5, "rle": {"size": [g0.height, g0.width], "counts": "PP"}},
        {"score": 0.5, "rle": {"size": [g0.height, g0.width], "counts": "1"}, "polygon": [[1, 2, 3, 4, 5, 6]]},
        {"score": 0.5},
    ]
    doc["predictions"][1]["instances"] = [
        {"score": 0.5, "polygon": [[1, 2, 3, 4, 5]]},
        {"score": 0.5, "polygon": [[1, 2, 3, 4]]},
        {"score": 0.5, "polygon": [[0, 0, g1.width + 10, 0, 5, 5]]},
        {"score": 0.5, "polygon": []},
    ]
    found = _problems(doc)
    assert f"expected [{g0.height}, {g0.width}]" in found[("predictions[0].instances[0].rle.size", "mask_size_mismatch")]
    assert "outside the COCO RLE alphabet" in found[("predictions[0].instances[1].rle.counts", "bad_rle")]
    assert "uncompressed" in found[("predictions[0].instances[2].rle.counts", "bad_rle")]
    assert "middle of a number" in found[("predictions[0].instances[3].rle.counts", "bad_rle")]
    assert ("predictions[0].instances[4]", "bad_instance") in found
    assert ("predictions[0].instances[5]", "missing_field") in found
    assert "5 numbers" in found[("predictions[1].instances[0].polygon[0]", "bad_polygon")]
    assert ("predictions[1].instances[1].polygon[0]", "bad_polygon") in found
    assert ("predictions[1].instances[2].polygon[0]", "outside_image") in found
    assert ("predictions[1].instances[3].polygon", "bad_polygon") in found


def test_rle_total_must_cover_the_image():
    doc = _doc("segmentation")
    g0 = GT.images[0]
    doc["predictions"][0]["instances"] = [{"score": 0.5, "rle": {"size": [g0.height, g0.width], "counts": "5"}}]
    assert "cover 5 pixels" in _problems(doc)[("predictions[0].instances[0].rle.counts", "bad_rle")]


def test_without_ground_truth_checks_the_format_only():
    doc = _doc()
    doc["predictions"][0]["image_id"] = "IMG19.jpg"
    doc["predictions"][1]["boxes"] = [{"bbox": [0, 0, 1e6, 5], "score": 0.5}]
    report = validate_submission(doc, None)
    codes = {(p.location, p.code) for p in report.problems}
    assert codes == {("predictions[0].image_id", "bad_image_id")}
    assert report.checked_against is None


def test_problem_limit(monkeypatch):
    monkeypatch.setattr(validate_mod, "MAX_PROBLEMS", 5)
    doc = _doc("classification")
    for p in doc["predictions"]:
        p["score"] = -1
    problems = validate_submission(doc, GT).problems
    assert len(problems) == 6 and problems[-1].code == "too_many_problems"
    assert f"{len(doc['predictions']) - 5} further" in problems[-1].message


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(["schema", "task", "split", "splits_version", "model", "predictions", "image_id", "score", "boxes", "bbox", "instances", "rle", "polygon", "size", "counts", "name", "x"]), inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise(tmp_path, data):
    path = tmp_path / "x.json"
    path.write_bytes(data)
    report = validate_submission(path, GT)
    # random bytes are almost never a submission; when they are not, the first problem says why at file level
    assert not report.ok and report.problems[0].location in ("(file)", "(top level)") and report.problems[0].message


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_random_json_never_raises(value):
    report = validate_submission(value, GT)
    assert all(p.location and p.message for p in report.problems)


@settings(max_examples=150, deadline=None)
@given(task=st.sampled_from(["localization", "segmentation", "classification"]), path=st.lists(st.integers(0, 50), min_size=1, max_size=5), value=json_values)
def test_random_mutations_of_a_valid_submission_never_raise(task, path, value):
    doc = _doc(task)
    node = doc
    for step in path[:-1]:
        if isinstance(node, dict) and node:
            node = node[sorted(node)[step % len(node)]]
        elif isinstance(node, list) and node:
            node = node[step % len(node)]
    if isinstance(node, dict) and node:
        node[sorted(node)[path[-1] % len(node)]] = value
    elif isinstance(node, list) and node:
        node[path[-1] % len(node)] = value
    report = validate_submission(doc, GT)
    format_only = validate_submission(doc, None, schema_only=True)
    # the content pass only adds problems: full validity implies format validity, never the reverse
    assert format_only.ok or not report.ok
    assert {(p.location, p.code) for p in format_only.problems} <= {(p.location, p.code) for p in report.problems} or report.problems[-1].code == "too_many_problems"
    if report.ok:
        parse_submission(doc)  # the typed models accept what the validator accepts


def test_a_path_with_a_nul_byte_is_a_problem_not_a_crash():
    report = validate_submission("\x00", GT)
    assert not report.ok and "not a usable file path" in report.problems[0].message


def test_one_systematic_mistake_is_one_group_not_a_flood():
    doc = _doc("classification")
    for p in doc["predictions"]:
        p["image_id"] += ".jpg"
    report = validate_submission(doc, GT)
    # the extension is named once per entry, and the images are not also called missing
    assert {p.code for p in report.problems} == {"bad_image_id"} and len(report.problems) == len(GT.images)
    groups = group_problems(report.problems)
    assert len(groups) == 1 and groups[0].count == len(GT.images) and groups[0].location == "predictions[*].image_id"
    assert "drop the file extension" in groups[0].message and f"{len(GT.images)} times: predictions[0].image_id" in groups[0].message
    # problems at one place (missing images) group by what tells them apart
    doc = _doc("classification")
    dropped = [p["image_id"] for p in doc["predictions"][:5]]
    doc["predictions"] = doc["predictions"][5:]
    (group,) = group_problems(validate_submission(doc, GT).problems)
    assert group.count == 5 and f"[5 times: {dropped[0]}, {dropped[1]}, {dropped[2]} and 2 more]" in group.message


def test_a_mislabelled_task_is_named_once():
    doc = _doc("localization")
    doc["task"] = "classification"
    problems = validate_submission(doc, GT).problems
    first = problems[0]
    assert (first.location, first.code) == ("task", "task_mismatch")
    assert "look like localization predictions" in first.message and '"task": "localization"' in first.message
    assert len(group_problems(problems)) == 3  # the mismatch, then each entry's missing score and extra boxes, grouped


@pytest.mark.parametrize("kind", ["csv", "coco", "yolo", "nnunet"])
def test_files_of_another_tool_point_to_import_preds(kind, tmp_path):
    ids = [g.image_id for g in GT.images]
    if kind == "csv":
        path = tmp_path / "preds.csv"
        path.write_text("image_id,score\n" + "".join(f"{i},0.5\n" for i in ids))
    elif kind == "coco":
        path = tmp_path / "results.json"
        path.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5} for i in ids]))
    elif kind == "yolo":
        path = tmp_path / "labels"
        path.mkdir()
        (path / f"{ids[0]}.txt").write_text("0 0.5 0.5 0.1 0.1 0.9\n")
    else:
        path = tmp_path / "nnunet_out"
        path.mkdir()
        (path / "FracAtlas_0001.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    report = validate_submission(path, GT)
    assert not report.ok
    assert f"fracbench import-preds {kind} {path} --out preds.json" in report.problems[0].message
    # and a plain broken file gets no pointer
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    assert "import-preds" not in validate_submission(bad, GT).problems[0].message


def test_a_missing_or_extra_field_is_named_as_such_whatever_its_name():
    doc = _doc("localization")
    doc["predictions"][0]["boxes"] = [{"score": 0.5}]
    doc["predictions"][1]["bbox"] = [1, 2, 3, 4]
    found = _problems(doc)
    assert ("predictions[0].boxes[0].bbox", "missing_field") in found
    assert ("predictions[1].bbox", "unknown_field") in found
    seg = _doc("segmentation")
    seg["predictions"][0]["instances"] = [{"score": 0.5, "rle": {"counts": "0"}}]
    assert ("predictions[0].instances[0].rle.size", "missing_field") in _problems(seg)
