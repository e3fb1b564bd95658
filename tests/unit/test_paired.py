"""Paired comparisons: Holm, significance classes, ``compare`` of many, and paired ranks on the board."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from fracbench.cli import main
from fracbench.compare import compare_many, compare_submissions
from fracbench.dataset import groundtruth
from fracbench.errors import LeaderboardError, ScoringError
from fracbench.leaderboard import Board, add_entry, parse_meta, render_board
from fracbench.leaderboard.paired import CACHE_NAME, pair_board
from fracbench.paired import holm, rank_intervals, significance_classes
from tests.synthetic_gt import (
    classification_predictions,
    make_ground_truth,
    submission,
    write_submission,
)

GT = make_ground_truth(400, seed=31, prevalence=0.3, n_unscored=2, group_size=2)
N = 300
SHIFT = 0.1
"""Logit added to every fractured image's score by the 'nudged' entry: a known, small improvement."""


def _nudged(preds, gt, shift=SHIFT):
    labels = {g.image_id: g.label for g in gt.images}
    out = []
    for p in preds:
        z = math.log(p["score"] / (1 - p["score"]))
        out.append({"image_id": p["image_id"], "score": 1 / (1 + math.exp(-(z + shift * labels[p["image_id"]])))})
    return out


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A dataset dir whose test ground truth is GT (the loader is replaced)."""
    monkeypatch.setattr(groundtruth, "load_ground_truth", lambda d, split, task=None, splits_version="v1": GT, raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fracbench.json").write_text("{}")
    return tmp_path / "data"


@pytest.fixture
def subs(tmp_path):
    base = classification_predictions(GT, separation=1.2, seed=4)
    return {
        "base": write_submission(tmp_path / "base.json", submission(GT, "classification", base)),
        "nudged": write_submission(tmp_path / "nudged.json", submission(GT, "classification", _nudged(base, GT))),
        "strong": write_submission(tmp_path / "strong.json", submission(GT, "classification", classification_predictions(GT, separation=3.0, seed=5))),
        "weak": write_submission(tmp_path / "weak.json.gz", submission(GT, "classification", classification_predictions(GT, separation=0.4, seed=6))),
    }


# --- the statistics


def test_holm_matches_the_step_down_rule():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max keeps 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.01]) == pytest.approx([0.5, None, 0.02])
    assert holm([0.9, 0.8]) == [1.0, 1.0] or holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_classes_compare_with_the_class_leader_only():
    order = ["a", "b", "c", "d"]
    sep = {frozenset("ab"): False, frozenset("ac"): True, frozenset("bc"): False, frozenset("cd"): False, frozenset("ad"): True}
    assert significance_classes(order, sep) == {"a": (1, False), "b": (1, True), "c": (3, False), "d": (3, True)}
    better = {("a", "c"): True, ("a", "d"): True}
    assert rank_intervals(order, better) == {"a": (1, 2), "b": (1, 4), "c": (2, 4), "d": (2, 4)}


# --- compare with any number of submissions


def test_compare_many_equals_pairwise_compare(subs):
    paths = [subs["base"], subs["nudged"], subs["weak"]]
    table = compare_many(paths, gt=GT, n_resamples=N, seed=2)
    assert [s.path for s in table.submissions] == [str(p) for p in paths]
    assert [(r.a, r.b) for r in table.pairs] == [(0, 1), (0, 2), (1, 2)]
    for row in table.pairs:
        two = compare_submissions(paths[row.a], paths[row.b], gt=GT, n_resamples=N, seed=2)
        assert (row.difference, row.ci95, row.p_value, row.n_defined) == (two.difference, two.ci95, two.p_value, two.n_defined)
    assert [r.p_holm for r in table.pairs] == pytest.approx(holm([r.p_value for r in table.pairs]))
    assert table.schema_ == "fracbench.comparison-table/v1"
    with pytest.raises(ScoringError, match="at least two"):
        compare_many(paths[:1], gt=GT)


def test_cli_compare_three(subs, data_dir, capsys, monkeypatch):
    import fracbench.cli

    monkeypatch.setattr(fracbench.cli.console, "width", 300)
    out = data_dir / "table.json"
    rc = main(["compare", str(subs["base"]), str(subs["nudged"]), str(subs["strong"]), "--data", str(data_dir),
               "--bootstrap", "100", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "A - B" in printed and "B - C" in printed and "p (Holm)" in printed
    data = json.loads(out.read_text())
    assert len(data["pairs"]) == 3 and data["correction"] == "holm"
    # two submissions keep the original output and schema
    assert main(["compare", str(subs["base"]), str(subs["nudged"]), "--data", str(data_dir), "--bootstrap", "50"]) == 0
    assert "two-sided p" in capsys.readouterr().out
    assert main(["compare", str(subs["base"]), "--data", str(data_dir)]) == 1


# --- the board


def _add(board, path, name, data):
    return add_entry(board, path, parse_meta({"name": name}), data=data, n_resamples=N)[0]


def test_paired_test_separates_where_marginal_cis_overlap(subs, data_dir, tmp_path):
    """The must-show: a known small improvement, CIs overlapping, separated by the paired test."""
    board = Board(tmp_path / "board")
    base, nudged = _add(board, subs["base"], "base", data_dir), _add(board, subs["nudged"], "nudged", data_dir)
    (lo_a, hi_a), (lo_b, hi_b) = base.result.main_score.ci95, nudged.result.main_score.ci95
    assert lo_a <= hi_b and lo_b <= hi_a, "the marginal 95% CIs overlap"
    assert 0 < nudged.result.main_score.value - base.result.main_score.value < 0.03
    paired = pair_board(board, board.load_entries(), data=data_dir)
    task = paired.tasks[("v1", "classification")]
    cell = task.cells[("nudged", "base")]
    assert cell.difference > 0 and cell.ci95[0] > 0 and cell.p_holm <= 0.05 and cell.separated
    assert task.order == ["nudged", "base"] and task.ranks == {"nudged": (1, False), "base": (2, False)}
    assert task.intervals == {"nudged": (1, 1), "base": (2, 2)}
    # the CI-overlap rule puts them level
    from fracbench.leaderboard import rank_entries

    assert [r.rank_label for r in rank_entries(board.load_entries())] == ["1", "≈1"]


def test_cache_costs_one_pass_per_existing_entry(subs, data_dir, tmp_path):
    board = Board(tmp_path / "board")
    for key in ("base", "nudged", "weak"):
        _add(board, subs[key], key, data_dir)
    first = pair_board(board, board.load_entries(), data=data_dir)
    assert (first.passes, first.reused) == (3, 0)
    cache = json.loads((board.root / CACHE_NAME).read_text())
    assert cache["schema"] == "fracbench.paired-cache/v1" and len(cache["pairs"]) == 3
    again = pair_board(board, board.load_entries(), data=None)  # no dataset needed: all pairs cached
    assert (again.passes, again.reused) == (0, 3)
    assert again.tasks[("v1", "classification")].cells == first.tasks[("v1", "classification")].cells
    _add(board, subs["strong"], "strong", data_dir)
    fourth = pair_board(board, board.load_entries(), data=data_dir)
    assert (fourth.passes, fourth.reused) == (3, 3)
    task = fourth.tasks[("v1", "classification")]
    assert task.order[0] == "strong" and task.ranks["strong"] == (1, False)
    # a pair read back from the cache in the other orientation flips sign and interval
    c, r = task.cells[("base", "weak")], task.cells[("weak", "base")]
    assert c.difference == -r.difference and c.ci95 == (-r.ci95[1], -r.ci95[0])


def test_unreadable_submission_is_not_ranked_and_the_page_says_so(subs, data_dir, tmp_path):
    board = Board(tmp_path / "board")
    for key in ("base", "nudged", "strong"):
        _add(board, subs[key], key, data_dir)
    stored = board.submission_path("v1", "classification", "base")
    good = stored.read_bytes()
    stored.write_bytes(gzip.compress(b'{"changed": true}'))
    # a changed stored submission fails verification: the board is not rendered at all (issue 11) ...
    with pytest.raises(LeaderboardError, match="stored submission was changed"):
        render_board(board, data=data_dir)
    # ... and the paired ranking leaves it out, saying why
    task = pair_board(board, board.load_entries(), data=data_dir).tasks[("v1", "classification")]
    assert set(task.order) == {"strong", "nudged"} and "no longer hashes" in task.unranked["base"]
    stored.write_bytes(good)
    render_board(board, data=data_dir)
    page = (board.root / "index.html").read_text()
    assert 'class="pairs"' in page and "Holm" in page
    md = (board.root / "README.md").read_text()
    assert "paired group bootstrap" in md
    # without a dataset and without cached pairs, nothing can be paired: nothing is ranked, each says why,
    # and the page (published marked unverified) says so
    (board.root / CACHE_NAME).unlink()
    task = pair_board(board, board.load_entries(), data=tmp_path / "nowhere").tasks[("v1", "classification")]
    assert task.order == [] and all("no built dataset" in r for r in task.unranked.values())
    render_board(board, data=tmp_path / "nowhere", allow_unverified=True)
    page = (board.root / "index.html").read_text()
    assert "Not ranked: base:" in page and "no built dataset" in page and "unverified" in page


def test_single_entry_is_ranked_without_any_pass(subs, data_dir, tmp_path):
    board = Board(tmp_path / "board")
    _add(board, subs["base"], "base", data_dir)
    paired = pair_board(board, board.load_entries(), data=tmp_path / "nowhere")
    assert paired.passes == 0 and paired.tasks[("v1", "classification")].ranks == {"base": (1, False)}
    assert not (board.root / CACHE_NAME).exists()


def test_page_matrix_holds_every_pair(subs, data_dir, tmp_path):
    board = Board(tmp_path / "board")
    for key in ("base", "nudged", "strong", "weak"):
        _add(board, subs[key], key, data_dir)
    render_board(board, data=data_dir)
    page = (board.root / "index.html").read_text()
    assert page.count('<td class="sep"') + page.count('<td class="tie"') == 12
    assert page.count('<td class="self">') == 4
    assert "paired 95% CI" in page and "Holm p" in page
    assert np.isfinite(json.loads((board.root / CACHE_NAME).read_text())["pairs"].popitem()[1]["difference"])
