"""score_submission, compare_submissions and the validate/score/compare commands."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random

import numpy as np
import pytest

from fracbench.cli import main
from fracbench.compare import compare_submissions
from fracbench.dataset import groundtruth
from fracbench.errors import DatasetNotFoundError, ScoringError, SubmissionError
from fracbench.result import Result
from fracbench.score import score_submission
from fracbench.tasks import TASKS
from tests.synthetic_gt import (
    classification_predictions,
    localization_predictions,
    make_ground_truth,
    perfect_predictions,
    segmentation_predictions,
    submission,
    write_submission,
)

GT = make_ground_truth(80, seed=21, prevalence=0.3, n_unscored=3)
VAL = dataclasses.replace(make_ground_truth(40, seed=22, prevalence=0.3), split="validation")
PREDICTORS = {"classification": classification_predictions, "localization": localization_predictions, "segmentation": segmentation_predictions}
N = 200  # resamples: enough to exercise the CIs, fast


def _write(tmp_path, task, preds=None, name=None, gt=GT, **kw):
    preds = PREDICTORS[task](gt) if preds is None else preds
    return write_submission(tmp_path / (name or f"{task}.json"), submission(gt, task, preds, **kw))


def _values(result: Result):
    return {k: (v.value, v.ci95) for k, v in result.metrics.items()}, result.subgroups


@pytest.mark.parametrize("task", list(TASKS))
def test_score_produces_a_complete_result(tmp_path, task):
    path = _write(tmp_path, task, threshold=0.4)
    result = score_submission(path, gt=GT, n_resamples=N, seed=1)
    spec = TASKS[task]
    assert list(result.metrics) == list(spec.metrics)
    assert result.main_score.name == spec.main_score and result.main_score.value == result.metrics[spec.main_score].value
    assert all(v.ci95 is not None and v.ci95[0] <= v.value <= v.ci95[1] for v in result.metrics.values())
    prov = result.provenance
    assert prov.submission_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov.n_images == 80 and prov.n_scored == 77 and prov.split == "test" and prov.bootstrap.n_resamples == N
    assert len(prov.split_sha256) == 64 and prov.protocol_version == "1"
    assert set(result.subgroups) == {"region", "hardware", "view"}
    assert sum(s["n_images"] for s in result.subgroup_sizes["region"].values()) == 77
    assert set(result.curves) == set(spec.curves)
    assert all(len(c) <= 200 for curve in result.curves.values() for c in curve.values())
    assert result.threshold == 0.4 and result.operating_threshold == (0.4 if spec.uses_threshold else None)
    text = result.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in Result JSON"))
    assert Result.model_validate_json(text) == result


def test_scores_are_reproducible_to_the_last_digit(tmp_path):
    path = _write(tmp_path, "localization")
    a = score_submission(path, gt=GT, n_resamples=N, seed=5)
    b = score_submission(path, gt=GT, n_resamples=N, seed=5)
    assert _values(a) == _values(b)
    c = score_submission(path, gt=GT, n_resamples=N, seed=6)
    assert a.metrics["ap50"].value == c.metrics["ap50"].value and a.metrics["ap50"].ci95 != c.metrics["ap50"].ci95


def _shuffled(preds):
    rng = random.Random(0)
    out = json.loads(json.dumps(preds))
    rng.shuffle(out)
    for p in out:
        for key in ("boxes", "instances"):
            if key in p:
                rng.shuffle(p[key])
    return out


@pytest.mark.parametrize("task", list(TASKS))
def test_every_metric_is_invariant_to_prediction_order(tmp_path, task):
    preds = PREDICTORS[task](GT)
    a = score_submission(_write(tmp_path, task, preds, "a.json"), gt=GT, n_resamples=N)
    b = score_submission(_write(tmp_path, task, _shuffled(preds), "b.json.gz"), gt=GT, n_resamples=N)
    assert _values(a) == _values(b)


@pytest.mark.parametrize("task", list(TASKS))
def test_unscored_images_do_not_count(tmp_path, task):
    preds = PREDICTORS[task](GT)
    other = PREDICTORS[task](GT) if task == "classification" else [{**p} for p in preds]
    unscored = {g.image_id for g in GT.images if not g.scored}
    other = [perfect_predictions(GT, task)[i] if p["image_id"] in unscored else p for i, p in enumerate(preds)]
    assert other != preds
    a = score_submission(_write(tmp_path, task, preds, "a.json"), gt=GT, n_resamples=N)
    b = score_submission(_write(tmp_path, task, other, "b.json"), gt=GT, n_resamples=N)
    assert _values(a) == _values(b)


@pytest.mark.parametrize("task", list(TASKS))
def test_perfect_predictions_get_the_best_value_of_every_metric(tmp_path, task):
    result = score_submission(_write(tmp_path, task, perfect_predictions(GT, task)), gt=GT, n_resamples=0)
    spec = TASKS[task]
    for name, mv in result.metrics.items():
        best = 1.0 if spec.higher_is_better[name] else 0.0
        assert mv.value == pytest.approx(best), name
        assert mv.ci95 is None


def test_subgroup_values_equal_scoring_the_subgroup_alone(tmp_path):
    path = _write(tmp_path, "classification")
    result = score_submission(path, gt=GT, n_resamples=0)
    hand = dataclasses.replace(GT, images=tuple(g for g in GT.images if g.region == "hand"))
    preds = [p for p in classification_predictions(GT) if p["image_id"] in {g.image_id for g in hand.images}]
    alone = score_submission(_write(tmp_path, "classification", preds, "hand.json", gt=hand), gt=hand, n_resamples=0)
    for name, mv in alone.metrics.items():
        got = result.subgroups["region"]["hand"][name].value
        assert got == mv.value if mv.value is None else got == pytest.approx(mv.value, abs=1e-12), name


def test_invalid_submission_raises_with_every_problem(tmp_path):
    doc = submission(GT, "localization", localization_predictions(GT))
    doc["predictions"][0]["boxes"] = [{"bbox": [0, 0, -1, 1], "score": 3}]
    doc["predictions"].pop()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SubmissionError) as exc:
        score_submission(path, gt=GT)
    assert len(exc.value.problems) == 3
    assert any(p.location == "predictions[0].boxes[0].bbox" and str(p).startswith("predictions[0].boxes[0].bbox:") for p in exc.value.problems)


def test_split_must_match(tmp_path):
    path = _write(tmp_path, "classification")
    with pytest.raises(SubmissionError, match="split"):
        score_submission(path, gt=VAL, split="validation")


def test_compare(tmp_path):
    good = _write(tmp_path, "classification", classification_predictions(GT, separation=3.0), "good.json")
    weak = _write(tmp_path, "classification", classification_predictions(GT, separation=0.5), "weak.json")
    same = compare_submissions(good, good, gt=GT, n_resamples=N)
    assert same.difference == 0 and same.p_value == 1.0 and same.ci95 == (0.0, 0.0)
    cmp = compare_submissions(good, weak, gt=GT, n_resamples=N, seed=3)
    assert cmp.metric == "auroc" and cmp.difference > 0 and cmp.p_value < 0.05 and cmp.ci95[0] > 0
    assert cmp.a.value == score_submission(good, gt=GT, n_resamples=0).metrics["auroc"].value
    assert cmp.split_sha256 == score_submission(good, gt=GT, n_resamples=0).provenance.split_sha256
    brier = compare_submissions(good, weak, gt=GT, n_resamples=N, metric="brier")
    assert brier.difference < 0 and not brier.higher_is_better
    with pytest.raises(ScoringError, match="not a classification metric"):
        compare_submissions(good, weak, gt=GT, n_resamples=N, metric="ap50")
    boxes = _write(tmp_path, "localization")
    with pytest.raises(ScoringError, match="same task"):
        compare_submissions(good, boxes, gt=GT)
    val = _write(tmp_path, "classification", name="val.json", gt=VAL)
    with pytest.raises(ScoringError, match="same split"):
        compare_submissions(good, val, gt=GT)


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """Table cells unwrapped, so messages can be searched."""
    import fracbench.cli

    monkeypatch.setattr(fracbench.cli.console, "width", 400)
    monkeypatch.setattr(fracbench.cli.err_console, "width", 400)


def _out(capsys, err=False):
    """Captured output with rich's line wrapping undone."""
    captured = capsys.readouterr()
    return " ".join((captured.err if err else captured.out).split())


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A dataset dir whose ground truth is the synthetic GT (test) and VAL (validation)."""
    monkeypatch.setattr(
        groundtruth, "load_ground_truth", lambda d, split, task=None, splits_version="v1": {"test": GT, "validation": VAL}[split], raising=False
    )
    (tmp_path / "fracbench.json").write_text("{}")
    return tmp_path


def test_cli_validate(data_dir, capsys):
    ok = _write(data_dir, "segmentation")
    assert main(["validate", str(ok), "--data", str(data_dir)]) == 0
    assert "valid segmentation submission" in _out(capsys)
    bad = data_dir / "bad.json"
    bad.write_bytes(b"\x00\x01binary\xff")
    assert main(["validate", str(bad), "--data", str(data_dir)]) == 1
    assert "not UTF-8" in _out(capsys)
    val = _write(data_dir, "classification", name="val.json", gt=VAL)
    assert main(["validate", str(val), "--data", str(data_dir)]) == 0
    assert main(["validate", str(val), "--data", str(data_dir), "--split", "test"]) == 1
    assert "--split validation" in _out(capsys)


def test_cli_validate_without_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FRACBENCH_DATA", raising=False)
    path = _write(tmp_path, "classification")
    assert main(["validate", str(path)]) == 1
    assert "--schema-only" in _out(capsys, err=True)
    assert main(["validate", str(path), "--schema-only"]) == 0
    with pytest.raises(DatasetNotFoundError):
        score_submission(path)


def test_cli_score_and_compare(data_dir, capsys):
    a = _write(data_dir, "localization", localization_predictions(GT, seed=1), "a.json.gz")
    b = _write(data_dir, "localization", localization_predictions(GT, seed=2, jitter=0.05), "b.json")
    out = data_dir / "out" / "result.json"
    assert main(["score", str(a), "--data", str(data_dir), "--bootstrap", "50", "--json", str(out)]) == 0
    printed = _out(capsys)
    assert "ap50 (main)" in printed and "froc_sensitivity_at_0.125" in printed
    result = Result.model_validate_json(out.read_text())
    assert result.provenance.bootstrap.n_resamples == 50
    cmp_out = data_dir / "cmp.json"
    assert main(["compare", str(a), str(b), "--data", str(data_dir), "--bootstrap", "50", "--json", str(cmp_out)]) == 0
    assert "A - B" in _out(capsys)
    assert json.loads(cmp_out.read_text())["schema"] == "fracbench.comparison/v1"
    bad = data_dir / "bad.json"
    bad.write_text('{"schema": "fracbench.submission/v1", "task": "localization"}')
    assert main(["score", str(bad), "--data", str(data_dir)]) == 1
    assert "missing" in _out(capsys)
