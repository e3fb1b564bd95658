"""``fracbench build``: the versioned Hugging Face dataset from a raw release."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "build",
        help="build the versioned Hugging Face dataset (parquet + card) from a raw release",
        description="Read a FracAtlas release, apply a split manifest (default: the frozen v1) and write a "
        "dataset directory that `datasets.load_dataset(OUT)` opens offline: configs classification "
        "(default), localization, segmentation and legacy, a README.md card and fracbench.json.",
    )
    p.add_argument("--raw", type=Path, required=True, help="the raw release (FracAtlas/ or its parent)")
    p.add_argument(
        "--out", type=Path, default=Path("fracatlas"),
        help="dataset directory to write (default: ./fracatlas, so load_dataset('fracatlas') works here)",
    )
    p.add_argument(
        "--allow-missing", action="store_true",
        help="build from a partial mirror: absent images are left out and listed in fracbench.json",
    )
    p.add_argument(
        "--manifest", type=Path, default=None,
        help="split manifest CSV (MANIFEST.json next to it); default: the frozen v1 shipped with fracbench",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    p.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    """Build the dataset, with a progress bar, and print what was written."""

    from rich.table import Table

    from fracbench.cli import console, err_console, progress_bar, safe
    from fracbench.dataset.build import build_dataset
    from fracbench.dataset.built import BuiltDataset
    from fracbench.dataset.features import CONFIGS
    from fracbench.vocab import SPLITS

    with progress_bar() as bar:
        task = bar.add_task("reading the release", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            what = "reading the release" if stage == "read" else "writing parquet"
            bar.update(task, description=what, completed=done, total=total)

        out = build_dataset(
            args.raw, args.out, allow_missing=args.allow_missing, manifest=args.manifest,
            progress=progress, overwrite=args.overwrite,
        )
    built = BuiltDataset.open(out, verify=False)
    table = Table(title=f"{safe(str(out))} (dataset {built.dataset_version}, splits {built.splits_version})")
    table.add_column("config")
    for split in SPLITS:
        table.add_column(split, justify="right")
    table.add_column("MiB", justify="right")
    for config in CONFIGS:
        if config not in built.record.configs:
            continue
        splits = built.record.configs[config].splits
        size = sum(s.download_size for s in splits.values()) / 2**20
        table.add_row(config, *(f"{splits[s].num_examples:,}" if s in splits else "0" for s in SPLITS), f"{size:.1f}")
    console.print(table)
    if built.missing:
        err_console.print(
            f"[yellow]warning:[/yellow] {len(built.missing)} image(s) absent from the release were left out "
            f"(listed under 'missing' in {out / 'fracbench.json'})",
            highlight=False,
        )
    console.print(f"fingerprint {built.fingerprint}", highlight=False)
    console.print(f'load with: datasets.load_dataset("{out}") or fracbench.load(data="{out}")', highlight=False)
    return 0

