"""Predictions of a trained baseline run as a fracbench submission (``preds.json``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from fracbench import atomic
from fracbench.errors import BaselineError
from fracbench.vocab import SPLITS_VERSIONS

log = logging.getLogger(__name__)

SUBMISSION_SCHEMA = "fracbench.submission/v1"


def load_run(run_dir: str | Path, *, kind: str | None = None):
    """The baseline, config, post-processing and best model of a finished run.

    Args:
        run_dir: a directory written by ``fracbench baseline train``, or a task name
            (``classification``, ``localization``, ``segmentation``) for the shipped
            reference run (:mod:`fracbench.baselines.reference`).
        kind: read the run's network as another baseline kind of the same network
            (``box-ellipse``: a localization run as segmentation); None: the run's own.

    Returns:
        tuple: ``(baseline, config dict, run summary dict, model)`` (model on CPU, eval mode).

    Raises:
        BaselineError: the run is missing ``config.json``, ``run.json`` or ``best.pt``.
    """
    import torch

    from fracbench.baselines.registry import get_baseline
    from fracbench.vocab import TASKS

    run = Path(run_dir)
    if str(run_dir) in TASKS and not run.exists():
        from fracbench.baselines.reference import load_reference

        return load_reference(str(run_dir))
    for name in ("config.json", "run.json", "best.pt"):
        if not (run / name).is_file():
            raise BaselineError(
                f"{run}: no {name}; this is not a finished baseline run (train it with "
                "`fracbench baseline train`, or finish it with --resume)"
            )
    config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "run.json").read_text())
    if kind == "box-ellipse":
        if config["task"] != "localization":
            raise BaselineError(f"{run}: a {config['task']} run; box-ellipse segmentation reads a localization run")
        baseline = get_baseline("segmentation", kind)
    else:
        baseline = get_baseline(config["task"], kind or config.get("kind"))
    if hasattr(baseline, "set_image_size"):
        baseline.set_image_size(int(config["image_size"]))
    model = baseline.build_model(pretrained=False)
    model.load_state_dict(torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model"])
    model.eval()
    return baseline, config, summary, model


def predict(
    run_dir: str | Path,
    split: str = "test",
    *,
    data: str | Path | None = None,
    splits_version: str = "v1",
    device: str = "auto",
    cache_dir: str | Path | None = None,
    kind: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Predict every image of a split and return the submission object.

    Args:
        run_dir: the trained run.
        split: ``test`` or ``validation`` (or ``train``).
        data: the built dataset (default: ``--data`` resolution, then the run's own).
        splits_version: ``v1``, or ``legacy`` for the authors' split (localization only).
        device: ``auto|cpu|cuda``.
        cache_dir: decode caches.
        kind: see :func:`load_run`.
        progress: ``progress(stage, done, total)``.

    Returns:
        dict: the submission (schema ``fracbench.submission/v1``), every image once.

    Raises:
        BaselineError: unknown splits version or task/version mismatch.
    """
    if splits_version not in SPLITS_VERSIONS:
        raise BaselineError(f"--splits-version {splits_version!r}: expected one of {', '.join(SPLITS_VERSIONS)}")
    baseline, config, summary, model = load_run(run_dir, kind=kind)
    if splits_version == "legacy" and baseline.task != "localization":
        raise BaselineError(
            f"--splits-version legacy: the legacy config carries boxes only, so only a localization run "
            f"can predict it; {run_dir} is a {baseline.task} run"
        )
    config_name = "legacy" if splits_version == "legacy" else baseline.config
    data_dir, cached, raw = _run_on_split(baseline, config, model, split, config_name, data=data, device=device,
                                          cache_dir=cache_dir, progress=progress)
    post = summary.get("postprocessing", {})
    predictions = baseline.predictions(raw, cached, post, progress=(lambda d, t: progress("post-processing", d, t)) if progress else None)
    description = f"{config['image_size']} px, {summary.get('epochs_run')} epochs, seed {config['seed']}"
    return make_submission(baseline, predictions, post, split=split, description=description,
                           splits_version=splits_version if splits_version == "legacy"
                           else built_splits_version(data_dir))


def make_submission(baseline, predictions: list[dict], post: dict, *, split: str, splits_version: str,
                    description: str) -> dict:
    """The submission object of a baseline's predictions (schema ``fracbench.submission/v1``)."""
    from fracbench.baselines.registry import model_description, model_name

    return {
        "schema": SUBMISSION_SCHEMA,
        "task": baseline.task,
        "splits_version": splits_version,
        "split": split,
        "model": {"name": model_name(baseline.task, baseline.kind), "url": None,
                  "description": f"{model_description(baseline.task, baseline.kind)}; {description}"},
        "threshold": baseline.submission_threshold(post),
        "predictions": predictions,
    }


def fit_postprocessing(run_dir: str | Path, *, kind: str | None = None, data: str | Path | None = None,
                       device: str = "auto", cache_dir: str | Path | None = None, progress=None) -> dict:
    """Fit a run's post-processing on ``validation`` (e.g. a localization run read as ``box-ellipse``)."""
    baseline, config, _, model = load_run(run_dir, kind=kind)
    _, cached, raw = _run_on_split(baseline, config, model, "validation", baseline.config, data=data, device=device,
                                   cache_dir=cache_dir, progress=progress)
    return baseline.fit_postprocessing(raw, cached)


def _run_on_split(baseline, config: dict, model, split: str, config_name: str, *, data, device: str, cache_dir,
                  progress=None):
    """Decode ``split`` of the built ``config_name`` (once, cached) and run the network over it.

    Returns:
        tuple: ``(data_dir, cached split, raw outputs)``.
    """
    import torch

    from fracbench.baselines.cache import build_cache
    from fracbench.baselines.train import default_cache_dir, resolve_device
    from fracbench.dataset.locate import resolve_data_dir

    if data is None and "data" not in config:
        raise BaselineError("--data: the shipped reference runs need the built dataset to predict (--data DIR)")
    data_dir = resolve_data_dir(data if data is not None else config["data"])
    dev = resolve_device(device)
    model.to(dev)

    def tick(stage):
        return (lambda d, t: progress(stage, d, t)) if progress else None

    cached = build_cache(data_dir, config_name, split, int(config["image_size"]),
                         cache_dir or config.get("cache_dir") or default_cache_dir(), progress=tick(f"decode {split}"))
    with torch.inference_mode():
        raw = baseline.infer(model, cached, dev, batch_size=int(config["batch_size"]) * 2, progress=tick("inference"))
    return data_dir, cached, raw


def built_splits_version(data_dir: Path) -> str:
    """The split manifest version a built dataset was made with (``v1`` for the release build)."""
    from fracbench.dataset.built import BuiltDataset

    return BuiltDataset.open(data_dir, verify=False).splits_version


def write_submission(submission: dict, path: str | Path) -> Path:
    """Write a submission atomically as compact JSON (one prediction per line)."""
    head = {k: v for k, v in submission.items() if k != "predictions"}
    lines = ",\n".join(json.dumps(p, separators=(",", ":")) for p in submission["predictions"])
    text = json.dumps(head, indent=2)[:-2] + ',\n  "predictions": [\n' + lines + "\n  ]\n}\n"
    json.loads(text)  # the hand-joined layout must stay valid JSON
    return atomic.write_text(path, text)
