"""Build the versioned Hugging Face dataset: release + split manifest → parquet + card.

``build_dataset`` reads each image once and writes it to every config that holds
it (``classification``, ``localization``, ``segmentation`` over the manifest's
splits, ``legacy`` over the authors' positive-only split), in image-id order, into
deterministic parquet shards. ``fracbench.json`` records what went in (release
identity and fingerprint, manifest sha256, versions, counts, missing ids) and the
fingerprint of what came out; ``README.md`` is the dataset card whose YAML front
matter declares the configs, so ``datasets.load_dataset(OUT)`` works offline.
The directory appears whole or not at all (:func:`fracbench.atomic.directory`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fracbench.atomic import directory, write_text
from fracbench.dataset.built import METADATA_FILENAME, METADATA_SCHEMA
from fracbench.dataset.features import (
    LABEL_NAMES,
    PIXEL_COLUMNS,
    column_names,
    features_for,
)
from fracbench.dataset.pixels import MaskEncoder, encode_image
from fracbench.dataset.rows import annotation_columns, base_columns, pixel_cell
from fracbench.dataset.shards import (
    MAX_SHARD_BYTES,
    ShardWriter,
    dataset_fingerprint,
    file_sha256,
)
from fracbench.errors import DatasetError, SplitError
from fracbench.release.records import ImageRecord, Release
from fracbench.splits.manifest import ManifestRow, SplitManifest
from fracbench.vocab import SPLITS
from fracbench.vocab import TASKS as V1_CONFIGS

log = logging.getLogger(__name__)

DATASET_VERSION = "1.0.0"
"""Version of the built dataset's content and layout; a change of either is a new version."""


"""Configs over the manifest's leakage-aware splits (``legacy`` uses the authors' split)."""

SHARED_CONFIG = "segmentation"
"""The config whose parquet files hold every column; the other V1 configs share them."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, called after each image."""


def build_dataset(
    raw: str | Path | Release,
    out: str | Path,
    *,
    allow_missing: bool = False,
    manifest: SplitManifest | str | Path | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    ids: Iterable[str] | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> Path:
    """Build the dataset directory ``out`` from a release and a split manifest.

    Args:
        raw: the release (its ``FracAtlas/`` dir or parent), or an already read ``Release``.
        out: the dataset directory to create (conventionally named ``fracatlas``).
        allow_missing: build from a partial mirror; absent images are left out and
            listed under ``missing`` in ``fracbench.json``.
        manifest: a ``SplitManifest``, or the path of a manifest CSV; default: the
            frozen ``v1`` manifest shipped with fracbench.
        progress: optional ``progress(stage, done, total)`` callback.
        overwrite: replace an existing ``out``.
        ids: build only these image ids (a documented subset, for fast tests); the
            manifest's other rows are ignored and the subset is recorded.
        max_shard_bytes: encoded-pixel bytes a parquet shard may hold (default 500 MiB).

    Returns:
        Path: ``out``.

    Raises:
        DatasetError: ``out`` exists without ``overwrite``, or the manifest does not
            describe this release (ids or labels differ).
        ReleaseError: the release cannot be read (see ``fracbench.release.reader``).
        SplitError: the manifest cannot be read.
    """
    out = Path(out)
    if out.exists() and not overwrite:  # checked again when the directory is moved into place
        raise DatasetError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    split_manifest = _resolve_manifest(manifest)  # before the slow part: fail fast
    release = _read_release(raw, allow_missing, progress)
    records = _select(release, split_manifest, ids)
    rows = split_manifest.by_id()
    missing = sorted(r.image_id for r in records if not r.present)
    if missing:
        log.warning(
            "%d image(s) absent from %s are left out of the built dataset (listed in %s): %s%s",
            len(missing), release.root, METADATA_FILENAME, ", ".join(missing[:5]),
            " ..." if len(missing) > 5 else "",
        )
    present = [r for r in records if r.present]
    legacy_of = _legacy_assignment(release, {r.image_id for r in present})
    conflicts = {c.image_id for c in release.label_conflicts}

    try:
        with directory(out, overwrite=overwrite) as tmp:
            writers = _open_writers(tmp, max_shard_bytes, has_legacy=bool(release.legacy_split))
            masks = MaskEncoder()
            stats = {"reencoded": 0, "original": 0}
            for done, record in enumerate(present, start=1):
                image = encode_image(release.root, record)
                stats["reencoded" if image.reencoded else "original"] += 1
                row = base_columns(record, image, rows[record.image_id], record.image_id in conflicts)
                row.update(annotation_columns(record))
                if record.image_id in legacy_of:
                    writers[("legacy", legacy_of[record.image_id])].add(dict(row))
                row["mask"] = pixel_cell(masks.encode(record))
                writers[(SHARED_CONFIG, rows[record.image_id].split)].add(row)
                if progress is not None:
                    progress("build", done, len(present))
            shards = {key: w.close() for key, w in writers.items()}
            linked, stats["shared_files"] = _share(tmp, shards)
            shards.update(linked)
            metadata = _metadata(
                tmp, release, split_manifest, writers, shards, missing, present, rows, stats, ids is not None
            )
            from fracbench.dataset.card import render_card

            write_text(tmp / "README.md", render_card(metadata, present, split_manifest, legacy_of, release))
            write_text(tmp / METADATA_FILENAME, json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    except FileExistsError as exc:
        raise DatasetError(f"{out} already exists; pass --overwrite to replace it or choose another --out") from exc
    return out


def _read_release(raw: str | Path | Release, allow_missing: bool, progress: Progress | None) -> Release:
    if isinstance(raw, Release):
        if raw.missing and not allow_missing:
            raise DatasetError(
                f"release at {raw.root} misses {len(raw.missing)} file(s) (e.g. {raw.missing[0]}); "
                "pass --allow-missing to build without them"
            )
        return raw
    from fracbench.release.reader import read_release

    def reading(done: int, total: int) -> None:
        if progress is not None:
            progress("read", done, total)

    return read_release(raw, allow_missing=allow_missing, progress=reading)


def _resolve_manifest(manifest: SplitManifest | str | Path | None) -> SplitManifest:
    from fracbench.splits.manifest import load_manifest, read_manifest

    if manifest is None:
        try:
            return load_manifest("v1")
        except SplitError as exc:
            raise SplitError(f"{exc}; or pass --manifest FILE to build with another split manifest") from exc
    if isinstance(manifest, SplitManifest):
        return manifest
    return read_manifest(manifest)


def _select(release: Release, manifest: SplitManifest, ids: Iterable[str] | None) -> list[ImageRecord]:
    """The records to build, after checking that the manifest describes this release."""
    records = release.records
    rows = manifest.by_id()
    if ids is not None:
        wanted = set(ids)
        unknown = sorted(wanted - {r.image_id for r in records})
        if unknown:
            raise DatasetError(f"ids= names {len(unknown)} image(s) not in the release, e.g. {unknown[0]}")
        records = [r for r in records if r.image_id in wanted]
    problems = []
    not_in_manifest = [r.image_id for r in records if r.image_id not in rows]
    if not_in_manifest:
        problems.append(f"{len(not_in_manifest)} release image(s) absent from it (e.g. {not_in_manifest[0]})")
    if ids is None:
        extra = sorted(set(rows) - {r.image_id for r in records})
        if extra:
            problems.append(f"{len(extra)} manifest id(s) not in the release (e.g. {extra[0]})")
    wrong = [r.image_id for r in records if r.image_id in rows and rows[r.image_id].label != int(r.fractured)]
    if wrong:
        problems.append(f"{len(wrong)} label(s) differ from the release's decided labels (e.g. {wrong[0]})")
    if problems:
        raise DatasetError(
            f"split manifest {manifest.path} (sha256 {manifest.sha256[:12]}) does not describe the release at "
            f"{release.root} ({release.identity}): {'; '.join(problems)}; "
            "pass the manifest derived for this release with --manifest"
        )
    return sorted(records, key=lambda r: r.image_id)


def _legacy_assignment(release: Release, present: set[str]) -> dict[str, str]:
    """Image id → authors' split, for the present images of the legacy split."""
    names = {"train": "train", "valid": "validation", "validation": "validation", "test": "test"}
    out = {}
    for name, members in release.legacy_split.items():
        if name not in names:
            raise DatasetError(f"release legacy split has an unknown part {name!r}; expected train, validation, test")
        for image_id in members:
            if image_id in present:
                out[image_id] = names[name]
    return out


def _open_writers(tmp: Path, max_shard_bytes: int, *, has_legacy: bool) -> dict[tuple[str, str], ShardWriter]:
    """Writers of the configs that own parquet files: ``segmentation`` and ``legacy``."""
    writers = {}
    for config in (SHARED_CONFIG, "legacy"):
        if config == "legacy" and not has_legacy:
            log.warning("the release has no authors' split (Utilities/Fracture Split); no legacy config is built")
            continue
        projections = {c: list(column_names(c)) for c in V1_CONFIGS if config == SHARED_CONFIG}
        for split in SPLITS:
            writers[(config, split)] = ShardWriter(
                tmp / config, split, features_for(config).arrow_schema, PIXEL_COLUMNS,
                projections=projections, max_shard_bytes=max_shard_bytes,
            )
    return writers


def _share(tmp: Path, shards: dict[tuple[str, str], list[Path]]) -> tuple[dict[tuple[str, str], list[Path]], str]:
    """Give ``classification`` and ``localization`` the segmentation files under their own names.

    The files are hard links (no bytes written twice; a plain copy where the filesystem
    has none); those configs read them through a column projection (``columns:`` in the
    card), so each loads exactly its own features.
    """
    out, how = {}, "hard links"
    for config in V1_CONFIGS:
        if config == SHARED_CONFIG:
            continue
        for split in SPLITS:
            paths = []
            for src in shards[(SHARED_CONFIG, split)]:
                dst = tmp / config / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:  # no hard links on this filesystem: same bytes, written again
                    shutil.copyfile(src, dst)
                    how = "copies"
                paths.append(dst)
            out[(config, split)] = paths
    return out, how


def _metadata(
    tmp: Path,
    release: Release,
    manifest: SplitManifest,
    writers: dict[tuple[str, str], ShardWriter],
    shards: dict[tuple[str, str], list[Path]],
    missing: list[str],
    present: list[ImageRecord],
    rows: dict[str, ManifestRow],
    stats: dict[str, Any],
    subset: bool,
) -> dict[str, Any]:
    """Everything ``fracbench.json`` records (no timestamps: the file is reproducible)."""
    from fracbench import __version__

    configs: dict[str, Any] = {}
    digests: dict[str, str] = {}
    by_inode: dict[tuple[int, int], str] = {}
    for (config, split), paths in shards.items():
        if not paths:
            continue  # no rows (an ids= subset): the split is not declared
        files = []
        for p in paths:
            rel = p.relative_to(tmp).as_posix()
            st = p.stat()
            inode = (st.st_dev, st.st_ino)  # a hard-linked file is hashed once
            if inode not in by_inode:
                by_inode[inode] = file_sha256(p)
            digests[rel] = by_inode[inode]
            files.append(rel)
        entry = configs.setdefault(config, {"splits": {}, "shares": _shares(config)})
        owner = writers[(SHARED_CONFIG if config in V1_CONFIGS else config, split)]
        entry["splits"][split] = {
            "num_examples": owner.num_rows,
            "num_bytes": owner.num_bytes_of.get(config, owner.num_bytes),
            "files": files,
            "download_size": sum(p.stat().st_size for p in paths),
        }
    counts = {
        split: {
            "images": sum(1 for r in present if rows[r.image_id].split == split),
            "fractured": sum(1 for r in present if rows[r.image_id].split == split and r.fractured),
            "scored": sum(1 for r in present if rows[r.image_id].split == split and rows[r.image_id].scored),
        }
        for split in SPLITS
    }
    return {
        "schema": METADATA_SCHEMA,
        "dataset_version": DATASET_VERSION,
        "fracbench_version": __version__,
        "label_names": list(LABEL_NAMES),
        "release": {
            "identity": release.identity,
            "identity_note": release.identity_note,
            "fingerprint": release.fingerprint,
            "images": len(release.records),
        },
        "splits": {
            "version": manifest.version,
            "manifest_sha256": manifest.sha256,
            "manifest_images": len(manifest.rows),
        },
        "legacy": _legacy_identity(release),
        "subset": subset,
        "images": len(present),
        "missing": missing,
        "counts": counts,
        "pixels": {"original_jpeg": stats["original"], "reencoded_png": stats["reencoded"]},
        "configs": configs,
        "shared_files": stats["shared_files"],
        "unique_bytes": _unique_bytes(tmp, digests),
        "files": digests,
        "fingerprint": dataset_fingerprint(digests),
    }


def _shares(config: str) -> str | None:
    return SHARED_CONFIG if config in V1_CONFIGS and config != SHARED_CONFIG else None


def _unique_bytes(tmp: Path, digests: dict[str, str]) -> int:
    """Bytes the parquet files take once (a hard-linked file counts once)."""
    seen: dict[tuple[int, int], int] = {}
    for rel in digests:
        st = (tmp / rel).stat()
        seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def _legacy_identity(release: Release) -> dict[str, Any]:
    """The authors' split as built: sha256 of its ``image_id,split`` manifest form and counts."""
    if not release.legacy_split:
        return {}
    from fracbench.splits.legacy import legacy_from_release

    split = legacy_from_release(release)
    return {"sha256": split.sha256, "counts": split.counts()}
