"""The one escaping point of CLI output: user text is never markup and never a terminal control."""

from __future__ import annotations

import pytest

from fracbench.cli import main, safe


@pytest.mark.parametrize("path", ["[bold]x[/bold]", "[/x]", "a[x, y, w, h]b"])
def test_error_messages_quote_paths_as_typed(path, tmp_path, capsys):
    target = tmp_path / path
    assert main(["audit", str(target), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(target) in err.replace("\n", "") and "Traceback" not in err


def test_control_characters_and_bidi_overrides_are_shown_not_obeyed():
    text = safe("name\x1b[2J\u202eevil[/x]")
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b" in text and "\\u202e" in text and "\\[/x]" in text


def test_argparse_errors_go_through_the_same_point(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", "--bootstrap", "[/x]"])
    assert exc.value.code == 2
    assert "[/x]" in capsys.readouterr().err


def _submission(built_v1, tmp_path):
    import json

    from fracbench.dataset.groundtruth import load_ground_truth
    from tests.synthetic_gt import perfect_predictions, submission

    gt = load_ground_truth(built_v1, "test")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(submission(gt, "classification", perfect_predictions(gt, "classification"))))
    return path


@pytest.mark.parametrize("n", ["1000000000", "100001"])
def test_bootstrap_work_is_bounded_in_one_place(n, built_v1, tmp_path, capsys):
    from fracbench.errors import ScoringError
    from fracbench.metrics.bootstrap import draw_groups

    assert main(["score", str(_submission(built_v1, tmp_path)), "--data", str(built_v1), "--bootstrap", n]) == 1
    err = capsys.readouterr().err
    assert "100,000" in err and "Traceback" not in err
    with pytest.raises(ScoringError):
        draw_groups(["a", "b"], int(n))


def test_unwritable_json_is_refused_before_scoring(built_v1, tmp_path, capsys):
    sub = _submission(built_v1, tmp_path)
    assert main(["score", str(sub), "--data", str(built_v1), "--json", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    (tmp_path / "plain").write_text("a file, not a folder")
    assert main(["score", str(sub), "--data", str(built_v1), "--json", str(tmp_path / "plain" / "r.json")]) == 1
    assert "is not a writable folder" in capsys.readouterr().err
    assert main(["score", str(sub), "--data", str(built_v1), "--bootstrap", "0", "--json", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "r.json").is_file()


def test_a_repeated_problem_prints_as_one_line_with_a_count(built_v1, tmp_path, capsys):
    import json

    path = _submission(built_v1, tmp_path)
    doc = json.loads(path.read_text())
    for p in doc["predictions"]:
        p["image_id"] += ".jpg"
    path.write_text(json.dumps(doc))
    n = len(doc["predictions"])
    assert main(["validate", str(path), "--data", str(built_v1)]) == 1
    grouped = capsys.readouterr().out
    assert f"{n} problem(s) of 1 kind(s)" in grouped and f"[{n} times:" in " ".join(grouped.split())
    assert main(["validate", str(path), "--data", str(built_v1), "--ungrouped", "--max-problems", "0"]) == 1
    ungrouped = capsys.readouterr().out
    assert " ".join(ungrouped.split()).count("drop the file") == n and len(grouped.splitlines()) < 15 < len(ungrouped.splitlines())
