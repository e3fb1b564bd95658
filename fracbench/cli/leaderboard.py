"""``fracbench leaderboard add|verify|render|publish``: the board's command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from fracbench.errors import HubError, LeaderboardError


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    group = sub.add_parser(
        "leaderboard",
        help="add, verify, render and publish leaderboard entries",
        description=(
            "Leaderboards hold one entry per scored submission under "
            "BOARD/fracatlas-<splits>/<task>/<slug>.json. fracbench scores every submission itself; "
            "entries are hash-sealed and re-scorable from their stored submission."
        ),
    )
    cmds = group.add_subparsers(dest="leaderboard_command", metavar="COMMAND")
    group.set_defaults(func=lambda args: _help(group))

    def board_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--board", type=Path, default=Path("leaderboards"),
                       help="board directory (default: ./leaderboards)")

    p = cmds.add_parser("add", help="score a submission and add it to the board",
                        description="Score SUBMISSION (preds.json) on the test split and write a "
                        "hash-sealed entry plus the gzipped submission. Refuses duplicates (same file or "
                        "slug) and submissions for another splits/protocol version.")
    p.add_argument("submission", type=Path, help="the predictions file (preds.json)")
    p.add_argument("--meta", type=Path, required=True,
                   help="meta.yaml describing the model (name, paper_url, ...); never scores")
    board_arg(p)
    p.add_argument("--data", default=None, help="built dataset directory (default: $FRACBENCH_DATA, cache dir)")
    p.add_argument("--n-resamples", type=int, default=None,
                   help="bootstrap resamples for the CIs (default: the scorer's, 1000)")
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default: the scorer's, 0)")
    p.set_defaults(func=run_add)

    p = cmds.add_parser("verify", help="check every entry's hash and schema; re-score stored submissions",
                        description="Exit 1 if any entry was edited, misplaced, or re-scores differently. "
                        "Without a built dataset it checks hashes, schema and files and says it skipped re-scoring.")
    board_arg(p)
    p.add_argument("--data", default=None, help="built dataset directory (default: $FRACBENCH_DATA, cache dir)")
    p.add_argument("--no-rescore", action="store_true", help="check hashes, schema and files only")
    p.set_defaults(func=run_verify)

    p = cmds.add_parser("render", help="verify the entries, then write BOARD/README.md and BOARD/index.html",
                        description="Re-score every entry from its stored submission (as verify does), then write "
                        "the Markdown and HTML views. A failed entry is never rendered; an entry that could not be "
                        "re-scored (no dataset) is refused unless --allow-unverified, which marks it on the page. "
                        "Entries are ranked by paired tests: every pair of a task's entries re-scored on the same "
                        "bootstrap resamples (pairs cached in BOARD/paired-cache.json).")
    board_arg(p)
    p.add_argument("--data", default=None, help="built dataset directory (default: $FRACBENCH_DATA, cache dir)")
    p.add_argument("--allow-unverified", action="store_true",
                   help="render entries that could not be re-scored, marked 'unverified' on the page")
    p.add_argument("--reports", action="store_true", help="also write each entry's report page (linked from the board)")
    p.add_argument("--ci-ranks", action="store_true", help="rank by CI overlap instead of paired tests")
    p.set_defaults(func=run_render)

    p = cmds.add_parser("publish", help="push entries and the rendered board to a Hub dataset repo",
                        description="Verify (hashes, schema, files), re-render (re-scoring every entry, as render does), then upload the board to a "
                        "Hugging Face dataset repository as a pull request (default) or a commit (--no-pr). "
                        "The token comes from HF_TOKEN or `hf auth login`.")
    p.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Hub dataset repository")
    board_arg(p)
    p.add_argument("--path-in-repo", default="", help="repository folder to publish into (default: root)")
    p.add_argument("--dry-run", action="store_true", help="print the upload plan; upload nothing")
    p.add_argument("--no-pr", action="store_true", help="commit to main instead of opening a pull request")
    p.add_argument("--data", default=None, help="built dataset to re-score the entries with before rendering")
    p.add_argument("--allow-unverified", action="store_true",
                   help="publish entries that could not be re-scored, marked 'unverified' on the page")
    p.set_defaults(func=run_publish)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _say(line: str, *, err: bool = False) -> None:
    """Print a plain line (no markup) with control characters shown as escapes (see ``cli.safe``)."""
    from fracbench.cli import console, err_console, safe

    (err_console if err else console).print(safe(line), highlight=False, soft_wrap=True)


def run_add(args: argparse.Namespace) -> int:
    """Score the submission and write the entry."""
    from fracbench.leaderboard.entry import read_meta
    from fracbench.leaderboard.store import add_entry

    if args.n_resamples is not None and args.n_resamples < 1:
        raise LeaderboardError(f"--n-resamples must be at least 1, got {args.n_resamples}")
    meta = read_meta(args.meta)
    from fracbench.cli import console

    with console.status(f"scoring {args.submission}"):
        entry, path = add_entry(args.board, args.submission, meta, data=args.data,
                                n_resamples=args.n_resamples, seed=args.seed)
    ms = entry.result.main_score
    ci = f" [{ms.ci95[0]:.3f}, {ms.ci95[1]:.3f}]" if ms.ci95 else ""
    value = "undefined" if ms.value is None else f"{ms.value:.3f}"
    _say(f"added {path}: {entry.task} {ms.name} = {value}{ci}")
    _say(f"next: fracbench leaderboard render --board {args.board}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Verify every entry; print a table; exit 1 on any failed or (when re-scoring) unverified entry."""
    from rich.table import Table

    from fracbench.cli import console, safe
    from fracbench.leaderboard.verify import verify_board

    with console.status("verifying entries") as status:
        report = verify_board(args.board, data=args.data, rescore=not args.no_rescore,
                              progress=lambda rel: status.update(f"verifying {safe(rel)}"))
    table = Table(title=f"leaderboard {safe(args.board)}", show_lines=False)
    table.add_column("entry", overflow="fold")
    table.add_column("status")
    table.add_column("details", overflow="fold")
    colour = {"ok": "green", "failed": "red", "unverified": "yellow"}
    for check in report.entries:
        details = "; ".join(check.problems + check.notes)
        table.add_row(safe(check.path), f"[{colour[check.status]}]{check.status}[/]", safe(details))
    if report.entries:
        console.print(table)
    for note in report.notes:
        _say(f"note: {note}")
    if report.rescore_skipped:
        _say(f"re-scoring skipped: {report.rescore_skipped}")
    failed = [c for c in report.entries if c.status == "failed"]
    unverified = report.unverified() if report.rescore_requested else []
    n = len(report.entries)
    for c in failed:
        _say(f"FAILED {c.path}: {'; '.join(c.problems)}", err=True)
    for c in unverified:
        _say(f"UNVERIFIED {c.path}: {'; '.join(c.notes)}", err=True)
    if failed or unverified:
        if unverified:
            _say("an entry whose numbers cannot be reproduced is not verified: pass --data DIR (the dataset "
                 "the board was scored on), or --no-rescore to check hashes, schema and files only", err=True)
        return 1
    if not report.rescore_requested:
        _say(f"{n} entr{'y' if n == 1 else 'ies'}: hashes, schema and files checked; none re-scored (--no-rescore)")
        return 0
    _say(f"{n} entr{'y' if n == 1 else 'ies'} verified ({n} re-scored and reproduced)")
    return 0


def run_render(args: argparse.Namespace) -> int:
    """Verify (re-scoring), then render README.md and index.html."""
    from fracbench.cli import console, safe
    from fracbench.leaderboard.render import render_board
    from fracbench.leaderboard.verify import verify_board

    with console.status("verifying entries before rendering"):
        report = verify_board(args.board, data=args.data)
    with console.status("rendering") as status:
        paths = render_board(args.board, data=args.data, allow_unverified=args.allow_unverified, report=report,
                             paired=not args.ci_ranks, reports=args.reports, progress=lambda msg: status.update(safe(msg)))
    for check in report.unverified():
        _say(f"warning: {check.path} is published marked unverified (--allow-unverified): {'; '.join(check.notes)}",
             err=True)
    for path in paths:
        _say(f"wrote {path}")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    """Plan the board upload; print it (--dry-run) or push it."""
    from fracbench.dataset.hub import resolve_token
    from fracbench.leaderboard.publish import plan_publish, publish_board

    if "/" not in args.repo_id:
        raise HubError(f"--repo-id {args.repo_id!r} must be ORG/NAME (e.g. my-lab/fracbench-leaderboard)")
    token = None if args.dry_run else resolve_token()
    plan = plan_publish(args.board, path_in_repo=args.path_in_repo, data=args.data,
                        allow_unverified=args.allow_unverified)
    how = "a commit to main" if args.no_pr else "a pull request"
    if args.dry_run:
        _say(f"upload plan (dry run, nothing sent): {args.board} -> dataset {args.repo_id} as {how}")
        for f in plan.files:
            _say(f"{f.sha256}  {f.size:>10,}  {f.path_in_repo}")
        _say(f"total: {len(plan.files)} files, {plan.total_size:,} bytes")
        return 0
    result = publish_board(plan, args.repo_id, create_pr=not args.no_pr, token=token)
    _say(f"published {len(plan.files)} files to {args.repo_id}: {result.pr_url or result.commit_url}")
    return 0
