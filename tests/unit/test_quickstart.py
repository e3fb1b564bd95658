"""``fracbench quickstart`` runs the whole job on the synthetic release."""

from __future__ import annotations

import json

from fracbench.cli import main
from fracbench.dataset.groundtruth import load_ground_truth
from fracbench.release.reader import read_release
from tests.synthetic_gt import perfect_predictions, submission, write_submission
from tests.unit.test_build import synthetic_manifest


def test_quickstart_audits_builds_and_scores(synthetic_release, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./leaderboards here: the first pass has no default submission to score
    manifest = synthetic_manifest(read_release(synthetic_release), tmp_path)
    work = tmp_path / "work"
    # A first pass builds the dataset the submission is written against.
    assert main(["quickstart", "--from", str(synthetic_release), "--manifest", str(manifest.path), "--work", str(work)]) == 0
    gt = load_ground_truth(work / "fracatlas", "test")
    preds = write_submission(tmp_path / "preds.json", submission(gt, "classification", perfect_predictions(gt, "classification")))
    code = main(["quickstart", "--from", str(synthetic_release), "--manifest", str(manifest.path),
                 "--work", str(work), "--submission", str(preds)])
    assert code == 0
    assert (work / "audit" / "audit.json").is_file() and (work / "audit" / "audit.md").is_file()
    result = json.loads((work / "result.json").read_text())
    assert result["main_score"]["name"] == "auroc" and result["main_score"]["value"] == 1.0
    out = capsys.readouterr().out
    for command in ("fracbench download", "fracbench audit", "fracbench splits verify", "fracbench score"):
        assert command in out


def test_quickstart_stops_at_the_first_failure(tmp_path, capsys):
    (tmp_path / "notarelease").mkdir()
    assert main(["quickstart", "--from", str(tmp_path / "notarelease"), "--work", str(tmp_path / "w")]) == 1
    assert "fracbench audit" not in capsys.readouterr().out


def test_offline_quickstart_names_from(tmp_path, capsys, monkeypatch):
    import fracbench.release.download as download
    from fracbench.errors import DownloadError

    def offline(*args, **kwargs):
        raise DownloadError("https://example.org/FracAtlas.zip: connection refused")

    monkeypatch.setattr(download, "fetch_release", offline)
    assert main(["quickstart", "--work", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert "connection refused" in err and "--from" in err
