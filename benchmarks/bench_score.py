"""Benchmark: scoring a realistic submission with 1,000 bootstrap resamples vs one bare COCOeval pass.

Run on demand from the repo root::

    .venv/bin/python benchmarks/bench_score.py                      # localization and segmentation
    .venv/bin/python benchmarks/bench_score.py --task localization --boxes 100

The data imitate the real test split: ~820 images, ~18 % fractured (1-3 fractures
each), sizes like FracAtlas (373x454 / 454x373, ~9 % 2304x2880). Localization:
``--boxes`` boxes on every image (default 100, the per-image limit). Segmentation:
``--instances`` full-resolution RLE masks per image. ``--data DIR`` takes the ground
truth of a built dataset's test split instead (predictions stay synthetic).

Each measurement runs in a fresh subprocess so its peak memory is its own:

* ``fracbench``: ``score_submission(file, n_resamples=1000)``: reading, validating,
  COCO matching, every metric, CIs for the main score and all 13 subgroups;
* ``pycocotools``: one bare ``loadRes`` + ``evaluate`` + ``accumulate`` + ``summarize``
  on the same detections (the JSON already parsed, untimed).

Target: fracbench <= 3x pycocotools (``ratio``: wall clock; ``ratio_cpu``: CPU time of the
process, steadier on a busy machine). Prints one JSON line per task.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.synthetic_gt import (  # noqa: E402
    FRACATLAS_SIZES,
    localization_predictions,
    make_ground_truth,
    reference_cocoeval,
    segmentation_predictions,
    submission,
    write_submission,
)

N_IMAGES = 820
PREVALENCE = 0.18
SIZE_WEIGHTS = (0.46, 0.45, 0.09)


def _ground_truth(seed: int, data: str | None = None):
    if data:
        from fracbench.dataset.groundtruth import load_ground_truth

        return load_ground_truth(data, "test")
    return make_ground_truth(
        N_IMAGES, prevalence=PREVALENCE, seed=seed, sizes=FRACATLAS_SIZES, size_weights=SIZE_WEIGHTS,
        max_instances=3, group_size=1, n_unscored=4,
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args: argparse.Namespace) -> None:
    gt = _ground_truth(args.seed, args.data)
    if args.child == "fracbench":
        from fracbench.score import score_submission

        base = _rss_mb()
        t, cpu = time.perf_counter(), time.process_time()
        result = score_submission(args.file, gt=gt, n_resamples=args.resamples, seed=0)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        extra = {"main_score": result.main_score.value, "ci95": result.main_score.ci95}
    else:
        preds = json.loads(Path(args.file).read_text())["predictions"]
        base = _rss_mb()
        t, cpu = time.perf_counter(), time.process_time()
        stats = reference_cocoeval(gt, preds, args.task)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        extra = {"main_score": float(stats[1])}
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": _rss_mb(), "baseline_rss_mb": base, **extra}))


def _run(task: str, args: argparse.Namespace, tmp: Path) -> dict:
    gt = _ground_truth(args.seed, args.data)
    if task == "localization":
        preds = localization_predictions(gt, seed=args.seed, false_per_image=float(args.boxes), max_boxes=args.boxes)
        count = sum(len(p["boxes"]) for p in preds)
    else:
        preds = segmentation_predictions(gt, seed=args.seed, false_per_image=float(args.instances), polygon_share=0.0, max_instances=args.instances)
        count = sum(len(p["instances"]) for p in preds)
    path = write_submission(tmp / f"{task}.json", submission(gt, task, preds))
    out = {"task": task, "images": len(gt.images), "ground_truth": args.data or "synthetic", "objects": count, "file_mb": round(path.stat().st_size / 2**20, 1), "resamples": args.resamples}
    for who in ("pycocotools", "fracbench"):
        cmd = [sys.executable, __file__, "--child", who, "--task", task, "--file", str(path), "--seed", str(args.seed), "--resamples", str(args.resamples)]
        cmd += ["--data", args.data] if args.data else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
        out[who] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["ratio"] = round(out["fracbench"]["seconds"] / out["pycocotools"]["seconds"], 2)
    out["ratio_cpu"] = round(out["fracbench"]["cpu_seconds"] / out["pycocotools"]["cpu_seconds"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("localization", "segmentation", "both"), default="both")
    parser.add_argument("--boxes", type=int, default=100, help="boxes per image (localization)")
    parser.add_argument("--instances", type=int, default=20, help="RLE instances per image (segmentation)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="a built dataset: use its test split's ground truth instead of the synthetic one")
    parser.add_argument("--child", choices=("fracbench", "pycocotools"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    tasks = ("localization", "segmentation") if args.task == "both" else (args.task,)
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            print(json.dumps(_run(task, args, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
