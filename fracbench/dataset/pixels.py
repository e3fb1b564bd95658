"""The encoded pixels a built dataset stores: the image and the fracture mask.

A user of the built dataset must get the annotation frame with default Pillow
settings, for every image. Where the original JPEG already decodes that way its
bytes are stored untouched; the EXIF-rotated and truncated ones are decoded by
:func:`fracbench.release.images.decode` and re-encoded losslessly as PNG.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fracbench.errors import DatasetError
from fracbench.release.images import decode
from fracbench.release.records import ImageRecord

PNG_COMPRESS_LEVEL = 1
"""zlib level of the re-encoded images: fixed (the build must be byte-reproducible) and
fast; level 6 would save about 1 MB over the 84 re-encoded images of the release, at 3x the time."""

MASK_COMPRESS = (1, zlib.Z_RLE)
"""zlib level and strategy of the masks: run-length strategy, as small as level 9 on 0/1
masks (which are mostly zeros) and several times faster."""


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """One image as stored in the ``image`` column.

    Attributes:
        data: the encoded file bytes (original JPEG or re-encoded PNG).
        filename: the ``path`` stored with the bytes, e.g. ``IMG0000019.jpg``.
        reencoded: True when the bytes are a PNG made by the build.
    """

    data: bytes
    filename: str
    reencoded: bool


def needs_reencode(record: ImageRecord) -> bool:
    """Whether default Pillow decoding of the original would not give the annotation frame.

    Args:
        record: a present image.

    Returns:
        bool: True for EXIF-rotated (orientation other than 1) and truncated JPEGs.
    """
    return record.exif_orientation != 1 or record.truncated


def encode_image(root: Path, record: ImageRecord) -> EncodedImage:
    """The bytes to store for one image.

    Args:
        root: the release's ``FracAtlas/`` directory.
        record: a present image.

    Returns:
        EncodedImage: original JPEG bytes, or a lossless PNG of the decoded,
        EXIF-transposed pixels.

    Raises:
        DatasetError: the file changed since the release was read (digest or size differ).
    """
    path = root / record.path
    if not needs_reencode(record):
        data = path.read_bytes()
        if record.sha256 is not None and hashlib.sha256(data).hexdigest() != record.sha256:
            raise DatasetError(
                f"{path}: sha256 differs from the one read moments ago ({record.sha256}); "
                "the release changed during the build; re-run `fracbench build`"
            )
        return EncodedImage(data, f"{record.image_id}.jpg", reencoded=False)
    decoded = decode(path)
    if (record.width, record.height) != decoded.image.size:
        raise DatasetError(
            f"{path}: decoded size {decoded.image.size} in the annotation frame, expected "
            f"{(record.width, record.height)} from the release records; the release changed "
            "during the build; re-run `fracbench build`"
        )
    return EncodedImage(png_bytes(decoded.image), f"{record.image_id}.png", reencoded=True)


def png_bytes(image: Image.Image, *, mask: bool = False) -> bytes:
    """Encode ``image`` as PNG with fixed settings (deterministic bytes).

    Args:
        image: any Pillow image in a PNG-compatible mode (``L``, ``RGB``, ...).
        mask: use the mask settings (:data:`MASK_COMPRESS`) instead of :data:`PNG_COMPRESS_LEVEL`.

    Returns:
        bytes: the PNG file, no metadata chunks.
    """
    buf = io.BytesIO()
    if mask:
        level, strategy = MASK_COMPRESS
        image.save(buf, format="PNG", compress_level=level, compress_type=strategy)
    else:
        image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def render_mask(polygons: list[tuple[float, ...]], width: int, height: int) -> np.ndarray:
    """Rasterise COCO polygons with pycocotools (``frPyObjects`` then ``decode``).

    Args:
        polygons: flat ``(x1, y1, x2, y2, ...)`` polygons in pixels, any number.
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        np.ndarray: ``(height, width)`` uint8, 1 inside any polygon, else 0 (column-major
        as pycocotools decodes it; :func:`mask_image` turns it into an image without a copy
        through numpy).
    """
    from pycocotools import mask as mask_utils

    # pycocotools reads a first entry of exactly 4 numbers as a box, and a polygon of
    # fewer than 3 points has no area: keep only real polygons.
    polys = [[float(v) for v in p] for p in polygons if len(p) >= 6 and len(p) % 2 == 0]
    if not polys:
        return np.zeros((height, width), dtype=np.uint8)
    rles = mask_utils.frPyObjects(polys, height, width)
    with warnings.catch_warnings():
        # pycocotools' decode trips numpy 2's copy-keyword deprecation on every call; the
        # result is unaffected, and 717 identical warnings per build help no one.
        warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
        return mask_utils.decode(mask_utils.merge(rles))


def mask_image(mask: np.ndarray) -> Image.Image:
    """A ``(height, width)`` 0/1 uint8 array as a mode ``L`` image.

    A column-major array (what pycocotools decodes) is transposed by Pillow, which is
    about twice as fast as making it row-major in numpy for the 2304x2880 scans.
    """
    if mask.flags.f_contiguous and not mask.flags.c_contiguous:
        return Image.fromarray(mask.T).transpose(Image.Transpose.TRANSPOSE)
    return Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))


class MaskEncoder:
    """PNG masks (mode ``L``, 0/1) per image; empty masks are shared per size."""

    def __init__(self) -> None:
        self._empty: dict[tuple[int, int], bytes] = {}

    def encode(self, record: ImageRecord) -> EncodedImage:
        """The mask of ``record``: the union of its instances' polygons at its size.

        Args:
            record: an image with known ``width`` and ``height``.

        Returns:
            EncodedImage: PNG bytes named ``<image_id>_mask.png``.
        """
        polygons = [p for inst in record.instances for p in inst.polygons]
        size = (int(record.width), int(record.height))
        name = f"{record.image_id}_mask.png"
        if not polygons:
            if size not in self._empty:
                self._empty[size] = png_bytes(Image.new("L", size, 0), mask=True)
            return EncodedImage(self._empty[size], name, reencoded=True)
        image = mask_image(render_mask(polygons, *size))
        return EncodedImage(png_bytes(image, mask=True), name, reencoded=True)
