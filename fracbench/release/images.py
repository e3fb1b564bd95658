"""FracAtlas JPEGs: inspecting them cheaply and decoding them into the annotation frame.

The annotations use the EXIF-rotated frame, and 59 JPEGs of the release are
truncated: they decode only with Pillow's truncated-image recovery. This module
is the one place that knows both: :func:`inspect_jpeg` reads size, mode,
orientation and truncation without a full decode (the reader), :func:`decode`
gives the pixels (everything that needs them).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from fracbench.errors import ReleaseError

_EXIF_ORIENTATION = 0x0112
_EOI = b"\xff\xd9"

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class JpegFacts:
    """What the header (and, without an EOI marker, a 1/8-scale decode) says of one JPEG."""

    stored_size: tuple[int, int]
    mode: str
    orientation: int
    truncated: bool
    no_eoi: bool
    sha256: str | None


def inspect_jpeg(path: str | Path, *, hash_file: bool = True, name: str | None = None) -> JpegFacts:
    """Size, mode, EXIF orientation and truncation of a JPEG without fully decoding it.

    Args:
        path: the JPEG.
        hash_file: also compute its sha256 (reads the whole file).
        name: how to name the file in errors (default: ``path``).

    Raises:
        ReleaseError: the file is empty, not a JPEG, or undecodable even with recovery.
    """
    facts = read_jpeg_header(Path(path), hash_file, name or str(path))
    return check_jpeg_scan(Path(path), facts, name or str(path)) if facts.no_eoi else facts


def read_jpeg_header(path: Path, hash_file: bool, name: str) -> JpegFacts:
    """Everything but the truncation verdict (thread-safe: touches no global state)."""
    if hash_file:
        data = path.read_bytes()
        tail, digest, source = data[-2:], hashlib.sha256(data).hexdigest(), io.BytesIO(data)
    else:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.seek(max(0, size - 2))
            tail, digest, source = fh.read(2), None, path
    if not tail:
        raise ReleaseError(f"{name}: empty file (0 bytes); expected a JPEG; re-extract the release")
    try:
        with Image.open(source) as im:
            if im.format != "JPEG":
                raise ReleaseError(f"{name}: expected a JPEG, found {im.format}; re-extract the release")
            orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            stored, mode = im.size, im.mode
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ReleaseError(f"{name}: not a readable JPEG ({exc}); re-extract the release") from None
    if not 1 <= orientation <= 8:
        log.warning("%s: EXIF orientation %d is not 1-8; treated as 1", name, orientation)
        orientation = 1
    return JpegFacts(stored, mode, orientation, False, tail != _EOI, digest)


def check_jpeg_scan(path: Path, facts: JpegFacts, name: str) -> JpegFacts:
    """Decode a JPEG without EOI at 1/8 scale; truncated iff it needs truncated-image recovery."""
    w, h = facts.stored_size
    try:
        with Image.open(path) as im:
            im.draft(im.mode, (max(1, w // 8), max(1, h // 8)))
            im.load()
        return facts
    except OSError:
        pass
    previous = ImageFile.LOAD_TRUNCATED_IMAGES  # process-global: set only around this load
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(path) as im:
            im.draft(im.mode, (max(1, w // 8), max(1, h // 8)))
            im.load()
    except OSError as exc:
        raise ReleaseError(f"{name}: undecodable JPEG even with truncated-image recovery ({exc}); "
                           "re-extract the release") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    return JpegFacts(facts.stored_size, facts.mode, facts.orientation, True, False, facts.sha256)
