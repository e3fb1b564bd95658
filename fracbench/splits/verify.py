"""Verification of a split manifest: checksum, format and every invariant, all at once.

:func:`verify_manifest` never stops at the first problem; it returns a
:class:`VerificationReport` listing each check that ran and each problem found
(e.g. ``sha256 mismatch: expected …, found …`` or ``group G0000123 is in train and
test``). ``fracbench splits verify`` exits 1 when the report is not ok.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fracbench.errors import SplitError
from fracbench.release.records import REGIONS, Release
from fracbench.splits.manifest import (
    MANIFEST_JSON,
    N_FOLDS,
    PINNED_SHA256,
    SPLITS,
    ManifestRow,
    compute_counts,
    group_id_for,
    package_manifest_path,
    parse_manifest_csv,
    read_metadata,
    sha256_hex,
)

TOLERANCE_PP = 2.0
"""Largest allowed gap, in percentage points, between a split's (or fold's) fracture rate,
hardware rate or region share and the whole manifest's."""


@dataclass
class VerificationReport:
    """Outcome of verifying one manifest.

    Attributes:
        path: the manifest checked.
        sha256: its sha256 (None if unreadable).
        checks: names of the checks that ran.
        problems: one message per problem found; empty when the manifest is sound.
        largest_gap: (part, quantity, gap in pp) of the split or fold farthest from the
            whole manifest's proportions, once the proportions check ran.
    """

    path: Path
    sha256: str | None = None
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    largest_gap: tuple[str, str, float] | None = None

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def verify_manifest(
    path: str | Path | None = None,
    *,
    version: str = "v1",
    release: Release | None = None,
    tolerance_pp: float = TOLERANCE_PP,
) -> VerificationReport:
    """Check a manifest against its sha256 and every invariant.

    Args:
        path: manifest CSV (``MANIFEST.json`` next to it); None for the shipped ``version``,
            which must also match the pinned sha256.
        version: shipped version checked when ``path`` is None.
        release: the raw release, to check ids, labels, regions and hardware against
            ``dataset.csv`` and the decided labels.
        tolerance_pp: allowed gap of rates and region shares, in percentage points.

    Returns:
        VerificationReport: every check run and every problem found.
    """
    pinned = None
    if path is None:
        path = package_manifest_path(version)
        pinned = PINNED_SHA256.get(version)
    report = VerificationReport(path=Path(path))
    if not report.path.is_file():
        report.problems.append("manifest not found")
        return report
    data = report.path.read_bytes()
    report.sha256 = sha256_hex(data)
    try:
        meta = read_metadata(report.path)
    except SplitError as exc:  # names the file: report it and keep checking
        meta = {}
        report.problems.append(str(exc))
    if not meta:
        report.problems.append(f"{report.path.with_name(MANIFEST_JSON)}: not found or empty; expected the manifest's metadata")

    report.checks.append("sha256")
    expected = meta.get("manifest_sha256")
    if expected and expected != report.sha256:
        report.problems.append(f"sha256 mismatch: expected {expected} ({MANIFEST_JSON}), found {report.sha256}")
    if pinned and pinned != report.sha256:
        report.problems.append(f"sha256 mismatch: expected {pinned} (pinned FracAtlas splits {version}), found {report.sha256}")

    report.checks.append("format")
    rows, problems = parse_manifest_csv(data, report.path.name)
    report.problems.extend(problems)
    if not rows:
        return report
    for name, check in (
        ("counts", lambda: _check_counts(rows, meta)),
        ("groups", lambda: _check_groups(rows)),
        ("folds", lambda: _check_folds(rows)),
        ("scored", lambda: _check_scored(rows)),
        ("proportions", lambda: _check_proportions(rows, tolerance_pp, report)),
    ):
        report.checks.append(name)
        report.problems.extend(check())
    if release is not None:
        report.checks.append("release")
        report.problems.extend(check_against_release(rows, release))
    return report


def _check_counts(rows: list[ManifestRow], meta: dict[str, Any]) -> list[str]:
    counts = meta.get("counts") or {}
    if not counts:
        return [f"{MANIFEST_JSON} has no counts; cannot check that every image is present exactly once"]
    found = compute_counts(rows)
    problems = []
    if counts.get("images") != found["images"]:
        problems.append(f"image count: expected {counts.get('images')} ({MANIFEST_JSON}), found {found['images']} rows")
    n_ids = len({r.image_id for r in rows})
    if n_ids != len(rows):
        problems.append(f"{len(rows)} rows but {n_ids} distinct image ids; every image must appear exactly once")
    for split in SPLITS:
        want = (counts.get("splits") or {}).get(split) or {}
        got = found["splits"][split]
        for key in ("images", "fractured", "hardware", "scored", "groups", "by_label_region"):
            if want.get(key) != got[key]:
                problems.append(f"split {split}: {key} expected {want.get(key)} ({MANIFEST_JSON}), found {got[key]}")
    for fold, got in found["folds"].items():
        want = (counts.get("folds") or {}).get(fold) or {}
        if want.get("images") != got["images"] or want.get("fractured") != got["fractured"]:
            problems.append(
                f"fold {fold}: expected {want.get('images')} images / {want.get('fractured')} fractured "
                f"({MANIFEST_JSON}), found {got['images']} / {got['fractured']}"
            )
    return problems


def _check_groups(rows: list[ManifestRow]) -> list[str]:
    members: dict[str, list[ManifestRow]] = defaultdict(list)
    for r in rows:
        members[r.group_id].append(r)
    problems = []
    for gid, rs in sorted(members.items()):
        splits = sorted({r.split for r in rs}, key=SPLITS.index)
        if len(splits) > 1:
            problems.append(f"group {gid} is in {' and '.join(splits)}")
        folds = sorted({r.fold for r in rs})
        if len(folds) > 1:
            problems.append(f"group {gid} is in folds {' and '.join(map(str, folds))}")
        name = group_id_for([r.image_id for r in rs])
        if name != gid:
            problems.append(f"group {gid} is misnamed: its smallest image is {min(r.image_id for r in rs)}, so expected {name}")
    return problems


def _check_folds(rows: list[ManifestRow]) -> list[str]:
    problems = []
    for r in rows:
        if r.split == "test" and r.fold != -1:
            problems.append(f"image {r.image_id} is in test with fold {r.fold}; expected -1")
        elif r.split != "test" and r.fold == -1:
            problems.append(f"image {r.image_id} is in {r.split} with fold -1; expected 0-{N_FOLDS - 1}")
    used = {r.fold for r in rows if r.fold >= 0}
    empty = [f for f in range(N_FOLDS) if f not in used]
    if empty:
        problems.append(f"folds {empty} are empty; expected {N_FOLDS} folds over train+validation")
    return problems


def _check_scored(rows: list[ManifestRow]) -> list[str]:
    return [
        f"image {r.image_id}: scored={r.scored} with exclude_reason {r.exclude_reason!r}; "
        "expected scored=0 exactly when a reason is given"
        for r in rows
        if bool(r.scored) == bool(r.exclude_reason)
    ]


def proportions(rows: list[ManifestRow]) -> dict[str, float]:
    """Fracture rate, hardware rate and region shares of ``rows``, in percent."""
    n = len(rows) or 1
    out = {"fractured": 100 * sum(r.label for r in rows) / n, "hardware": 100 * sum(r.hardware for r in rows) / n}
    for region in REGIONS:
        out[f"region {region}"] = 100 * sum(r.region == region for r in rows) / n
    return out


def _check_proportions(rows: list[ManifestRow], tolerance_pp: float, report: VerificationReport) -> list[str]:
    whole = proportions(rows)
    parts = [(f"split {s}", [r for r in rows if r.split == s]) for s in SPLITS]
    parts += [(f"fold {f}", [r for r in rows if r.fold == f]) for f in range(N_FOLDS)]
    problems = []
    for name, sel in parts:
        if not sel:
            problems.append(f"{name} is empty")
            continue
        for key, value in proportions(sel).items():
            gap = value - whole[key]
            if report.largest_gap is None or abs(gap) > abs(report.largest_gap[2]):
                report.largest_gap = (name, key, gap)
            if abs(gap) > tolerance_pp:
                problems.append(
                    f"{name}: {key} {value:.2f}% vs {whole[key]:.2f}% overall "
                    f"(gap {gap:+.2f} pp, allowed ±{tolerance_pp:g} pp)"
                )
    return problems


def check_against_release(rows: list[ManifestRow], release: Release) -> list[str]:
    """Problems between manifest rows and a raw release's ``dataset.csv`` and decided labels."""
    records = release.by_id()
    by_id = {r.image_id: r for r in rows}
    problems = []
    missing = sorted(set(records) - set(by_id))
    extra = sorted(set(by_id) - set(records))
    if missing:
        problems.append(f"{len(missing)} dataset.csv ids missing from the manifest, e.g. {', '.join(missing[:5])}")
    if extra:
        problems.append(f"{len(extra)} manifest ids not in dataset.csv, e.g. {', '.join(extra[:5])}")
    for image_id in sorted(set(records) & set(by_id)):
        rec, row = records[image_id], by_id[image_id]
        for key, want in (("label", int(rec.fractured)), ("region", rec.region), ("hardware", int(rec.hardware))):
            if getattr(row, key) != want:
                problems.append(f"image {image_id}: {key} {getattr(row, key)} in the manifest, {want} in the release")
    for conflict in release.label_conflicts:
        row = by_id.get(conflict.image_id)
        if row is not None and row.scored:
            problems.append(f"image {conflict.image_id} has a label conflict but is scored; expected scored=0")
    return problems


def verify_legacy(
    path: str | Path | None = None, *, manifest_rows: list[ManifestRow] | None = None, release: Release | None = None
) -> VerificationReport:
    """Check the authors' split: checksum, format, positives only, and the raw split CSVs.

    Args:
        path: legacy manifest; None for the shipped one. Either must match the pinned sha256.
        manifest_rows: rows of a v1 manifest; every legacy id must be in it, labelled fractured.
        release: the raw release, whose ``Utilities/Fracture Split`` must list the same ids.

    Returns:
        VerificationReport: every check run and every problem found.
    """
    from fracbench.splits import legacy

    pinned = legacy.PINNED_SHA256  # one legacy split exists: any copy must be it
    report = VerificationReport(path=Path(path or legacy.package_legacy_path()))
    if not report.path.is_file():
        report.problems.append("legacy manifest not found")
        return report
    data = report.path.read_bytes()
    report.sha256 = sha256_hex(data)
    report.checks.append("sha256")
    if pinned and pinned != report.sha256:
        report.problems.append(f"sha256 mismatch: expected {pinned} (pinned legacy split), found {report.sha256}")
    report.checks.append("format")
    split, problems = legacy.parse_legacy_csv(data, report.path.name)
    report.problems.extend(problems)
    if manifest_rows is not None:
        report.checks.append("positive-only")
        labels = {r.image_id: r.label for r in manifest_rows}
        for image_id in sorted(split.split_of()):
            if image_id not in labels:
                report.problems.append(f"legacy image {image_id} is not in the v1 manifest")
            elif labels[image_id] != 1:
                report.problems.append(f"legacy image {image_id} is labelled not fractured in the v1 manifest")
    if release is not None:
        report.checks.append("release")
        report.problems.extend(legacy.compare_with_release(split, release))
    return report
