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
