"""Install fracbench with every dependency at its declared floor, then run the suite there.

    python -m tests.floors --venv /tmp/floor          # ~5 min install, then the suite

The floors are read from ``pyproject.toml`` (each ``name>=X`` becomes ``name==X``; exact
pins stay), so the check follows the declared ranges and cannot drift from them. The test
tools (the ``test`` extra) are not pinned low: they test, they are not depended on.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SPEC = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(==|>=)\s*([0-9][^,;\s]*)$")


def floor_constraints(pyproject: Path = REPO / "pyproject.toml", extras: tuple[str, ...] = ("baselines",)) -> list[str]:
    """``name==floor`` for every runtime dependency (and those of ``extras``) that declares one."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    pins = []
    for spec in specs:
        match = _SPEC.match(spec.strip())
        if match:
            pins.append(f"{match.group(1)}=={match.group(3)}")
    return pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, required=True, help="where to create the floor environment")
    parser.add_argument("pytest_args", nargs="*", default=["-q", "-n", "2"], help="passed to pytest")
    args = parser.parse_args(argv)
    constraints = args.venv.with_suffix(".constraints.txt")
    constraints.write_text("\n".join(floor_constraints()) + "\n", encoding="utf-8")
    python = args.venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(args.venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-e", f"{REPO}[baselines,test]", "-c", str(constraints)], check=True)
    return subprocess.run([str(python), "-m", "pytest", *args.pytest_args], cwd=REPO, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
