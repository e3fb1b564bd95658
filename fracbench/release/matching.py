"""Verifying a candidate pair: align two thumbnails, then compare their fine detail.

:func:`match_pair` takes two ``ImageFingerprint.thumb`` s (equalised content, at most
128 px a side). A coarse search finds the alignment: both squashed to one shape, or
one placed inside the other at every scale of ``SCALES`` and every offset (both ways
round, one batched FFT per way), scored by normalised cross-correlation (NCC). The
pair's *detail score* is then the NCC of the band-pass (difference-of-Gaussians)
images at that alignment, refined by a few pixels, over the best of the top 100 %,
85 % and 70 % of the overlap (a damaged or cut JPEG loses its last rows), with column
means removed (the scanner's vertical stripes recur across different radiographs).

A re-encoded, resized, cropped, padded or re-windowed copy of one radiograph keeps
its fine detail; another radiograph, even of the same limb in the same position,
mostly does not. The threshold lives in ``release.audit`` (``detail_accept``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import irfft2, rfft2
from scipy.ndimage import gaussian_filter

COARSE_SIDE = 40
"""Longest side (px) of the coarse alignment search."""

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
    details = {id(a): _high_pass(a.astype(np.float32)), id(b): _high_pass(b.astype(np.float32))}
    squashed = _squashed(a, b, details[id(a)], details[id(b)])
    coarse, detail, scale, mode = squashed[0], detail_score(*squashed[1:]), 1.0, "squashed"
    for big, small in ((a, b), (b, a)):
        score, at_scale, offset = _coarse_inside(big, small)
        # the coarse grid is 0.05 wide: below full width, refine the scale by half a step
        for fine_scale in (at_scale,) if at_scale >= 1 else (at_scale - 0.025, at_scale, at_scale + 0.025):
            inside = detail_score(*_detail_inside(details[id(big)], details[id(small)], fine_scale, offset))
            if inside > detail:
                coarse, detail, scale, mode = score, inside, round(fine_scale, 3), "inside"
    return PairMatch(round(coarse, 4), round(detail, 4), scale, mode)


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (uint8 or float32) resized to ``(width, height)`` as float32."""
    if image.shape[::-1] == size:
        return image.astype(np.float32)
    source = Image.fromarray(image if image.dtype == np.uint8 else image.astype(np.float32))
    return np.asarray(source.resize(size, Image.Resampling.BILINEAR), np.float32)


def _high_pass(image: np.ndarray) -> np.ndarray:
    """Band-pass (difference of Gaussians): structure finer than ``DETAIL_SIGMAS[1]`` px,
    without the pixel noise and compression artefacts finer than ``DETAIL_SIGMAS[0]``."""
    return gaussian_filter(image, DETAIL_SIGMAS[0]) - gaussian_filter(image, DETAIL_SIGMAS[1])


def _squashed(
    a: np.ndarray, b: np.ndarray, a_detail: np.ndarray, b_detail: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Coarse correlation of ``b`` squashed to ``a``'s shape, and the aligned detail images."""
    size = a_detail.shape[::-1]
    b_resized = _resized(b_detail, size)
    coarse = _pearson(_resized(a, _coarse_size(a)), _resized(b, _coarse_size(a)))
    margin = REFINE_PX
    inner = b_resized[margin:-margin, margin:-margin] if min(size) > 2 * margin + 4 else b_resized
    return (coarse, *_aligned(a_detail, inner))


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
    big_detail: np.ndarray, small_detail: np.ndarray, scale: float, offset: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``small`` placed in ``big`` (given by its detail image) at a coarse alignment, refined
    by a few px: the aligned detail images."""
    height, width = big_detail.shape
    w = round(width * scale)
    h = min(height, round(w * small_detail.shape[0] / small_detail.shape[1]))
    template = _resized(small_detail, (w, h))
    x, y = round(offset[0] * width), round(offset[1] * height)
    m = REFINE_PX
    y0, x0 = max(0, y - m), max(0, x - m)
    window = big_detail[y0 : min(height, y + h + m), x0 : min(width, x + w + m)]
    if window.shape[0] < h or window.shape[1] < w:
        return template, np.zeros_like(template)
    return _aligned(window, template)


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
