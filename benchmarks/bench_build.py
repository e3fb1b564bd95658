"""Benchmark ``fracbench build`` against a lower bound measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_build.py RAW_DIR [--manifest FILE] [--out DIR] [--keep] [--repeat N]

Phases, each in a fresh subprocess so peak memory (``ru_maxrss``) is its own:

1. ``lower``: read every image file of the release and stream one parquet file holding
   ``image_id`` + the bytes, 100 rows per row group (what any build must at least do).
2. ``build``: ``build_dataset(RAW_DIR, OUT, manifest=...)``, the whole command
   (reading the release included).
3. ``load``: ``load_ground_truth(OUT, "test")`` (with and without the sha256 check), then
   the first ``datasets.load_dataset(OUT, config)`` of every config with an empty
   ``HF_HOME`` (HF_HUB_OFFLINE=1), then again in a new process (cached).

The page cache is warmed once before the timed phases, so both phases read warm files.
Target: build wall time and peak memory <= 2x the lower bound. Without ``--manifest``
the frozen v1 manifest is used; if fracbench has none yet, a provisional manifest is
derived without leakage groups (``derive_rows``, seed 0) and the report says so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _phase_lower(raw: Path, out: Path) -> dict:
    """Stream every image file into one parquet file, 100 rows per row group (as the build)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fracbench.release.reader import find_release_root

    root = find_release_root(raw)
    paths = sorted((root / "images").glob("*/*.jpg"))
    schema = pa.schema([("image_id", pa.string()), ("image", pa.binary())])
    total = 0
    with pq.ParquetWriter(out / "lower.parquet", schema, compression="NONE", use_dictionary=False) as writer:
        for start in range(0, len(paths), 100):
            batch = paths[start : start + 100]
            blobs = [p.read_bytes() for p in batch]
            total += sum(map(len, blobs))
            writer.write_table(pa.table({"image_id": [p.stem for p in batch], "image": blobs}, schema=schema))
    return {"files": len(paths), "bytes": total}


def _phase_build(raw: Path, out: Path, manifest: str | None) -> dict:
    from fracbench.dataset.build import build_dataset

    target = build_dataset(raw, out / "fracatlas", allow_missing=True, manifest=manifest, overwrite=True)
    meta = json.loads((target / "fracbench.json").read_text())
    return {"images": meta["images"], "missing": len(meta["missing"]), "fingerprint": meta["fingerprint"]}


def _phase_load(out: Path) -> dict:
    from datasets import load_dataset

    from fracbench.dataset.features import CONFIGS

    from fracbench.dataset.groundtruth import load_ground_truth

    times = {}
    for verify in (True, False):
        t = time.perf_counter()
        gt = load_ground_truth(out / "fracatlas", "test", verify=verify)
        times[f"ground_truth_test_verify_{verify}"] = {"seconds": round(time.perf_counter() - t, 3), "images": len(gt.images)}
    for config in CONFIGS:
        t = time.perf_counter()
        ds = load_dataset(str(out / "fracatlas"), config)
        times[config] = {"seconds": round(time.perf_counter() - t, 2), "rows": {k: v.num_rows for k, v in ds.items()}}
    return times


def _provisional_manifest(raw: Path, directory: Path) -> str:
    from fracbench.release.reader import read_release
    from fracbench.splits.derive import LeakageEvidence, derive_rows
    from fracbench.splits.manifest import write_manifest

    release = read_release(raw, allow_missing=True, hash_files=False)
    evidence = LeakageEvidence(conflict_ids=[c.image_id for c in release.label_conflicts])
    path = directory / "manifest.csv"
    write_manifest(path, derive_rows(release.records, evidence), {"version": "provisional-bench"})
    return str(path)


def _median(runs: list[dict]) -> dict:
    """The run with the median wall time, plus every run's wall time and peak memory."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    out = dict(ordered[len(ordered) // 2])
    out["runs_wall_s"] = [r["wall_s"] for r in runs]
    out["runs_cpu_s"] = [r["cpu_s"] for r in runs]
    out["runs_peak_rss_mib"] = [r["peak_rss_mib"] for r in runs]
    return out


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("raw", type=Path)
    ap.add_argument("--manifest", default=None)
    ap.add_argument("--out", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--repeat", type=int, default=3, help="alternate lower bound and build this many times (median)")
    ap.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.phase:
        out = args.work
        t = time.perf_counter()
        if args.phase == "lower":
            result = _phase_lower(args.raw, out)
        elif args.phase == "build":
            result = _phase_build(args.raw, out, args.manifest)
        else:
            result = _phase_load(out)
        result["wall_s"] = round(time.perf_counter() - t, 2)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)  # less sensitive to machine load
        result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
        print(json.dumps(result))
        return 0

    work = args.out or Path(tempfile.mkdtemp(prefix="fracbench-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    manifest, note = args.manifest, "given"
    if manifest is None:
        from fracbench.errors import SplitError
        from fracbench.splits.manifest import load_manifest

        try:
            manifest, note = str(load_manifest("v1").path), "frozen v1"
        except SplitError:
            manifest, note = _provisional_manifest(args.raw, work), "provisional (no leakage groups)"
    for p in sorted(Path(args.raw).rglob("*.jpg")):  # warm the page cache for both phases
        p.read_bytes()
    raw = str(args.raw)
    lowers, builds = [], []
    for _ in range(args.repeat):  # alternate, so both see the same machine load
        lowers.append(_call([raw, "--phase", "lower", "--work", str(work)], None))
        builds.append(_call([raw, "--phase", "build", "--manifest", manifest, "--work", str(work)], None))
    lower, build = _median(lowers), _median(builds)
    lower["parquet_bytes"] = (work / "lower.parquet").stat().st_size
    build["dataset_bytes_apparent"] = _size(work / "fracatlas")
    build["dataset_bytes_on_disk"] = json.loads((work / "fracatlas" / "fracbench.json").read_text())["unique_bytes"]
    env = dict(os.environ, HF_HOME=str(work / "hf_home"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    shutil.rmtree(work / "hf_home", ignore_errors=True)
    first = _call([raw, "--phase", "load", "--work", str(work)], env)
    reload = _call([raw, "--phase", "load", "--work", str(work)], env)
    report = {
        "raw": raw,
        "manifest": f"{manifest} ({note})",
        "loadavg_at_end": os.getloadavg(),
        "lower_bound": lower,
        "build": build,
        "ratio_wall": round(build["wall_s"] / lower["wall_s"], 2),
        "ratio_cpu": round(build["cpu_s"] / lower["cpu_s"], 2),
        "ratio_peak_rss": round(build["peak_rss_mib"] / lower["peak_rss_mib"], 2),
        "load_first": first,
        "load_cached": reload,
    }
    print(json.dumps(report, indent=2))
    if not args.keep and args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _call(argv: list[str], env: dict | None) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s_process"] = round(time.perf_counter() - t, 2)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
