"""The installed package: CLI entry point, version, citation metadata."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import fracbench
from fracbench.cli import GROUPS, main
from tests.conftest import REPO

EXPECTED_COMMANDS = {"audit", "download", "splits", "build", "publish-dataset", "validate", "score", "compare", "report", "leaderboard", "baseline"}


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    missing = {c for c in EXPECTED_COMMANDS if c not in out}
    assert not missing, f"--help does not list {sorted(missing)}"


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"fracbench {fracbench.__version__}"


def _script(name: str) -> str:
    """A console script of the environment running the tests (skip when it has none)."""
    from pathlib import Path

    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"no {name} script next to {sys.executable} or on PATH (install the test extra: pip install -e '.[test]')")
    return found


def test_console_script_is_installed():
    exe = _script("fracbench")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert fracbench.__version__ in proc.stdout


def test_unknown_command_suggests_the_close_one(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["scroe"])
    assert exc.value.code == 2
    assert "Did you mean: score?" in capsys.readouterr().err


def test_every_group_module_registers_its_commands():
    """Each group adds at least one command of its own to a fresh parser."""
    import argparse
    import importlib

    before: set[str] = set()
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    for group in GROUPS:
        importlib.import_module(f"fracbench.cli.{group}").register(sub)
        added = set(sub.choices) - before
        assert added, f"fracbench.cli.{group}.register added no command"
        before |= added
    assert EXPECTED_COMMANDS <= before


def test_citation_cff_is_valid():
    cffconvert = _script("cffconvert")
    proc = subprocess.run(
        [cffconvert, "--validate", "-i", str(REPO / "CITATION.cff")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (REPO / "CITATION.cff").read_text()
    assert "10.1038/s41597-023-02432-4" in text  # FracAtlas is cited


def test_pins_torch_exactly():
    text = (REPO / "pyproject.toml").read_text()
    assert '"torch==2.14.1"' in text and '"torchvision==0.29.1"' in text


def test_ci_runs_exactly_the_readme_install_and_test_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    install = ci[ci.index("# --- README: install ---") + 1]
    test = ci[ci.index("# --- README: test ---") + 1]
    assert install in readme, f"README does not show the install command CI runs: {install}"
    assert test in readme, f"README does not show the test command CI runs: {test}"
