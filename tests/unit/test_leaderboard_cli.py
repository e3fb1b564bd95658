"""``fracbench leaderboard add|verify|render|publish`` end to end (real scorer on the synthetic v1 build, no Hub)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from fracbench.cli import main
from fracbench.errors import LeaderboardError
from fracbench.leaderboard import Board
from fracbench.leaderboard.entry import entry_hash
from fracbench.leaderboard.publish import plan_publish, publish_board
from tests.synthetic_gt import write_predictions


@pytest.fixture(autouse=True)
def _no_default_data(monkeypatch):
    """Only ``--data`` names a dataset: none is found through ``$FRACBENCH_DATA``."""
    monkeypatch.delenv("FRACBENCH_DATA", raising=False)


@pytest.fixture
def board_with_two(built_v1, tmp_path, capsys):
    board = tmp_path / "board"
    for i, name in enumerate(["ResNet-50", "<script>alert(1)</script>"]):
        sub = write_predictions(tmp_path / f"s{i}.json", built_v1, name=name, separation=2.0 - i, seed=i)
        meta = tmp_path / f"meta{i}.yaml"
        meta.write_text(f"name: {json.dumps(name)}\nparameters: 1000\ncode_url: https://example.org/m{i}\n")
        rc = main(["leaderboard", "add", str(sub), "--meta", str(meta), "--board", str(board), "--data", str(built_v1),
                   "--n-resamples", "50"])
        assert rc == 0
    capsys.readouterr()
    return board


def test_add_prints_the_score_and_next_step(built_v1, tmp_path, capsys):
    sub = write_predictions(tmp_path / "s.json", built_v1, name="m", separation=0.5, seed=0)  # AUROC 0.8, not 1
    meta = tmp_path / "meta.yaml"
    meta.write_text("name: My Model\n")
    rc = main(["leaderboard", "add", str(sub), "--meta", str(meta), "--board", str(tmp_path / "b"), "--data", str(built_v1),
               "--n-resamples", "50"])
    out = capsys.readouterr().out
    assert rc == 0 and "fracatlas-v1/classification/my-model.json: classification auroc = 0." in out
    assert "fracbench leaderboard render" in out


def test_add_rejects_scores_in_meta_with_one_line(built_v1, tmp_path, capsys):
    sub = write_predictions(tmp_path / "s.json", built_v1, name="m")
    meta = tmp_path / "meta.yaml"
    meta.write_text("name: Cheater\nauroc: 0.999\n")
    rc = main(["leaderboard", "add", str(sub), "--meta", str(meta), "--board", str(tmp_path / "b"), "--data", str(built_v1)])
    err = capsys.readouterr().err
    assert rc == 1 and "field 'auroc': metadata must not contain scores" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists() or not Board(tmp_path / "b").entry_files()


def test_add_duplicate_exits_1(board_with_two, built_v1, tmp_path, capsys):
    meta = tmp_path / "again.yaml"
    meta.write_text("name: Again\n")
    rc = main(["leaderboard", "add", str(tmp_path / "s0.json"), "--meta", str(meta), "--board", str(board_with_two),
               "--data", str(built_v1)])
    assert rc == 1 and "already on the board" in capsys.readouterr().err


def test_verify_ok_then_edit_fails_naming_entry(board_with_two, built_v1, capsys):
    data = built_v1
    assert main(["leaderboard", "verify", "--board", str(board_with_two), "--data", str(data)]) == 0
    assert "2 entries verified (2 re-scored and reproduced)" in capsys.readouterr().out

    path = board_with_two / "fracatlas-v1" / "classification" / "resnet-50.json"
    entry = json.loads(path.read_text())
    entry["result"]["main_score"]["value"] = 0.999
    entry["entry_sha256"] = entry_hash(entry)  # a careful forger re-seals the hash
    path.write_text(json.dumps(entry))
    assert main(["leaderboard", "verify", "--board", str(board_with_two), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert "FAILED fracatlas-v1/classification/resnet-50.json: result.main_score.value: stored 0.999" in err


def test_verify_without_data_says_why_and_fails(board_with_two, tmp_path, capsys):
    rc = main(["leaderboard", "verify", "--board", str(board_with_two), "--data", str(tmp_path / "none")])
    out, err = capsys.readouterr()
    assert rc == 1 and "re-scoring skipped: no built fracbench dataset" in out
    assert "UNVERIFIED fracatlas-v1/classification/resnet-50.json: not re-scored" in err
    assert "--no-rescore" in err
    rc = main(["leaderboard", "verify", "--board", str(board_with_two), "--no-rescore"])
    assert rc == 0 and "2 entries: hashes, schema and files checked; none re-scored (--no-rescore)" in capsys.readouterr().out


def test_render_refuses_unverified_unless_allowed(board_with_two, tmp_path, capsys):
    rc = main(["leaderboard", "render", "--board", str(board_with_two), "--data", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert rc == 1 and "2 entries could not be re-scored, first fracatlas-v1/classification/resnet-50.json" in err
    assert "--allow-unverified" in err and not (board_with_two / "index.html").exists()
    rc = main(["leaderboard", "render", "--board", str(board_with_two), "--data", str(tmp_path / "none"),
               "--allow-unverified"])
    err = capsys.readouterr().err
    assert rc == 0 and "resnet-50.json is published marked unverified" in err
    page = (board_with_two / "index.html").read_text()
    assert page.count('<span class="unverified"') == 2
    assert (board_with_two / "README.md").read_text().count("⚠ _unverified_") == 2


def test_render_writes_both_views(board_with_two, built_v1, capsys):
    assert main(["leaderboard", "render", "--board", str(board_with_two), "--data", str(built_v1)]) == 0
    out = capsys.readouterr().out
    assert "README.md" in out and "index.html" in out
    page = (board_with_two / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert 'class="unverified"' not in page


def test_publish_dry_run_lists_the_plan(board_with_two, built_v1, capsys):
    rc = main(["leaderboard", "publish", "--repo-id", "lab/fracbench-board", "--board", str(board_with_two),
               "--dry-run", "--data", str(built_v1)])
    out = capsys.readouterr().out
    assert rc == 0 and "dry run, nothing sent" in out and "as a pull request" in out
    listed = [line.split()[-1] for line in out.splitlines() if len(line.split()) == 3 and len(line.split()[0]) == 64]
    assert listed == [
        "README.md",
        "fracatlas-v1/classification/resnet-50.json",
        "fracatlas-v1/classification/script-alert-1-script.json",
        "fracatlas-v1/classification/submissions/resnet-50.json.gz",
        "fracatlas-v1/classification/submissions/script-alert-1-script.json.gz",
        "index.html",
        "paired-cache.json",  # the render's paired comparisons of the two real results
    ]
    assert "total: 7 files" in out


def test_publish_bad_repo_id(board_with_two, capsys):
    assert main(["leaderboard", "publish", "--repo-id", "noslash", "--board", str(board_with_two), "--dry-run"]) == 1
    assert "must be ORG/NAME" in capsys.readouterr().err


class _FakeApi:
    def __init__(self):
        self.commits = []

    def create_repo(self, repo_id, **kw):
        self.repo = (repo_id, kw)

    def create_commit(self, repo_id, operations, **kw):
        self.commits.append((repo_id, [op.path_in_repo for op in operations], kw))
        return SimpleNamespace(commit_url="https://hf.co/c/1", pr_url="https://hf.co/pr/1" if kw["create_pr"] else None, oid="1")


@pytest.mark.parametrize("create_pr", [True, False])
def test_publish_pushes_the_plan_as_pr_by_default(board_with_two, create_pr, built_v1):
    plan = plan_publish(board_with_two, path_in_repo="leaderboards", data=built_v1)
    assert all(f.path_in_repo.startswith("leaderboards/") for f in plan.files)
    assert not any(".lock" in f.path_in_repo for f in plan.files)
    api = _FakeApi()
    result = publish_board(plan, "lab/board", create_pr=create_pr, token="hf_x", api=api)
    ((repo_id, paths, kw),) = api.commits
    assert repo_id == "lab/board" and kw["repo_type"] == "dataset" and kw["create_pr"] is create_pr
    assert paths == [f.path_in_repo for f in plan.files] and "2 entries" in kw["commit_message"]
    assert (result.pr_url is not None) is create_pr
    assert api.repo[1]["repo_type"] == "dataset"


def test_publish_refuses_a_board_that_fails_verification(board_with_two):
    Board(board_with_two).submission_path("v1", "classification", "resnet-50").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(LeaderboardError, match="1 entry fails verification, first fracatlas-v1/classification/resnet-50.json"):
        plan_publish(board_with_two)


def test_leaderboard_without_subcommand_prints_help(capsys):
    assert main(["leaderboard"]) == 2
    assert "add" in capsys.readouterr().out
