"""Hub uploads: ``fracbench publish-dataset`` (a built dataset) and the shared plan/push of every upload command."""

from __future__ import annotations

import argparse

from fracbench.errors import HubError


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "publish-dataset",
        help="upload a built dataset to the Hugging Face Hub (--dry-run shows the plan)",
        description=(
            "Upload a built fracbench dataset directory to a Hub dataset repository in one commit "
            "(or one pull request with --create-pr). The token comes from HF_TOKEN or `hf auth login` "
            "and is never printed. --dry-run lists every file, its size, sha256 and destination, and "
            "uploads nothing."
        ),
    )
    add_publish_arguments(p, "dataset")
    p.add_argument("--data", default=None,
                   help="built dataset directory (default: $FRACBENCH_DATA, then the cache dir)")
    p.set_defaults(func=run_publish_dataset)


def add_publish_arguments(p: argparse.ArgumentParser, kind: str) -> None:
    """The options every Hub upload command shares."""
    p.add_argument("--repo-id", required=True, metavar="ORG/NAME", help=f"the Hub {kind} repository")
    p.add_argument("--dry-run", action="store_true", help="print the upload plan; upload nothing")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", default=None, metavar="BRANCH",
                   help="commit to this branch (created if missing); with --create-pr, the PR's base")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    p.add_argument("--message", default=None, help="commit message")


def publish_plan(args: argparse.Namespace, plan_for, *, repo_type: str) -> int:
    """Check the repo id and token, plan (``plan_for() -> (UploadPlan, source label)``), then print or push."""
    from fracbench.cli import console, safe
    from fracbench.dataset.hub import push, resolve_token

    if "/" not in args.repo_id:
        raise HubError(f"--repo-id {args.repo_id!r} must be ORG/NAME (e.g. my-lab/fracatlas-bench)")
    token = None if args.dry_run else resolve_token()  # fail before hashing large files
    plan, source = plan_for()
    where = f"PR against {args.revision or 'main'}" if args.create_pr else f"branch {args.revision or 'main'}"

    def say(line: str) -> None:
        console.print(safe(line), highlight=False, soft_wrap=True)

    if args.dry_run:
        say(f"upload plan (dry run, nothing sent): {source} -> {repo_type} {args.repo_id}, {where}"
            f"{', private' if args.private else ''}")
        say(f"{'sha256':<64}  {'bytes':>13}  path in repo")
        for f in plan.files:
            say(f"{f.sha256}  {f.size:>13,}  {f.path_in_repo}")
        say(f"total: {len(plan.files)} files, {plan.total_size:,} bytes")
        return 0
    with console.status(f"uploading {len(plan.files)} files ({plan.total_size:,} bytes) to {args.repo_id}"):
        result = push(plan, args.repo_id, repo_type=repo_type, create_pr=args.create_pr,
                      private=True if args.private else None, revision=args.revision,
                      token=token, commit_message=args.message)
    if result.pr_url:
        say(f"pull request: {result.pr_url}")
    else:
        say(f"committed {len(plan.files)} files to {repo_type} {args.repo_id}: {result.commit_url or result.oid}")
    return 0


def run_publish_dataset(args: argparse.Namespace) -> int:
    """Plan the upload of a built dataset, then print it (--dry-run) or push it."""
    from fracbench.dataset.hub import plan_dataset_upload
    from fracbench.dataset.locate import resolve_data_dir

    def plan_for():
        data = resolve_data_dir(args.data)
        return plan_dataset_upload(data), str(data)

    return publish_plan(args, plan_for, repo_type="dataset")
