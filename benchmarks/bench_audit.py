"""Benchmark: read + audit of a release against a bare decode of every image, same run.

Usage::

    python benchmarks/bench_audit.py RAW_DIR [--workers N] [--limit N] [--repeat N]

The reference is the least any pixel-level audit must do: decode every JPEG in full
with Pillow and apply its EXIF orientation (truncated JPEGs with Pillow's recovery),
spread over the same number of worker processes as the audit (``--workers``, default
2) so the ratio compares like with like. The audit side is
``read_release(hash_files=True)`` followed by ``audit_release`` with those workers.
Target: audit <= 2x bare decode. Peak memory is the max RSS of this process and, in
brackets, of its largest worker (``resource.getrusage``). Reference and audit run
alternately ``--repeat`` times; the medians are reported.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _bare_decode(path: str) -> tuple[int, int]:
    from PIL import Image, ImageFile, ImageOps

    ImageFile.LOAD_TRUNCATED_IMAGES = True
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im.load()
        return im.size


def bare_decode(paths: list[str], workers: int) -> float:
    """Seconds to fully decode (and EXIF-transpose) every path with ``workers`` processes."""
    start = time.perf_counter()
    if workers <= 1:
        for p in paths:
            _bare_decode(p)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_bare_decode, paths, chunksize=16))
    return time.perf_counter() - start


def read_and_audit(raw: Path, workers: int, limit: int | None) -> tuple[float, dict[str, float], int]:
    """Seconds for read_release + audit_release, the audit's stage timings, images audited."""
    from fracbench.release.audit import audit_release
    from fracbench.release.reader import read_release

    start = time.perf_counter()
    release = read_release(raw, allow_missing=True, hash_files=True)
    read_s = time.perf_counter() - start
    ids = [r.image_id for r in release.records if r.present][:limit]
    report = audit_release(release, workers=workers, image_ids=ids)
    total = time.perf_counter() - start
    return total, {"read": round(read_s, 2), **report.timings_s}, len(ids)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path, help="the FracAtlas/ directory or its parent")
    parser.add_argument("--workers", type=int, default=2, help="processes for both sides (default 2)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N present images")
    parser.add_argument("--repeat", type=int, default=1, help="alternating runs of each side (median kept)")
    args = parser.parse_args(argv)

    from fracbench.release.reader import read_release

    release = read_release(args.raw, allow_missing=True, hash_files=False)
    paths = [str(release.root / r.path) for r in release.records if r.present][: args.limit]
    bare, audit, stages = [], [], {}
    for _ in range(args.repeat):
        bare.append(bare_decode(paths, args.workers))
        seconds, stages, _n = read_and_audit(args.raw, args.workers, args.limit)
        audit.append(seconds)
    bare_s, audit_s = statistics.median(bare), statistics.median(audit)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"images: {len(paths)}, workers: {args.workers} (both sides), cpus: {os.cpu_count()}, "
          f"load avg: {os.getloadavg()[0]:.1f}")
    print(f"bare decode (full, EXIF transpose): {bare_s:.1f} s  runs {[round(b, 1) for b in bare]}")
    print(f"read + audit:                       {audit_s:.1f} s  runs {[round(a, 1) for a in audit]}")
    print(f"ratio audit / bare: {audit_s / bare_s:.2f}  (target <= 2)")
    print(f"audit stages (s, last run): {stages}")
    print(f"peak RSS: {own:.0f} MiB main process ({children:.0f} MiB largest worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
