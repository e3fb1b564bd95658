"""Scoring on the authors' positive-only ``legacy`` splits: labelled, nulls, refusals, never on a board."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fracbench.cli import main
from fracbench.dataset import groundtruth
from fracbench.errors import LeaderboardError, ScoringError, SubmissionError
from fracbench.leaderboard.store import check_result_accepted
from fracbench.result import Result
from fracbench.score import LEGACY_WARNING, score_submission
from fracbench.tasks import TASKS
from fracbench.validate import validate_submission
from tests.synthetic_gt import (
    localization_predictions,
    make_ground_truth,
    perfect_predictions,
    reference_cocoeval,
    segmentation_predictions,
    submission,
    write_submission,
)

_V1 = make_ground_truth(60, seed=31, prevalence=0.5, n_unscored=2)
LEGACY = dataclasses.replace(_V1, splits_version="legacy", images=tuple(g for g in _V1.images if g.label == 1))
"""Positive-only, like the authors' split (the unscored images are among the last ones)."""
PREDICT = {"localization": localization_predictions, "segmentation": segmentation_predictions}
N = 100


def _write(tmp_path, task, gt=LEGACY, **kw):
    return write_submission(tmp_path / f"{task}-{gt.splits_version}.json", submission(gt, task, PREDICT[task](gt), **kw))


def test_legacy_ground_truth_is_positive_only():
    assert {g.label for g in LEGACY.images} == {1} and len(LEGACY.images) >= 20
    assert any(not g.scored for g in LEGACY.images)


@pytest.mark.parametrize("task", ["localization", "segmentation"])
def test_legacy_result_is_labelled_and_nulls_what_needs_negatives(tmp_path, task):
    result = score_submission(_write(tmp_path, task), gt=LEGACY, n_resamples=N)
    spec = TASKS[task]
    assert result.notes and result.provenance.splits_version == "legacy"
    assert result.notes[0] == LEGACY_WARNING and "positive-only" in LEGACY_WARNING and "NOT comparable" in LEGACY_WARNING
    assert any(", ".join(spec.needs_negatives) in n and "null" in n for n in result.notes)
    assert any("not scored" in n for n in result.notes)
    for name in spec.needs_negatives:
        assert result.metrics[name].value is None and result.metrics[name].ci95 is None
        assert all(m[name].value is None for attr in result.subgroups.values() for m in attr.values())
    assert result.main_score.value is not None and result.main_score.ci95 is not None
    others = [m for n, m in result.metrics.items() if n not in spec.needs_negatives]
    assert all(m.value is not None for m in others)
    # the notes go into the Result JSON
    assert json.loads(result.to_json())["notes"] == result.notes


@pytest.mark.parametrize("task", ["localization", "segmentation"])
def test_legacy_main_score_equals_pycocotools(tmp_path, task):
    preds = PREDICT[task](LEGACY)
    path = write_submission(tmp_path / "p.json", submission(LEGACY, task, preds))
    result = score_submission(path, gt=LEGACY, n_resamples=0, subgroups=False)
    stats = reference_cocoeval(LEGACY, preds, task)
    assert result.main_score.value == pytest.approx(stats[1], abs=1e-12)
    assert 0.0 < result.main_score.value < 1.0


def test_v1_result_carries_no_legacy_notes(tmp_path):
    result = score_submission(_write(tmp_path, "localization", gt=_V1), gt=_V1, n_resamples=0, subgroups=False)
    assert type(result) is Result and "notes" not in json.loads(result.to_json())
    assert result.metrics["image_auroc"].value is not None


def test_classification_on_legacy_is_refused(tmp_path):
    doc = submission(LEGACY, "classification", perfect_predictions(LEGACY, "classification"))
    path = write_submission(tmp_path / "cls.json", doc)
    with pytest.raises((ScoringError, SubmissionError), match="positive-only"):
        score_submission(path, gt=LEGACY, n_resamples=0)
    report = validate_submission(doc, LEGACY)
    assert [p.code for p in report.problems] == ["task_not_scorable"]


def test_splits_version_must_match_the_ground_truth(tmp_path):
    legacy_doc = submission(LEGACY, "localization", perfect_predictions(LEGACY, "localization"))
    v1_on_legacy = dict(legacy_doc, splits_version="v1")
    assert "wrong_splits_version" in validate_submission(v1_on_legacy, LEGACY).counts()
    assert validate_submission(legacy_doc, LEGACY).ok
    # schema-only: both known versions pass, anything else does not
    assert validate_submission(legacy_doc, None).ok and validate_submission(v1_on_legacy, None).ok
    assert "wrong_splits_version" in validate_submission(dict(legacy_doc, splits_version="v2"), None).counts()


@pytest.fixture
def loader(tmp_path, monkeypatch):
    """A dataset dir whose loader records the splits version asked for (legacy GT, or v1 GT)."""
    calls = []

    def load(data_dir, split, task=None, splits_version="v1"):
        calls.append(splits_version)
        return LEGACY if splits_version == "legacy" else _V1

    monkeypatch.setattr(groundtruth, "load_ground_truth", load)
    (tmp_path / "fracbench.json").write_text("{}")
    return tmp_path, calls


def test_splits_version_is_taken_from_the_submission_or_the_caller(tmp_path, loader):
    data, calls = loader
    path = _write(tmp_path, "localization")
    assert score_submission(path, data=data, n_resamples=0).provenance.splits_version == "legacy"
    with pytest.raises(SubmissionError, match="splits_version: expected 'v1', found 'legacy'"):
        score_submission(path, data=data, n_resamples=0, splits_version="v1")
    assert calls == ["legacy", "v1"]


def test_leaderboard_refuses_legacy_results(tmp_path):
    result = score_submission(_write(tmp_path, "localization"), gt=LEGACY, n_resamples=0, subgroups=False)
    with pytest.raises(LeaderboardError, match="splits version 'legacy'"):
        check_result_accepted(result, source="r.json")
    reloaded = Result.model_validate_json(result.to_json())  # a Result file read back, notes ignored
    with pytest.raises(LeaderboardError, match="leaderboards accept splits v1 only"):
        check_result_accepted(reloaded, source="r.json")


def test_cli_score_and_validate_on_legacy(tmp_path, loader, capsys):
    data, calls = loader
    path = _write(tmp_path, "segmentation")
    out = tmp_path / "result.json"
    assert main(["score", str(path), "--data", str(data), "--bootstrap", "20", "--splits-version", "legacy", "--json", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "splits legacy" in text and "warning: splits 'legacy'" in text and "negative_fp_rate: null" in text
    assert json.loads(out.read_text())["provenance"]["splits_version"] == "legacy"
    assert main(["validate", str(path), "--data", str(data)]) == 0
    assert "positive-only" in " ".join(capsys.readouterr().out.split())
    cls = write_submission(tmp_path / "cls.json", submission(LEGACY, "classification", perfect_predictions(LEGACY, "classification")))
    for command in ("validate", "score"):
        assert main([command, str(cls), "--data", str(data)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "classification cannot be scored on splits 'legacy'" in err
    assert calls == ["legacy", "legacy"]  # classification is refused before any ground truth is loaded


def test_built_dataset_legacy_split_scores_end_to_end(synthetic_release, tmp_path):
    from fracbench.dataset.build import build_dataset
    from fracbench.dataset.groundtruth import load_ground_truth
    from fracbench.release.reader import read_release
    from fracbench.splits.derive import LeakageEvidence, derive_rows
    from fracbench.splits.manifest import read_manifest, write_manifest
    from tests.data.fracatlas.generate import EXPECTED

    release = read_release(synthetic_release)
    evidence = LeakageEvidence(leakage_groups=EXPECTED["exact_duplicates"], conflict_ids=EXPECTED["label_conflicts"])
    write_manifest(tmp_path / "manifest.csv", derive_rows(release.records, evidence), {"version": "v1"})
    built = build_dataset(release, tmp_path / "fracatlas", manifest=read_manifest(tmp_path / "manifest.csv"))
    gt = load_ground_truth(built, "validation", splits_version="legacy")
    assert [g.image_id for g in gt.images] == EXPECTED["legacy_split"]["validation"]
    preds = perfect_predictions(gt, "localization")
    path = write_submission(tmp_path / "loc.json", submission(gt, "localization", preds))
    result = score_submission(path, data=built, n_resamples=0)
    meta = json.loads((built / "fracbench.json").read_text())
    prov = result.provenance
    assert (prov.splits_version, prov.split, prov.manifest_sha256) == ("legacy", "validation", meta["legacy"]["sha256"])
    assert result.main_score.value == pytest.approx(1.0) and result.metrics["image_auroc"].value is None
    assert np.isclose(result.metrics["froc_cpm"].value, 1.0)


def test_adding_a_legacy_submission_to_a_board_is_refused(tmp_path, loader):
    from fracbench.leaderboard.entry import ModelMeta
    from fracbench.leaderboard.store import add_entry

    data, calls = loader
    board = tmp_path / "board"
    with pytest.raises(LeaderboardError, match="splits version 'legacy'"):
        add_entry(board, _write(tmp_path, "localization"), ModelMeta(name="legacy model"), data=data, n_resamples=0)
    assert calls == ["legacy"] and not list(board.rglob("*.json"))
