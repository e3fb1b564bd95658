"""Batches from a decode-once cache: seeded augmentation, epoch-wise sampling, DDP sharding.

Every random choice is a function of ``(seed, epoch, index)``, never of a
global RNG, so a resumed run sees exactly the batches an uninterrupted one
would, with any number of loader workers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from fracbench.baselines.augment import Jitter, sample_crop, sample_full
from fracbench.baselines.cache import CachedSplit


class CachedImages(Dataset):
    """Items of a :class:`CachedSplit` for one task.

    Each item is a dict: ``index``; ``image`` uint8 ``(1, S, S)``; ``label`` (int);
    ``boxes`` float32 ``(k, 4)`` xyxy in cache pixels (localization); ``mask`` uint8
    ``(1, S, S)`` 0..255 (segmentation).

    Args:
        cached: the decoded split.
        task: ``classification|localization|segmentation``.
        augment: random horizontal flip and brightness/contrast jitter.
        seed: base seed of the augmentation.
        crop: localization: train on ``crop x crop`` windows (:func:`~fracbench.baselines.augment.sample_crop`).
        jitter: the warp ranges of crops (localization) or whole images (classification; None: flip only).
        on_fracture: share of windows centred near a fracture on fractured images.
    """

    def __init__(self, cached: CachedSplit, task: str, *, augment: bool, seed: int = 0, crop: int | None = None,
                 jitter: Jitter | None = None, on_fracture: float = 0.8):
        self.cached = cached
        self.task = task
        self.augment = augment
        self.seed = seed
        self.crop = crop
        self.jitter = jitter
        self.on_fracture = on_fracture
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation stream of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cached)

    def __getitem__(self, i: int) -> dict:
        c = self.cached
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        item = {"index": int(i), "label": int(c.labels[i])}
        if self.task == "localization" and self.crop:
            # a jittered window at full resolution, near a fracture most of the time
            window, boxes = sample_crop(np.asarray(c.images[i]), c.content_shape(i), c.boxes_xyxy(i), self.crop, rng,
                                        self.jitter or Jitter(), on_fracture=bool(rng.random() < self.on_fracture))
            item["boxes"] = torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32))
            item["image"] = torch.from_numpy(np.ascontiguousarray(window))[None]
            return item
        if self.task == "classification" and self.augment and self.jitter is not None:
            img = sample_full(np.asarray(c.images[i]), c.content_shape(i), rng, self.jitter)
            item["image"] = torch.from_numpy(np.ascontiguousarray(img))[None]
            return item
        img = np.array(c.images[i], dtype=np.uint8)
        flip = False
        if self.augment:
            flip = bool(rng.random() < 0.5)
            gain, bias = rng.uniform(0.85, 1.15), rng.uniform(-20, 20)
            h, w = c.content_shape(i)
            region = img[:h, :w].astype(np.float32) * gain + bias
            img[:h, :w] = np.clip(region, 0, 255).astype(np.uint8)
        if self.task == "localization":
            boxes = c.boxes_xyxy(i)
            if flip:
                _, w = c.content_shape(i)
                boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], axis=1).reshape(-1, 4)
            item["boxes"] = torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32))
        if self.task == "segmentation":
            mask = np.array(c.masks[i], dtype=np.uint8)
            if flip:
                _, w = c.content_shape(i)
                mask[:, :w] = mask[:, :w][:, ::-1]
            item["mask"] = torch.from_numpy(mask)[None]
        if flip:
            _, w = c.content_shape(i)
            img[:, :w] = img[:, :w][:, ::-1]
        item["image"] = torch.from_numpy(np.ascontiguousarray(img))[None]
        return item


def collate(items: list[dict]) -> dict:
    """Stack images (and masks, labels); keep boxes as a list."""
    out = {
        "index": torch.tensor([it["index"] for it in items]),
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.float32),
    }
    if "boxes" in items[0]:
        out["boxes"] = [it["boxes"] for it in items]
    if "mask" in items[0]:
        out["mask"] = torch.stack([it["mask"] for it in items])
    return out


class EpochSampler(Sampler[int]):
    """Shuffled indices for one epoch, this rank's shard only.

    With ``negatives_per_positive`` set, each epoch keeps every positive image and a
    fresh random draw of that many negatives per positive, so all negatives are still
    seen over the epochs while an epoch costs less (detection and segmentation on CPU).

    Args:
        labels: ``(N,)`` 0/1 labels.
        seed: base seed; the order of epoch ``e`` depends only on ``(seed, e)``.
        rank, world_size: the DDP shard (padded so every rank gets the same count).
        negatives_per_positive: None for every image each epoch.
    """

    def __init__(self, labels: np.ndarray, *, seed: int, rank: int = 0, world_size: int = 1,
                 negatives_per_positive: float | None = None):
        self.labels = np.asarray(labels)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.ratio = negatives_per_positive
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the order of ``epoch``."""
        self.epoch = epoch

    def _epoch_indices(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, 7919])
        idx = np.arange(len(self.labels))
        if self.ratio is not None:
            pos, neg = idx[self.labels == 1], idx[self.labels == 0]
            k = min(len(neg), int(round(self.ratio * max(len(pos), 1))))
            idx = np.concatenate([pos, rng.choice(neg, size=k, replace=False)])
        idx = rng.permutation(idx)
        per_rank = -(-len(idx) // self.world_size)
        idx = np.resize(idx, per_rank * self.world_size)  # pad by wrapping, like DistributedSampler
        return idx[self.rank :: self.world_size]

    def __iter__(self):
        return iter(self._epoch_indices().tolist())

    def __len__(self) -> int:
        return len(self._epoch_indices())


def to_model_input(images: torch.Tensor, device: torch.device, *, channels_last: bool) -> torch.Tensor:
    """uint8 ``(B, 1, S, S)`` to float ``(B, 3, S, S)`` normalised for EfficientNet-Lite (mean/std 0.5)."""
    x = images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0).expand(-1, 3, -1, -1)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
