"""``fracbench report``: one offline HTML page about one submission."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` command to the top-level parser."""
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a submission (curves, subgroups, error gallery)",
        description="Score SUBMISSION and write one offline HTML page: main score with its 95% CI and provenance, "
        "ROC / precision-recall / FROC curves, a reliability diagram (classification), a subgroup forest plot with "
        "CIs, and an error gallery (highest-scoring false positives, missed fractures) drawn on the dataset's images.",
    )
    p.add_argument("submission", help="the submission file, .json or .json.gz")
    p.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write (e.g. report.html)")
    p.add_argument("--data", metavar="DIR", help="built dataset directory (default: $FRACBENCH_DATA, then the cache dir)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples for 95%% CIs (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--no-gallery", action="store_true", help="leave out the error gallery (no image is read)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report; exit 1 with every problem when the submission is invalid."""
    from fracbench.cli import console, safe
    from fracbench.cli.scoring import DEFAULT_MAX_PROBLEMS, _check_writable, _progress, _render_problems
    from fracbench.errors import FracbenchError, SubmissionError
    from fracbench.report.page import make_report

    if args.bootstrap < 0:
        raise FracbenchError(f"--bootstrap: expected 0 or more resamples, found {args.bootstrap}")
    _check_writable(args.out)
    with _progress() as bar:
        job = bar.add_task("bootstrap", total=None)
        try:
            path, report, note = make_report(
                args.submission, args.out, data=args.data, gallery=not args.no_gallery, n_resamples=args.bootstrap,
                seed=args.seed, progress=lambda done, total: bar.update(job, completed=done, total=total),
            )
        except SubmissionError as exc:
            bar.stop()
            _render_problems(exc.source or args.submission, exc.problems, DEFAULT_MAX_PROBLEMS)
            return 1
        except OSError as exc:
            raise FracbenchError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from None
    ms = report.result.main_score
    ci = f" [{ms.ci95[0]:.4f}, {ms.ci95[1]:.4f}]" if ms.ci95 else ""
    value = "undefined" if ms.value is None else f"{ms.value:.4f}"
    console.print(f"{report.result.task} {ms.name} = {value}{ci}; {len(report.picks)} gallery picks", highlight=False)
    if note:
        console.print(f"[yellow]gallery:[/yellow] {safe(note)}", highlight=False)
    console.print(f"wrote {safe(str(path))}", highlight=False, soft_wrap=True)
    return 0
