"""The leaderboard with the real scorer: synthetic release -> built dataset -> preds -> board.

Builds the committed generator's synthetic release with a manifest derived from
its planted groups (recorded as splits ``v1``), writes classification and
localization submissions for its test split, and runs the three user commands
(``add``, ``verify``, ``render``) through ``fracbench.score.score_submission``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fracbench.cli import main
from fracbench.leaderboard import Board, load_entry
from fracbench.leaderboard.entry import entry_hash

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def submissions(built_v1, tmp_path_factory) -> dict[str, Path]:
    from fracbench.dataset.groundtruth import load_ground_truth
    from tests.synthetic_gt import classification_predictions, localization_predictions, submission, write_submission

    gt = load_ground_truth(built_v1, "test")
    assert gt.splits_version == "v1" and gt.images
    tmp = tmp_path_factory.mktemp("lb-subs")
    return {
        "strong": write_submission(tmp / "strong.json", submission(gt, "classification", classification_predictions(gt, separation=4.0))),
        "weak": write_submission(tmp / "weak.json.gz", submission(gt, "classification", classification_predictions(gt, separation=0.5, seed=2))),
        "boxes": write_submission(tmp / "boxes.json", submission(gt, "localization", localization_predictions(gt))),
    }


def _meta(tmp_path: Path, name: str, **extra) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({"name": name, **extra}))
    return path


def test_add_verify_render_with_the_real_scorer(built_v1, submissions, tmp_path, capsys):
    board = tmp_path / "leaderboards"
    common = ["--board", str(board), "--data", str(built_v1), "--n-resamples", "50"]
    for key in ("strong", "weak", "boxes"):
        rc = main(["leaderboard", "add", str(submissions[key]), "--meta", str(_meta(tmp_path, key, parameters=10)), *common])
        assert rc == 0, capsys.readouterr().err
    entries = {e.slug: e for e in Board(board).load_entries()}
    assert set(entries) == {"strong", "weak", "boxes"}
    assert entries["strong"].result.main_score.value > entries["weak"].result.main_score.value
    assert entries["boxes"].task == "localization" and entries["weak"].submission.stored_as == "verbatim"
    assert entries["strong"].result.provenance.submission_sha256 == entries["strong"].submission.sha256

    rc = main(["leaderboard", "verify", "--board", str(board), "--data", str(built_v1)])
    assert rc == 0 and "3 entries verified (3 re-scored and reproduced)" in capsys.readouterr().out

    rc = main(["leaderboard", "render", "--board", str(board), "--data", str(built_v1)])
    assert rc == 0
    page = (board / "index.html").read_text()
    # ROC for classification; FROC and precision-recall for localization
    assert page.count('<svg class="plot"') == 3
    assert "False positives per image" in page and "Precision-recall (IoU 0.5)" in page

    path = Board(board).entry_path("v1", "classification", "weak")
    data = json.loads(path.read_text())
    data["result"]["main_score"]["value"] = 0.999
    data["entry_sha256"] = entry_hash(data)
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["leaderboard", "verify", "--board", str(board), "--data", str(built_v1)]) == 1
    assert "FAILED fracatlas-v1/classification/weak.json: result.main_score.value: stored 0.999" in capsys.readouterr().err


def test_same_predictions_again_are_refused(built_v1, submissions, tmp_path, capsys):
    board = tmp_path / "b"
    args = ["--board", str(board), "--data", str(built_v1), "--n-resamples", "20"]
    assert main(["leaderboard", "add", str(submissions["strong"]), "--meta", str(_meta(tmp_path, "first")), *args]) == 0
    assert main(["leaderboard", "add", str(submissions["strong"]), "--meta", str(_meta(tmp_path, "second")), *args]) == 1
    assert "already on the board as fracatlas-v1/classification/first.json" in capsys.readouterr().err
    assert load_entry(Board(board).entry_files()[0]).slug == "first"
