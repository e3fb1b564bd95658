"""Decoding a FracAtlas JPEG into the annotation frame.

The annotations use the EXIF-rotated frame, and 59 JPEGs of the release are
truncated: they decode only with Pillow's truncated-image recovery. This module
is the one place that knows both; everything that needs pixels calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile

_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """One decoded image.

    Attributes:
        image: the pixels in the EXIF-corrected (annotation) frame, mode ``L`` or ``RGB``.
        stored_size: ``(width, height)`` of the stored pixels, before orientation.
        orientation: the EXIF orientation tag (1 where absent).
        truncated: True when the file decodes only with truncated-image recovery.
        mode: the stored Pillow mode.
    """

    image: Image.Image
    stored_size: tuple[int, int]
    orientation: int
    truncated: bool
    mode: str


def decode(path: str | Path, *, draft: tuple[int, int] | None = None) -> DecodedImage:
    """Decode a JPEG, apply its EXIF orientation and recover a truncated stream.

    Args:
        path: the JPEG file.
        draft: optional ``(width, height)`` hint: lets libjpeg decode at 1/2, 1/4 or 1/8
            scale (at least this size) when only a thumbnail is needed. Sizes reported
            in ``stored_size`` are always the full stored size.

    Returns:
        DecodedImage: pixels in the annotation frame and what it took to get them.

    Raises:
        OSError: the file is not a decodable image even with recovery.
    """
    with Image.open(path) as im:
        stored_size = im.size
        mode = im.mode
        orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
        if draft is not None:
            im.draft(im.mode, draft)
        truncated = False
        try:
            im.load()
        except OSError:
            # Pillow refuses truncated streams unless asked; the flag is process-global,
            # so set it only around this one load and restore it.
            truncated = True
            previous = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = True
            try:
                with Image.open(path) as again:
                    if draft is not None:
                        again.draft(again.mode, draft)
                    again.load()
                    pixels = again.copy()
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
        else:
            pixels = im.copy()
    if orientation != 1:
        pixels = _transpose(pixels, orientation)
    return DecodedImage(pixels, stored_size, orientation, truncated, mode)


_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def _transpose(image: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation tag (the same table as ``PIL.ImageOps.exif_transpose``)."""
    for op in _TRANSPOSE.get(orientation, ()):
        image = image.transpose(op)
    return image


def oriented_size(stored_size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``(width, height)`` after applying an EXIF orientation to a stored size."""
    w, h = stored_size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
