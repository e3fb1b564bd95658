"""``fracbench download``: fetch the pinned FracAtlas release (or use a local copy) and build it."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

from fracbench.errors import DatasetError, DownloadError

_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "download",
        help="download the FracAtlas release (md5-verified, resumable) and build the dataset",
        description=(
            "Download the pinned FracAtlas release from figshare (v7, FracAtlas.zip, md5-verified; "
            "an interrupted download resumes from its .part file), extract it safely and build the "
            "benchmark dataset. --from uses a local zip or release directory instead of the network."
        ),
    )
    p.add_argument("--out", type=Path, default=None,
                   help="built dataset directory (default: where every command looks, $FRACBENCH_DATA, else "
                   "$XDG_CACHE_HOME/fracbench/fracatlas)")
    p.add_argument("--raw-out", type=Path, default=None,
                   help="where the zip and its extraction go (default: $XDG_CACHE_HOME/fracbench/raw)")
    p.add_argument("--url", help="download this URL instead of the pinned one (needs --md5)")
    p.add_argument("--md5", help="expected md5 of the zip (with --url, or to check a --from zip)")
    p.add_argument("--size", type=int, default=None, help="expected size of the zip in bytes")
    p.add_argument("--from", dest="source", type=Path, default=None, metavar="LOCAL_ZIP_OR_DIR",
                   help="use a local copy of the release (the zip, or its extracted directory)")
    p.add_argument("--no-build", action="store_true", help="stop after download and extraction")
    p.add_argument("--overwrite", action="store_true", help="rebuild an already built dataset at --out")
    p.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                   help="split manifest CSV to build with (default: the frozen v1 manifest)")
    p.add_argument("--allow-missing", action="store_true",
                   help="build even if image files the release lists are absent (partial copies)")
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    p.add_argument("--retries", type=int, default=5,
                   help="failed attempts in a row before giving up (default 5)")
    p.set_defaults(func=run_download)


def _expected(args: argparse.Namespace):
    """The file the user described with --url/--md5/--size, or None (the default pin / known zips)."""
    from fracbench.release.download import PinnedFile

    if args.url is not None and args.source is not None:
        raise DownloadError("--url and --from exclude each other: download from a URL or use a local copy")
    if args.md5 is None:
        if args.url is not None:
            raise DownloadError("--url needs --md5 (and preferably --size): an unverified download is not accepted")
        if args.size is not None:
            raise DownloadError("--size needs --md5: a file is pinned by its md5")
        return None
    if not _MD5.match(args.md5):
        raise DownloadError(f"--md5 {args.md5!r} is not an md5: expected 32 hex digits")
    if args.size is not None and args.size <= 0:
        raise DownloadError(f"--size must be a positive number of bytes, got {args.size}")
    md5 = args.md5.lower()
    if args.source is not None:
        return PinnedFile(name=args.source.name, url="", size=args.size, md5=md5, label=f"{args.source.name} (md5 {md5})")
    if args.url is None:
        raise DownloadError("--md5/--size without --url or --from: they describe a file you name")
    name = args.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if not name.lower().endswith(".zip"):
        name = f"release-{md5[:8]}.zip"
    return PinnedFile(name=name, url=args.url, size=args.size, md5=md5, label=args.url)


def _lazy_task(progress, description: str) -> Callable[[int, int | None], None]:
    """A progress callback that adds its rich task on first use."""
    task: list[int] = []

    def update(done: int, total: int | None) -> None:
        if not task:
            task.append(progress.add_task(description, total=total))
        progress.update(task[0], completed=done, total=total)

    return update


def run_download(args: argparse.Namespace) -> int:
    """Download or reuse the release, extract it and (unless --no-build) build the dataset."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    from fracbench.cli import console, err_console, progress_bar, safe
    from fracbench.dataset.locate import default_build_dir
    from fracbench.release.download import FRACATLAS_FIGSHARE_V7, default_raw_dir, fetch_release, open_local_release

    expected = _expected(args)
    out = args.out if args.out is not None else default_build_dir()
    raw_out = args.raw_out if args.raw_out is not None else default_raw_dir()
    if not args.no_build and (out / "fracbench.json").exists() and not args.overwrite:
        raise DatasetError(
            f"a dataset is already built at {out}; pass --overwrite to rebuild it, --out DIR for "
            "another place, or --no-build to only download"
        )
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        if args.source is not None:
            obtained = open_local_release(args.source, raw_out, expected=expected,
                                          hash_progress=_lazy_task(progress, "checking md5"),
                                          extract_progress=_lazy_task(progress, "extracting"))
        else:
            pinned = expected or FRACATLAS_FIGSHARE_V7
            obtained = fetch_release(raw_out, pinned=pinned, timeout=args.timeout, retries=args.retries,
                                     progress=_lazy_task(progress, f"downloading {pinned.name}"),
                                     extract_progress=_lazy_task(progress, "extracting"))
    if obtained.archive is None:
        console.print(safe(f"release: directory {obtained.root} (used in place)"), highlight=False, soft_wrap=True)
    elif obtained.pinned is not None:
        label = obtained.pinned.label or obtained.pinned.name
        console.print(safe(f"release: {label}, md5 {obtained.md5} verified"), highlight=False, soft_wrap=True)
    else:  # the library has logged a warning already
        console.print(safe(f"release: unknown release archive, md5 {obtained.md5} (not a zip fracbench pins)"),
                      highlight=False, soft_wrap=True)
    if obtained.archive is not None:
        console.print(safe(f"zip: {obtained.archive}"), highlight=False, soft_wrap=True)
    console.print(safe(f"raw release: {obtained.root}"), highlight=False, soft_wrap=True)
    if args.no_build:
        console.print(safe(f"not built (--no-build); build with: fracbench build --raw {obtained.root} --out {out}"),
                      highlight=False, soft_wrap=True)
        return 0
    from fracbench.dataset.build import build_dataset

    with progress_bar(remaining=True, transient=False) as progress:
        stages: dict[str, Callable[[int, int | None], None]] = {}

        def on_build(stage: str, done: int, total: int) -> None:
            stages.setdefault(stage, _lazy_task(progress, f"building: {stage}"))(done, total)

        built = build_dataset(obtained.root, out, allow_missing=args.allow_missing, manifest=args.manifest,
                              overwrite=args.overwrite, progress=on_build)
    console.print(safe(f"dataset: {built}"), highlight=False, soft_wrap=True)
    return 0
