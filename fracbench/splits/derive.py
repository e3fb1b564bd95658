"""Derivation of a leakage-aware split manifest from a release and its audit.

The core is pure and deterministic: :func:`assign_groups` (group-aware iterative
stratification over exact fractions) and :func:`derive_rows` (records + leakage
evidence → manifest rows). :func:`derive_from_raw` is the pipeline behind
``fracbench splits derive``: read the release, audit it (or reuse an audit JSON),
derive, write the manifest and ``MANIFEST.json`` atomically.

Method (see docs/SPLITS.md):

1. Leakage groups: the audit's ``leakage_groups`` (exact-byte, decoded-pixel,
   near-duplicate, same-study-neighbour and same-region id-run groups, merged), closed again under
   union-find here; every other image is a singleton group. A group's id is ``G`` +
   its smallest image id's digits.
2. Strata: decided label × body region × hardware. A group contributes its count in
   every stratum its members fall in (a multi-label deficit, never a majority vote).
3. Groups are visited largest first, ties broken by ``sha256(f"{seed}:{group_id}")``
   (a seeded order independent of the id order, which follows acquisition), and each
   goes to the cell (split, then fold) whose chi-square distance from its target counts
   grows least, i.e. the cell with the largest relative deficit on the group's strata.
4. Splits first (train/validation/test 70/10/20 of images), then 5 folds over the
   train+validation groups (20 % each); test rows get fold -1.
5. Label conflicts are kept and assigned like any group but not scored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from fracbench.errors import SplitError
from fracbench.release.records import ImageRecord, Release
from fracbench.splits.manifest import N_FOLDS, ManifestRow, group_id_for, write_manifest
from fracbench.vocab import SPLITS

log = logging.getLogger(__name__)

DUPLICATE_KEYS = ("exact_duplicate_groups", "pixel_duplicate_groups", "near_duplicate_groups")
"""Audit keys whose groups are copies of one radiograph (conflicts spread over them)."""

GROUP_KEYS = (*DUPLICATE_KEYS, "neighbour_groups", "region_run_groups", "leakage_groups", "mixed_label_groups")
"""Audit group lists whose counts MANIFEST.json records."""

LABEL_CONFLICT_POLICY = (
    "Images whose sources disagree on the label (reason label_conflict), and every copy of a "
    "radiograph that the release labels both fractured and not fractured or that has such an "
    "image among its copies (audit mixed_label_groups and exact/pixel/near-duplicate groups; "
    "reason label_conflict_group), stay in the manifest with the decided label and are assigned "
    "to a split and fold like any group, but carry scored=0: no metric rewards either answer on "
    "an ambiguous radiograph. Training users may drop them (MANIFEST.json lists them)."
)


@dataclass(frozen=True)
class DerivationParams:
    """Everything that determines a derivation besides the release and its audit.

    Attributes:
        seed: seeds the tie-break order among groups of equal size.
        split_percent: percent of images per split, in :data:`SPLITS` order.
        n_folds: folds over train+validation.
    """

    seed: int = 0
    split_percent: tuple[int, ...] = (70, 10, 20)
    n_folds: int = N_FOLDS

    def as_dict(self) -> dict[str, Any]:
        """Parameters as recorded in MANIFEST.json."""
        return {
            "seed": self.seed,
            "split_percent": dict(zip(SPLITS, self.split_percent, strict=True)),
            "n_folds": self.n_folds,
            "strata": ["label", "region", "hardware"],
            "group_order": "size descending, then sha256(f'{seed}:{group_id}')",
            "assignment": "cell whose chi-square distance sum_s (n_cs - target_cs)^2 / target_cs (strata and "
            "cell size, exact fractions) grows least; ties: larger size deficit, then cell order",
            "levels": "splits over all groups, then folds over train+validation groups; test fold -1",
        }


@dataclass(frozen=True)
class LeakageEvidence:
    """What the audit says that the splits must respect.

    Attributes:
        leakage_groups: groups that must not cross splits or folds (image ids).
        duplicate_groups: groups of copies of one radiograph (exact, pixel, near).
        mixed_label_groups: copies of one radiograph carrying both labels.
        conflict_ids: images whose sources disagree on the label.
        group_counts: number of groups per audit list, for MANIFEST.json.
    """

    leakage_groups: list[list[str]] = field(default_factory=list)
    duplicate_groups: list[list[str]] = field(default_factory=list)
    mixed_label_groups: list[list[str]] = field(default_factory=list)
    conflict_ids: list[str] = field(default_factory=list)
    group_counts: dict[str, int] = field(default_factory=dict)


def evidence_from_audit(audit: Any) -> LeakageEvidence:
    """Leakage evidence from an ``AuditReport`` or its JSON (``audit.json``) as a dict.

    Raises:
        SplitError: the audit lacks ``leakage_groups``.
    """
    data = audit.model_dump() if hasattr(audit, "model_dump") else dict(audit)
    if "leakage_groups" not in data:
        raise SplitError("audit has no 'leakage_groups'; re-run `fracbench audit` with this fracbench version")

    def groups(key: str) -> list[list[str]]:
        return [[str(i) for i in g] for g in data.get(key) or []]

    conflicts = []
    for c in data.get("label_conflicts") or []:
        conflicts.append(c if isinstance(c, str) else c["image_id"] if isinstance(c, Mapping) else c.image_id)
    counts = {k: len(groups(k)) for k in GROUP_KEYS}
    counts["label_conflicts"] = len(set(conflicts))
    return LeakageEvidence(
        leakage_groups=groups("leakage_groups"),
        duplicate_groups=[g for k in DUPLICATE_KEYS for g in groups(k)],
        mixed_label_groups=groups("mixed_label_groups"),
        conflict_ids=sorted(set(conflicts)),
        group_counts=counts,
    )


def merge_groups(ids: Sequence[str], groups: Iterable[Sequence[str]]) -> dict[str, str]:
    """Union-find closure of ``groups`` over ``ids``: image id → group id.

    Raises:
        SplitError: a group names an id that is not in ``ids``.
    """
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for g in groups:
        if not g:
            continue
        unknown = [i for i in g if i not in parent]
        if unknown:
            raise SplitError(
                f"leakage group {sorted(g)[:4]} names {unknown[:3]}, not in the release's dataset.csv; "
                "the audit belongs to another release: re-run the audit on this one"
            )
        for a in g[1:]:
            ra, rb = find(g[0]), find(a)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for i in ids:
        members.setdefault(find(i), []).append(i)
    return {i: group_id_for(m) for m in members.values() for i in m}


def assign_groups(
    group_strata: Sequence[Mapping[Hashable, int]],
    shares: Sequence[Fraction],
    order_keys: Sequence[str],
) -> list[int]:
    """Group-aware iterative stratification: one cell index per group.

    Args:
        group_strata: per group, its image count in each stratum (length G).
        shares: the target share of every stratum per cell (sums to 1; length C).
        order_keys: per group, the tie-break key among groups of equal size (length G).

    Returns:
        list[int]: the cell of every group (length G).

    The target of cell ``c`` in stratum ``s`` is ``shares[c] * total[s]``. Visiting groups
    largest first, each goes to the cell minimising the growth of the chi-square distance
    ``sum_s (count[c][s] - target[c][s])**2 / target[c][s]`` plus the same term for cell
    sizes: a group goes where its strata's deficit, relative to the cell's target, is
    largest, so large groups spread over the cells in proportion rather than all landing
    in the largest one. Exact fractions make the result the same on every platform.
    """
    if sum(shares) != 1:
        raise ValueError(f"shares must sum to 1, found {sum(shares)}")
    totals: Counter = Counter()
    for g in group_strata:
        totals.update(g)
    n = sum(totals.values())
    cells = range(len(shares))
    target = [{s: shares[c] * t for s, t in totals.items()} for c in cells]
    target_size = [shares[c] * n for c in cells]
    count = [dict.fromkeys(totals, 0) for _ in cells]
    size = [0 for _ in cells]
    out = [0] * len(group_strata)
    order = sorted(range(len(group_strata)), key=lambda i: (-sum(group_strata[i].values()), order_keys[i]))
    for i in order:
        g = group_strata[i]
        k = sum(g.values())
        best = None
        for c in cells:
            growth = sum(Fraction(m * (m + 2 * (count[c][s] - target[c][s])), totals[s]) for s, m in g.items() if m)
            growth += Fraction(k * (k + 2 * (size[c] - target_size[c])), n) if n else 0
            growth /= shares[c]
            key = (growth, size[c] - target_size[c], c)
            if best is None or key < best[0]:
                best = (key, c)
        c = best[1]
        out[i] = c
        size[c] += k
        for s, m in g.items():
            count[c][s] += m
    return out


def _stratum(r: ImageRecord) -> tuple[int, str, int]:
    return (int(r.fractured), r.region, int(r.hardware))


def _order_key(seed: int, group_id: str) -> str:
    return hashlib.sha256(f"{seed}:{group_id}".encode()).hexdigest()


def exclusions(records: Sequence[ImageRecord], evidence: LeakageEvidence) -> dict[str, str]:
    """The label-conflict policy: image id → exclude reason for every unscored image."""
    ids = [r.image_id for r in records]
    reasons = {i: "label_conflict" for i in evidence.conflict_ids}
    flagged = set(reasons) | {i for g in evidence.mixed_label_groups for i in g}
    copies = merge_groups(ids, evidence.duplicate_groups + evidence.mixed_label_groups)
    tainted = {copies[i] for i in flagged if i in copies}
    for i in ids:
        if copies[i] in tainted and i not in reasons:
            reasons[i] = "label_conflict_group"
    return reasons


def derive_rows(
    records: Sequence[ImageRecord], evidence: LeakageEvidence, params: DerivationParams = DerivationParams()
) -> list[ManifestRow]:
    """Assign every record to a group, split and fold, and apply the label-conflict policy.

    Args:
        records: one record per image (``dataset.csv`` rows), unique ids.
        evidence: the audit's groups and conflicts.
        params: seed, split shares and fold count.

    Returns:
        list[ManifestRow]: one row per record, sorted by image id.

    Raises:
        SplitError: duplicate record ids, or evidence naming unknown ids.
    """
    ids = [r.image_id for r in records]
    dup = [i for i, k in Counter(ids).items() if k > 1]
    if dup:
        raise SplitError(f"records hold image ids more than once: {sorted(dup)[:5]}; expected unique ids")
    if len(params.split_percent) != len(SPLITS) or sum(params.split_percent) != 100:
        raise SplitError(f"split_percent must give {len(SPLITS)} percents summing to 100, found {params.split_percent}")
    group_of = merge_groups(ids, evidence.leakage_groups)
    unknown = [i for i in evidence.conflict_ids if i not in group_of]
    if unknown:
        raise SplitError(f"label conflicts name {unknown[:3]}, not in the release; the audit belongs to another release")
    by_group: dict[str, list[ImageRecord]] = {}
    for r in records:
        by_group.setdefault(group_of[r.image_id], []).append(r)
    gids = sorted(by_group)
    strata = [Counter(_stratum(r) for r in by_group[g]) for g in gids]
    keys = [_order_key(params.seed, g) for g in gids]
    split_of = assign_groups(strata, [Fraction(p, 100) for p in params.split_percent], keys)
    fold_of = dict.fromkeys(gids, -1)
    trainval = [j for j, c in enumerate(split_of) if SPLITS[c] != "test"]
    folds = assign_groups([strata[j] for j in trainval], [Fraction(1, params.n_folds)] * params.n_folds, [keys[j] for j in trainval])
    for j, f in zip(trainval, folds, strict=True):
        fold_of[gids[j]] = f
    reasons = exclusions(records, evidence)
    split_by_gid = {g: SPLITS[c] for g, c in zip(gids, split_of, strict=True)}
    rows = []
    for r in records:
        g = group_of[r.image_id]
        reason = reasons.get(r.image_id, "")
        rows.append(
            ManifestRow(
                image_id=r.image_id,
                group_id=g,
                split=split_by_gid[g],
                fold=fold_of[g],
                label=int(r.fractured),
                region=r.region,
                hardware=int(r.hardware),
                scored=0 if reason else 1,
                exclude_reason=reason,
            )
        )
    return sorted(rows, key=lambda r: r.image_id)


def derive_manifest(
    release: Release, audit: Any, params: DerivationParams = DerivationParams(), *, version: str = "v1"
) -> tuple[list[ManifestRow], dict[str, Any]]:
    """Rows and MANIFEST.json metadata for ``release`` given its audit.

    Args:
        release: the parsed release.
        audit: its ``AuditReport`` (or the audit JSON as a dict).
        params: derivation parameters.
        version: the split version name to record.

    Returns:
        tuple: manifest rows, and metadata for :func:`~fracbench.splits.manifest.write_manifest`.
    """
    from fracbench import __version__

    evidence = evidence_from_audit(audit)
    conflicts = sorted(set(evidence.conflict_ids) | {c.image_id for c in release.label_conflicts})
    evidence = LeakageEvidence(
        evidence.leakage_groups, evidence.duplicate_groups, evidence.mixed_label_groups, conflicts, evidence.group_counts
    )
    rows = derive_rows(release.records, evidence, params)
    metadata = {
        "schema": "fracbench.splits/1",
        "name": f"FracAtlas splits {version}",
        "version": version,
        "fracbench_version": __version__,
        "derivation": params.as_dict(),
        "tolerance_pp": 2,
        "label_conflict_policy": LABEL_CONFLICT_POLICY,
        "excluded": {r.image_id: r.exclude_reason for r in rows if not r.scored},
        "release": {
            "identity": release.identity,
            "fingerprint": release.fingerprint,
            "images": len(release.records),
            "missing_files": len(release.missing),
        },
        "audit_group_counts": evidence.group_counts,
        "audit_grouped_images": len({i for g in evidence.leakage_groups for i in g}),
    }
    return rows, metadata


def derive_from_raw(
    raw: str | Path,
    out: str | Path,
    *,
    allow_missing: bool = False,
    seed: int = 0,
    audit_path: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Path, str]:
    """Read a raw release, audit it (or reuse ``audit_path``), derive and write a manifest.

    Args:
        raw: the release (``FracAtlas/`` or its parent).
        out: manifest CSV to write; ``MANIFEST.json`` goes next to it.
        allow_missing: accept a partial release (groups then miss absent images).
        seed: tie-break seed.
        audit_path: a computed ``audit.json`` of this release to reuse instead of auditing.
        progress: optional callback passed to the audit.

    Returns:
        tuple: the manifest path and its sha256.

    Raises:
        SplitError: the audit JSON is unreadable or belongs to another release.
        ReleaseError: the release cannot be read.
    """
    from fracbench.release.reader import read_release

    release = read_release(raw, allow_missing=allow_missing)
    if audit_path is not None:
        audit = _read_audit(Path(audit_path), release)
    else:
        from fracbench.release.audit import audit_release

        audit = audit_release(release, progress=progress)
    params = DerivationParams(seed=seed)
    # Only the default parameters make "v1"; another seed is a different, unnamed split.
    version = "v1" if params == DerivationParams() else f"v1-seed{seed}"
    rows, metadata = derive_manifest(release, audit, params, version=version)
    sha = write_manifest(out, rows, metadata)
    log.info("wrote %s (%d rows, sha256 %s)", out, len(rows), sha)
    return Path(out), sha


def _read_audit(path: Path, release: Release) -> dict[str, Any]:
    try:
        audit = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SplitError(f"--audit {path}: cannot read audit JSON ({exc}); run `fracbench audit` first") from exc
    if not isinstance(audit, dict):
        raise SplitError(f"--audit {path}: expected a JSON object, found {type(audit).__name__}")
    found = audit.get("fingerprint") or (audit.get("release") or {}).get("fingerprint")
    if found and found != release.fingerprint:
        raise SplitError(
            f"--audit {path}: audit of release {found}, but --raw is release {release.fingerprint}; "
            "audit this release or drop --audit"
        )
    return audit
