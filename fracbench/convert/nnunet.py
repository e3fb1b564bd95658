"""nnU-Net v2 raw layout, with the fracbench folds as ``splits_final.json``.

``DatasetNNN_FracAtlas/`` (default NNN = 501; nnU-Net asks for ids above 500 for
your own datasets) holds ``imagesTr/<case>_0000.png`` and ``labelsTr/<case>.png``
for train + validation (the fracbench cross-validation pool), ``imagesTs/`` and
``labelsTs/`` for test (nnU-Net does not read ``labelsTs``; it is there for
``nnUNetv2_evaluate_folder``), ``dataset.json`` and ``splits_final.json``: the five
folds of the split manifest, so nnU-Net's cross-validation never puts two images
of one leakage group on both sides. nnU-Net looks for that file in
``$nnUNet_preprocessed/DatasetNNN_FracAtlas/``: copy it there after
``nnUNetv2_plan_and_preprocess`` and before training.

Images are re-encoded as 8-bit greyscale PNG: nnU-Net's ``NaturalImage2DIO``
reads an RGB PNG as three channels and a greyscale one as one, and FracAtlas mixes
RGB and greyscale JPEGs, while every case must have the channels ``dataset.json``
declares (one: ``X-ray``, which nnU-Net z-scores per image); JPEG is not accepted
(lossy). Labels are the built dataset's masks, copied as stored (PNG, 0/1).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fracbench.convert.common import ExportSummary, write_file, write_json
from fracbench.dataset.built import BuiltDataset
from fracbench.errors import DatasetError
from fracbench.vocab import SPLITS

if TYPE_CHECKING:
    from fracbench.splits.manifest import SplitManifest

DEFAULT_DATASET_ID = 501
DATASET_NAME = "FracAtlas"
CHANNEL = "_0000"
"""nnU-Net's channel suffix of the single input channel."""

FILE_ENDING = ".png"
"""``dataset.json``'s ``file_ending``: of the images, the labels and nnU-Net's predicted masks."""


def case_id(image_id: str) -> str:
    """The nnU-Net case identifier of an image: its FracAtlas id, as is (``IMG0000019``).

    The export writes ``<case>_0000.png`` (image) and ``<case>.png`` (label); ``nnUNetv2_predict``
    names its outputs after the case: ``<case>.png`` (mask) and, with ``--save_probabilities``,
    ``<case>.npz`` + ``<case>.pkl``. :mod:`fracbench.convert.nnunet_preds` maps them back through
    this function.
    """
    return image_id

_COLUMNS = ("image", "image_id", "label", "width", "height", "group_id", "mask")


def dataset_dirname(dataset_id: int = DEFAULT_DATASET_ID) -> str:
    """``Dataset501_FracAtlas``.

    Raises:
        DatasetError: ``dataset_id`` not in 1..999.
    """
    if not 1 <= int(dataset_id) <= 999:
        raise DatasetError(f"nnU-Net dataset id {dataset_id} out of range; expected 1..999 (use 500 or above for your own)")
    return f"Dataset{int(dataset_id):03d}_{DATASET_NAME}"


def greyscale_png(data: bytes, image_id: str, size: tuple[int, int]) -> bytes:
    """Decode stored image bytes and re-encode them as an 8-bit greyscale PNG.

    Args:
        data: the stored JPEG or PNG bytes (already in the annotation frame).
        image_id: for messages.
        size: the expected ``(width, height)``.

    Raises:
        DatasetError: the pixels' size is not the recorded one.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        if img.size != size:
            raise DatasetError(f"image {image_id}: pixels are {img.size[0]}x{img.size[1]}, the dataset records {size[0]}x{size[1]}; rebuild it")
        grey = img if img.mode == "L" else img.convert("L")  # ITU-R 601-2 luma; X-ray RGB channels are equal
        buf = io.BytesIO()
        grey.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def fold_manifest(source: BuiltDataset, manifest: SplitManifest | str | Path | None = None) -> SplitManifest:
    """The split manifest the dataset was built with (folds are not stored in the parquet).

    Args:
        source: the built dataset.
        manifest: a manifest or its CSV path; default: the shipped version named in
            ``fracbench.json``.

    Raises:
        SplitError: the manifest cannot be read.
        DatasetError: no manifest given and none shipped for the dataset's splits
            version, or its sha256 is not the one recorded at build time.
    """
    from fracbench.splits.manifest import (
        VERSIONS,
        SplitManifest,
        load_manifest,
        read_manifest,
    )

    if isinstance(manifest, SplitManifest):
        found = manifest
    elif manifest is not None:
        found = read_manifest(manifest)
    elif source.splits_version in VERSIONS:
        found = load_manifest(source.splits_version)
    else:
        raise DatasetError(
            f"{source.root} was built with split manifest {source.splits_version!r}, which fracbench does not ship; "
            "pass --manifest FILE (the CSV it was built with) so the folds can be written"
        )
    if found.sha256 != source.manifest_sha256:
        raise DatasetError(
            f"split manifest {found.path} has sha256 {found.sha256[:12]}, but {source.root} was built with "
            f"{source.manifest_sha256[:12]}; pass --manifest with the CSV the dataset was built with"
        )
    return found


def folds(manifest: SplitManifest, cases: set[str]) -> list[dict[str, list[str]]]:
    """nnU-Net's ``splits_final.json``: per fold, ``train`` and ``val`` case ids.

    Args:
        manifest: the split manifest.
        cases: the training cases exported (train + validation images present).

    Returns:
        list: five ``{"train": [...], "val": [...]}`` dicts, ids sorted.

    Raises:
        DatasetError: an exported case has no fold in the manifest.
    """
    from fracbench.splits.manifest import N_FOLDS

    by_id = manifest.by_id()
    unfolded = sorted(c for c in cases if c not in by_id or by_id[c].fold < 0)
    if unfolded:
        raise DatasetError(f"{len(unfolded)} training case(s) have no fold in {manifest.path} (e.g. {unfolded[0]})")
    out = []
    for k in range(N_FOLDS):
        train, val = manifest.fold(k)
        out.append({"train": [c for c in train if c in cases], "val": [c for c in val if c in cases]})
    return out


def write_nnunet(
    source: BuiltDataset,
    tmp: Path,
    summary: ExportSummary,
    tick: Callable[[], None],
    *,
    dataset_id: int = DEFAULT_DATASET_ID,
    manifest: SplitManifest | str | Path | None = None,
) -> None:
    """Write the nnU-Net v2 raw dataset into ``tmp`` (see the module docstring).

    Args:
        source: the built dataset.
        tmp: the temporary ``DatasetNNN_FracAtlas`` directory.
        summary: filled in with counts and next steps.
        tick: called once per image.
        dataset_id: the nnU-Net dataset id (only named in messages here).
        manifest: the split manifest the dataset was built with (see :func:`fold_manifest`).
    """
    split_manifest = fold_manifest(source, manifest)
    groups = {r.image_id: r.group_id for r in split_manifest.rows}
    cases: set[str] = set()
    for split in SPLITS:
        images, labels = ("imagesTr", "labelsTr") if split != "test" else ("imagesTs", "labelsTs")
        for row in source.rows(split, _COLUMNS):
            case = case_id(row["image_id"])
            if groups.get(case) != row["group_id"]:
                raise DatasetError(f"image {case}: group {row['group_id']} in the dataset, {groups.get(case)} in {split_manifest.path}")
            size = (int(row["width"]), int(row["height"]))
            write_file(tmp / images / f"{case}{CHANNEL}{FILE_ENDING}", greyscale_png(row["image"]["bytes"], case, size))
            write_file(tmp / labels / f"{case}{FILE_ENDING}", row["mask"]["bytes"])
            if split != "test":
                cases.add(case)
            summary.count(split, row["label"])
            tick()
    write_json(tmp / "dataset.json", dataset_json(source, len(cases)))
    write_json(tmp / "splits_final.json", folds(split_manifest, cases))
    name = dataset_dirname(dataset_id)
    summary.notes.append("images re-encoded as 8-bit greyscale PNG (nnU-Net needs one consistent channel, no JPEG); labels are the stored 0/1 masks")
    summary.notes.append(
        f"nnUNetv2_plan_and_preprocess -d {dataset_id} -c 2d; then cp {summary.out}/splits_final.json "
        f"$nnUNet_preprocessed/{name}/ before nnUNetv2_train {dataset_id} 2d FOLD"
    )


def dataset_json(source: BuiltDataset, num_training: int) -> dict:
    """nnU-Net's ``dataset.json`` (required keys plus a description and provenance)."""
    return {
        "channel_names": {"0": "X-ray"},
        "labels": {"background": 0, "fracture": 1},
        "numTraining": num_training,
        "file_ending": FILE_ENDING,
        "overwrite_image_reader_writer": "NaturalImage2DIO",
        "name": DATASET_NAME,
        "description": (
            "FracAtlas musculoskeletal radiographs, fracture masks (union of instances); "
            f"fracbench splits {source.splits_version}: imagesTr = train + validation, imagesTs = test"
        ),
        "reference": "Abedeen et al., Sci Data 10, 521 (2023), doi:10.1038/s41597-023-02432-4",
        "licence": "CC BY 4.0",
        "release": source.dataset_version,
        "fracbench": source.provenance(),
    }
