"""Safe extraction of a release zip: every member is checked before a byte is written.

A downloaded archive is untrusted input. :func:`safe_extract` refuses, before
creating anything, an archive with a member that

- has an absolute path (``/etc/x``, ``C:\\x``) or a ``..`` component,
- is a symbolic link or a special file (device, FIFO, socket) by its Unix mode
  bits (the zip format has no hard links; Unix-made zips store a symlink as a
  member whose mode says ``S_IFLNK``),
- is encrypted, duplicated, or both a file and a directory,
- is larger than :attr:`ExtractionLimits.max_member_size`, or expands more than
  :attr:`ExtractionLimits.max_ratio` times its compressed size (a zip bomb),

or whose members add up to more than ``max_total_size`` or ``max_members``, or
declare more than ``max_ratio`` times the archive's own size in all (many
members each just under the per-member limits still cannot add up to a bomb).
:func:`extract_release` also refuses, from the member list alone, a zip that
holds no release (no ``dataset.csv`` where the release has it).
Backslashes in member names are treated as directory separators (zips made by
some Windows tools use them). Extraction goes into a temporary sibling of the
target directory, which is renamed into place only when every member has been
written and its CRC checked, so a failure leaves nothing at the target.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fracbench import atomic
from fracbench.errors import DownloadError, ReleaseNotFoundError, UnsafeArchiveError

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]
"""``progress(done, total)``: bytes done so far and the total (None when unknown)."""

_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_SHOWN_PROBLEMS = 5
EXTRACTED_MARKER = ".fracbench-extracted"


@dataclass(frozen=True)
class ExtractionLimits:
    """Bounds an archive must stay within to be extracted.

    The defaults leave ample room for FracAtlas (about 12,300 members, a 338 MB
    zip of under 400 MB uncompressed, no member over 20 MB) and refuse archive
    bombs: the total bound, not the per-member ones, is what stops thousands of
    members each just under the per-member limits (8,001 x 1 MiB declared in a
    9 MB zip is over both ``max_total_size`` and ``max_ratio``).

    Attributes:
        max_members: most members (files and directories) allowed.
        max_member_size: largest uncompressed size of one member, in bytes.
        max_total_size: largest uncompressed size of all members together, in bytes.
        max_ratio: largest uncompressed/compressed ratio of a member, and of all
            members together against the archive file's size ...
        ratio_min_size: ... checked only for members (totals) at least this large
            (small files of repeated bytes compress legitimately well).
    """

    max_members: int = 50_000
    max_member_size: int = 256 << 20
    max_total_size: int = 2 << 30
    max_ratio: float = 200.0
    ratio_min_size: int = 1 << 20


DEFAULT_LIMITS = ExtractionLimits()


@dataclass(frozen=True)
class ArchiveMember:
    """One member that passed the checks.

    Attributes:
        info: the zip entry.
        relpath: its normalised relative path (POSIX separators, no ``.`` parts).
        is_dir: whether it is a directory entry.
    """

    info: zipfile.ZipInfo
    relpath: PurePosixPath
    is_dir: bool


@dataclass(frozen=True)
class ArchiveListing:
    """Every member of a checked archive, in archive order.

    Attributes:
        members: the members to extract.
        total_size: their uncompressed size together, in bytes.
    """

    members: tuple[ArchiveMember, ...]
    total_size: int


def _member_path(name: str) -> tuple[PurePosixPath | None, str | None]:
    """Normalise a member name; returns (path, None) or (None, why it is refused)."""
    if "\x00" in name:
        return None, "NUL byte in the name"
    clean = name.replace("\\", "/")
    if clean.startswith("/") or _DRIVE.match(clean):
        return None, "absolute path"
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "'..' escapes the target directory"
    if not parts:
        return PurePosixPath("."), None
    return PurePosixPath(*parts), None


def _member_kind_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member's type or flags forbid it, or None."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"special file (mode {oct(mode)})"
    if info.flag_bits & 0x1:
        return "encrypted member"
    return None


def _conflict(relpath: PurePosixPath, is_dir: bool, seen: dict[PurePosixPath, bool]) -> str | None:
    """Why ``relpath`` clashes with a member already listed, or None."""
    if relpath in seen and not (is_dir and seen[relpath]):
        return "duplicate member name" if seen[relpath] == is_dir else "both a file and a directory"
    for parent in relpath.parents:
        if seen.get(parent) is False:
            return f"its parent '{parent}' is a file"
    return None


def _size_problem(info: zipfile.ZipInfo, limits: ExtractionLimits) -> str | None:
    """Why a file member is too large or too compressible, or None."""
    if info.file_size > limits.max_member_size:
        return (f"{info.file_size:,} bytes uncompressed, over the per-member limit "
                f"of {limits.max_member_size:,}")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_min_size and ratio > limits.max_ratio:
        return f"expands {ratio:,.0f}x (limit {limits.max_ratio:,.0f}x): an archive bomb"
    return None


def inspect_archive(archive: str | Path, limits: ExtractionLimits = DEFAULT_LIMITS) -> ArchiveListing:
    """Check every member of a zip against the rules and ``limits``.

    Args:
        archive: path of the zip file.
        limits: the size and count bounds.

    Returns:
        ArchiveListing: the members, safe to extract.

    Raises:
        DownloadError: the file is missing or not a readable zip.
        UnsafeArchiveError: one or more members break a rule; the message lists them.
    """
    archive = Path(archive)
    try:
        archive_size = archive.stat().st_size
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except FileNotFoundError as exc:
        raise DownloadError(f"archive {archive} does not exist; download it again") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(
            f"{archive} is not a readable zip archive ({exc}); delete it and download it again"
        ) from exc
    problems: list[str] = []
    if len(infos) > limits.max_members:
        problems.append(f"{len(infos):,} members, more than the limit of {limits.max_members:,}")
    members: list[ArchiveMember] = []
    seen: dict[PurePosixPath, bool] = {}  # path -> is a directory (parents count as such)
    total = 0
    for info in infos:
        relpath, why = _member_path(info.filename)
        why = why or _member_kind_problem(info)
        if why is None and relpath is not None:
            is_dir = info.is_dir() or relpath == PurePosixPath(".")
            why = _conflict(relpath, is_dir, seen) or (None if is_dir else _size_problem(info, limits))
        if why is not None or relpath is None:
            problems.append(f"'{info.filename}' ({why})")
            continue
        if relpath == PurePosixPath("."):
            continue
        seen[relpath] = is_dir
        for parent in relpath.parents:
            seen.setdefault(parent, True)
        total += 0 if is_dir else info.file_size
        members.append(ArchiveMember(info=info, relpath=relpath, is_dir=is_dir))
    if total > limits.max_total_size:
        problems.append(
            f"{total:,} bytes uncompressed in all, over the total limit of {limits.max_total_size:,}"
        )
    elif total >= limits.ratio_min_size and total / max(archive_size, 1) > limits.max_ratio:
        problems.append(
            f"{total:,} bytes uncompressed in all from a {archive_size:,}-byte file, "
            f"{total / max(archive_size, 1):,.0f}x (limit {limits.max_ratio:,.0f}x): an archive bomb"
        )
    if problems:
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        more = f"; and {len(problems) - _SHOWN_PROBLEMS} more" if len(problems) > _SHOWN_PROBLEMS else ""
        raise UnsafeArchiveError(
            f"refusing to extract {archive}: {len(problems)} unsafe member(s): {shown}{more}. "
            "Nothing was extracted; check where the archive came from"
        )
    return ArchiveListing(members=tuple(members), total_size=total)


def _copy_member(zf: zipfile.ZipFile, member: ArchiveMember, target: Path, done: int,
                 total: int, progress: Progress | None) -> int:
    """Stream one member to ``target`` (which must not exist); returns bytes done so far."""
    written = 0
    with zf.open(member.info) as src, open(target, "xb") as dst:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > member.info.file_size:
                raise UnsafeArchiveError(
                    f"member '{member.info.filename}' expands past its declared size of "
                    f"{member.info.file_size:,} bytes; the archive is corrupt or hostile"
                )
            dst.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return done


def safe_extract(
    archive: str | Path,
    dest: str | Path,
    *,
    limits: ExtractionLimits = DEFAULT_LIMITS,
    overwrite: bool = False,
    progress: Progress | None = None,
    marker: tuple[str, str] | None = None,
    listing: ArchiveListing | None = None,
) -> Path:
    """Extract a zip into ``dest`` atomically, after checking every member.

    Args:
        archive: path of the zip file.
        dest: the directory to create; it appears only once everything is extracted.
        limits: the size and count bounds (see :class:`ExtractionLimits`).
        overwrite: replace an existing ``dest``; otherwise an existing one is an error.
        progress: called as ``progress(bytes_done, bytes_total)`` while writing.
        marker: optional ``(file name, text)`` written into ``dest`` with the members,
            so a later run can tell a complete extraction from a foreign directory.
        listing: this archive's :func:`inspect_archive` result, when already made.

    Returns:
        Path: ``dest``.

    Raises:
        UnsafeArchiveError: a member breaks a rule (nothing is written).
        DownloadError: the archive is unreadable or corrupt (CRC mismatch), the disk
            lacks room, or ``dest`` exists and ``overwrite`` is False.
    """
    archive, dest = Path(archive), Path(dest)
    listing = listing if listing is not None else inspect_archive(archive, limits)
    if dest.exists() and not overwrite:
        raise DownloadError(f"{dest} already exists; remove it or pass overwrite=True")
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if listing.total_size > free:
        raise DownloadError(
            f"extracting {archive} needs {listing.total_size:,} bytes but {dest.parent} has "
            f"{free:,} free; free some space or choose another directory"
        )
    log.info("extracting %d members (%d bytes) of %s into %s", len(listing.members),
             listing.total_size, archive, dest)
    with atomic.directory(dest, overwrite=overwrite) as tmp, zipfile.ZipFile(archive) as zf:
        root = tmp.resolve()
        done = 0
        for member in listing.members:
            target = tmp.joinpath(*member.relpath.parts)
            # Defence in depth: the name checks above already exclude this.
            if not target.resolve().is_relative_to(root):
                raise UnsafeArchiveError(f"member '{member.info.filename}' resolves outside {dest}")
            if member.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                done = _copy_member(zf, member, target, done, listing.total_size, progress)
            except FileExistsError as exc:
                raise UnsafeArchiveError(f"member '{member.info.filename}' is written twice") from exc
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise DownloadError(
                    f"{archive} is corrupt at member '{member.info.filename}' ({exc}); "
                    "delete it and download it again"
                ) from exc
            except OSError as exc:
                raise DownloadError(
                    f"writing member '{member.info.filename}' of {archive} into {dest} failed: {exc}"
                ) from exc
        if marker is not None:
            (tmp / marker[0]).write_text(marker[1], encoding="utf-8")
    return dest


def locate_release_root(path: str | Path) -> Path:
    """The directory holding ``dataset.csv``: ``path``, ``path/FracAtlas`` or its only such child.

    Raises:
        ReleaseNotFoundError: no release there.
    """
    path = Path(path)
    for candidate in (path, path / "FracAtlas"):
        if (candidate / "dataset.csv").is_file():
            return candidate
    children = [d for d in path.iterdir() if (d / "dataset.csv").is_file()] if path.is_dir() else []
    if len(children) == 1:
        return children[0]
    raise ReleaseNotFoundError(
        f"no FracAtlas release (a directory holding dataset.csv) in {path} or {path / 'FracAtlas'}; "
        "pass the release's FracAtlas/ directory or the figshare zip"
    )


def release_root_in(listing: ArchiveListing) -> PurePosixPath | None:
    """Where the release sits inside an archive, from its member list alone.

    The same places :func:`locate_release_root` looks: ``dataset.csv`` at the
    top, in ``FracAtlas/``, or in the only top-level folder holding one.

    Returns:
        PurePosixPath | None: the folder holding ``dataset.csv`` (``.`` for the top), or None.
    """
    files = {m.relpath for m in listing.members if not m.is_dir}
    for candidate in (PurePosixPath("."), PurePosixPath("FracAtlas")):
        if candidate / "dataset.csv" in files:
            return candidate
    holders = sorted(p.parent for p in files if p.name == "dataset.csv" and len(p.parts) == 2)
    return holders[0] if len(holders) == 1 else None


def extract_release(
    archive: str | Path,
    raw_out: str | Path,
    *,
    md5: str | None = None,
    limits: ExtractionLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> Path:
    """Safely extract a release zip to ``raw_out/<zip stem>-<md5[:8]>``, once.

    A complete earlier extraction of the same zip (its marker file holds the md5)
    is reused.

    Args:
        archive: the release zip.
        raw_out: the directory extractions live in.
        md5: the zip's md5 when already known (saves reading it again).
        limits: archive safety bounds.
        progress: called as ``progress(bytes_written, bytes_total)``.

    Returns:
        Path: the release directory (holds ``dataset.csv``).

    Raises:
        UnsafeArchiveError, DownloadError: see :func:`safe_extract`.
        ReleaseNotFoundError: the zip holds no ``dataset.csv`` (known from its member
            list before anything is extracted; nothing is written).
    """
    archive = Path(archive)
    md5 = md5 or _md5(archive)
    dest = Path(raw_out) / f"{archive.stem}-{md5[:8]}"
    marker = dest / EXTRACTED_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == md5:
        log.info("%s is already extracted at %s", archive, dest)
    else:
        listing = inspect_archive(archive, limits)
        if release_root_in(listing) is None:
            sample = ", ".join(f"'{m.relpath}'" for m in listing.members[:3]) or "no members"
            raise ReleaseNotFoundError(
                f"{archive} is not a FracAtlas release zip: it has no dataset.csv at its top, in FracAtlas/ "
                f"or in one top-level folder ({len(listing.members):,} members: {sample}"
                f"{', ...' if len(listing.members) > 3 else ''}); nothing was extracted. Pass the figshare "
                "FracAtlas.zip or the release's FracAtlas/ directory"
            )
        safe_extract(archive, dest, limits=limits, overwrite=dest.exists(), progress=progress,
                     marker=(EXTRACTED_MARKER, md5 + "\n"), listing=listing)
    return locate_release_root(dest)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
