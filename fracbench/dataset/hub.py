"""Publish a folder (a built dataset, a leaderboard) to the Hugging Face Hub.

Two steps, so the user can see what would happen before anything leaves the
machine: :func:`plan_upload` lists every file with its size, sha256 and
destination in the repository (an :class:`UploadPlan`, what ``--dry-run``
prints), and :func:`push` sends exactly that plan as one commit (or one pull
request) with ``huggingface_hub``.

The token comes from the argument, else ``huggingface_hub.get_token()``
(``HF_TOKEN``, then the token stored by ``hf auth login``). It is never logged,
and it is scrubbed from the text of any error raised here.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fracbench import __version__
from fracbench.dataset.shards import file_sha256
from fracbench.errors import DatasetNotFoundError, FracbenchError, HubError

log = logging.getLogger(__name__)

_KEPT_HIDDEN = frozenset({".gitattributes"})


@dataclass(frozen=True)
class PlannedFile:
    """One file of an upload.

    Attributes:
        local_path: where it is on disk.
        path_in_repo: where it goes in the repository (POSIX separators).
        size: its size in bytes.
        sha256: its sha256, lower-case hex.
        mtime_ns: its modification time when planned (to notice later edits).
    """

    local_path: Path
    path_in_repo: str
    size: int
    sha256: str
    mtime_ns: int


@dataclass(frozen=True)
class UploadPlan:
    """Every file an upload would send, sorted by destination.

    Attributes:
        folder: the local folder planned.
        path_in_repo: the repository folder the files go under ('' for the root).
        files: the files.
    """

    folder: Path
    path_in_repo: str
    files: tuple[PlannedFile, ...]

    @property
    def total_size(self) -> int:
        """Bytes in all files together."""
        return sum(f.size for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the plan."""
        return {
            "folder": str(self.folder),
            "path_in_repo": self.path_in_repo,
            "total_size": self.total_size,
            "files": [{"path_in_repo": f.path_in_repo, "size": f.size, "sha256": f.sha256,
                       "local_path": str(f.local_path)} for f in self.files],
        }


@dataclass(frozen=True)
class PushResult:
    """What the Hub answered to a push.

    Attributes:
        repo_id, repo_type: the repository written to.
        commit_url: the commit's URL (None if the Hub gave none).
        pr_url: the pull request's URL when ``create_pr``; else None.
        oid: the commit id.
    """

    repo_id: str
    repo_type: str
    commit_url: str | None
    pr_url: str | None
    oid: str | None


def _repo_folder(path_in_repo: str) -> str:
    """Normalise ``path_in_repo`` ('' is the root); refuse absolute or escaping paths."""
    clean = path_in_repo.strip().strip("/")
    if "\\" in clean or ".." in PurePosixPath(clean).parts:
        raise HubError(
            f"path_in_repo {path_in_repo!r} must be a relative POSIX folder without '..' "
            "(e.g. 'leaderboards/classification'); pass '' for the repository root"
        )
    return "" if clean in ("", ".") else str(PurePosixPath(clean))


def _selected(relpath: str, patterns: Sequence[str] | None) -> bool:
    """fnmatch over the relative path, like huggingface_hub ('dir/' means 'dir/*')."""
    if patterns is None:
        return True
    return any(fnmatch.fnmatch(relpath, p + "*" if p.endswith("/") else p) for p in patterns)


def plan_upload(
    folder: str | Path,
    *,
    path_in_repo: str = "",
    allow_patterns: Sequence[str] | str | None = None,
    ignore_patterns: Sequence[str] | str | None = None,
) -> UploadPlan:
    """List what uploading ``folder`` would send, hashing every file.

    Hidden files and folders (``.git/``, ``.cache/``, temporaries of atomic
    writes such as ``.name.tmp``) are never uploaded, except ``.gitattributes``.

    Args:
        folder: the local folder.
        path_in_repo: repository folder to upload into ('' for the root).
        allow_patterns: only files whose path relative to ``folder`` matches one of
            these fnmatch patterns (``*`` also matches ``/``; ``dir/`` means ``dir/*``).
        ignore_patterns: leave out files matching any of these patterns.

    Returns:
        UploadPlan: the files, sorted by destination path.

    Raises:
        DatasetNotFoundError: ``folder`` is not a directory.
        HubError: bad ``path_in_repo``, or nothing to upload.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetNotFoundError(f"cannot upload {folder}: not a directory; pass the folder to publish")
    prefix = _repo_folder(path_in_repo)
    allow = [allow_patterns] if isinstance(allow_patterns, str) else allow_patterns
    ignore = [ignore_patterns] if isinstance(ignore_patterns, str) else ignore_patterns
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") and name not in _KEPT_HIDDEN:
                continue
            path = Path(dirpath) / name
            if not path.is_file():  # sockets, dangling links
                continue
            rel = path.relative_to(folder).as_posix()
            if not _selected(rel, allow) or (ignore is not None and _selected(rel, ignore)):
                continue
            stat = path.stat()
            files.append(PlannedFile(local_path=path, path_in_repo=f"{prefix}/{rel}" if prefix else rel,
                                     size=stat.st_size, sha256=file_sha256(path), mtime_ns=stat.st_mtime_ns))
    if not files:
        raise HubError(
            f"nothing to upload in {folder} (allow_patterns={allow!r}, ignore_patterns={ignore!r}); "
            "check the folder and the patterns"
        )
    files.sort(key=lambda f: f.path_in_repo)
    return UploadPlan(folder=folder, path_in_repo=prefix, files=tuple(files))


def plan_dataset_upload(data_dir: str | Path) -> UploadPlan:
    """Plan the upload of a built dataset directory, checking it is one.

    Args:
        data_dir: the built dataset (holds ``fracbench.json`` and the ``README.md`` card).

    Returns:
        UploadPlan: every file of the dataset, to the repository root.

    Raises:
        DatasetNotFoundError: ``fracbench.json`` or ``README.md`` is missing.
    """
    data_dir = Path(data_dir)
    for required in ("fracbench.json", "README.md"):
        if not (data_dir / required).is_file():
            raise DatasetNotFoundError(
                f"{data_dir} is not a built fracbench dataset: {required} is missing; "
                "run `fracbench download` or `fracbench build` and pass its --out as --data"
            )
    return plan_upload(data_dir)


def resolve_token(token: str | None = None) -> str:
    """The token to use: ``token``, else ``HF_TOKEN`` / the stored login.

    Raises:
        HubError: no token anywhere.
    """
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise HubError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` "
            "(a token with write access to the repository); --dry-run needs none"
        )
    return found


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _check_unchanged(plan: UploadPlan) -> None:
    for f in plan.files:
        try:
            stat = f.local_path.stat()
        except FileNotFoundError as exc:
            raise HubError(f"{f.local_path} disappeared after the upload was planned; plan again") from exc
        if stat.st_size != f.size or stat.st_mtime_ns != f.mtime_ns:
            raise HubError(f"{f.local_path} changed after the upload was planned; plan again")


def push(
    plan: UploadPlan,
    repo_id: str,
    *,
    repo_type: str = "dataset",
    create_pr: bool = False,
    private: bool | None = None,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    api: Any = None,
) -> PushResult:
    """Send an :class:`UploadPlan` to the Hub as one commit or pull request.

    Creates the repository if needed (``exist_ok``), then one ``create_commit``
    with a ``CommitOperationAdd`` per planned file.

    Args:
        plan: from :func:`plan_upload`; files edited since are refused.
        repo_id: ``ORG/NAME``.
        repo_type: ``dataset``, ``model`` or ``space``.
        create_pr: open a pull request instead of committing to the branch.
        private: visibility if the repository is created (None: the Hub's default).
        revision: branch to commit to (created from main if missing), or the PR's base.
        token: Hub token; default ``HF_TOKEN`` / the stored login.
        commit_message: default names the file count and fracbench version.
        commit_description: longer text for the commit or PR.
        api: an ``HfApi``-like object (tests); default ``HfApi()``.

    Returns:
        PushResult: the commit and, with ``create_pr``, the PR URL.

    Raises:
        HubError: no token, bad repo id, a changed file, or the Hub refused (the
            message carries the Hub's reason, never the token).
    """
    token = resolve_token(token)
    _check_unchanged(plan)
    from huggingface_hub import CommitOperationAdd

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(library_name="fracbench", library_version=__version__)
    message = commit_message or f"Upload {len(plan.files)} files with fracbench {__version__}"
    log.info("pushing %d files (%d bytes) to %s %s%s", len(plan.files), plan.total_size, repo_type,
             repo_id, " as a pull request" if create_pr else "")
    try:
        from huggingface_hub.utils import validate_repo_id

        validate_repo_id(repo_id)
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, token=token)
        if revision and not create_pr and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True, token=token)
        operations = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path))
                      for f in plan.files]
        info = api.create_commit(repo_id, operations, commit_message=message,
                                 commit_description=commit_description, repo_type=repo_type,
                                 revision=revision, create_pr=create_pr, token=token)
    except FracbenchError:
        raise
    except Exception as exc:  # the Hub client raises many types (HTTP, validation, OS); all are one failure here
        raise HubError(
            f"publishing to {repo_type} repository {repo_id} failed: "
            f"{_scrub(f'{type(exc).__name__}: {exc}', token)}"
        ) from None
    return PushResult(repo_id=repo_id, repo_type=repo_type, commit_url=getattr(info, "commit_url", None),
                      pr_url=getattr(info, "pr_url", None), oid=getattr(info, "oid", None))
