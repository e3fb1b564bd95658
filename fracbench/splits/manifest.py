"""The split manifest: typed rows, its exact CSV form, its sha256 and its counts.

A manifest is a CSV with the columns of :data:`COLUMNS`, one row per image,
sorted by ``image_id``, UTF-8, LF line endings and a final newline, so the same
rows always give the same bytes and the same sha256. Next to it lies
``MANIFEST.json``: the sha256, the counts, the derivation parameters and the
release it was derived from. The frozen versions ship as package data under
``fracbench/splits/<version>/``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fracbench.atomic import write_bytes, write_text
from fracbench.errors import SplitError
from fracbench.release.records import REGIONS
from fracbench.vocab import SPLITS

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("image_id", "group_id", "split", "fold", "label", "region", "hardware", "scored", "exclude_reason")
"""The manifest's columns, in order."""

"""Split names, in the order they are reported."""

N_FOLDS = 5
"""Cross-validation folds over train+validation; test rows carry fold ``-1``."""

EXCLUDE_REASONS = ("", "label_conflict", "label_conflict_group")
"""Allowed ``exclude_reason`` values; ``''`` exactly when ``scored`` is 1."""

MANIFEST_JSON = "MANIFEST.json"
"""Name of the metadata file lying next to a manifest CSV."""

VERSIONS = ("v1",)
"""Frozen leakage-aware split versions shipped with fracbench (``legacy`` lives in ``splits.legacy``)."""

PINNED_SHA256 = {"v1": "fefa2e71646de2e7a082670878a6dd89b412f4d6c7adb21e426b42bbecb0a786"}
"""The sha256 each frozen version is cited by; a shipped manifest must match it."""

_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One image's place in a split version.

    Attributes:
        image_id: release id, e.g. ``IMG0000019``.
        group_id: leakage group, ``G`` + the digits of the group's smallest image id.
        split: ``train``, ``validation`` or ``test``.
        fold: 0-4 for train and validation, -1 for test.
        label: decided label, 1 fractured, 0 not.
        region: ``hand``, ``leg``, ``hip``, ``shoulder`` or ``mixed``.
        hardware: 1 if the image shows orthopaedic hardware.
        scored: 1 if the image counts in scores, 0 if excluded.
        exclude_reason: why an image is not scored, ``''`` if it is.
    """

    image_id: str
    group_id: str
    split: str
    fold: int
    label: int
    region: str
    hardware: int
    scored: int
    exclude_reason: str = ""


def group_id_for(members: list[str] | tuple[str, ...] | set[str]) -> str:
    """The stable, readable id of a leakage group: ``G`` + its smallest image id's digits.

    Args:
        members: image ids of the group (a singleton included).

    Returns:
        str: e.g. ``G0000123`` for a group whose smallest id is ``IMG0000123``.
    """
    smallest = min(members)
    return "G" + (smallest[3:] if smallest.startswith("IMG") else smallest)


def render_manifest_csv(rows: list[ManifestRow]) -> bytes:
    """The manifest's exact bytes: header, rows sorted by image id, LF, final newline."""
    lines = [",".join(COLUMNS)]
    for r in sorted(rows, key=lambda r: r.image_id):
        lines.append(
            f"{r.image_id},{r.group_id},{r.split},{r.fold},{r.label},{r.region},{r.hardware},{r.scored},{r.exclude_reason}"
        )
    return ("\n".join(lines) + "\n").encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def parse_manifest_csv(data: bytes, source: str = "manifest.csv") -> tuple[list[ManifestRow], list[str]]:
    """Parse manifest bytes strictly, collecting every format problem.

    Args:
        data: the CSV bytes.
        source: name used in problem messages.

    Returns:
        tuple: the rows that parsed, and one message per problem (empty when well-formed:
        exact header, LF only, final newline, valid values, sorted unique ids).
    """
    problems: list[str] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [f"{source}: not UTF-8 ({exc})"]
    if "\r" in text:
        problems.append(f"{source}: CR line endings found; expected LF only")
        text = text.replace("\r", "")
    if not text.endswith("\n"):
        problems.append(f"{source}: no final newline")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != ",".join(COLUMNS):
        found = lines[0] if lines else "(empty file)"
        return [], problems + [f"{source}: header expected {','.join(COLUMNS)!r}, found {found!r}"]
    rows: list[ManifestRow] = []
    for n, line in enumerate(lines[1:], start=2):
        row, errs = _parse_row(line)
        problems.extend(f"{source} line {n}: {e}" for e in errs)
        if row is not None:
            rows.append(row)
    seen = Counter(r.image_id for r in rows)
    for image_id, k in sorted(seen.items()):
        if k > 1:
            problems.append(f"{source}: image {image_id} appears {k} times; expected exactly once")
    ids = [r.image_id for r in rows]
    if ids != sorted(ids):
        first = next(i for i in range(1, len(ids)) if ids[i] < ids[i - 1])
        problems.append(f"{source}: rows not sorted by image_id ({ids[first - 1]} before {ids[first]})")
    return rows, problems


def _parse_row(line: str) -> tuple[ManifestRow | None, list[str]]:
    cells = line.split(",")
    if len(cells) != len(COLUMNS):
        return None, [f"expected {len(COLUMNS)} fields, found {len(cells)} in {line!r}"]
    image_id, group_id, split, fold, label, region, hardware, scored, reason = cells
    errs = []
    if not _ID.match(image_id):
        errs.append(f"image_id {image_id!r} is not an image id")
    if not group_id.startswith("G") or not _ID.match(group_id):
        errs.append(f"group_id {group_id!r} is not G + digits")
    if split not in SPLITS:
        errs.append(f"split {split!r} not one of {', '.join(SPLITS)}")
    ints = {}
    for name, value, allowed in (
        ("fold", fold, [str(i) for i in range(-1, N_FOLDS)]),
        ("label", label, ["0", "1"]),
        ("hardware", hardware, ["0", "1"]),
        ("scored", scored, ["0", "1"]),
    ):
        if value not in allowed:
            errs.append(f"{name} {value!r} not one of {', '.join(allowed)}")
        else:
            ints[name] = int(value)
    if region not in REGIONS:
        errs.append(f"region {region!r} not one of {', '.join(REGIONS)}")
    if reason not in EXCLUDE_REASONS:
        errs.append(f"exclude_reason {reason!r} not one of {', '.join(repr(r) for r in EXCLUDE_REASONS)}")
    if errs:
        return None, [f"{image_id}: {e}" for e in errs]
    row = ManifestRow(image_id, group_id, split, ints["fold"], ints["label"], region, ints["hardware"], ints["scored"], reason)
    return row, []


def compute_counts(rows: list[ManifestRow]) -> dict[str, Any]:
    """Counts per split × label × region, per fold, and of groups and scored images.

    Returns:
        dict: ``{"images", "groups", "fractured", "hardware", "scored", "splits": {split:
        {"images", "groups", "fractured", "hardware", "scored", "by_label_region":
        {"fractured"|"not_fractured": {region: n}}}}, "folds": {"0".."4": {...}}}``.
    """

    def block(sel: list[ManifestRow], *, detail: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "images": len(sel),
            "groups": len({r.group_id for r in sel}),
            "fractured": sum(r.label for r in sel),
            "hardware": sum(r.hardware for r in sel),
            "scored": sum(r.scored for r in sel),
        }
        if detail:
            by: dict[str, dict[str, int]] = {"not_fractured": dict.fromkeys(REGIONS, 0), "fractured": dict.fromkeys(REGIONS, 0)}
            for r in sel:
                by["fractured" if r.label else "not_fractured"][r.region] += 1
            out["by_label_region"] = by
        return out

    counts = block(rows, detail=True)
    counts["splits"] = {s: block([r for r in rows if r.split == s], detail=True) for s in SPLITS}
    counts["folds"] = {str(f): block([r for r in rows if r.fold == f], detail=True) for f in range(N_FOLDS)}
    return counts


@dataclass
class SplitManifest:
    """A loaded split manifest.

    Attributes:
        version: ``v1`` (or what ``MANIFEST.json`` says for a file given by path).
        path: the CSV file.
        rows: one row per image, sorted by image id.
        sha256: sha256 of the CSV bytes.
        metadata: the parsed ``MANIFEST.json`` (empty if absent).
    """

    version: str
    path: Path
    rows: list[ManifestRow]
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def by_id(self) -> dict[str, ManifestRow]:
        """Rows keyed by image id."""
        return {r.image_id: r for r in self.rows}

    def ids(self, split: str | None = None, *, scored_only: bool = False) -> list[str]:
        """Image ids of one split (all if ``split`` is None), sorted.

        Raises:
            SplitError: ``split`` is not a split name.
        """
        if split is not None and split not in SPLITS:
            raise SplitError(f"split {split!r} unknown; expected one of {', '.join(SPLITS)}")
        return [
            r.image_id for r in self.rows if (split is None or r.split == split) and (r.scored or not scored_only)
        ]

    def fold(self, k: int) -> tuple[list[str], list[str]]:
        """Cross-validation fold ``k``: (training ids, held-out ids) over train+validation.

        Raises:
            SplitError: ``k`` is not in 0..4.
        """
        if k not in range(N_FOLDS):
            raise SplitError(f"fold {k!r} unknown; expected 0..{N_FOLDS - 1}")
        trainval = [r for r in self.rows if r.fold >= 0]
        return [r.image_id for r in trainval if r.fold != k], [r.image_id for r in trainval if r.fold == k]

    def groups(self) -> dict[str, list[str]]:
        """Leakage groups: group id → member image ids."""
        out: dict[str, list[str]] = defaultdict(list)
        for r in self.rows:
            out[r.group_id].append(r.image_id)
        return dict(out)

    def excluded(self) -> dict[str, str]:
        """Unscored images: image id → exclude reason."""
        return {r.image_id: r.exclude_reason for r in self.rows if not r.scored}

    def counts(self) -> dict[str, Any]:
        """Counts per split × label × region (see :func:`compute_counts`)."""
        return compute_counts(self.rows)

    def to_frame(self) -> pd.DataFrame:
        """The manifest as a pandas DataFrame with the CSV's columns and dtypes."""
        import pandas as pd

        frame = pd.DataFrame([[getattr(r, c) for c in COLUMNS] for r in self.rows], columns=list(COLUMNS))
        return frame.astype({"fold": "int8", "label": "int8", "hardware": "int8", "scored": "int8"})


def package_manifest_path(version: str = "v1") -> Path:
    """Path of a shipped manifest CSV.

    Raises:
        SplitError: ``version`` is not shipped.
    """
    if version not in VERSIONS:
        raise SplitError(
            f"splits version {version!r} unknown; expected one of {', '.join(VERSIONS)} "
            "(the authors' split is fracbench.splits.legacy)"
        )
    return Path(str(resources.files("fracbench.splits") / version / "manifest.csv"))


def read_manifest(path: str | Path) -> SplitManifest:
    """Read a manifest CSV and the ``MANIFEST.json`` next to it, checking its sha256.

    Args:
        path: the manifest CSV.

    Returns:
        SplitManifest: the parsed manifest.

    Raises:
        SplitError: the file is missing or malformed, or its sha256 is not the one
            ``MANIFEST.json`` records (run ``fracbench splits verify`` for every problem).
    """
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"split manifest {path} not found; reinstall fracbench or pass the right --manifest")
    data = path.read_bytes()
    metadata = read_metadata(path)
    sha = sha256_hex(data)
    expected = metadata.get("manifest_sha256")
    if expected and expected != sha:
        raise SplitError(
            f"{path}: sha256 mismatch: expected {expected} (from {MANIFEST_JSON}), found {sha}; "
            "the manifest was edited: restore it or run `fracbench splits verify` for details"
        )
    rows, problems = parse_manifest_csv(data, str(path))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SplitError(f"{problems[0]}{more}; run `fracbench splits verify --manifest {path}`")
    return SplitManifest(version=str(metadata.get("version", "unknown")), path=path, rows=rows, sha256=sha, metadata=metadata)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``MANIFEST.json`` next to manifest ``path``; ``{}`` if there is none.

    Raises:
        SplitError: the file exists but is not a JSON object.
    """
    meta_path = Path(path).with_name(MANIFEST_JSON)
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SplitError(f"{meta_path}: not valid JSON ({exc}); restore it or re-derive the manifest") from exc
    if not isinstance(meta, dict):
        raise SplitError(f"{meta_path}: expected a JSON object, found {type(meta).__name__}")
    return meta


def load_manifest(version: str = "v1") -> SplitManifest:
    """Load a frozen split version shipped with fracbench.

    Args:
        version: ``v1``.

    Returns:
        SplitManifest: rows, sha256, metadata and counts of the frozen manifest.

    Raises:
        SplitError: unknown version, or the shipped file was altered (its sha256 is not
            the pinned one).
    """
    manifest = read_manifest(package_manifest_path(version))
    pinned = PINNED_SHA256.get(version)
    if pinned and manifest.sha256 != pinned:
        raise SplitError(
            f"{manifest.path}: sha256 mismatch: expected {pinned} (FracAtlas splits {version}), "
            f"found {manifest.sha256}; reinstall fracbench"
        )
    manifest.version = version
    return manifest


def write_manifest(path: str | Path, rows: list[ManifestRow], metadata: dict[str, Any]) -> str:
    """Write a manifest CSV and its ``MANIFEST.json`` atomically.

    Args:
        path: the CSV to write; ``MANIFEST.json`` goes next to it.
        rows: the manifest rows.
        metadata: everything else to record; ``manifest_sha256``, ``columns`` and
            ``counts`` are filled in here.

    Returns:
        str: the manifest's sha256.
    """
    path = Path(path)
    data = render_manifest_csv(rows)
    sha = sha256_hex(data)
    meta = dict(metadata)
    meta.update(manifest=path.name, manifest_sha256=sha, columns=list(COLUMNS), counts=compute_counts(rows))
    write_text(path.with_name(MANIFEST_JSON), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    write_bytes(path, data)
    return sha
