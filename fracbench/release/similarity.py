"""Image fingerprints: the cheap descriptors the near-duplicate search is built on.

One :class:`ImageFingerprint` per image, computed once from a (draft-)decoded,
EXIF-corrected image, all on the *content*: the greyscale pixels with flat
borders (padding) and, for a truncated JPEG, the grey fill of its missing rows
trimmed away, then histogram-equalised so that a change of intensity window,
contrast or gamma barely moves any descriptor:

* ``phash_full`` / ``phash_content``: 64-bit DCT perceptual hashes of the whole
  image and of its content;
* ``square``: the content squashed to 48x48, from which the all-pairs
  correlation vectors (:func:`tiny_vectors`) are cut, including crop views;
* ``thumb``: the content at most 128 px a side, for the verification in
  :mod:`fracbench.release.matching`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn

from fracbench.release.images import DecodedImage

ANALYSIS_SIDE = 256
"""Longest side (px) the greyscale image is reduced to before any descriptor."""

THUMB_SIDE = 128
"""Longest side (px) of the verification thumbnail (fine stage)."""

SQUARE_SIDE = 48
"""Side of the squashed content from which the all-pairs vectors are cut."""

TINY_SIDE = 16
"""Side of one all-pairs correlation vector (``TINY_SIDE**2`` values)."""

FLAT_RANGE = 10
"""A border row or column whose grey levels span at most this many (of 255) is padding."""

TRUNCATED_FILL = 128
"""The grey level Pillow leaves where a truncated JPEG has no data."""

@dataclass(frozen=True, slots=True)
class ImageFingerprint:
    """Descriptors of one image (see the module docstring).

    Attributes:
        image_id: the release id.
        kept_rows: fraction of the image's rows that hold decoded data (below 1 only for a
            truncated JPEG: the rest is fill).
        phash_full: 64-bit pHash of the whole (equalised) image.
        phash_content: 64-bit pHash of the (equalised) content.
        square: ``(SQUARE_SIDE, SQUARE_SIDE)`` uint8, the equalised content squashed.
        thumb: ``(h, w)`` uint8 equalised content, longest side at most ``THUMB_SIDE``.
    """

    image_id: str
    kept_rows: float
    phash_full: int
    phash_content: int
    square: np.ndarray
    thumb: np.ndarray


def fingerprint(image_id: str, decoded: DecodedImage) -> ImageFingerprint:
    """Compute the descriptors of one decoded image.

    Args:
        image_id: the release id.
        decoded: the image from :func:`fracbench.release.images.decode` (draft decoding is
            fine: nothing here needs more than ``ANALYSIS_SIDE`` pixels a side).

    Returns:
        ImageFingerprint: the descriptors.
    """
    image = decoded.image.convert("L")
    height = image.height
    kept = _truncation_row(np.asarray(image)) if decoded.truncated else height
    if kept < height:
        image = image.crop((0, 0, image.width, kept))
    scale = ANALYSIS_SIDE / max(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BOX,
        )
    box = content_box(np.asarray(image))
    content = equalise_image(image.crop(box))
    thumb = content.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    return ImageFingerprint(
        image_id=image_id,
        kept_rows=kept / height,
        phash_full=phash(equalise_image(image)),
        phash_content=phash(thumb),
        square=np.asarray(thumb.resize((SQUARE_SIDE, SQUARE_SIDE), Image.Resampling.BOX)),
        thumb=np.asarray(thumb),
    )


def _truncation_row(grey: np.ndarray) -> int:
    """Rows of a truncated JPEG to keep: drop every bottom row that ends in grey fill.

    Pillow leaves the undecoded tail of a truncated stream at ``TRUNCATED_FILL``; the
    first affected band of rows is partly decoded (left) and partly fill (right).
    """
    height, width = grey.shape
    fill = grey == TRUNCATED_FILL
    keep = height
    run = max(4, width // 8)
    while keep > height // 4 and fill[keep - 1, -run:].all():
        keep -= 1
    return keep


def content_box(grey: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box left after peeling flat border rows and columns (padding).

    A border row/column is flat when its grey levels span at most ``FLAT_RANGE``. If
    less than a quarter of a dimension would remain, nothing is peeled from it.

    Args:
        grey: ``(H, W)`` uint8.

    Returns:
        tuple: ``(x0, y0, x1, y1)``, half-open.
    """
    rows_flat = (grey.max(axis=1).astype(np.int16) - grey.min(axis=1)) <= FLAT_RANGE
    cols_flat = (grey.max(axis=0).astype(np.int16) - grey.min(axis=0)) <= FLAT_RANGE
    y0, y1 = _peel(rows_flat)
    x0, x1 = _peel(cols_flat)
    return x0, y0, x1, y1


def _peel(flat: np.ndarray) -> tuple[int, int]:
    length = len(flat)
    start, stop = 0, length
    while start < stop and flat[start]:
        start += 1
    while stop > start and flat[stop - 1]:
        stop -= 1
    if stop - start < max(1, length // 4):
        return 0, length
    return start, stop


def equalise_image(grey: Image.Image) -> Image.Image:
    """Histogram-equalise a mode ``L`` image: each grey level becomes its mid-rank (0-255).

    Any monotone change of intensity (window/level, contrast, gamma) leaves the result
    nearly unchanged, which is what makes the descriptors window-invariant.
    """
    hist = np.asarray(grey.histogram(), dtype=np.float64)
    cdf = np.cumsum(hist) - hist / 2
    lut = np.round(255 * cdf / max(1.0, hist.sum())).astype(np.uint8)
    return grey.point(lut.tolist())


def phash(grey: Image.Image) -> int:
    """64-bit DCT perceptual hash: 32x32 box-resize, DCT, 8x8 low frequencies vs median.

    Args:
        grey: a mode ``L`` image.

    Returns:
        int: the hash; the top bit (DC term) is always 0, so distances are over 63 bits.
    """
    small = np.asarray(grey.resize((32, 32), Image.Resampling.BOX), dtype=np.float32)
    ac = dctn(small, norm="ortho")[:8, :8].ravel()[1:]
    bits = np.concatenate([[False], ac > np.median(ac)])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between two arrays of 64-bit hashes, broadcast (uint8)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.uint8)


def tiny_vectors(
    squares: np.ndarray, view: tuple[float, float, float, float] = (0, 0, 1, 1), side: int = TINY_SIDE
) -> np.ndarray:
    """Zero-mean, unit-norm ``side**2`` vectors of one view of every squashed content.

    ``vectors_a @ vectors_b.T`` is then the Pearson correlation of every pair.

    Args:
        squares: ``(N, SQUARE_SIDE, SQUARE_SIDE)`` uint8 (``ImageFingerprint.square``).
        view: ``(x0, y0, x1, y1)`` in fractions of the content: the window to keep, e.g.
            ``(0, 0, 1, 0.7)`` for its top 70 % (what a truncated copy holds).
        side: the vectors are this many bins a side.

    Returns:
        np.ndarray: ``(N, side**2)`` float32.
    """
    rows = area_matrix(view[1], view[3], side)
    cols = area_matrix(view[0], view[2], side)
    out = np.matmul(np.matmul(rows, squares.astype(np.float32)), cols.T).reshape(len(squares), -1)
    return normalise_rows(out)


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows minus their mean, divided by their norm (rows of zeros stay zero), float32."""
    out = vectors - vectors.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norm > 0, norm, 1)).astype(np.float32)


def area_matrix(start: float, stop: float, side: int = TINY_SIDE) -> np.ndarray:
    """``(side, SQUARE_SIDE)`` float32 weights averaging ``[start, stop)`` of an axis into bins."""
    edges = np.linspace(start, stop, side + 1) * SQUARE_SIDE
    pixel = np.arange(SQUARE_SIDE)
    lo = np.clip(edges[:-1, None] - pixel[None, :], 0, 1)
    hi = np.clip(edges[1:, None] - pixel[None, :], 0, 1)
    weights = hi - lo
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
