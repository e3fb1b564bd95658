"""Image fingerprints and pairwise similarity for near-duplicate detection.

One :class:`ImageFingerprint` per image, computed once from a (draft-)decoded,
EXIF-corrected image, all on the *content*: the greyscale pixels with flat
borders (padding) and, for a truncated JPEG, the grey fill of its missing rows
trimmed away, then histogram-equalised so that a change of intensity window,
contrast or gamma barely moves any descriptor:

* ``phash_full`` / ``phash_content``: 64-bit DCT perceptual hashes of the whole
  image and of its content;
* ``square``: the content squashed to 48x48, from which the all-pairs
  correlation vectors (:func:`tiny_vectors`) are cut, including crop views;
* ``thumb``: the content at most 128 px a side, for the verification.

Candidate pairs come from cheap all-pairs scores; each candidate is verified by
:func:`match_pair`: a coarse search (every scale 0.5-1.0 of one content inside
the other, every offset, both ways round, plus both squashed to one shape) finds
the alignment, and the score is the normalised cross-correlation of the
*high-pass* (detail) images at that alignment, refined by a few pixels. A
re-encoded, resized, cropped, padded or re-windowed copy of one radiograph keeps
its fine detail (bone trabeculae, noise, text); a second exposure of the same
limb, or another patient's, does not. Thresholds live in ``release.audit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn, irfft2, rfft2
from scipy.ndimage import gaussian_filter

from fracbench.release.images import DecodedImage

ANALYSIS_SIDE = 256
"""Longest side (px) the greyscale image is reduced to before any descriptor."""

THUMB_SIDE = 128
"""Longest side (px) of the verification thumbnail (fine stage)."""

COARSE_SIDE = 40
"""Longest side (px) of the coarse alignment search."""

SQUARE_SIDE = 48
"""Side of the squashed content from which the all-pairs vectors are cut."""

TINY_SIDE = 16
"""Side of one all-pairs correlation vector (``TINY_SIDE**2`` values)."""

FLAT_RANGE = 10
"""A border row or column whose grey levels span at most this many (of 255) is padding."""

TRUNCATED_FILL = 128
"""The grey level Pillow leaves where a truncated JPEG has no data."""

SCALES = tuple(float(s) for s in np.round(np.linspace(0.7, 1.0, 7), 3))
"""Fractions of the larger content's width tried for the smaller one in the crop search (a copy
keeping less than 70 % of the width is not looked for: no candidate channel would propose it)."""

DETAIL_SIGMAS = (0.8, 2.5)
"""Gaussian sigmas (fine-stage px) of the band-pass that leaves the thumbnails' detail."""

REFINE_PX = 3
"""Fine-stage offsets searched around the coarse alignment, each way."""

DETAIL_TOPS = (1.0, 0.85, 0.7)
"""Top fractions of the aligned overlap over which the detail NCC is taken (the best counts)."""


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


def equalise(grey: np.ndarray) -> np.ndarray:
    """Histogram-equalise a uint8 array (see :func:`equalise_image`)."""
    return np.asarray(equalise_image(Image.fromarray(grey)))


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


@dataclass(frozen=True, slots=True)
class PairMatch:
    """The verified similarity of two images.

    Attributes:
        coarse: best normalised cross-correlation of the (equalised) contents, coarse stage.
        detail: normalised cross-correlation of the high-pass contents at that alignment.
        scale: the smaller content's width as a fraction of the larger's (1.0: same framing).
        mode: ``squashed`` (both resized to one shape) or ``inside`` (one placed in the other).
    """

    coarse: float
    detail: float
    scale: float
    mode: str


def match_pair(a: np.ndarray, b: np.ndarray) -> PairMatch:
    """Align two thumbnails (crop, pad, scale) and measure how much fine detail they share.

    Three alignments are tried: both squashed to one shape, and each placed inside the
    other where the coarse NCC is best; the pair's detail score is the best of the three.

    Args:
        a, b: ``ImageFingerprint.thumb`` of two images.

    Returns:
        PairMatch: the coarse score of the best alignment and the detail score there.
    """
    squashed = _squashed(a, b)
    coarse, detail, scale, mode = squashed[0], detail_score(*squashed[1:]), 1.0, "squashed"
    for big, small in ((a, b), (b, a)):
        score, at_scale, offset = _coarse_inside(big, small)
        inside = detail_score(*_detail_inside(big, small, at_scale, offset))
        if inside > detail:
            coarse, detail, scale, mode = score, inside, at_scale, "inside"
    return PairMatch(round(coarse, 4), round(detail, 4), scale, mode)


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``(width, height)`` as float32."""
    if image.shape[::-1] == size:
        return image.astype(np.float32)
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR), np.float32)


def _high_pass(image: np.ndarray) -> np.ndarray:
    """Band-pass (difference of Gaussians): structure finer than ``DETAIL_SIGMAS[1]`` px,
    without the pixel noise and compression artefacts finer than ``DETAIL_SIGMAS[0]``."""
    return gaussian_filter(image, DETAIL_SIGMAS[0]) - gaussian_filter(image, DETAIL_SIGMAS[1])


def _squashed(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Coarse correlation of ``b`` resized to ``a``'s shape, and the aligned detail images."""
    size = a.shape[::-1]
    coarse = _pearson(_resized(a, _coarse_size(a)), _resized(b, _coarse_size(a)))
    margin = REFINE_PX
    inner = _high_pass(_resized(b, size))[margin:-margin, margin:-margin]
    if inner.size == 0:
        inner = _high_pass(_resized(b, size))
    return (coarse, *_aligned(_high_pass(_resized(a, size)), inner))


def _aligned(image: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The window of ``image`` where ``template`` correlates best, and ``template``."""
    ncc = _ncc_map(image, template)
    y, x = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    h, w = template.shape
    return image[y : y + h, x : x + w], template


def detail_score(a: np.ndarray, b: np.ndarray) -> float:
    """NCC of two aligned detail images over their top ``DETAIL_TOPS`` fractions; the best.

    A JPEG stream that is cut short or damaged loses (or garbles) its last rows, so a
    damaged copy still shares all the detail of the top part of its original.
    """
    h = a.shape[0]
    best = -1.0
    for top in DETAIL_TOPS:
        rows = max(2, round(h * top))
        x, y = a[:rows], b[:rows]
        # vertical scanner stripes recur across different radiographs: drop column means
        x = x - x.mean(axis=0, keepdims=True)
        y = y - y.mean(axis=0, keepdims=True)
        best = max(best, _pearson(x.ravel(), y.ravel()))
    return best


def _coarse_size(image: np.ndarray) -> tuple[int, int]:
    h, w = image.shape
    s = COARSE_SIDE / max(h, w)
    return max(4, round(w * s)), max(4, round(h * s))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    denominator = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denominator) if denominator > 0 else 0.0


def _coarse_inside(big: np.ndarray, small: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """Best NCC of ``small`` inside ``big`` over ``SCALES`` and offsets, at ``COARSE_SIDE``.

    All scales are correlated in one batched FFT.

    Returns:
        tuple: ``(score, scale, (x, y))`` with the offset in fractions of ``big``'s size.
    """
    field = _Field(_resized(big, _coarse_size(big)))
    height, width = field.image.shape
    sizes = []
    for scale in SCALES:
        w = round(width * scale)
        h = round(w * small.shape[0] / small.shape[1])
        if h <= height and min(w, h) >= 4:
            sizes.append((scale, w, h))
    if not sizes:
        return -1.0, 1.0, (0.0, 0.0)
    stack = np.zeros((len(sizes), height, width))
    norms = np.zeros(len(sizes))
    for k, (_, w, h) in enumerate(sizes):
        t = _resized(small, (w, h)).astype(np.float64)
        t -= t.mean()
        stack[k, :h, :w] = t
        norms[k] = np.sqrt((t * t).sum())
    numerators = irfft2(field.spectrum[None] * np.conj(rfft2(stack, axes=(-2, -1))), (height, width), axes=(-2, -1))
    best = (-1.0, 1.0, (0.0, 0.0))
    for k, (scale, w, h) in enumerate(sizes):
        if norms[k] == 0:
            continue
        ncc = field.normalise(numerators[k, : height - h + 1, : width - w + 1], h, w, norms[k])
        y, x = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        if ncc[y, x] > best[0]:
            best = (float(ncc[y, x]), scale, (x / width, y / height))
    return best


def _detail_inside(
    big: np.ndarray, small: np.ndarray, scale: float, offset: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``small`` placed in ``big`` at a coarse alignment, refined by a few px: aligned details."""
    height, width = big.shape
    w = round(width * scale)
    h = min(height, round(w * small.shape[0] / small.shape[1]))
    template = _high_pass(_resized(small, (w, h)))
    x, y = round(offset[0] * width), round(offset[1] * height)
    m = REFINE_PX
    y0, x0 = max(0, y - m), max(0, x - m)
    window = _high_pass(big.astype(np.float32))[y0 : min(height, y + h + m), x0 : min(width, x + w + m)]
    if window.shape[0] < h or window.shape[1] < w:
        return template, np.zeros_like(template)
    return _aligned(window, template)


def _best_ncc(image: np.ndarray, template: np.ndarray) -> float:
    """Max over offsets of the normalised cross-correlation of ``template`` inside ``image``."""
    return float(_ncc_map(image, template).max())


def _ncc_map(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``template`` at every valid offset in ``image``."""
    return _Field(image).ncc(template)


class _Field:
    """An image prepared for many template searches: its FFT and integral images."""

    def __init__(self, image: np.ndarray):
        self.image = image.astype(np.float64)
        self.spectrum = rfft2(self.image)
        self.integral = _integral(self.image)
        self.integral_sq = _integral(self.image * self.image)

    def ncc(self, template: np.ndarray) -> np.ndarray:
        """NCC of ``template`` at every valid offset (FFT correlation, integral-image norms)."""
        h, w = template.shape
        height, width = self.image.shape
        t = template - template.mean()
        t_norm = float(np.sqrt((t * t).sum()))
        if t_norm == 0:
            return np.zeros((height - h + 1, width - w + 1))
        product = self.spectrum * np.conj(rfft2(t, (height, width)))
        numerator = irfft2(product, (height, width))[: height - h + 1, : width - w + 1]
        return self.normalise(numerator, h, w, t_norm)

    def normalise(self, numerator: np.ndarray, h: int, w: int, t_norm: float) -> np.ndarray:
        """Divide raw correlations of a zero-mean ``h`` x ``w`` template by the window norms."""
        sums = _window(self.integral, h, w)
        variance = np.maximum(_window(self.integral_sq, h, w) - sums * sums / (h * w), 0.0)
        denominator = np.sqrt(variance) * t_norm
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 1e-3 * t_norm, numerator / denominator, 0.0)


def _integral(image: np.ndarray) -> np.ndarray:
    out = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
    out[1:, 1:] = image.cumsum(0).cumsum(1)
    return out


def _window(integral: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums of every ``h`` x ``w`` window (valid positions) from an integral image."""
    return integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
