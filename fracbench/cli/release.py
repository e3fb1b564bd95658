"""CLI commands of the release group: ``fracbench audit``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "audit",
        help="audit a FracAtlas release: duplicates, label conflicts, same-study neighbours",
        description="Read a FracAtlas release and audit its integrity: byte-, pixel- and near-duplicate "
        "groups, label conflicts, truncated and EXIF-rotated images, same-study neighbours. Writes "
        "audit.json, audit.md and review images (contact sheets, histograms) into --out.",
    )
    p.add_argument("raw", type=Path, metavar="RAW_DIR", help="the FracAtlas/ directory or its parent")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write the audit into")
    p.add_argument("--allow-missing", action="store_true",
                   help="audit a partial mirror (absent images are listed, not audited)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for decoding and pair verification (default: CPU count)")
    p.set_defaults(func=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    """``fracbench audit RAW_DIR --out DIR [--allow-missing]``."""

    from fracbench.cli import console, progress_bar, safe
    from fracbench.release.audit import audit_release
    from fracbench.release.audit_render import write_audit
    from fracbench.release.reader import read_release

    with progress_bar(label="{task.description:<22}", console=console, transient=False) as bars:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(_STAGES.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        release = read_release(args.raw, allow_missing=args.allow_missing,
                               progress=lambda done, total: progress("read", done, total))
        report = audit_release(release, progress=progress, workers=args.workers)
    written = write_audit(report, release, args.out)
    console.print(
        f"[bold]{report.present:,}[/bold] images audited: {len(report.exact_duplicate_groups)} byte-identical, "
        f"{len(report.pixel_duplicate_groups)} pixel-identical, {len(report.near_duplicate_groups)} same-radiograph "
        f"groups ({len(report.mixed_label_groups)} with both labels), {len(report.neighbour_groups)} neighbour "
        f"groups, {len(report.leakage_groups)} leakage groups; {len(report.label_conflicts)} label conflicts, "
        f"{len(report.truncated)} truncated, {len(report.exif_rotated)} EXIF-rotated",
        highlight=False,
    )
    console.print(safe(f"wrote {', '.join(str(p) for p in written.values())}"), highlight=False, soft_wrap=True)
    return 0


_STAGES = {
    "read": "reading the release",
    "fingerprints": "decoding + hashing",
    "pairs": "verifying pairs",
    "pixels": "decoding copies in full",
}
