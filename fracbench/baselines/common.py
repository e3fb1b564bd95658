"""What every baseline provides, and the validation AP used for model selection.

A baseline is a small object (:class:`Baseline`) that builds its network,
computes a training loss on a batch, runs inference over a decoded split, and
turns raw outputs into submission predictions. The training loop, DDP, AMP and
checkpointing (``fracbench.baselines.train``) are shared.

The AP here (pycocotools, negatives included) only picks the best epoch and
post-processing on *validation*; official scores come from ``fracbench score``.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from fracbench.baselines.cache import CachedSplit


class Baseline:
    """Base class of the three reference baselines.

    Class attributes (defaults of the CLI): ``task``, ``config`` (built-dataset config),
    ``image_size``, ``batch_size``, ``lr``, ``epochs``, ``negatives_per_positive``
    (None: every image every epoch), ``metric`` (the validation metric, higher is better),
    ``encoder_prefix`` (where the timm EfficientNet-Lite0 sits in the model), ``crop``
    (training window side, localization), ``backbone_lr`` (encoder LR multiple), ``ema_decay``
    and ``jitter`` (a :class:`~fracbench.baselines.augment.Jitter`, None: flip only).
    """

    task = ""
    kind = "default"
    config = ""
    with_masks = False
    image_size = 256
    batch_size = 16
    lr = 1e-3
    epochs = 6
    negatives_per_positive: float | None = None
    metric = ""
    encoder_prefix = ""
    crop: int | None = None
    freeze_stages = 0
    backbone_lr: float | None = None
    ema_decay: float | None = None
    jitter = None

    def build_model(self, *, pretrained: bool = True):
        """The network (``torch.nn.Module``), encoder initialised from the wheel if ``pretrained``."""
        raise NotImplementedError

    def loss(self, model, batch: dict, device, *, channels_last: bool):
        """Scalar training loss of one collated batch."""
        raise NotImplementedError

    def infer(self, model, cached: CachedSplit, device, *, batch_size: int, progress=None) -> list[Any]:
        """Raw outputs, one per image of ``cached``, in its order (model in eval mode)."""
        raise NotImplementedError

    def validation_metric(self, raw: list[Any], cached: CachedSplit) -> float:
        """The model-selection metric on validation (higher is better)."""
        raise NotImplementedError

    def fit_postprocessing(self, raw: list[Any], cached: CachedSplit) -> dict:
        """Choose calibration/thresholds on validation outputs; a JSON-able dict."""
        return {}

    def predictions(self, raw: list[Any], cached: CachedSplit, post: dict, *, progress=None) -> list[dict]:
        """Submission prediction entries, one per image."""
        raise NotImplementedError

    def submission_threshold(self, post: dict) -> float | None:
        """The top-level ``threshold`` of the submission, if the task has one."""
        return None


def coco_ap50(cached: CachedSplit, detections: list[list[dict]], iou_type: str,
              gt_segmentations: list[list[dict]] | None = None, *, frame: str | None = None) -> float:
    """COCO AP at IoU 0.5 over every scored image of ``cached``, negatives included.

    Args:
        cached: the split; boxes in original pixels are the ground truth for ``bbox``.
        detections: per image, dicts with ``bbox`` ``[x, y, w, h]`` (``bbox``) or
            ``segmentation`` (an RLE, ``segm``) and ``score``.
        iou_type: ``bbox`` or ``segm``.
        gt_segmentations: per image, per instance, an RLE (``segm`` only), in the same
            frame as the detections.
        frame: ``original`` or ``cache``, the frame of masks (default: original for
            ``bbox``, the cache frame for ``segm``).

    Returns:
        float: AP50 (0.0 where nothing is detected; NaN where no image has a fracture).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, dets = [], [], []
    for i in range(len(cached)):
        if not cached.scored[i]:
            continue
        in_cache = (frame or ("original" if gt_segmentations is None else "cache")) == "cache"
        w, h = (cached.size, cached.size) if in_cache else (int(v) for v in cached.sizes[i])
        images.append({"id": i, "width": w, "height": h})
        for k, box in enumerate(cached.boxes[i]):
            ann = {"id": len(annotations) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                   "bbox": [float(v) for v in box], "area": float(box[2] * box[3])}
            if iou_type == "segm":
                from pycocotools import mask as mask_utils

                ann["segmentation"] = gt_segmentations[i][k]
                ann["area"] = float(mask_utils.area(ann["segmentation"]))
            annotations.append(ann)
        for d in detections[i]:
            dets.append({"image_id": i, "category_id": 1, "score": float(d["score"]),
                         **({"bbox": [float(v) for v in d["bbox"]]} if iou_type == "bbox" else
                            {"segmentation": d["segmentation"]})})
    if not annotations:
        return float("nan")
    if not dets:
        return 0.0
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "fracture"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, iou_type)
        ev.params.iouThrs = np.array([0.5])
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.params.maxDets = [100]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, 0, 0, 0]  # (recall thresholds,)
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else 0.0
