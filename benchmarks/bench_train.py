"""Training throughput of each baseline on this machine, and the share of step time spent waiting for data.

Run on demand (not a test)::

    .venv/bin/python benchmarks/bench_train.py --data /work/data/built/fracatlas --steps 10 --threads 2

For each task it times ``--steps`` optimizer steps fed by the real input pipeline
(decode-once cache -> CachedImages -> DataLoader, as ``fracbench baseline train``
uses it) and, as the reference measured in the same run, the same number of steps
on one fixed batch already in memory. Reported: images/s with the pipeline, images/s
of the reference, their ratio, and the data-wait share (time blocked on the loader
/ total step time; target < 10 %). The first step of each is a warm-up and not timed.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def _steps(baseline, model, opt, batches, device) -> tuple[float, float, int]:
    """Run the batches; return (total seconds, seconds waiting for data, images)."""
    wait = total = 0.0
    images = 0
    it = iter(batches)
    first = True
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        loss = baseline.loss(model, batch, device, channels_last=device.type == "cuda")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if first:  # warm-up
            first = False
            continue
        wait += t1 - t0
        total += t2 - t0
        images += len(batch["index"])
    return total, wait, images


def bench(task: str, data: str, steps: int, cache: str, device: torch.device, size: int | None,
          batch_size: int | None, freeze_stages: int | None = None) -> dict:
    """Pipeline vs in-memory throughput of one baseline."""
    from fracbench.baselines.cache import build_cache
    from fracbench.baselines.loader import CachedImages, EpochSampler, collate
    from fracbench.baselines.registry import get_baseline
    from fracbench.baselines.weights import freeze_encoder_stages

    baseline = get_baseline(task)
    size = size or baseline.image_size
    bs = batch_size or baseline.batch_size
    if hasattr(baseline, "set_image_size"):
        baseline.set_image_size(size)
    cached = build_cache(data, baseline.config, "train", size, cache, with_masks=baseline.with_masks)
    crop = baseline.crop if baseline.crop and baseline.crop < size else None
    dataset = CachedImages(cached, task, augment=True, crop=crop, jitter=baseline.jitter)  # as training feeds it
    freeze_stages = baseline.freeze_stages if freeze_stages is None else freeze_stages
    sampler = EpochSampler(cached.labels, seed=0, negatives_per_positive=baseline.negatives_per_positive)
    loader = torch.utils.data.DataLoader(dataset, batch_size=bs, sampler=sampler, collate_fn=collate)
    model = baseline.build_model(pretrained=True).to(device).train()
    freeze_encoder_stages(model, baseline.encoder_prefix, freeze_stages)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    def loader_batches():
        for k, b in enumerate(loader):
            if k > steps:
                return
            yield b

    total, wait, images = _steps(baseline, model, opt, loader_batches(), device)
    fixed = next(iter(loader))
    ref_total, _, ref_images = _steps(baseline, model, opt, (fixed for _ in range(steps + 1)), device)
    ips, ref_ips = images / total, ref_images / ref_total
    return {"task": task, "image_size": size, "crop": crop, "batch_size": bs, "steps": steps,
            "freeze_stages": freeze_stages,
            "images_per_s": round(ips, 3), "reference_images_per_s": round(ref_ips, 3),
            "ratio_to_reference": round(ips / ref_ips, 3), "data_wait_share": round(wait / total, 4)}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark per task, print a table and JSON."""
    from fracbench.baselines.train import default_cache_dir, resolve_device

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="built dataset directory")
    p.add_argument("--tasks", nargs="+", default=["classification", "localization"])
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement (default 10)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--image-size", type=int, default=None, help="override every baseline's default size")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--freeze-stages", type=int, default=None,
                   help="as `fracbench baseline train --freeze-stages` (default: the baseline's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--cache", default=str(default_cache_dir()))
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rows = [bench(t, args.data, args.steps, args.cache, device, args.image_size, args.batch_size,
                  args.freeze_stages) for t in args.tasks]
    print(f"{'task':<16}{'size':>6}{'batch':>7}{'img/s':>9}{'ref img/s':>11}{'ratio':>8}{'data wait':>11}")
    for r in rows:
        print(f"{r['task']:<16}{r['image_size']:>6}{r['batch_size']:>7}{r['images_per_s']:>9.2f}"
              f"{r['reference_images_per_s']:>11.2f}{r['ratio_to_reference']:>8.2f}{r['data_wait_share']:>10.1%}")
    out = {"device": str(device), "threads": args.threads, "results": rows}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
