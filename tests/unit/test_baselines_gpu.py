"""The GPU run script in its tiny mode, on CPU: pack, train all three, submissions that score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fracbench.baselines.augment import _affine, _warp, warp_batch
from fracbench.baselines.gpu import load_split, pack

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_warp_matches_the_cpu_warp():
    rng = np.random.default_rng(0)
    img = np.kron((rng.random((30, 30)) * 255).astype(np.uint8), np.ones((4, 4), np.uint8))
    for k, (scale, angle, flip) in enumerate([(1.0, 0.0, False), (1.3, 0.2, True), (0.7, -0.15, False)]):
        m = _affine((60.0 + k, 50.0), (32.0, 32.0), scale, angle, flip)
        cpu = _warp(img, m, 64).astype(int)
        gpu = warp_batch(torch.from_numpy(img)[None], [0], m[None], 64, np.ones(1), np.zeros(1))[0, 0].numpy()
        assert np.abs(cpu - gpu.astype(int))[2:-2, 2:-2].max() <= 1


@pytest.mark.slow
def test_tiny_gpu_run_on_cpu_writes_submissions_that_score(built_v1, tmp_path):
    from fracbench.score import score_submission

    packed = tmp_path / "pack"
    manifest = pack(built_v1, packed, size=96, cache_dir=tmp_path / "cache")
    assert sum(manifest["splits"].values()) == 36
    assert manifest["bytes"] < 64 * 2**20
    val = load_split(packed, "validation", 64)
    assert val.images.shape[1:] == (64, 64) and len(val) == manifest["splits"]["validation"]
    out = tmp_path / "out"
    # the device runs it from the repository root; it has torch, timm, numpy, pandas, pyarrow, opencv and
    # the carried pycocotools wheel, nothing else this project installs
    script = ("import sys; from fracbench.baselines.gpu import main; main(sys.argv[1:]); "
              "lacking = ('pydantic', 'datasets', 'rich', 'sklearn', 'scipy', 'segmentation_models_pytorch'); "
              "used = sorted({m.split('.')[0] for m in sys.modules} & set(lacking)); "
              "assert not used, f'imports what the GPU machine lacks: {used}'")
    proc = subprocess.run([sys.executable, "-c", script, "run", str(packed), "--out", str(out), "--tiny",
                           "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiny"] and set(summary["results"]) == {"classification", "localization", "segmentation"}
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r.get("task") == "localization" and "step" in r] == [3, 6]
    for task in ("classification", "localization", "segmentation"):
        for split in ("validation", "test"):
            result = score_submission(out / task / f"preds-v1-{split}.json", data=built_v1, n_resamples=0)
            assert result.task == task and result.provenance.split == split and result.main_score.name
    for task in ("classification", "localization"):
        run = out / task
        assert {"config.json", "run.json", "best.pt"} <= {p.name for p in run.iterdir()}
