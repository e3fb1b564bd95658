"""Atomic writes: a file or directory appears whole or not at all.

Every artifact fracbench writes (audit, manifest, parquet, Result, leaderboard
entry, download) goes through here, so an interrupted run leaves nothing
half-made: data is written to a temporary sibling and renamed into place.

A run killed outright (SIGKILL, power loss) cannot remove its temporary
directory, ``.NAME.<pid>-XXXX.partial``; the next :func:`directory` for the same
``NAME`` removes every such sibling whose owning process is gone
(:func:`remove_stale_partials`), so kills never pile up leftovers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
LEGACY_STALE_AFTER_S = 3600.0
"""A ``.NAME.XXXX.partial`` without an owner pid (written before pids were recorded) is stale after this."""


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same dir, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the result the permissions a plain open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    """The process umask (reading it means setting it; restore at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically, with LF line endings as given."""
    return write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def directory(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it into place on success.

    Args:
        path: the final directory.
        overwrite: replace an existing ``path``; otherwise an existing one is an error.

    Yields:
        Path: the temporary directory to fill.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=PARTIAL_SUFFIX, dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it a plain mkdir's mode
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists but is not ours, or the platform cannot tell
        return True
    return True


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Remove the temporary directories a killed :func:`directory` left beside ``path``.

    A ``.NAME.<pid>-XXXX.partial`` sibling is stale when process ``pid`` no longer
    exists; one without a pid (older fracbench) when it is older than
    :data:`LEGACY_STALE_AFTER_S`. A ``.NAME.old`` left by a kill between the two
    renames is removed only when ``path`` itself exists (else it is the last good copy).
    Directories of live runs are never touched.

    Args:
        path: the final directory whose siblings are checked.

    Returns:
        list[Path]: what was removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    # mkdtemp's random part is 8 characters of [a-z0-9_]; matching it exactly keeps the
    # partials of a sibling such as NAME.v2 out of NAME's cleanup.
    own = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)-)?[a-z0-9_]{{8}}{re.escape(PARTIAL_SUFFIX)}")
    removed = []
    for sibling in path.parent.iterdir():
        found = own.fullmatch(sibling.name)
        if found is None or not sibling.is_dir() or sibling.is_symlink():
            continue
        if found.group(1) is not None:
            stale = not _alive(int(found.group(1)))
        else:
            try:
                stale = time.time() - sibling.stat().st_mtime > LEGACY_STALE_AFTER_S
            except FileNotFoundError:
                continue
        if stale:
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
    old = path.with_name(f".{path.name}.old")
    if path.exists() and old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    if removed:
        log.info("removed %d stale partial output(s) of %s left by an interrupted run", len(removed), path)
    return removed
