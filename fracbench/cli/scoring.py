"""CLI commands of the scoring group: ``validate``, ``score``, ``compare``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from fracbench.cli import console, safe
from fracbench.errors import Problem

DEFAULT_MAX_PROBLEMS = 200


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "validate",
        help="check a submission file (every problem at once)",
        description="Check preds.json (or .json.gz) against the submission format v1 and the split's ground "
        "truth. Lists every problem with its location; exit 0 when valid, 1 otherwise.",
    )
    p.add_argument("submission", help="the submission file, .json or .json.gz")
    _data_split(p)
    _splits_version(p)
    p.add_argument("--schema-only", action="store_true", help="check only the format, as the published JSON Schema does (no dataset needed; "
                   "image ids, duplicates, bounds, mask sizes and contents not checked)")
    p.add_argument("--max-problems", type=int, default=DEFAULT_MAX_PROBLEMS, metavar="N", help=f"problems to print (default {DEFAULT_MAX_PROBLEMS}; 0: all)")
    p.add_argument("--ungrouped", action="store_true", help="one line per problem (default: one line per kind of problem repeated over entries, with a count)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "score",
        help="validate and score a submission (metrics with 95%% CIs)",
        description="Validate, then score a submission on every image of the split (negatives included): "
        "all metrics of its task with group-bootstrap 95% CIs, subgroups, curves and provenance.",
    )
    p.add_argument("submission", help="the submission file, .json or .json.gz")
    _data_split(p)
    _splits_version(p)
    p.add_argument("--json", metavar="PATH", help="write the Result JSON here")
    _bootstrap(p)
    p.add_argument("--no-subgroups", action="store_true", help="skip the region/hardware/view breakdown")
    p.add_argument("--max-problems", type=int, default=DEFAULT_MAX_PROBLEMS, metavar="N", help="problems to print if invalid")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "compare",
        help="paired bootstrap comparison of two or more submissions",
        description="Compare two or more SUBMISSION files (not Result JSONs: those hold no predictions) of the "
        "same task and split on one metric: difference A - B, its 95% CI and a two-sided p-value from a paired "
        "group bootstrap (all see the same resampled images). With three or more: a table of every pair, with "
        "p-values corrected for the number of pairs (Holm).",
    )
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="two or more submission files (A B [C ...])")
    _data_split(p)
    p.add_argument("--metric", help="metric to compare (default: the task's main score)")
    p.add_argument("--json", metavar="PATH", help="write the comparison JSON here")
    _bootstrap(p)
    p.set_defaults(func=cmd_compare)


def _data_split(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", help="built dataset directory (default: $FRACBENCH_DATA, then the cache dir)")
    p.add_argument("--split", choices=("test", "validation"), help="split to check against (default: the one the submission declares)")


def _splits_version(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--splits-version", choices=("v1", "legacy"),
        help="splits to check against (default: the ones the submission declares); legacy = the authors' "
        "positive-only split, localization/segmentation only, for comparison with published numbers",
    )


def _bootstrap(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples for 95%% CIs (default 1000; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _render_problems(source: str, problems: Sequence[Problem], limit: int, *, grouped: bool = True) -> None:
    """Every problem, one row each, or one row per group of the same problem in many entries."""
    from fracbench.validate import ProblemGroup, group_problems

    rows = group_problems(list(problems)) if grouped else [ProblemGroup(p.location, p, (p.location,)) for p in problems]
    kinds = f" of {len(rows)} kind(s) (--ungrouped lists each)" if len(rows) < len(problems) else ""
    console.print(f"[red]✗[/red] {safe(str(source))}: [bold]{len(problems)}[/bold] problem(s){kinds}", highlight=False, soft_wrap=True)
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("where", overflow="fold")
    table.add_column("problem", overflow="fold")
    shown = rows if limit <= 0 else rows[:limit]
    for row in shown:
        table.add_row(safe(row.location), safe(row.message))
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"... {len(rows) - len(shown)} more; pass --max-problems 0 to list all", highlight=False)


def cmd_validate(args: argparse.Namespace) -> int:
    """``fracbench validate``: exit 0 when valid, 1 with every problem otherwise."""
    from fracbench.errors import DatasetNotFoundError
    from fracbench.dataset.groundtruth import load_split_ground_truth
    from fracbench.validate import Header, read_document, validate_submission
    from fracbench.vocab import LEGACY_SPLITS_VERSION

    doc = read_document(args.submission)
    gt = None
    split = args.split
    if not doc.problems and not args.schema_only:
        header = Header.of(doc.data)
        split = split or header.split or "test"
        version = args.splits_version or header.splits_version or "v1"
        try:
            gt = load_split_ground_truth(args.data, split, header.task, version)
        except DatasetNotFoundError as exc:
            raise DatasetNotFoundError(f"{exc}; or pass --schema-only to check only the format") from None
    report = validate_submission(doc, gt, split=split, schema_only=args.schema_only)
    if not report.ok:
        _render_problems(report.source, report.problems, args.max_problems, grouped=not args.ungrouped)
        _warn(report.warnings)
        return 1
    against = f"checked against the {report.checked_against}" if report.checked_against else "[yellow]format only (--schema-only): image ids, duplicates, bounds and masks not checked[/yellow]"
    console.print(
        f"[green]✓[/green] {safe(report.source)}: valid {report.task} submission for the {report.split} split, "
        f"{report.n_predictions} predictions; {against}",
        highlight=False,
    )
    if gt is not None and gt.splits_version == LEGACY_SPLITS_VERSION:
        from fracbench.score import LEGACY_WARNING

        console.print(f"[yellow]warning:[/yellow] {safe(LEGACY_WARNING)}", highlight=False)
    _warn(report.warnings)
    return 0


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {safe(w)}", highlight=False, soft_wrap=True)


def _progress():
    from fracbench.cli import progress_bar

    return progress_bar(label="bootstrap")


def _ci(ci: Any) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "-"


def _value(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.4f}"


def cmd_score(args: argparse.Namespace) -> int:
    """``fracbench score``: print the metrics table, optionally write the Result JSON."""
    from fracbench.errors import SubmissionError
    from fracbench.score import score_submission
    from fracbench.tasks import get_task

    _check_writable(args.json)
    with _progress() as bar:
        job = bar.add_task("bootstrap", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        try:
            result = score_submission(
                args.submission, data=args.data, split=args.split, n_resamples=args.bootstrap, seed=args.seed,
                subgroups=not args.no_subgroups, progress=progress, splits_version=args.splits_version,
            )
        except SubmissionError as exc:
            bar.stop()
            _render_problems(exc.source or args.submission, exc.problems, args.max_problems)
            return 1
    spec = get_task(result.task)
    prov = result.provenance
    table = Table(title=f"{safe(result.model.name)}: {result.task}, {prov.split} split (splits {prov.splits_version}, {prov.n_scored} scored images)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("better", justify="center")
    for name, mv in result.metrics.items():
        style = "bold" if name == spec.main_score else None
        table.add_row(name + (" (main)" if name == spec.main_score else ""), _value(mv.value), _ci(mv.ci95), "↑" if spec.higher_is_better[name] else "↓", style=style)
    console.print(table)
    if result.subgroups:
        sub = Table(title=f"{spec.main_score} by subgroup")
        for col in ("attribute", "value", "images", "fractured", spec.main_score, "95% CI"):
            sub.add_column(col, justify="right" if col not in ("attribute", "value") else "left")
        for attribute, values in result.subgroups.items():
            for value, metrics in values.items():
                size = result.subgroup_sizes.get(attribute, {}).get(value, {})
                mv = metrics[spec.main_score]
                sub.add_row(attribute, value, str(size.get("n_images", "")), str(size.get("n_fractured", "")), _value(mv.value), _ci(mv.ci95))
        console.print(sub)
    threshold = f"; operating threshold {result.operating_threshold:g}" + ("" if result.threshold is not None else " (protocol default)") if result.operating_threshold is not None else ""
    console.print(
        f"protocol v{prov.protocol_version}, {prov.bootstrap.n_resamples} group-bootstrap resamples (seed {prov.bootstrap.seed}){threshold}; "
        f"split sha256 {prov.split_sha256[:12]}…, submission sha256 {prov.submission_sha256[:12]}…",
        highlight=False,
    )
    for note in getattr(result, "notes", None) or []:
        console.print(f"[bold yellow]warning:[/bold yellow] {safe(note)}", highlight=False)
    if args.json:
        _write_json(args.json, result.to_json())
    return 0


def _check_writable(path) -> None:
    """Refuse a ``--json`` destination that cannot be written, before any work is done."""
    from pathlib import Path

    from fracbench.errors import FracbenchError

    if path is None:
        return
    import os

    p = Path(path)
    if p.is_dir():
        raise FracbenchError(f"--json {p}: is a directory; expected a file path such as {p / 'result.json'}")
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:  # missing folders are created on writing
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK):
        raise FracbenchError(f"--json {p}: {ancestor} is not a writable folder; choose another path")


def _write_json(path, text: str) -> None:
    from fracbench.atomic import write_text
    from fracbench.errors import FracbenchError

    try:
        write_text(path, text)
    except OSError as exc:
        raise FracbenchError(f"--json {path}: cannot write ({exc.strerror or exc}); the scores above are complete, "
                             "rerun with a writable --json path to keep them") from None
    console.print(f"wrote {safe(str(path))}", highlight=False, soft_wrap=True)


def cmd_compare(args: argparse.Namespace) -> int:
    """``fracbench compare``: paired bootstrap difference of two submissions."""
    from fracbench.compare import compare_submissions
    from fracbench.errors import SubmissionError

    from fracbench.errors import ScoringError

    if len(args.submissions) < 2:
        raise ScoringError(f"compare needs at least two submissions, found {len(args.submissions)}: {args.submissions[0]}")
    _check_writable(args.json)
    options = dict(data=args.data, split=args.split, metric=args.metric, n_resamples=args.bootstrap, seed=args.seed)
    try:
        if len(args.submissions) > 2:
            from fracbench.compare import compare_many

            return _compare_table(compare_many(args.submissions, **options), args.json)
        cmp = compare_submissions(*args.submissions, **options)
    except SubmissionError as exc:
        _render_problems(exc.source or "submission", exc.problems, DEFAULT_MAX_PROBLEMS)
        return 1
    table = Table(title=f"{cmp.metric} on the {cmp.split} split ({cmp.task}, splits {cmp.splits_version})")
    for col in ("", "model", cmp.metric, "95% CI"):
        table.add_column(col)
    table.add_row("A", safe(cmp.a.model), _value(cmp.a.value), _ci(cmp.a.ci95))
    table.add_row("B", safe(cmp.b.model), _value(cmp.b.value), _ci(cmp.b.ci95))
    console.print(table)
    if cmp.difference is None:
        console.print(f"difference undefined: {cmp.metric} is undefined for one of them", highlight=False)
    else:
        better = "higher" if cmp.higher_is_better else "lower"
        p = f"{cmp.p_value:.4g}" if cmp.p_value is not None else "-"
        console.print(
            f"A - B = [bold]{cmp.difference:+.4f}[/bold], 95% CI {_ci(cmp.ci95)}, two-sided p = {p} "
            f"(paired group bootstrap, {cmp.n_defined} of {cmp.n_resamples} resamples defined, seed {cmp.seed}; {better} is better)",
            highlight=False,
        )
    if args.json:
        _write_json(args.json, cmp.to_json())
    return 0


def _compare_table(table: Any, json_path: str | None) -> int:
    """Print a :class:`~fracbench.compare.ComparisonTable`: the submissions, then every pair."""
    letters = [_label(i) for i in range(len(table.submissions))]
    head = Table(title=f"{table.metric} on the {table.split} split ({table.task}, splits {table.splits_version})")
    for col in ("", "model", table.metric, "95% CI"):
        head.add_column(col)
    for letter, sub in zip(letters, table.submissions):
        head.add_row(letter, safe(sub.model), _value(sub.value), _ci(sub.ci95))
    console.print(head)
    pairs = Table(title=f"pairwise differences (paired group bootstrap, same {table.n_resamples} resamples, seed {table.seed})")
    for col in ("pair", "difference", "paired 95% CI", "p", "p (Holm)", ""):
        pairs.add_column(col, justify="left" if col == "pair" else "right")
    for row in table.pairs:
        diff = "undefined" if row.difference is None else f"{row.difference:+.4f}"
        p = "-" if row.p_value is None else f"{row.p_value:.4g}"
        q = "-" if row.p_holm is None else f"{row.p_holm:.4g}"
        mark = "differ" if row.p_holm is not None and row.p_holm <= table.alpha else ""
        pairs.add_row(f"{letters[row.a]} - {letters[row.b]}", diff, _ci(row.ci95), p, q, mark)
    console.print(pairs)
    better = "higher" if table.higher_is_better else "lower"
    console.print(
        f"{len(table.pairs)} pairs; p (Holm): step-down corrected over all of them, 'differ' at family-wise "
        f"{table.alpha:g}; {better} is better",
        highlight=False,
    )
    if json_path:
        _write_json(json_path, table.to_json())
    return 0


def _label(i: int) -> str:
    """A, B, ..., Z, AA, AB, ..."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out
