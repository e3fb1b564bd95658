"""Decode once: a built split's images (and masks) resized into a uint8 memmap.

Training on CPU is bound by JPEG decoding if every epoch decodes the 2,880 px
scans again, so each split is decoded once (``fracbench.release.images.decode``:
EXIF transpose, truncated-stream recovery) into a square letterbox of
``size x size`` pixels, greyscale, the image at the top-left corner scaled by
``size / max(width, height)`` and zero padding on the right/bottom. Boxes and
polygons are kept in original pixels in ``meta.json``; :class:`CachedSplit`
maps them into the cache frame and predictions back.

Layout of one cache directory (written atomically)::

    images.npy   uint8 (N, size, size)   greyscale pixels
    masks.npy    uint8 (N, size, size)   fracture mask, area-resampled to 0..255 (segmentation)
    meta.json    ids, labels, sizes, per-axis scales, boxes, polygons, groups, key
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fracbench import atomic
from fracbench.errors import DatasetError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def cache_key(data_dir: Path, config: str, split: str, size: int) -> str:
    """A digest of the built dataset's record of the split's files, the config, split and size.

    The record (``fracbench.json``) holds each parquet file's sha256, so a rebuilt or
    modified dataset gets a new key; the files themselves are verified when decoded.
    """
    from fracbench.dataset.built import BuiltDataset

    built = BuiltDataset.open(data_dir, verify=False)
    h = hashlib.sha256(built.fingerprint.encode())
    entry = built.require(config).splits.get(split)
    for rel in entry.files if entry else []:
        h.update(f"{rel}:{built.record.files.get(rel)}".encode())
    h.update(f"{config}/{split}/{size}/{CACHE_FORMAT}".encode())
    return h.hexdigest()[:16]


@dataclass
class CachedSplit:
    """One decoded split, images in a read-only memmap.

    Attributes:
        root: the cache directory.
        size: side of the square cache frame in pixels.
        image_ids: ``N`` ids in parquet order.
        labels: ``(N,)`` int64, 1 fractured.
        sizes: ``(N, 2)`` original ``(width, height)`` (EXIF-corrected frame).
        scales: ``(N, 2)`` ``(sx, sy)`` from original pixels to cache pixels.
        boxes: per image an ``(k, 4)`` float32 ``[x, y, w, h]`` in original pixels.
        polygons: per image, per instance, flat polygons in original pixels.
        group_ids: leakage groups.
        scored: ``(N,)`` bool, False for protocol-excluded images.
        images: ``(N, size, size)`` uint8 memmap.
        masks: ``(N, size, size)`` uint8 memmap (0..255) or None.
    """

    root: Path
    size: int
    image_ids: list[str]
    labels: np.ndarray
    sizes: np.ndarray
    scales: np.ndarray
    boxes: list[np.ndarray]
    polygons: list[list[list[list[float]]]]
    group_ids: list[str]
    scored: np.ndarray
    images: np.ndarray
    masks: np.ndarray | None

    def __len__(self) -> int:
        return len(self.image_ids)

    def boxes_xyxy(self, i: int) -> np.ndarray:
        """Boxes of image ``i`` as ``(k, 4)`` ``[x1, y1, x2, y2]`` in cache pixels."""
        b = self.boxes[i]
        sx, sy = self.scales[i]
        out = np.stack([b[:, 0] * sx, b[:, 1] * sy, (b[:, 0] + b[:, 2]) * sx, (b[:, 1] + b[:, 3]) * sy], axis=1)
        return out.astype(np.float32).reshape(-1, 4)

    def to_original_xywh(self, i: int, xyxy: np.ndarray) -> np.ndarray:
        """Map ``(k, 4)`` cache-frame ``[x1, y1, x2, y2]`` to original ``[x, y, w, h]``, clipped."""
        sx, sy = self.scales[i]
        w, h = self.sizes[i]
        x1 = np.clip(xyxy[:, 0] / sx, 0, w)
        y1 = np.clip(xyxy[:, 1] / sy, 0, h)
        x2 = np.clip(xyxy[:, 2] / sx, 0, w)
        y2 = np.clip(xyxy[:, 3] / sy, 0, h)
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)

    def content_shape(self, i: int) -> tuple[int, int]:
        """``(height, width)`` of the image inside the cache frame (the rest is padding)."""
        w, h = self.sizes[i]
        sx, sy = self.scales[i]
        return int(round(h * sy)), int(round(w * sx))


def _letterbox_shape(width: int, height: int, size: int) -> tuple[int, int]:
    scale = size / max(width, height)
    return max(1, min(size, round(width * scale))), max(1, min(size, round(height * scale)))


def _decode_image(cell: dict, image_id: str, width: int, height: int, size: int):
    """Decode one parquet Image cell into the annotation frame (drafted near ``size``)."""
    from fracbench.release.images import decode

    data = cell.get("bytes") if cell else None
    source = io.BytesIO(data) if data else cell.get("path") if cell else None
    if source is None:
        raise DatasetError(f"image {image_id}: the parquet image cell has neither bytes nor path; rebuild the dataset")
    img = decode(source, draft=(size, size)).image
    # draft only shrinks by powers of two, so compare orientation by aspect ratio
    if (img.width - img.height) * (width - height) < 0 and abs(width - height) > 2:
        raise DatasetError(
            f"image {image_id}: decodes as {img.width}x{img.height} but the dataset says {width}x{height}; "
            "the pixels are not in the EXIF-corrected frame of the annotations; rebuild the dataset"
        )
    return img.convert("L")


def build_cache(
    data_dir: str | Path,
    config: str,
    split: str,
    size: int,
    cache_root: str | Path,
    *,
    with_masks: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CachedSplit:
    """Decode a split once into ``cache_root/<config>-<split>-<size>-<key>/`` (reused when present).

    Args:
        data_dir: the built dataset directory (holds ``fracbench.json``).
        config: ``classification|localization|segmentation|legacy``.
        split: a split of that config (``train``, ``validation``, ``test``).
        size: side of the square cache frame.
        cache_root: where caches live.
        with_masks: also cache the ``mask`` column (segmentation config only).
        progress: called as ``progress(done, total)`` while decoding.

    Returns:
        CachedSplit: the opened cache.

    Raises:
        DatasetError: missing shards, columns or undecodable images.
    """
    from PIL import Image

    from fracbench.dataset.built import BuiltDataset

    data_dir = Path(data_dir)
    key = cache_key(data_dir, config, split, size)
    target = Path(cache_root) / f"{config}-{split}-{size}-{key}"
    if (target / "meta.json").is_file() and (not with_masks or (target / "masks.npy").is_file()):
        return open_cache(target)
    built = BuiltDataset.open(data_dir)  # verifies each parquet file's sha256 before decoding it
    total = built.num_rows(split, config)
    wanted = ["image", "image_id", "label", "width", "height", "group_id", "scored"]
    optional = ["boxes", "polygons"] + (["mask"] if with_masks else [])
    names = set(built.columns(config, split))
    missing = [c for c in wanted + (["mask"] if with_masks else []) if c not in names]
    if missing:
        raise DatasetError(
            f"{built.root}/{config}/{split}: columns {missing} missing (has {sorted(names)}); use the "
            f"{'segmentation' if with_masks else config} config of a dataset built by `fracbench build`"
        )
    cols = wanted + [c for c in optional if c in names]
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    with atomic.directory(target, overwrite=True) as tmp:
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(total, size, size))
        masks = (
            np.lib.format.open_memmap(tmp / "masks.npy", mode="w+", dtype=np.uint8, shape=(total, size, size))
            if with_masks
            else None
        )
        meta = {"format": CACHE_FORMAT, "key": key, "config": config, "split": split, "size": size,
                "image_ids": [], "labels": [], "sizes": [], "scales": [], "boxes": [], "polygons": [],
                "group_ids": [], "scored": []}
        row = 0
        for rec in built.rows(split, cols, config=config, batch_size=32):
            w, h, iid = int(rec["width"]), int(rec["height"]), rec["image_id"]
            nw, nh = _letterbox_shape(w, h, size)
            img = _decode_image(rec["image"], iid, w, h, size).resize((nw, nh), Image.BILINEAR)
            images[row, :nh, :nw] = np.asarray(img)
            if masks is not None:
                m = _decode_image(rec["mask"], iid, w, h, size) if rec["mask"] else None
                if m is not None:
                    m = np.asarray(m, dtype=np.uint8)
                    m = Image.fromarray(((m > 0) * 255).astype(np.uint8)).resize((nw, nh), Image.BOX)
                    masks[row, :nh, :nw] = np.asarray(m)
            meta["image_ids"].append(iid)
            meta["labels"].append(int(rec["label"]))
            meta["sizes"].append([w, h])
            meta["scales"].append([nw / w, nh / h])
            meta["boxes"].append([list(map(float, b)) for b in (rec.get("boxes") or [])])
            meta["polygons"].append(
                [[list(map(float, p)) for p in inst] for inst in (rec.get("polygons") or [])]
            )
            meta["group_ids"].append(rec["group_id"])
            meta["scored"].append(bool(rec["scored"]))
            row += 1
            if progress is not None:
                progress(row, total)
        images.flush()
        del images
        if masks is not None:
            masks.flush()
            del masks
        atomic.write_text(tmp / "meta.json", json.dumps(meta))
    log.info("decoded %d images of %s/%s at %d px into %s", total, config, split, size, target)
    return open_cache(target)


def open_cache(root: str | Path) -> CachedSplit:
    """Open a cache directory written by :func:`build_cache`.

    Raises:
        DatasetError: the directory is not a complete cache of this format.
    """
    root = Path(root)
    try:
        meta = json.loads((root / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{root}/meta.json: not a readable decode cache ({exc}); delete {root} to rebuild it") from exc
    if meta.get("format") != CACHE_FORMAT:
        raise DatasetError(f"{root}: cache format {meta.get('format')}, expected {CACHE_FORMAT}; delete it to rebuild")
    masks = np.load(root / "masks.npy", mmap_mode="r") if (root / "masks.npy").is_file() else None
    return CachedSplit(
        root=root,
        size=int(meta["size"]),
        image_ids=list(meta["image_ids"]),
        labels=np.asarray(meta["labels"], dtype=np.int64),
        sizes=np.asarray(meta["sizes"], dtype=np.int64).reshape(-1, 2),
        scales=np.asarray(meta["scales"], dtype=np.float64).reshape(-1, 2),
        boxes=[np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in meta["boxes"]],
        polygons=meta["polygons"],
        group_ids=list(meta["group_ids"]),
        scored=np.asarray(meta["scored"], dtype=bool),
        images=np.load(root / "images.npy", mmap_mode="r"),
        masks=masks,
    )
