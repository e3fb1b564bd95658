"""Geometric augmentation of decoded images: one affine warp per item.

Every draw is a function of a NumPy ``Generator`` the loader seeds from
``(seed, epoch, index)``, so a resumed run sees the same items.

- :func:`sample_crop` (localization): a ``crop x crop`` window of the cache frame,
  centred near a fracture (or anywhere, for negatives and background crops), with
  scale jitter, a small rotation and a horizontal flip. Fractures are small (the median
  box is about 35 px at 640 px), so the detector trains on windows at full resolution
  instead of the whole image at a lower one.
- :func:`sample_full` (classification): the whole image with the same jitter, kept
  inside its frame.

Boxes follow the warp as the bounding box of the box's inscribed ellipse (the
rotated corners would inflate every box by up to ``|sin|+|cos|``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Jitter:
    """Ranges of the random warp.

    Attributes:
        scale: ``(lo, hi)`` zoom factor, drawn log-uniformly.
        rotate_deg: maximum absolute rotation in degrees.
        flip: probability of a horizontal flip.
        gain, bias: intensity ``x * gain + bias`` ranges (uint8 pixels).
        min_visible: a box keeps at least this share of its area inside the window, or is dropped.
    """

    scale: tuple[float, float] = (0.7, 1.4)
    rotate_deg: float = 10.0
    flip: float = 0.5
    gain: tuple[float, float] = (0.8, 1.2)
    bias: tuple[float, float] = (-20.0, 20.0)
    min_visible: float = 0.45


def _affine(center: tuple[float, float], anchor: tuple[float, float], scale: float, angle: float,
            flip: bool) -> np.ndarray:
    """The 2x3 matrix from output to source pixels (PIL's AFFINE convention) taking ``anchor`` to ``center``."""
    c, s = math.cos(angle), math.sin(angle)
    fx = -1.0 if flip else 1.0
    # source = center + R @ diag(fx, 1) @ (out_xy - anchor) / scale
    a, b = c * fx / scale, -s / scale
    d, e = s * fx / scale, c / scale
    u, v = anchor
    return np.array([[a, b, center[0] - a * u - b * v], [d, e, center[1] - d * u - e * v]])


def _warp(img: np.ndarray, m: np.ndarray, out: int) -> np.ndarray:
    from PIL import Image

    data = tuple(float(v) for v in m.reshape(-1))
    return np.asarray(Image.fromarray(img).transform((out, out), Image.AFFINE, data, resample=Image.BILINEAR,
                                                     fillcolor=0))


def warp_boxes(boxes: np.ndarray, m: np.ndarray, out: int, min_visible: float) -> np.ndarray:
    """Map ``(k, 4)`` xyxy source boxes through the inverse of ``m``; clip, drop mostly hidden ones."""
    if not len(boxes):
        return np.zeros((0, 4), np.float32)
    lin = m[:, :2]
    inv = np.linalg.inv(lin)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    a, b = (boxes[:, 2] - boxes[:, 0]) / 2, (boxes[:, 3] - boxes[:, 1]) / 2
    src = np.stack([cx - m[0, 2], cy - m[1, 2]])
    ox, oy = inv @ src
    # the ellipse with semi-axes a, b mapped by inv: its bounding half-widths
    hw = np.sqrt((inv[0, 0] * a) ** 2 + (inv[0, 1] * b) ** 2)
    hh = np.sqrt((inv[1, 0] * a) ** 2 + (inv[1, 1] * b) ** 2)
    full = np.stack([ox - hw, oy - hh, ox + hw, oy + hh], axis=1)
    clipped = np.clip(full, 0, out)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    keep = (area(clipped) >= min_visible * np.maximum(area(full), 1e-6)) & (clipped[:, 2] - clipped[:, 0] >= 1) & (
        clipped[:, 3] - clipped[:, 1] >= 1)
    return clipped[keep].astype(np.float32).reshape(-1, 4)


def _intensity(img: np.ndarray, gain: float, bias: float) -> np.ndarray:
    return np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def _draw(rng: np.random.Generator, jitter: Jitter) -> tuple[float, float, bool]:
    lo, hi = jitter.scale
    scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    angle = math.radians(float(rng.uniform(-jitter.rotate_deg, jitter.rotate_deg)))
    return scale, angle, bool(rng.random() < jitter.flip)


def crop_params(content: tuple[int, int], boxes: np.ndarray, crop: int, rng: np.random.Generator, jitter: Jitter,
                *, on_fracture: bool) -> tuple[np.ndarray, float, float]:
    """The warp of one training window: ``(matrix 2x3 output->source, gain, bias)``.

    Args:
        content: ``(h, w)`` of the image inside the frame (the rest is padding).
        boxes: ``(k, 4)`` xyxy in frame pixels.
        crop: output side.
        rng: the item's generator.
        jitter: warp ranges.
        on_fracture: centre the window near a random box (when there is one).
    """
    scale, angle, flip = _draw(rng, jitter)
    h, w = content
    if on_fracture and len(boxes):
        bx = boxes[int(rng.integers(len(boxes)))]
        reach = 0.35 * crop / scale
        cx = (bx[0] + bx[2]) / 2 + rng.uniform(-reach, reach)
        cy = (bx[1] + bx[3]) / 2 + rng.uniform(-reach, reach)
    else:
        cx, cy = rng.uniform(0, max(w, 1)), rng.uniform(0, max(h, 1))
    m = _affine((float(cx), float(cy)), (crop / 2, crop / 2), scale, angle, flip)
    return m, float(rng.uniform(*jitter.gain)), float(rng.uniform(*jitter.bias))


def sample_crop(img: np.ndarray, content: tuple[int, int], boxes: np.ndarray, crop: int, rng: np.random.Generator,
                jitter: Jitter, *, on_fracture: bool) -> tuple[np.ndarray, np.ndarray]:
    """A jittered ``crop x crop`` window of ``img`` (``(S, S)`` uint8) and the boxes inside it.

    See :func:`crop_params` for the arguments. Returns ``(window (crop, crop) uint8,
    boxes (j, 4) xyxy float32 in window pixels)``.
    """
    m, gain, bias = crop_params(content, boxes, crop, rng, jitter, on_fracture=on_fracture)
    return _intensity(_warp(img, m, crop), gain, bias), warp_boxes(boxes, m, crop, jitter.min_visible)


def full_params(content: tuple[int, int], rng: np.random.Generator, jitter: Jitter) -> tuple[np.ndarray, float, float]:
    """The warp of a whole frame: zoom/rotation/flip/shift about the image centre, which stays in place."""
    scale, angle, flip = _draw(rng, jitter)
    h, w = content
    shift = rng.uniform(-0.05, 0.05, size=2) * (w, h)
    m = _affine((w / 2 + shift[0], h / 2 + shift[1]), (w / 2, h / 2), scale, angle, flip)
    return m, float(rng.uniform(*jitter.gain)), float(rng.uniform(*jitter.bias))


def sample_full(img: np.ndarray, content: tuple[int, int], rng: np.random.Generator, jitter: Jitter) -> np.ndarray:
    """The whole ``(S, S)`` frame warped by :func:`full_params`; the image stays at the frame's top-left."""
    m, gain, bias = full_params(content, rng, jitter)
    return _intensity(_warp(img, m, img.shape[0]), gain, bias)


def warp_batch(images, index, matrices: np.ndarray, out: int, gains: np.ndarray, biases: np.ndarray):
    """:func:`sample_crop`/:func:`sample_full`'s pixel warp for a batch, on the images' device.

    Args:
        images: uint8 tensor ``(N, S, S)`` (e.g. a whole split kept on the GPU).
        index: ``(B,)`` rows to warp.
        matrices: ``(B, 2, 3)`` output-to-source matrices (continuous pixel coordinates).
        out: output side.
        gains, biases: ``(B,)`` intensity jitter.

    Returns:
        torch.Tensor: uint8 ``(B, 1, out, out)``, bilinear, zero outside the source.
    """
    import torch

    dev = images.device
    src = images[torch.as_tensor(index, device=dev)].unsqueeze(1).float()
    size = images.shape[-1]
    centers = torch.arange(out, device=dev, dtype=torch.float32) + 0.5
    v, u = torch.meshgrid(centers, centers, indexing="ij")
    base = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # (out, out, 3)
    m = torch.as_tensor(matrices, device=dev, dtype=torch.float32)
    pts = torch.einsum("hwk,bjk->bhwj", base, m)  # source pixel coordinates
    grid = pts * (2.0 / size) - 1.0
    warped = torch.nn.functional.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    g = torch.as_tensor(gains, device=dev, dtype=torch.float32).view(-1, 1, 1, 1)
    b = torch.as_tensor(biases, device=dev, dtype=torch.float32).view(-1, 1, 1, 1)
    return (warped * g + b).clamp_(0, 255).round_().to(torch.uint8)
