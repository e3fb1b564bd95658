"""Download a release file over HTTP: resumable, retried, verified, atomic.

:func:`download_file` streams into ``<target>.part`` next to the target and
renames it to the target only after its size and md5 match the pinned ones, so
the target path never holds a partial or unverified file.

The ``.part`` file is the resume point: a dropped connection is retried (with
exponential backoff) from where it stopped using an HTTP ``Range`` request, and
an interrupted run (Ctrl-C, crash, too many failures) leaves it in place so the
next run resumes. A server that ignores ``Range`` (answers 200 to a ranged
request) makes the download restart from byte zero. A checksum or size mismatch
deletes the ``.part`` (its bytes cannot be trusted); a failure before any byte
arrived leaves no ``.part``. Redirects (figshare answers with a 302 to its
storage) are followed; only the standard library is used.

:func:`fetch_release` (the pinned zip from the network) and
:func:`open_local_release` (a local zip or directory) take a release to an
extracted, safe release directory, ``<raw_out>/<zip stem>-<md5[:8]>/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fracbench import __version__
from fracbench.errors import ChecksumError, DownloadError, ReleaseNotFoundError
from fracbench.release.archive import extract_release, locate_release_root
from fracbench.release.known import FRACATLAS_FIGSHARE_V7, KNOWN_RELEASES, ZipArchive

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]
"""``progress(done, total)``: bytes on disk so far and the expected total (None if unknown)."""

PART_SUFFIX = ".part"
USER_AGENT = f"fracbench/{__version__} (Python urllib)"
_CHUNK = 1 << 20
_MAX_SLEEP = 60.0
# Statuses worth another try: timeouts, rate limits and server-side failures.
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class PinnedFile:
    """A file the user names for download (``--url/--md5/--size``), like a known archive.

    The releases fracbench itself pins are :class:`fracbench.release.known.ZipArchive`
    objects, which have the same fields; every function here takes either.

    Attributes:
        name: the file name it is saved under (``FracAtlas.zip``).
        url: where to download it ('' for a local file).
        size: its size in bytes; None when not given.
        md5: its md5, lower-case hex (figshare publishes md5).
        label: a human name for messages.
    """

    name: str
    url: str
    size: int | None
    md5: str
    label: str = ""


Pinned = ZipArchive | PinnedFile
KNOWN_ARCHIVES: tuple[ZipArchive, ...] = tuple(r.archive for r in KNOWN_RELEASES if r.archive is not None)


class _Transient(Exception):
    """A failure worth retrying (dropped connection, timeout, 5xx)."""


class _WriteFailed(Exception):
    """Writing the ``.part`` failed (disk full, quota, I/O error): the caller removes it and says so."""

    def __init__(self, error: OSError, written: int):
        super().__init__(str(error))
        self.error = error
        self.written = written


def file_md5(path: str | Path, *, progress: Progress | None = None) -> str:
    """The md5 of a file, lower-case hex, read in 1 MiB chunks.

    Args:
        path: the file.
        progress: called as ``progress(bytes_read, file_size)``.

    Returns:
        str: 32 hex digits.
    """
    path = Path(path)
    total = path.stat().st_size
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def matches(path: str | Path, *, md5: str | None = None, size: int | None = None) -> bool:
    """Whether a file exists with the given size and md5 (each checked only if given)."""
    path = Path(path)
    if not path.is_file():
        return False
    if size is not None and path.stat().st_size != size:
        return False
    return md5 is None or file_md5(path) == md5.lower()


def part_path(dest: str | Path) -> Path:
    """Where :func:`download_file` keeps the partial download of ``dest``."""
    dest = Path(dest)
    return dest.with_name(dest.name + PART_SUFFIX)


@contextlib.contextmanager
def _locked_part(part: Path) -> Iterator[BinaryIO]:
    """Open (creating) the ``.part`` file for read/write, holding an exclusive lock."""
    fh = open(os.open(part, os.O_RDWR | os.O_CREAT, 0o644), "r+b")
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent runs are the user's call
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise DownloadError(
                    f"another fracbench download is writing {part}; wait for it to finish"
                ) from exc
        yield fh
    finally:
        fh.close()


def _restart(fh: BinaryIO) -> int:
    fh.seek(0)
    fh.truncate()
    return 0


def _read_response(resp, fh: BinaryIO, offset: int, total: int | None, progress: Progress | None) -> int:
    """Append the body of ``resp`` to ``fh``; returns the new offset.

    Raises:
        _Transient: the connection dropped or stalled (the offset is kept in the exception).
        _WriteFailed: writing to disk failed.
    """
    while True:
        try:
            chunk = resp.read(_CHUNK)
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
            raise _Transient(f"connection lost after {offset:,} bytes ({exc!r})") from exc
        if not chunk:
            break
        try:
            fh.write(chunk)
        except OSError as exc:
            raise _WriteFailed(exc, offset) from exc
        offset += len(chunk)
        if progress is not None:
            progress(offset, total)
    if total is not None and offset < total:
        raise _Transient(f"connection closed after {offset:,} of {total:,} bytes")
    return offset


def _attempt(url: str, fh: BinaryIO, *, size: int | None, use_range: bool, timeout: float,
             opener: urllib.request.OpenerDirector, progress: Progress | None) -> bool:
    """One request; returns False when the caller should retry at once without Range.

    Raises:
        _Transient: retry after a pause.
        DownloadError, ChecksumError: give up.
    """
    offset = fh.seek(0, os.SEEK_END)
    if size is not None and offset > size:
        offset = _restart(fh)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset and use_range:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # our offset is at or past the end
            whole = re.match(r"bytes \*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
            if offset == (size if size is not None else int(whole.group(1)) if whole else None):
                return True
            _restart(fh)
            raise _Transient(f"server refused the range from byte {offset:,}") from exc
        if exc.code in _RETRYABLE_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(
            f"{url} answered HTTP {exc.code} {exc.reason}; check the URL, or pass --url/--md5/--size "
            "for a release that moved"
        ) from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, DNS, timeout
        raise _Transient(f"cannot reach {url} ({getattr(exc, 'reason', exc)!r})") from exc
    with resp:
        total: int | None
        if resp.status == 206:
            found = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if found is None or int(found.group(1)) != offset:
                log.info("server answered a bad Content-Range (%r); restarting from byte 0",
                         resp.headers.get("Content-Range"))
                _restart(fh)
                return False
            total = None if found.group(3) == "*" else int(found.group(3))
        elif resp.status == 200:
            if offset:
                log.info("server ignored the Range request; restarting from byte 0")
                offset = _restart(fh)
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise DownloadError(f"{url} answered HTTP {resp.status}, expected 200 or 206")
        if size is not None and total is not None and total != size:
            raise ChecksumError(
                f"{url} serves {total:,} bytes, expected {size:,}: the file on the server is not "
                "the pinned one; pass --url/--md5/--size for the release you want"
            )
        _read_response(resp, fh, offset, size if size is not None else total, progress)
    return True


def download_file(
    url: str,
    dest: str | Path,
    *,
    md5: str | None = None,
    size: int | None = None,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 2.0,
    progress: Progress | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous ``.part`` and verifying it.

    If ``dest`` already exists with the right size and md5 nothing is downloaded.

    Args:
        url: http(s) URL; redirects are followed.
        dest: final path; it appears only once the file is complete and verified.
        md5: expected md5 (hex); None skips the digest check.
        size: expected size in bytes; None trusts the server's length.
        timeout: seconds to wait for a connection or for the next bytes.
        retries: failed attempts in a row (with no new bytes) before giving up.
        backoff: first pause between attempts in seconds, doubled each time (max 60 s).
        progress: called as ``progress(bytes_on_disk, expected_total)``.
        opener: a ``urllib`` opener (tests, proxies); the default follows redirects.

    Returns:
        Path: ``dest``.

    Raises:
        ChecksumError: the finished file's size or md5 is not the expected one (the
            ``.part`` is deleted), or the server announces another size.
        DownloadError: the server refused the file, the retries ran out (the
            ``.part`` is kept for the next run), the disk is full, or another run
            is writing the same ``.part``.
    """
    dest = Path(dest)
    md5 = md5.lower() if md5 else None
    if matches(dest, md5=md5, size=size):
        log.info("%s is already downloaded and verified", dest)
        return dest
    if dest.exists():
        log.warning("%s exists but does not match the expected checksum; downloading again", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    opener = opener or urllib.request.build_opener()
    with _locked_part(part) as fh:
        try:
            _fill(url, fh, part, size=size, timeout=timeout, retries=retries, backoff=backoff,
                  opener=opener, progress=progress)
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise
        except _WriteFailed as exc:
            # A .part that could not be written is removed: kept, it would hold the space the
            # rerun needs (and its last bytes may be torn).
            part.unlink(missing_ok=True)
            raise DownloadError(_write_failed_message(dest, exc, size)) from exc.error
        except BaseException:
            if fh.seek(0, os.SEEK_END) == 0:
                part.unlink(missing_ok=True)  # nothing to resume from: leave no empty .part behind
            raise
        fh.flush()
        os.fsync(fh.fileno())
        found_size = fh.seek(0, os.SEEK_END)
        found_md5 = file_md5(part) if md5 is not None else None
        if (size is not None and found_size != size) or found_md5 != md5:
            part.unlink()
            want = ([f"md5 {md5}"] if md5 else []) + ([f"{size:,} bytes"] if size is not None else [])
            found = ([f"md5 {found_md5}"] if found_md5 else []) + [f"{found_size:,} bytes"]
            raise ChecksumError(
                f"{dest.name} downloaded from {url}: expected {' and '.join(want)}, found "
                f"{' and '.join(found)}; the download was deleted. Run the command again; if it "
                "fails the same way the server's file has changed: pass --url/--md5/--size for "
                "the release you want"
            )
    os.replace(part, dest)
    log.info("downloaded and verified %s (%d bytes)", dest, found_size)
    return dest


def _write_failed_message(dest: Path, exc: _WriteFailed, size: int | None) -> str:
    """One line for a failed write: what, where, why, that the partial is gone and what to free."""
    import errno

    reason = exc.error.strerror or str(exc.error)
    if exc.error.errno in (errno.ENOSPC, errno.EDQUOT):
        need = f"at least {size:,} bytes" if size is not None else "space"
        return (f"disk full while downloading {dest.name} into {dest.parent} ({reason}) after {exc.written:,} bytes; "
                f"the partial download was removed. Free {need} there, or pass another directory, and run the "
                "same command again")
    return (f"writing {dest.name} into {dest.parent} failed after {exc.written:,} bytes ({reason}); the partial "
            "download was removed. Fix the folder (permissions, disk) and run the same command again")


def _fill(url: str, fh: BinaryIO, part: Path, *, size: int | None, timeout: float, retries: int,
          backoff: float, opener: urllib.request.OpenerDirector, progress: Progress | None) -> None:
    """Request until ``fh`` holds the whole file, resuming and retrying (see :func:`download_file`)."""
    have = fh.seek(0, os.SEEK_END)
    if size is not None and (free := shutil.disk_usage(part.parent).free) < size - have:
        raise DownloadError(
            f"downloading {part.name.removesuffix(PART_SUFFIX)} needs {size - have:,} more bytes but "
            f"{part.parent} has {free:,} free; free some space or pass another directory"
        )
    if have:
        log.info("resuming %s from byte %d", part, have)
    failures, use_range = 0, True
    while True:
        before = fh.seek(0, os.SEEK_END)
        try:
            if _attempt(url, fh, size=size, use_range=use_range, timeout=timeout,
                        opener=opener, progress=progress):
                return
            if not use_range:
                raise DownloadError(f"{url} answers a plain request with partial content")
            use_range = False
        except _Transient as exc:
            failures = 0 if fh.seek(0, os.SEEK_END) > before else failures + 1
            if failures > retries:
                kept = fh.seek(0, os.SEEK_END)  # an empty .part is removed by download_file
                where = (f"{kept:,} bytes are kept in {part}, run the same command again to resume" if kept
                         else "nothing was received, so no partial file is kept; run the same command again later")
                raise DownloadError(f"downloading {url} failed {failures} times in a row, last: {exc}; {where}") from exc
            pause = min(backoff * 2 ** max(failures - 1, 0), _MAX_SLEEP)
            log.warning("%s; retrying in %.0f s", exc, pause)
            time.sleep(pause)


# --- from a pinned URL or a local copy to a release directory --------------------------


@dataclass(frozen=True)
class ObtainedRelease:
    """Where a release ended up and what it was recognised as.

    Attributes:
        root: the release directory (holds ``dataset.csv``).
        archive: the zip it was extracted from; None for a directory used in place.
        md5: the zip's md5; None for a directory.
        pinned: the known release the zip matched; None when unknown or a directory.
    """

    root: Path
    archive: Path | None
    md5: str | None
    pinned: Pinned | None


def default_raw_dir() -> Path:
    """``$XDG_CACHE_HOME/fracbench/raw`` (``~/.cache/fracbench/raw``): downloads and extractions."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fracbench" / "raw"


def fetch_release(
    raw_out: str | Path | None = None,
    *,
    pinned: Pinned = FRACATLAS_FIGSHARE_V7,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 2.0,
    progress: Progress | None = None,
    extract_progress: Progress | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> ObtainedRelease:
    """Download (or reuse) the pinned release zip, verify it and extract it.

    Args:
        raw_out: directory for the zip and its extraction; default :func:`default_raw_dir`.
        pinned: the file to fetch (URL, size, md5).
        timeout, retries, backoff, opener: see :func:`download_file`.
        progress: download progress, ``progress(bytes, total)``.
        extract_progress: extraction progress, ``progress(bytes, total)``.

    Returns:
        ObtainedRelease: the release directory, the zip and its md5.
    """
    raw_out = Path(raw_out) if raw_out is not None else default_raw_dir()
    archive = download_file(pinned.url, raw_out / pinned.name, md5=pinned.md5, size=pinned.size,
                            timeout=timeout, retries=retries, backoff=backoff,
                            progress=progress, opener=opener)
    md5 = pinned.md5 or file_md5(archive)
    root = extract_release(archive, raw_out, md5=md5, progress=extract_progress)
    return ObtainedRelease(root=root, archive=archive, md5=md5, pinned=pinned)


def open_local_release(
    source: str | Path,
    raw_out: str | Path | None = None,
    *,
    expected: Pinned | None = None,
    known: tuple[Pinned, ...] = KNOWN_ARCHIVES,
    hash_progress: Progress | None = None,
    extract_progress: Progress | None = None,
) -> ObtainedRelease:
    """Use a local copy instead of the network: a release directory or a release zip.

    A directory is used in place. A zip is hashed: if ``expected`` is given it must
    match; otherwise a zip that matches none of ``known`` is logged as an unknown
    release and used anyway. It is then extracted like a download.

    Args:
        source: a directory holding the release, or the release zip.
        raw_out: where a zip is extracted; default :func:`default_raw_dir`.
        expected: the file the user said this is (``--md5``/``--size``).
        known: the releases we recognise.
        hash_progress, extract_progress: ``progress(bytes, total)`` callbacks.

    Returns:
        ObtainedRelease: ``pinned`` is the matching known release, or None.

    Raises:
        ReleaseNotFoundError: ``source`` is neither a release directory nor a zip.
        ChecksumError: the zip does not match ``expected``.
    """
    source = Path(source)
    if source.is_dir():
        return ObtainedRelease(root=locate_release_root(source), archive=None, md5=None, pinned=None)
    if not source.is_file():
        raise ReleaseNotFoundError(f"--from {source}: no such file or directory")
    if not zipfile.is_zipfile(source):
        raise ReleaseNotFoundError(f"--from {source} is neither a release directory nor a zip archive")
    size = source.stat().st_size
    md5 = file_md5(source, progress=hash_progress)
    if expected is not None and (md5 != expected.md5.lower() or expected.size not in (None, size)):
        raise ChecksumError(
            f"{source}: expected md5 {expected.md5}"
            + (f" and {expected.size:,} bytes" if expected.size is not None else "")
            + f", found md5 {md5} and {size:,} bytes; check you passed the right file"
        )
    match = expected or next((k for k in known if k.md5 == md5 and k.size == size), None)
    if match is None:
        log.warning("%s is an unknown release archive (md5 %s, %d bytes), not a zip fracbench pins; "
                    "using it anyway (the release is identified from its files when it is read)",
                    source, md5, size)
    root = extract_release(source, raw_out if raw_out is not None else default_raw_dir(),
                           md5=md5, progress=extract_progress)
    return ObtainedRelease(root=root, archive=source, md5=md5, pinned=match)
