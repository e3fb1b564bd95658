"""``fracbench quickstart``: the whole job in one command, as the commands a user would type.

Get a release (the pinned figshare zip, or a local zip or directory), audit it, build
the dataset, verify the shipped splits and score a reference submission. Each step is
one ordinary ``fracbench`` command, printed before it runs, so the quickstart doubles
as a transcript of how to do each step by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REFERENCE_SUBMISSIONS = Path("leaderboards") / "fracatlas-v1" / "classification" / "submissions"


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``quickstart`` to the top-level parser."""
    p = sub.add_parser(
        "quickstart",
        help="get a release, audit it, build it, verify the splits, score a submission (one command)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--from", dest="source", type=Path, default=None, metavar="LOCAL_ZIP_OR_DIR",
                   help="a local FracAtlas.zip or FracAtlas/ directory (default: download the pinned figshare zip)")
    p.add_argument("--allow-missing", action="store_true",
                   help="accept a partial mirror (absent images are recorded; scoring then needs every image, so it is skipped)")
    p.add_argument("--work", type=Path, default=Path("fracbench-work"), metavar="DIR",
                   help="where the raw release, the audit and the built dataset go (default ./fracbench-work)")
    p.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                   help="split manifest to build with (default: the shipped v1; for other releases)")
    p.add_argument("--submission", type=Path, default=None, metavar="FILE",
                   help=f"submission to score (default: the reference baseline under ./{REFERENCE_SUBMISSIONS}, if present)")
    p.set_defaults(func=run_quickstart)


def _raw_root(args: argparse.Namespace, raw_out: Path) -> Path:
    """Where ``download`` left (or found) the release's ``FracAtlas/`` directory."""
    from fracbench.errors import ReleaseNotFoundError
    from fracbench.release.archive import locate_release_root

    if args.source is not None and args.source.is_dir():
        return locate_release_root(args.source)
    found = sorted({p.parent for p in raw_out.glob("*/dataset.csv")} | {p.parent for p in raw_out.glob("*/*/dataset.csv")})
    if len(found) != 1:
        raise ReleaseNotFoundError(f"expected one extracted release under {raw_out}, found {len(found)}")
    return found[0]


def _default_submission() -> Path | None:
    candidates = sorted(REFERENCE_SUBMISSIONS.glob("*.json.gz")) if REFERENCE_SUBMISSIONS.is_dir() else []
    return candidates[0] if candidates else None


def run_quickstart(args: argparse.Namespace) -> int:
    """Run download/build, audit, splits verify and score in order; stop at the first failure."""
    from fracbench.cli import console, err_console, main, safe

    work: Path = args.work
    raw_out, data, audit = work / "raw", work / "fracatlas", work / "audit"
    partial = ["--allow-missing"] if args.allow_missing else []

    def step(argv: list[str]) -> int:
        console.rule(f"[bold]fracbench {safe(' '.join(argv))}", align="left")
        return main(argv)

    source = ["--from", str(args.source)] if args.source is not None else []
    manifest = ["--manifest", str(args.manifest)] if args.manifest is not None else []
    code = step(["download", *source, *manifest, "--raw-out", str(raw_out), "--out", str(data), "--overwrite", *partial])
    if code:
        if not source:
            err_console.print("[yellow]offline, or behind a proxy?[/yellow] if you already have the release, pass it "
                              "with --from: `fracbench quickstart --from PATH/FracAtlas.zip` (or the unzipped "
                              "FracAtlas/ folder)", highlight=False, soft_wrap=True)
        return code
    raw = _raw_root(args, raw_out)
    for argv in (["audit", str(raw), "--out", str(audit), *partial], ["splits", "verify"]):
        if code := step(argv):
            return code
    submission = args.submission or _default_submission()
    missing = json.loads((data / "fracbench.json").read_text()).get("missing") or []
    if submission is None:
        console.print("no submission to score: pass --submission preds.json (see docs/PROTOCOL.md for the format)")
    elif missing:
        console.print(f"scoring skipped: this build lacks {len(missing)} images of a partial release, and every "
                      "image of a split is scored; run on the complete release (fracbench download)")
    elif code := step(["score", str(submission), "--data", str(data), "--json", str(work / "result.json")]):
        return code
    console.rule("[bold green]done", align="left")
    console.print(safe(f"audit: {audit / 'audit.md'}\ndataset: {data}  (datasets.load_dataset(\"{data}\"))"))
    return 0
