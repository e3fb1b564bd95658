"""The shipped reference runs: fp16 weights inside the package, with their record.

``fracbench/baselines/reference/`` holds one ``<name>.safetensors`` per trained
network and ``references.json``, which gives for each task the baseline kind, the
weights file and its sha256, the run's configuration, the post-processing fitted
on validation, and how it was trained (command, machine, wall time). So
``fracbench baseline predict TASK ...`` needs nothing but the install and a built
dataset. The segmentation reference reuses the localization weights
(:mod:`fracbench.baselines.boxseg`).

:func:`ship` writes an entry from a finished run; the weights are rounded to fp16
(the record's validation numbers are measured with the rounded weights).
"""

from __future__ import annotations

import json
from pathlib import Path

from fracbench import atomic
from fracbench.dataset.shards import file_sha256
from fracbench.errors import BaselineError

REFERENCE_DIR = Path(__file__).with_name("reference")
RECORD = "references.json"


def read_record(folder: Path = REFERENCE_DIR) -> dict:
    """``references.json`` as a dict (empty when nothing is shipped)."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BaselineError(f"{path}: not valid JSON ({exc}); reinstall fracbench") from exc


def load_reference(task: str, folder: Path = REFERENCE_DIR):
    """The shipped reference of ``task`` as ``(baseline, config, summary, model)`` (CPU, eval mode).

    Raises:
        BaselineError: no reference for ``task``, or its weights file is missing or altered.
    """
    from safetensors.torch import load_file

    from fracbench.baselines.registry import get_baseline

    record = read_record(folder)
    if task not in record:
        raise BaselineError(f"no shipped reference run for {task!r} (shipped: {', '.join(record) or 'none'}); "
                            "pass a trained run directory instead")
    entry = record[task]
    weights = Path(folder) / entry["weights"]
    if not weights.is_file():
        raise BaselineError(f"{weights}: the shipped weights of the {task} reference are missing; reinstall fracbench")
    digest = file_sha256(weights)
    if digest != entry["sha256"]:
        raise BaselineError(f"{weights}: sha256 {digest}, expected {entry['sha256']} (references.json); "
                            "the file is damaged, reinstall fracbench")
    config = dict(entry["config"])
    baseline = get_baseline(task, entry.get("kind"))
    if hasattr(baseline, "set_image_size"):
        baseline.set_image_size(int(config["image_size"]))
    model = baseline.build_model(pretrained=False)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(weights).items()}
    model.load_state_dict(state)
    model.eval()
    summary = {"postprocessing": entry.get("postprocessing", {}), "epochs_run": entry.get("epochs_run"),
               "reference": {k: entry[k] for k in ("weights", "sha256") if k in entry}}
    return baseline, config, summary, model


def ship(run_dir: str | Path, task: str, *, kind: str | None = None, postprocessing: dict | None = None,
         training: dict | None = None, folder: Path = REFERENCE_DIR) -> dict:
    """Record a finished run as the shipped reference of ``task`` (fp16 safetensors + entry).

    Args:
        run_dir: the finished run (``best.pt``, ``config.json``, ``run.json``).
        task: the task the reference answers (``segmentation`` may reuse a localization run).
        kind: the baseline kind (None: the run's own).
        postprocessing: replaces the run's (e.g. fitted for another kind).
        training: extra provenance to keep (command, machine, wall time).
        folder: the reference folder.

    Returns:
        dict: the entry written.
    """
    import torch
    from safetensors.torch import save_file

    run = Path(run_dir)
    config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "run.json").read_text())
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model"]
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    name = f"{config['task']}-{config.get('seed', 0)}-{config['image_size']}.safetensors"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = folder / f".{name}.partial"
    save_file(half, str(tmp))
    tmp.replace(target)
    keep = ("image_size", "batch_size", "crop", "epochs", "lr", "backbone_lr", "ema_decay", "freeze_stages",
            "negatives_per_positive", "seed", "task")
    entry = {
        "kind": kind or config.get("kind"), "weights": name, "sha256": file_sha256(target),
        "source_task": config["task"], "config": {k: config.get(k) for k in keep},
        "postprocessing": postprocessing if postprocessing is not None else summary.get("postprocessing", {}),
        "epochs_run": summary.get("epochs_run"), "best_epoch": summary.get("best_epoch"),
        "replans": summary.get("replans", []),
        "history": summary.get("history"), "wall_time_s": summary.get("wall_time_s"),
        "provenance": summary.get("provenance"), "training": training or {},
    }
    record = read_record(folder)
    record[task] = entry
    atomic.write_text(folder / RECORD, json.dumps(record, indent=2, sort_keys=True, default=float) + "\n")
    return entry
