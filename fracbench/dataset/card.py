"""The dataset card: the template from the package, filled with numbers computed at build time.

The template (``fracbench/cards/dataset.md``, package data) holds the prose and the
static YAML keys; :func:`render_card` fills its ``$placeholders`` and adds the YAML
keys that the Hugging Face loader reads: ``configs`` (data files per split,
``default: true`` on ``classification``), ``dataset_info`` (features and split sizes)
and ``size_categories``.
"""

from __future__ import annotations

import string
from collections import Counter
from importlib import resources
from typing import Any

import yaml

from fracbench.dataset.features import (
    CONFIGS,
    DEFAULT_CONFIG,
    column_names,
    features_for,
)
from fracbench.release.records import REGIONS, ImageRecord, Release
from fracbench.splits.manifest import SplitManifest
from fracbench.vocab import SPLITS

TEMPLATE = "dataset.md"

_ROWS = {
    "classification": ("every image, fracbench splits", "-"),
    "localization": ("every image, fracbench splits", "`boxes`"),
    "segmentation": ("every image, fracbench splits", "`boxes`, `polygons`, `mask`"),
    "legacy": ("fractured images, authors' split", "`boxes`, `polygons`"),
}


_AUDIT_GROUPS = (
    ("exact_duplicate_groups", "groups of byte-identical files"),
    ("pixel_duplicate_groups", "groups of pixel-identical images"),
    ("near_duplicate_groups", "groups of near duplicates (re-encoded, cropped or padded copies)"),
    ("neighbour_groups", "groups of same-study neighbours"),
    ("leakage_groups", "leakage groups once merged"),
)


def load_template() -> str:
    """The card template shipped with fracbench (``fracbench/cards/dataset.md``)."""
    return (resources.files("fracbench") / "cards" / TEMPLATE).read_text(encoding="utf-8")


def render_card(
    metadata: dict[str, Any],
    records: list[ImageRecord],
    manifest: SplitManifest,
    legacy_of: dict[str, str],
    release: Release,
) -> str:
    """The built dataset's ``README.md``.

    Args:
        metadata: the ``fracbench.json`` content of the build.
        records: the images in the build (present ones), sorted by id.
        manifest: the split manifest the build used.
        legacy_of: image id → authors' split, for the built images in it.
        release: the release the build read.

    Returns:
        str: YAML front matter and Markdown body, LF line endings.
    """
    template = load_template()
    _, front, body = template.split("---\n", 2)
    meta = yaml.safe_load(front)
    meta["size_categories"] = [_size_category(len(records))]
    meta["configs"] = _configs_yaml(metadata)
    meta["dataset_info"] = _dataset_info_yaml(metadata)
    body = body.split("-->\n", 1)[1] if body.lstrip().startswith("<!--") else body
    rows = manifest.by_id()
    fractured = sum(1 for r in records if r.fractured)
    missing = metadata["missing"]
    values = {
        "dataset_version": metadata["dataset_version"],
        "fingerprint": metadata["fingerprint"],
        "fracbench_version": metadata["fracbench_version"],
        "release_identity": metadata["release"]["identity"],
        "release_fingerprint": metadata["release"]["fingerprint"],
        "release_images": f"{metadata['release']['images']:,}",
        "splits_version": metadata["splits"]["version"],
        "manifest_sha256": metadata["splits"]["manifest_sha256"],
        "images": f"{len(records):,}",
        "missing_note": f" ({len(missing):,} absent from the release copy it was built from)" if missing else "",
        "fractured": f"{fractured:,}",
        "not_fractured": f"{len(records) - fractured:,}",
        "config_table": _config_table(metadata),
        "composition_table": _composition_table(records, rows),
        "legacy_counts": _legacy_counts(legacy_of),
        "exif_count": sum(1 for r in records if r.exif_orientation != 1),
        "truncated_count": sum(1 for r in records if r.truncated),
        "original_count": f"{metadata['pixels']['original_jpeg']:,}",
        "reencoded_count": metadata["pixels"]["reencoded_png"],
        "known_issues": _known_issues(metadata, records, manifest, release),
        "size_table": _size_table(metadata),
    }
    text = string.Template(body).substitute(values)
    front_yaml = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front_yaml}---\n{text}"


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < bound:
            return label
    return "100K<n<1M"


def _configs_yaml(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for config in CONFIGS:
        if config not in metadata["configs"]:
            continue
        entry: dict[str, Any] = {
            "config_name": config,
            "data_files": [
                {"split": split, "path": f"{config}/{split}-*.parquet"}
                for split in SPLITS
                if split in metadata["configs"][config]["splits"]
            ],
        }
        if metadata["configs"][config].get("shares") is not None:
            # the files hold every column; this config reads its own through a projection
            entry["columns"] = list(column_names(config))
        if config == DEFAULT_CONFIG:
            entry["default"] = True
        out.append(entry)
    return out


def _dataset_info_yaml(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """``dataset_info`` written by the ``datasets`` library's own serializer."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict

    infos = DatasetInfosDict()
    for config, entry in metadata["configs"].items():
        splits = SplitDict()
        for split in (s for s in SPLITS if s in entry["splits"]):
            s = entry["splits"][split]
            splits.add(SplitInfo(name=split, num_bytes=s["num_bytes"], num_examples=s["num_examples"]))
        infos[config] = DatasetInfo(
            features=features_for(config),
            splits=splits,
            download_size=sum(s["download_size"] for s in entry["splits"].values()),
            dataset_size=sum(s["num_bytes"] for s in entry["splits"].values()),
            config_name=config,
        )
    card: dict[str, Any] = {}
    infos.to_dataset_card_data(card)
    info = card["dataset_info"]
    return info if isinstance(info, list) else [info]


def _config_table(metadata: dict[str, Any]) -> str:
    lines = []
    for config in CONFIGS:
        if config not in metadata["configs"]:
            continue
        splits = metadata["configs"][config]["splits"]
        rows, extra = _ROWS[config]
        counts = " | ".join(f"{splits[s]['num_examples']:,}" if s in splits else "0" for s in SPLITS)
        lines.append(f"| `{config}`{' (default)' if config == DEFAULT_CONFIG else ''} | {rows} | {extra} | {counts} |")
    return "\n".join(lines)


def _composition_table(records: list[ImageRecord], rows: dict[str, Any]) -> str:
    count = Counter((rows[r.image_id].split, int(r.fractured), r.region) for r in records)
    head = ["region"] + [f"{s} {lab}" for s in SPLITS for lab in ("fractured", "not fractured")] + ["total"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for region in (*REGIONS, None):
        cells = []
        for split in SPLITS:
            for label in (1, 0):
                n = sum(v for (s, lab, reg), v in count.items() if s == split and lab == label and region in (None, reg))
                cells.append(f"{n:,}")
        total = sum(v for (_, _, reg), v in count.items() if region in (None, reg))
        name = region if region else "**all**"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {total:,} |")
    return "\n".join(lines)


def _legacy_counts(legacy_of: dict[str, str]) -> str:
    if not legacy_of:
        return "not built (the release has no authors' split)"
    c = Counter(legacy_of.values())
    return ", ".join(f"{s} {c.get(s, 0):,}" for s in SPLITS)


def _known_issues(
    metadata: dict[str, Any], records: list[ImageRecord], manifest: SplitManifest, release: Release
) -> str:
    """Bullet list: missing files, label conflicts, exclusions, duplicates, decoding quirks."""
    built = {r.image_id for r in records}
    rows = manifest.by_id()
    items = []
    if metadata["missing"]:
        m = metadata["missing"]
        items.append(
            f"{len(m):,} image(s) of the release were absent from the copy this was built from and are "
            f"left out (`missing` in `fracbench.json`, e.g. {', '.join(m[:3])})."
        )
    conflicts = [c for c in release.label_conflicts if c.image_id in built]
    for c in conflicts:
        said = ", ".join(f"{k}: {'fractured' if v else 'not fractured'}" for k, v in sorted(c.sources.items()))
        decided = "fractured" if c.decided else "not fractured"
        items.append(f"Label conflict, {c.image_id}: {said}; decided {decided} ({c.rule}).")
    reasons = Counter(rows[i].exclude_reason for i in built if not rows[i].scored)
    if reasons:
        parts = ", ".join(f"{n:,} `{reason}`" for reason, n in sorted(reasons.items()))
        items.append(
            f"{sum(reasons.values()):,} image(s) carry `scored = False` ({parts}): label conflicts and every "
            "copy of a radiograph with conflicting labels are predicted but enter no metric."
        )
    sizes = Counter(rows[i].group_id for i in built)
    multi = {g: n for g, n in sizes.items() if n > 1}
    if multi:
        items.append(
            f"The same radiograph occurs more than once: {len(multi):,} leakage group(s) (copies of one "
            f"radiograph and same-study neighbours) hold {sum(multi.values()):,} images (`group_id`); a group "
            "never crosses a split or fold."
        )
    audit = manifest.metadata.get("audit_group_counts") or {}
    described = [f"{audit[key]:,} {words}" for key, words in _AUDIT_GROUPS if audit.get(key)]
    if described:
        items.append(f"The release audit behind the split manifest found {', '.join(described)}.")
    if audit.get("mixed_label_groups"):
        items.append(
            f"{audit['mixed_label_groups']:,} group(s) of copies of one radiograph carry both labels in the "
            "release (one copy in `Fractured`, another in `Non_fractured`); their images are not scored "
            "(`label_conflict_group`)."
        )
    trunc = sorted(r.image_id for r in records if r.truncated)
    if trunc:
        items.append(
            f"{len(trunc):,} JPEG(s) of the release are truncated ({trunc[0]} ... {trunc[-1]}); stored here as PNG "
            "decoded with truncated-image recovery (the part missing from the file decodes as flat grey)."
        )
    rotated = sorted(r.image_id for r in records if r.exif_orientation != 1)
    if rotated:
        fr = [r.image_id for r in records if r.exif_orientation != 1 and r.fractured]
        items.append(
            f"{len(rotated):,} JPEG(s) carry an EXIF orientation other than 1 ({len(fr)} fractured"
            f"{': ' + ', '.join(fr) if fr else ''}); the annotations use the rotated frame, which is what is stored here."
        )
    if release.box_disagreements:
        items.append(
            f"{len(release.box_disagreements):,} disagreement(s) beyond 1 px between the COCO, YOLO and VOC "
            "boxes of one image; this dataset uses the COCO boxes."
        )
    if metadata.get("subset"):
        items.append("This build is a subset of the release (built with `ids=`), for testing only.")
    return "\n".join(f"- {item}" for item in items) if items else "- None found by the build."


def _size_table(metadata: dict[str, Any]) -> str:
    lines = ["| config | parquet files | bytes |", "|---|---|---|"]
    for config in CONFIGS:
        if config not in metadata["configs"]:
            continue
        entry = metadata["configs"][config]
        splits = entry["splits"].values()
        size = sum(s["download_size"] for s in splits)
        files = sum(len(s["files"]) for s in splits)
        shared = f" (the `{entry['shares']}` files, {metadata['shared_files']})" if entry.get("shares") else ""
        lines.append(f"| `{config}` | {files} | {size:,} ({size / 2**20:.1f} MiB){shared} |")
    unique = metadata["unique_bytes"]
    lines.append(f"| **on disk** | {len(metadata['files'])} | {unique:,} ({unique / 2**20:.1f} MiB) |")
    return "\n".join(lines)
