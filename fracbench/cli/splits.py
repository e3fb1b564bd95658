"""``fracbench splits verify|derive|show``: check, reproduce and display the frozen splits."""

from __future__ import annotations

import argparse
from pathlib import Path

from fracbench.errors import SplitError

VERSIONS = ("v1", "legacy")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "splits",
        help="verify, derive or show the frozen leakage-aware splits (FracAtlas splits v1)",
        description="The frozen split manifests: check them (verify), reproduce them from the raw release "
        "(derive) and print their counts (show).",
    )
    cmds = p.add_subparsers(dest="splits_command", metavar="SUBCOMMAND", parser_class=type(p))

    v = cmds.add_parser("verify", help="check a manifest's sha256 and invariants (exit 1 naming what broke)",
                        description="Check a split manifest (default: the shipped v1) against its pinned sha256, "
                                    "its format and every invariant (e.g. no leakage group on two sides), all at "
                                    "once; exit 1 lists every problem.")
    v.add_argument("--manifest", type=Path, default=None,
                   help="manifest CSV to check, MANIFEST.json next to it (default: the shipped v1, plus legacy)")
    v.add_argument("--raw", type=Path, default=None,
                   help="raw release: also check ids, labels, regions against dataset.csv and the authors' split")
    v.add_argument("--allow-missing", action="store_true", help="accept a partial raw release with --raw")
    v.set_defaults(func=run_verify)

    d = cmds.add_parser("derive", help="derive a manifest from a raw release (byte-identical to the shipped one)",
                        description="Derive a split manifest from a raw release and its audit evidence; on the "
                                    "complete FracAtlas release it reproduces the shipped v1 manifest byte for "
                                    "byte.")
    d.add_argument("--raw", type=Path, required=True, help="the raw release (FracAtlas/ or its parent)")
    d.add_argument("--out", type=Path, required=True, help="manifest CSV to write (MANIFEST.json goes next to it)")
    d.add_argument("--allow-missing", action="store_true",
                   help="derive from a partial release (its groups cannot see absent images)")
    d.add_argument("--seed", type=int, default=0, help="tie-break seed (default 0, the one v1 uses)")
    d.add_argument("--audit", type=Path, default=None,
                   help="reuse this release's audit.json instead of recomputing the audit")
    d.add_argument("--version", choices=VERSIONS, default="v1",
                   help="v1 (default) or legacy (the authors' split as image_id,split)")
    d.set_defaults(func=run_derive)

    s = cmds.add_parser("show", help="print counts per split × label × region, with rates",
                        description="Print a split version's counts: images, fracture and hardware rates, groups "
                                    "and unscored images per split; split × label × region; the cross-validation "
                                    "folds (--markdown for docs).")
    s.add_argument("--version", choices=VERSIONS, default="v1", help="v1 (default) or legacy (authors' split)")
    s.add_argument("--manifest", type=Path, default=None, help="show this manifest CSV instead of a shipped one")
    s.add_argument("--markdown", action="store_true", help="print Markdown tables (as pasted in docs/SPLITS.md)")
    s.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _release(raw: Path, allow_missing: bool):
    from fracbench.release.reader import read_release

    return read_release(raw, allow_missing=allow_missing, hash_files=False)


def run_verify(args: argparse.Namespace) -> int:
    """Verify a manifest (and, for the shipped one, the legacy split); 1 on any problem."""
    from fracbench.cli import console, err_console, safe
    from fracbench.splits.manifest import parse_manifest_csv, package_manifest_path
    from fracbench.splits.verify import verify_legacy, verify_manifest

    release = _release(args.raw, args.allow_missing) if args.raw else None
    reports = [verify_manifest(args.manifest, release=release)]
    if args.manifest is None:
        shipped = package_manifest_path()
        rows = parse_manifest_csv(shipped.read_bytes())[0] if shipped.is_file() else None
        reports.append(verify_legacy(manifest_rows=rows, release=release))
    failed = 0
    for report in reports:
        if report.ok:
            gap = report.largest_gap
            largest = f"; largest gap from the whole: {gap[2]:+.2f} pp ({gap[0]}, {gap[1]})" if gap else ""
            console.print(
                f"[green]ok[/green] {report.path} sha256 {report.sha256} ({', '.join(report.checks)}){largest}",
                highlight=False, soft_wrap=True,
            )
            continue
        failed += 1
        n = len(report.problems)
        err_console.print(f"[red]error:[/red] {report.path}: {n} problem{'s' * (n != 1)}", highlight=False, soft_wrap=True)
        for problem in report.problems:
            err_console.print(safe(f"  - {problem}"), highlight=False, soft_wrap=True)
    return 1 if failed else 0


def run_derive(args: argparse.Namespace) -> int:
    """Derive a manifest from the raw release and write it atomically."""
    from fracbench.cli import console

    if args.version == "legacy":
        from fracbench.splits.legacy import legacy_from_release, write_legacy

        split = legacy_from_release(_release(args.raw, args.allow_missing))
        sha = write_legacy(args.out, split)
        console.print(f"wrote {args.out} ({len(split)} ids, positive-only) sha256 {sha}", highlight=False, soft_wrap=True)
        return 0
    from fracbench.cli import progress_bar
    from fracbench.splits.derive import derive_from_raw

    with progress_bar(console=console) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"audit: {stage}", total=total)
            bar.update(tasks[stage], completed=done, total=total)

        out, sha = derive_from_raw(
            args.raw, args.out, allow_missing=args.allow_missing, seed=args.seed, audit_path=args.audit,
            progress=progress,
        )
    console.print(f"wrote {out} and {out.with_name('MANIFEST.json')}; sha256 {sha}", highlight=False, soft_wrap=True)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print the counts of a split version."""
    from fracbench.cli import console, safe
    from fracbench.splits.manifest import load_manifest, read_manifest

    manifest = read_manifest(args.manifest) if args.manifest else load_manifest("v1")
    if args.version == "legacy":
        from fracbench.splits.legacy import load_legacy

        tables = [legacy_table(load_legacy(), manifest)]
        title = "Authors' split (legacy): POSITIVE-ONLY, fractured images only, no leakage grouping"
    else:
        tables = [summary_table(manifest), split_table(manifest), fold_table(manifest)]
        title = f"FracAtlas splits {manifest.version}  sha256 {manifest.sha256}"
    if args.markdown:
        console.print(f"**{title}**\n", highlight=False, soft_wrap=True)
        for header, rows in tables:
            console.print(safe(_markdown(header, rows) + "\n"), highlight=False, soft_wrap=True)
        return 0
    from rich import box
    from rich.table import Column, Table

    console.print(title, highlight=False, soft_wrap=True)
    for header, rows in tables:
        # One header word a line and cells never wrapped or cut: with the light box (its blank column
        # divider is the only gap) every table fits 80 columns whole.
        columns = [Column(h.replace(" ", "\n"), no_wrap=True) for h in header]
        table = Table(*columns, box=box.SIMPLE_HEAD, padding=0, show_edge=False)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        console.print()
    return 0


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}%" if n else "-"


def split_table(manifest) -> tuple[list[str], list[list[str]]]:
    """Header and rows: images per split × label × region, and each split's region shares."""
    from fracbench.release.records import REGIONS

    header = ["split", "label", *REGIONS, "total"]
    counts = manifest.counts()
    rows = []
    for name, block in [*counts["splits"].items(), ("all", counts)]:
        by = block["by_label_region"]
        for label in ("not_fractured", "fractured"):
            rows.append([name, label, *[str(by[label][r]) for r in REGIONS], str(sum(by[label].values()))])
        per = [by["fractured"][r] + by["not_fractured"][r] for r in REGIONS]
        rows.append([name, "all", *map(str, per), str(block["images"])])
        rows.append([name, "region share", *[_pct(k, block["images"]) for k in per], ""])
    return header, rows


def summary_table(manifest) -> tuple[list[str], list[list[str]]]:
    """Header and rows: per split, images, share, fracture and hardware rates, groups, unscored."""
    header = ["split", "images", "share", "fractured", "fracture rate", "hardware", "hardware rate", "groups", "unscored"]
    counts = manifest.counts()
    rows = []
    for name, b in [*counts["splits"].items(), ("all", counts)]:
        rows.append([
            name, str(b["images"]), _pct(b["images"], counts["images"]), str(b["fractured"]),
            _pct(b["fractured"], b["images"]), str(b["hardware"]), _pct(b["hardware"], b["images"]),
            str(b["groups"]), str(b["images"] - b["scored"]),
        ])
    return header, rows


def fold_table(manifest) -> tuple[list[str], list[list[str]]]:
    """Header and rows: images, fracture rate and region shares per cross-validation fold."""
    from fracbench.release.records import REGIONS

    header = ["fold", "images", "fractured", "fracture rate", "hardware", *REGIONS, "groups"]
    rows = []
    for fold, b in manifest.counts()["folds"].items():
        by = b["by_label_region"]
        rows.append([
            fold, str(b["images"]), str(b["fractured"]), _pct(b["fractured"], b["images"]), str(b["hardware"]),
            *[_pct(by["fractured"][r] + by["not_fractured"][r], b["images"]) for r in REGIONS], str(b["groups"]),
        ])
    return header, rows


def legacy_table(split, manifest) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the authors' split, regions taken from the v1 manifest."""
    from fracbench.release.records import REGIONS
    from fracbench.vocab import SPLITS

    region = {r.image_id: r.region for r in manifest.rows}
    header = ["split", "images (all fractured)", *REGIONS, "not in manifest"]
    rows = []
    for s in SPLITS:
        ids = split.ids.get(s, [])
        per = [str(sum(region.get(i) == r for i in ids)) for r in REGIONS]
        rows.append([s, str(len(ids)), *per, str(sum(i not in region for i in ids))])
    if not any(split.ids.values()):
        raise SplitError("the legacy split is empty; restore fracbench/splits/legacy/manifest.csv")
    return header, rows


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
