"""Benchmark: adding an entry to a board of N entries costs N paired passes (O(N)), thanks to the pair cache.

Run on demand from the repo root::

    .venv/bin/python benchmarks/bench_paired.py                 # N = 2, 4, 8, classification
    .venv/bin/python benchmarks/bench_paired.py --task localization --sizes 2 4

The ground truth imitates the real test split (~820 images, ~18 % fractured, FracAtlas
sizes; ``make_ground_truth``), the entries are synthetic submissions of distinct quality.
For each N, a board of N entries is paired once (filling ``paired-cache.json``), then one
entry is added and the board is paired again: that update is what ``leaderboard render``
does after ``leaderboard add``. Reported per N:

* ``passes``: paired passes the update computed (the target: exactly N) and pairs reused;
* ``seconds``: wall time of the update; ``ratio``: that time over the *reference*, one
  paired comparison of two submissions (``compare_submissions``, same resamples) timed in
  the same run, so the ratio should grow like N (about 1 per pass, plus reading submissions);
* ``full_passes``/``full_ratio``: pairing the N+1 entries without a cache, N(N+1)/2 passes.

Prints one JSON line per N.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.synthetic_gt import (  # noqa: E402
    FRACATLAS_SIZES,
    classification_predictions,
    localization_predictions,
    make_ground_truth,
    submission,
    write_submission,
)

N_IMAGES, PREVALENCE, SIZE_WEIGHTS = 820, 0.18, (0.46, 0.45, 0.09)


def _predictions(task: str, gt, k: int):
    if task == "classification":
        return classification_predictions(gt, separation=0.8 + 0.15 * k, seed=100 + k)
    return localization_predictions(gt, seed=100 + k, miss=0.1 + 0.03 * k, false_per_image=2.0)


def main() -> None:
    from fracbench.compare import compare_submissions
    from fracbench.leaderboard import Board, add_entry, parse_meta
    from fracbench.leaderboard.paired import CACHE_NAME, PAIRED_RESAMPLES, pair_board
    from fracbench.score import score_submission

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("classification", "localization"), default="classification")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8])
    args = ap.parse_args()
    gt = make_ground_truth(N_IMAGES, prevalence=PREVALENCE, seed=7, sizes=FRACATLAS_SIZES, size_weights=SIZE_WEIGHTS)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subs = [write_submission(tmp / f"s{k}.json", submission(gt, args.task, _predictions(args.task, gt, k))) for k in range(max(args.sizes) + 1)]
        t = time.perf_counter()
        compare_submissions(subs[0], subs[1], gt=gt, n_resamples=PAIRED_RESAMPLES)
        reference = time.perf_counter() - t

        def scorer(path, **kw):
            return score_submission(path, gt=gt, n_resamples=kw.get("n_resamples") or 50, seed=kw.get("seed") or 0, subgroups=False)

        for n in args.sizes:
            board = Board(tmp / f"board{n}")
            for k in range(n):
                add_entry(board, subs[k], parse_meta({"name": f"entry {k}"}), scorer=scorer, n_resamples=50)
            pair_board(board, board.load_entries(), gt=gt)
            add_entry(board, subs[n], parse_meta({"name": f"entry {n}"}), scorer=scorer, n_resamples=50)
            t = time.perf_counter()
            update = pair_board(board, board.load_entries(), gt=gt)
            seconds = time.perf_counter() - t
            (board.root / CACHE_NAME).unlink()
            t = time.perf_counter()
            full = pair_board(board, board.load_entries(), gt=gt)
            full_seconds = time.perf_counter() - t
            print(json.dumps({
                "task": args.task, "n_existing": n, "passes": update.passes, "reused": update.reused,
                "seconds": round(seconds, 3), "reference_seconds": round(reference, 3), "ratio": round(seconds / reference, 2),
                "full_passes": full.passes, "full_seconds": round(full_seconds, 3), "full_ratio": round(full_seconds / reference, 2),
            }), flush=True)
            shutil.rmtree(board.root)


if __name__ == "__main__":
    main()
