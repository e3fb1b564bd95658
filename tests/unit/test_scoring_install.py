"""The scoring-only install: everything but the baselines works with torch and its kin absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from fracbench.cli.baseline import BASELINE_EXTRA
from tests.conftest import REPO

# Run in a fresh interpreter where importing any module of the baselines extra fails, as it does
# after `pip install fracbench` without extras. Imports every non-baseline module, then runs the
# CLI as a user would: validate, score, and a baseline command (which must name the extra).
_SCRIPT = textwrap.dedent("""
    import importlib, json, pkgutil, sys

    BLOCKED = set(json.loads(sys.argv[1]))

    class Absent:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())
    import fracbench
    from fracbench.cli import main

    for info in pkgutil.walk_packages(fracbench.__path__, "fracbench."):
        if not info.name.startswith("fracbench.baselines") and info.name != "fracbench.__main__":
            importlib.import_module(info.name)
    data, preds = sys.argv[2], sys.argv[3]
    codes = [main(["validate", preds, "--data", data]),
             main(["score", preds, "--data", data, "--bootstrap", "20", "--json", sys.argv[4]]),
             main(["baseline", "predict", "localization", "--data", data, "--out", sys.argv[4] + ".p"])]
    print("CODES", json.dumps(codes))
    print("LOADED", json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)))
""")


def test_validate_and_score_without_the_baselines_extra(built_v1, tmp_path):
    from fracbench.dataset.groundtruth import load_ground_truth
    from tests.synthetic_gt import localization_predictions, submission, write_submission

    gt = load_ground_truth(built_v1, "test")
    preds = write_submission(tmp_path / "preds.json", submission(gt, "localization", localization_predictions(gt)))
    result = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(sorted(BASELINE_EXTRA)), str(built_v1), str(preds), str(result)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    codes = json.loads(proc.stdout.split("CODES", 1)[1].splitlines()[0])
    assert codes == [0, 0, 1], proc.stdout + proc.stderr
    assert json.loads(proc.stdout.split("LOADED", 1)[1].splitlines()[0]) == []
    assert json.loads(result.read_text())["metrics"]["ap50"]["value"] > 0
    error = proc.stderr.strip().splitlines()
    assert len(error) == 1 and "pip install 'fracbench[baselines]'" in error[0], proc.stderr
