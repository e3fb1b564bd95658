"""Grad-CAM overlays for a classification run's positive predictions.

Grad-CAM (Selvaraju et al., 2017) on the last feature map of EfficientNet-Lite0
(``bn2``, stride 32): the channel weights are the spatially averaged gradients
of the fracture logit, the map is ``ReLU(sum_c w_c A_c)``, upsampled to the
image and blended onto it in red. Only images whose calibrated score reaches
the run's threshold are explained.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fracbench import atomic
from fracbench.errors import BaselineError

log = logging.getLogger(__name__)


def grad_cam(model, x) -> np.ndarray:
    """Grad-CAM of the single logit for a batch.

    Args:
        model: a timm ``tf_efficientnet_lite0`` with a 1-logit head (eval mode).
        x: ``(B, 3, S, S)`` normalised input.

    Returns:
        np.ndarray: ``(B, S, S)`` float32 maps scaled to ``[0, 1]`` per image.
    """
    import torch

    feats = {}
    handle = model.bn2.register_forward_hook(lambda m, i, o: feats.__setitem__("a", o))
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(False)
            logits = model(x).sum()
            act = feats["a"]
            (grads,) = torch.autograd.grad(logits, act)
    finally:
        handle.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * act).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cam = cam.detach().float().cpu().numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return (cam / np.where(peak > 0, peak, 1)).astype(np.float32)


def overlay(grey: np.ndarray, cam: np.ndarray, *, alpha: float = 0.45) -> np.ndarray:
    """Blend a ``[0, 1]`` heat map (red) onto a greyscale uint8 image; ``(H, W, 3)`` uint8."""
    base = np.repeat(grey[..., None].astype(np.float32), 3, axis=2)
    heat = np.zeros_like(base)
    heat[..., 0] = 255 * cam
    heat[..., 1] = 255 * np.clip(cam - 0.5, 0, 1) * 2
    mix = (1 - alpha * cam[..., None]) * base + alpha * cam[..., None] * heat
    return np.clip(mix, 0, 255).astype(np.uint8)


def explain(run_dir: str | Path, split: str, out_dir: str | Path, *, data: str | Path | None = None,
            limit: int | None = None, device: str = "auto",
            progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
    """Write ``<image_id>.png`` overlays (original aspect, cache resolution) of positive predictions.

    Args:
        run_dir: a trained classification run.
        split: the split to explain.
        out_dir: where the PNGs go (created).
        data: the built dataset (default: the run's).
        limit: at most this many images, highest scores first.
        device: ``auto|cpu|cuda``.
        progress: ``progress(stage, done, total)``.

    Returns:
        list[Path]: the files written.

    Raises:
        BaselineError: the run is not a classification run.
    """
    import io

    import torch
    from PIL import Image

    from fracbench.baselines.loader import to_model_input
    from fracbench.baselines.predict import predict
    from fracbench.baselines.train import resolve_device

    sub = predict(run_dir, split, data=data, device=device, progress=progress)
    if sub["task"] != "classification":
        raise BaselineError(f"{run_dir}: Grad-CAM needs a classification run, this one is {sub['task']}")
    from fracbench.baselines.cache import build_cache
    from fracbench.baselines.predict import load_run
    from fracbench.baselines.train import default_cache_dir
    from fracbench.dataset.locate import resolve_data_dir

    _, config, _, model = load_run(run_dir)
    dev = resolve_device(device)
    model.to(dev).eval()
    data_dir = resolve_data_dir(data if data is not None else config["data"])
    cached = build_cache(data_dir, "classification", split, int(config["image_size"]),
                         config.get("cache_dir") or default_cache_dir())
    index = {iid: i for i, iid in enumerate(cached.image_ids)}
    positives = sorted((p for p in sub["predictions"] if p["score"] >= sub["threshold"]), key=lambda p: -p["score"])
    if limit is not None:
        positives = positives[:limit]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, pred in enumerate(positives):
        i = index[pred["image_id"]]
        grey = np.array(cached.images[i])
        x = to_model_input(torch.from_numpy(grey)[None, None], dev, channels_last=False)
        cam = grad_cam(model, x)[0]
        h, w = cached.content_shape(i)
        img = Image.fromarray(overlay(grey[:h, :w], cam[:h, :w]))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        written.append(atomic.write_bytes(out / f"{pred['image_id']}.png", buf.getvalue()))
        if progress is not None:
            progress("grad-cam", k + 1, len(positives))
    log.info("wrote %d Grad-CAM overlays to %s", len(written), out)
    return written
