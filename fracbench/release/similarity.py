"""Image fingerprints and pairwise similarity for near-duplicate detection.

One :class:`ImageFingerprint` per image, computed once from a (draft-)decoded,
EXIF-corrected image:

* the *content* of the image: the greyscale pixels with flat borders (padding)
  and, for a truncated JPEG, the grey fill of the missing rows trimmed away;
* ``phash_full`` / ``phash_content``: 64-bit DCT perceptual hashes of the whole
  image and of its content, after histogram equalisation (so a change of
  intensity window, contrast or gamma barely moves them);
* ``tiny``: the content equalised and squashed to 16x16, zero mean and unit
  norm, so ``tiny_a @ tiny_b`` is a Pearson correlation over all pairs at once;
* ``thumb``: the equalised content at most 96 px a side, for the verification.

Candidate pairs come from cheap all-pairs scores (hash distances, ``tiny``
correlation); each candidate is then verified by :func:`aligned_correlation`,
the best normalised cross-correlation of one image's content placed inside the
other's over a range of scales and offsets, which a re-encoded, resized,
cropped, padded or re-windowed copy of one radiograph passes and a second
exposure of the same limb does not. The thresholds live in ``release.audit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.signal import correlate

from fracbench.release.images import DecodedImage

ANALYSIS_SIDE = 256
"""Longest side (px) the greyscale image is reduced to before any descriptor."""

THUMB_SIDE = 96
"""Longest side (px) of the verification thumbnail."""

TINY_SIDE = 16
"""Side of the squashed all-pairs correlation vector (``TINY_SIDE**2`` values)."""

FLAT_RANGE = 10
"""A border row or column whose grey levels span at most this many (of 255) is padding."""

TRUNCATED_FILL = 128
"""The grey level Pillow leaves where a truncated JPEG has no data."""

SCALES = tuple(np.round(np.linspace(0.5, 1.0, 11), 3))
"""Fractions of the larger content's width tried for the smaller one in the crop search."""


@dataclass(frozen=True, slots=True)
class ImageFingerprint:
    """Descriptors of one image (see the module docstring).

    Attributes:
        image_id: the release id.
        size: ``(width, height)`` of the decoded image (draft scale), EXIF-corrected.
        content_box: ``(x0, y0, x1, y1)`` of the content within the analysis image.
        phash_full: 64-bit pHash of the whole (equalised) image.
        phash_content: 64-bit pHash of the (equalised) content.
        tiny: ``(TINY_SIDE**2,)`` float32, zero mean, unit norm.
        thumb: ``(h, w)`` uint8 equalised content, longest side ``THUMB_SIDE``.
    """

    image_id: str
    size: tuple[int, int]
    content_box: tuple[int, int, int, int]
    phash_full: int
    phash_content: int
    tiny: np.ndarray
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
    grey = np.asarray(decoded.image.convert("L"))
    if decoded.truncated:
        grey = grey[: _truncation_row(grey)]
    image = Image.fromarray(grey)
    scale = ANALYSIS_SIDE / max(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BOX,
        )
    analysis = np.asarray(image)
    x0, y0, x1, y1 = content_box(analysis)
    content = analysis[y0:y1, x0:x1]
    equalised_content = equalise(content)
    thumb = Image.fromarray(equalised_content)
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    tiny = np.asarray(
        Image.fromarray(equalised_content).resize((TINY_SIDE, TINY_SIDE), Image.Resampling.BOX),
        dtype=np.float32,
    ).ravel()
    tiny = tiny - tiny.mean()
    norm = float(np.linalg.norm(tiny))
    tiny = tiny / norm if norm > 0 else tiny
    return ImageFingerprint(
        image_id=image_id,
        size=decoded.image.size,
        content_box=(x0, y0, x1, y1),
        phash_full=phash(equalise(analysis)),
        phash_content=phash(equalised_content),
        tiny=tiny.astype(np.float32),
        thumb=np.asarray(thumb),
    )


def _truncation_row(grey: np.ndarray) -> int:
    """Rows to keep of a truncated JPEG: drop every row that ends in a run of grey fill.

    Pillow leaves the undecoded tail of a truncated stream at ``TRUNCATED_FILL``; the
    first affected row is partly decoded (left) and partly fill (right).
    """
    height, width = grey.shape
    fill = grey == TRUNCATED_FILL
    keep = height
    min_run = max(4, width // 8)
    while keep > height // 4:
        row = fill[keep - 1]
        if row[-min_run:].all():
            keep -= 1
        else:
            break
    return keep


def content_box(grey: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box left after peeling flat border rows and columns (padding).

    A border row/column is flat when its grey levels span at most ``FLAT_RANGE``. At
    least a quarter of each dimension is always kept.

    Args:
        grey: ``(H, W)`` uint8.

    Returns:
        tuple: ``(x0, y0, x1, y1)``, half-open.
    """
    height, width = grey.shape
    rows_flat = (grey.max(axis=1).astype(np.int16) - grey.min(axis=1)) <= FLAT_RANGE
    cols_flat = (grey.max(axis=0).astype(np.int16) - grey.min(axis=0)) <= FLAT_RANGE
    y0, y1 = _peel(rows_flat, height)
    x0, x1 = _peel(cols_flat, width)
    return x0, y0, x1, y1


def _peel(flat: np.ndarray, length: int) -> tuple[int, int]:
    """Half-open range left after removing flat entries from both ends (keeps >= 1/4)."""
    start, stop = 0, length
    while start < stop and flat[start]:
        start += 1
    while stop > start and flat[stop - 1]:
        stop -= 1
    if stop - start < max(1, length // 4):
        return 0, length
    return start, stop


def equalise(grey: np.ndarray) -> np.ndarray:
    """Histogram-equalise a uint8 image: each pixel becomes its grey level's rank (0-255).

    Any monotone change of intensity (window/level, contrast, gamma) leaves the result
    nearly unchanged, which is what makes the descriptors window-invariant.
    """
    hist = np.bincount(grey.ravel(), minlength=256)
    cdf = np.cumsum(hist) - hist / 2
    lut = np.round(255 * cdf / max(1, grey.size)).astype(np.uint8)
    return lut[grey]


def phash(grey: np.ndarray) -> int:
    """64-bit DCT perceptual hash: 32x32 box-resize, DCT, 8x8 low frequencies vs median.

    Args:
        grey: ``(H, W)`` uint8.

    Returns:
        int: the hash; bit 63 is the DC term, always 0 (so distances are over 63 bits).
    """
    small = np.asarray(Image.fromarray(grey).resize((32, 32), Image.Resampling.BOX), dtype=np.float32)
    coefficients = dctn(small, norm="ortho")[:8, :8].ravel()
    ac = coefficients[1:]
    bits = np.concatenate([[False], ac > np.median(ac)])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming_matrix(hashes: np.ndarray) -> np.ndarray:
    """All-pairs Hamming distances of 64-bit hashes.

    Args:
        hashes: ``(N,)`` uint64.

    Returns:
        np.ndarray: ``(N, N)`` uint8.
    """
    return np.bitwise_count(hashes[:, None] ^ hashes[None, :]).astype(np.uint8)


def aligned_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """How well one image's content explains the other's: the best NCC over crops and scales.

    Tries (1) both contents squashed to a common size (resize, re-encode, padding once
    trimmed, aspect change) and (2) the narrower-relative content placed inside the
    other at each scale of ``SCALES`` and every offset (crop). Both ways round.

    Args:
        a, b: equalised uint8 thumbnails (``ImageFingerprint.thumb``).

    Returns:
        float: the largest normalised cross-correlation found, in ``[-1, 1]``.
    """
    best = _squashed_correlation(a, b)
    for big, small in ((a, b), (b, a)):
        best = max(best, _crop_correlation(big, small))
    return best


def _squashed_correlation(a: np.ndarray, b: np.ndarray, side: int = 48) -> float:
    """Pearson correlation of both thumbnails resized to ``side`` x ``side``."""
    va = np.asarray(Image.fromarray(a).resize((side, side), Image.Resampling.BILINEAR), np.float32)
    vb = np.asarray(Image.fromarray(b).resize((side, side), Image.Resampling.BILINEAR), np.float32)
    return _pearson(va.ravel(), vb.ravel())


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    denominator = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denominator) if denominator > 0 else 0.0


def _crop_correlation(big: np.ndarray, small: np.ndarray) -> float:
    """Best NCC of ``small``, resized to each fraction of ``big``'s width, inside ``big``."""
    big_f = big.astype(np.float64)
    height, width = big.shape
    best = -1.0
    small_image = Image.fromarray(small)
    for scale in SCALES:
        w = max(8, round(width * scale))
        h = max(8, round(w * small.shape[0] / small.shape[1]))
        if h > height:
            # the aspect does not fit at this width: fit the height instead
            h = height
            w = max(8, round(h * small.shape[1] / small.shape[0]))
            if w > width:
                continue
        template = np.asarray(small_image.resize((w, h), Image.Resampling.BILINEAR), np.float64)
        best = max(best, _best_ncc(big_f, template))
    return best


def _best_ncc(image: np.ndarray, template: np.ndarray) -> float:
    """Max over offsets of the normalised cross-correlation of ``template`` inside ``image``."""
    h, w = template.shape
    t = template - template.mean()
    t_norm = float(np.sqrt((t * t).sum()))
    if t_norm == 0:
        return 0.0
    numerator = correlate(image, t, mode="valid", method="fft" if h * w > 256 else "direct")
    window_sum = _window_sums(image, h, w)
    window_sq = _window_sums(image * image, h, w)
    variance = np.maximum(window_sq - window_sum * window_sum / (h * w), 0.0)
    denominator = np.sqrt(variance) * t_norm
    with np.errstate(invalid="ignore", divide="ignore"):
        ncc = np.where(denominator > 1e-6 * t_norm, numerator / denominator, 0.0)
    return float(ncc.max())


def _window_sums(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums of every ``h`` x ``w`` window (valid positions), via an integral image."""
    integral = np.pad(image, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
