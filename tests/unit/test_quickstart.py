"""``fracbench quickstart`` runs the whole job on the synthetic release."""

from __future__ import annotations

import json

import fracbench
from fracbench.cli import main
from fracbench.dataset.locate import resolve_data_dir
from fracbench.dataset.groundtruth import load_ground_truth
from tests.synthetic_gt import perfect_predictions, submission, write_submission


def test_quickstart_builds_where_the_next_commands_look(synthetic_release, synthetic_manifest, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./leaderboards here: the first pass has no default submission to score
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FRACBENCH_DATA", raising=False)
    work = tmp_path / "work"
    # A first pass builds the dataset the submission is written against, where score and load look by default.
    assert main(["quickstart", "--from", str(synthetic_release), "--manifest", str(synthetic_manifest.path), "--work", str(work)]) == 0
    data = resolve_data_dir()
    assert data == tmp_path / "cache" / "fracbench" / "fracatlas"
    first = capsys.readouterr().out
    # Every printed command is whole on one line (the console is 80 columns; these paths are longer).
    download = (f"$ fracbench download --from {synthetic_release} --manifest {synthetic_manifest.path} "
                f"--raw-out {work / 'raw'} --out {data} --overwrite")
    assert len(download) > 80 and download in first.splitlines(), first
    assert "fracbench score preds.json\n" in first and "found by every command without --data" in first
    gt = load_ground_truth(data, "test")
    preds = write_submission(tmp_path / "preds.json", submission(gt, "classification", perfect_predictions(gt, "classification")))
    code = main(["quickstart", "--from", str(synthetic_release), "--manifest", str(synthetic_manifest.path),
                 "--work", str(work), "--submission", str(preds)])
    assert code == 0
    assert (work / "audit" / "audit.json").is_file() and (work / "audit" / "audit.md").is_file()
    result = json.loads((work / "result.json").read_text())
    assert result["main_score"]["name"] == "auroc" and result["main_score"]["value"] == 1.0
    out = capsys.readouterr().out
    for command in ("fracbench download", "fracbench audit", "fracbench splits verify", "fracbench score"):
        assert command in out
    # The README's next commands, without --data.
    assert main(["score", str(preds), "--bootstrap", "0"]) == 0
    assert len(fracbench.load("classification", split="test")) == len(gt.images)


def test_quickstart_with_data_names_it_in_the_next_commands(synthetic_release, synthetic_manifest, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "elsewhere"
    assert main(["quickstart", "--from", str(synthetic_release), "--manifest", str(synthetic_manifest.path),
                 "--work", str(tmp_path / "work"), "--data", str(data)]) == 0
    assert (data / "fracbench.json").is_file() and not (tmp_path / "cache").exists()
    assert f"fracbench score preds.json --data {data}" in capsys.readouterr().out.splitlines()[-2]


def test_quickstart_stops_at_the_first_failure(tmp_path, capsys):
    (tmp_path / "notarelease").mkdir()
    assert main(["quickstart", "--from", str(tmp_path / "notarelease"), "--work", str(tmp_path / "w"), "--data", str(tmp_path / "d")]) == 1
    assert "fracbench audit" not in capsys.readouterr().out


def test_offline_quickstart_names_from(tmp_path, capsys, monkeypatch):
    import fracbench.release.download as download
    from fracbench.errors import DownloadError

    def offline(*args, **kwargs):
        raise DownloadError("https://example.org/FracAtlas.zip: connection refused")

    monkeypatch.setattr(download, "fetch_release", offline)
    assert main(["quickstart", "--work", str(tmp_path / "w"), "--data", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert "connection refused" in err and "--from" in err


def test_builds_go_where_the_data_search_looks_first(tmp_path, monkeypatch):
    from fracbench.dataset.locate import default_build_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FRACBENCH_DATA", raising=False)
    assert default_build_dir() == tmp_path / "cache" / "fracbench" / "fracatlas"
    monkeypatch.setenv("FRACBENCH_DATA", str(tmp_path / "mine"))
    assert default_build_dir() == tmp_path / "mine"
