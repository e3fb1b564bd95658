"""A small, real scorer for leaderboard tests, independent of ``fracbench.score``.

``fake_score`` reads a minimal submission (``{"task", "splits_version", "split",
"model", "predictions": {image_id: score}}``), derives labels from the image id
(every third image is fractured), and computes AUROC with scikit-learn plus a
seeded bootstrap CI, the ROC (or an FROC-like) curve and the provenance a real
Result carries. It is deterministic, so ``verify`` can re-score with it, and a
changed prediction changes the numbers.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from fracbench.errors import SubmissionError
from fracbench.result import BootstrapInfo, MainScore, MetricValue, ModelInfo, Provenance, Result

N_IMAGES = 60


def image_ids(n: int = N_IMAGES) -> list[str]:
    """``IMG0000000`` ... synthetic test-split ids."""
    return [f"IMG{i:07d}" for i in range(n)]


def label_of(image_id: str) -> int:
    """Every third image is fractured."""
    return int(int(image_id[3:]) % 3 == 0)


def write_submission(path: Path, *, name: str, quality: float, task: str = "classification",
                     splits_version: str = "v1", split: str = "test", seed: int = 0) -> Path:
    """Write a synthetic submission whose AUROC grows with ``quality`` (0 random, 3 strong)."""
    rng = np.random.default_rng(seed)
    preds = {}
    for image_id in image_ids():
        logit = quality * (label_of(image_id) - 0.5) + rng.normal()
        preds[image_id] = round(float(1 / (1 + np.exp(-logit))), 6)
    sub = {"task": task, "splits_version": splits_version, "split": split,
           "model": {"name": name}, "predictions": preds}
    path.write_text(json.dumps(sub, indent=1), encoding="utf-8")
    return path


def _fingerprint(data) -> str:
    if data is not None and (Path(data) / "fracbench.json").is_file():
        return json.loads((Path(data) / "fracbench.json").read_text())["fingerprint"]
    return "f" * 64


def fake_score(path, *, data=None, split=None, n_resamples=200, seed=0) -> Result:
    """Score a synthetic submission (see module docstring) into a real :class:`Result`."""
    raw = Path(path).read_bytes()
    sub = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    if split is not None and split != sub["split"]:
        raise SubmissionError(f"{path}: split {sub['split']!r}, asked to score {split!r}")
    ids = sorted(sub["predictions"])
    y = np.array([label_of(i) for i in ids])
    s = np.array([sub["predictions"][i] for i in ids])
    auroc = float(roc_auc_score(y, s))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(ids), len(ids))
        if y[idx].min() != y[idx].max():
            boots.append(roc_auc_score(y[idx], s[idx]))
    ci = (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)))
    sens = float(((s >= 0.5) & (y == 1)).sum() / (y == 1).sum())
    spec = float(((s < 0.5) & (y == 0)).sum() / (y == 0).sum())
    fpr, tpr, _ = roc_curve(y, s)
    task = sub["task"]
    if task == "classification":
        main_name, curves = "auroc", {"roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()}}
    elif task == "localization":
        main_name = "ap50"
        curves = {"froc": {"fp_per_image": (fpr * 2).tolist(), "sensitivity": tpr.tolist()}}
    else:
        main_name, curves = "mask_ap50", {}
    return Result(
        task=task,
        model=ModelInfo(**sub["model"]),
        threshold=0.5,
        main_score=MainScore(name=main_name, value=auroc, ci95=ci),
        metrics={main_name: MetricValue(value=auroc, ci95=ci), "sensitivity": MetricValue(value=sens),
                 "specificity": MetricValue(value=spec)},
        subgroups={"region": {"hand": {main_name: MetricValue(value=auroc)}}},
        curves=curves,
        provenance=Provenance(
            protocol_version="1", splits_version=sub["splits_version"], split=sub["split"],
            split_sha256="a" * 64, dataset_fingerprint=_fingerprint(data), dataset_version="1.0.0",
            fracbench_version="0.1.0", submission_sha256=hashlib.sha256(raw).hexdigest(),
            scored_at=dt.datetime.now(dt.UTC).isoformat(), n_images=len(ids), n_scored=len(ids),
            bootstrap=BootstrapInfo(n_resamples=n_resamples, seed=seed),
        ),
    )


def fake_dataset(path: Path, fingerprint: str = "f" * 64) -> Path:
    """A directory ``resolve_data_dir`` accepts, with a fingerprint ``fake_score`` reads."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "fracbench.json").write_text(json.dumps({"fingerprint": fingerprint}))
    return path


def test_fake_score_is_deterministic_and_sensitive(tmp_path):
    sub = write_submission(tmp_path / "a.json", name="a", quality=2.0)
    a, b = fake_score(sub, n_resamples=50), fake_score(sub, n_resamples=50)
    assert a.main_score == b.main_score and a.curves == b.curves
    strong = fake_score(write_submission(tmp_path / "b.json", name="b", quality=4.0), n_resamples=50)
    weak = fake_score(write_submission(tmp_path / "c.json", name="c", quality=0.0), n_resamples=50)
    assert strong.main_score.value > weak.main_score.value
    lo, hi = a.main_score.ci95
    assert lo <= a.main_score.value <= hi
