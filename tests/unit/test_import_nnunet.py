"""``import-preds nnunet``: nnU-Net v2 prediction folders written here, imported and scored for real."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from fracbench.cli import main
from fracbench.convert.export import export_dataset
from fracbench.convert.import_preds import import_predictions, write_submission
from fracbench.errors import SubmissionError
from fracbench.metrics.rle import EIGHT_CONNECTED
from fracbench.score import score_submission


@pytest.fixture(scope="module")
def labels_ts(built_v1, tmp_path_factory) -> Path:
    """The test labels of `fracbench export nnunet`: what a perfect nnU-Net run would predict."""
    out = tmp_path_factory.mktemp("nnraw")
    root = export_dataset("nnunet", out, data=built_v1, manifest=built_v1.parent / "manifest.csv").out
    return root / "labelsTs"


def _fracture_probabilities(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(2, 1, H, W)`` float16 softmax: each true component at its own peak in 0.7..0.99, a faint
    background, and one false blob at 0.55 on every image (above nnU-Net's 0.5 cut, below every peak)."""
    comps, n = ndimage.label(label == 1, structure=EIGHT_CONNECTED)
    p = np.full(label.shape, 0.05, dtype=np.float32)
    for k in range(1, n + 1):
        inside = comps == k
        p[inside] = 0.6
        ys, xs = np.nonzero(inside)
        p[ys[0], xs[0]] = rng.uniform(0.7, 0.99)  # the component's peak
    if n:
        free = np.argwhere(ndimage.distance_transform_cdt(label == 0) > 4)  # well away from any fracture
        y, x = free[len(free) // 2]
    else:
        y, x = label.shape[0] // 2, label.shape[1] // 2
    p[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = 0.55
    return np.stack([1 - p, p])[:, None].astype(np.float16)


@pytest.fixture(scope="module")
def folders(labels_ts, tmp_path_factory) -> dict[str, Path]:
    """nnUNetv2_predict outputs for the test split: hard masks only, and masks + probabilities."""
    rng = np.random.default_rng(0)
    hard, soft = tmp_path_factory.mktemp("pred_png"), tmp_path_factory.mktemp("pred_npz")
    for label_file in sorted(labels_ts.glob("*.png")):
        probs = _fracture_probabilities(np.asarray(Image.open(label_file)), rng)
        mask = probs.argmax(0)[0].astype(np.uint8)  # what nnU-Net writes beside the probabilities
        for folder in (hard, soft):
            Image.fromarray(mask).save(folder / label_file.name)
        np.savez_compressed(soft / f"{label_file.stem}.npz", probabilities=probs)
        (soft / f"{label_file.stem}.pkl").write_bytes(b"not a pickle: fracbench never opens it")
    for folder in (hard, soft):  # nnU-Net leaves these in the output folder too
        (folder / "dataset.json").write_text("{}")
        (folder / "plans.json").write_text("{}")
    return {"png": hard, "npz": soft}


def _union(instances: list[dict], shape: tuple[int, int]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    out = np.zeros(shape, dtype=bool)
    for inst in instances:
        out |= mask_utils.decode({"size": inst["rle"]["size"], "counts": inst["rle"]["counts"].encode()}).astype(bool)
    return out


def test_masks_and_probabilities_give_the_same_pixels_but_only_probabilities_rank(built_v1, folders, tmp_path):
    png, png_summary = import_predictions("nnunet", folders["png"], model_name="nnunet", data=built_v1)
    npz, npz_summary = import_predictions("nnunet", folders["npz"], model_name="nnunet", data=built_v1)
    assert png_summary.task == "segmentation" and png_summary.from_masks == png_summary.images > 0
    assert npz_summary.from_masks == 0 and npz_summary.objects == png_summary.objects
    assert any("--save_probabilities" in note for note in png_summary.notes)
    for a, b in zip(png["predictions"], npz["predictions"], strict=True):
        mask = np.asarray(Image.open(folders["png"] / f"{a['image_id']}.png"))
        assert np.array_equal(_union(a["instances"], mask.shape), mask == 1)
        assert np.array_equal(_union(b["instances"], mask.shape), mask == 1)
        assert {i["score"] for i in a["instances"]} <= {1.0}
        probs = np.load(folders["npz"] / f"{a['image_id']}.npz")["probabilities"][1, 0].astype(np.float32)
        for inst in b["instances"]:  # each instance scored by the peak probability inside it
            inside = _union([inst], mask.shape)
            assert inst["score"] == pytest.approx(float(probs[inside].max()))
    scores = {}
    for name, doc in (("png", png), ("npz", npz)):
        result = score_submission(write_submission(doc, tmp_path / f"{name}.json"), data=built_v1, n_resamples=0,
                                  subgroups=False)
        scores[name] = result.metrics["mask_ap50"].value
    # The false blobs score 0.55, under every true component's peak: ranked, they cost little;
    # as ties at 1.0 they cost precision at every recall.
    assert scores["npz"] > scores["png"] + 0.05, scores


def test_localization_and_classification_from_probabilities(built_v1, folders):
    loc, _ = import_predictions("nnunet", folders["npz"], task="localization", model_name="m", data=built_v1)
    cls, _ = import_predictions("nnunet", folders["npz"], task="classification", model_name="m", data=built_v1)
    for box_entry, cls_entry in zip(loc["predictions"], cls["predictions"], strict=True):
        assert all(b["bbox"][2] > 0 and b["bbox"][3] > 0 for b in box_entry["boxes"])
        assert cls_entry["score"] == max((b["score"] for b in box_entry["boxes"]), default=0.0)
    # A higher cut drops the 0.55 false blobs and keeps the true components (their pixels are 0.6+).
    strict, summary = import_predictions("nnunet", folders["npz"], model_name="m", data=built_v1, prob_threshold=0.58)
    assert summary.objects < sum(len(p["boxes"]) for p in loc["predictions"])


def test_bad_folders_are_refused_naming_the_file(built_v1, folders, labels_ts, tmp_path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(folders["npz"], target)
        return target

    first = sorted(labels_ts.glob("*.png"))[0].stem
    cases = {
        "no-key": lambda d: np.savez(d / f"{first}.npz", softmax=np.zeros((2, 1, 4, 4))),
        "shape": lambda d: np.savez(d / f"{first}.npz", probabilities=np.zeros((3, 1, 4, 4))),
        "size": lambda d: np.savez(d / f"{first}.npz", probabilities=np.zeros((2, 1, 4, 4))),
        "labels": lambda d: ((d / f"{first}.npz").unlink(),
                             Image.fromarray(np.full((4, 4), 255, np.uint8)).save(d / f"{first}.png")),
        "missing": lambda d: ((d / f"{first}.npz").unlink(), (d / f"{first}.png").unlink()),
        "unknown": lambda d: shutil.copy(d / f"{first}.png", d / "IMGX999.png"),
    }
    expected = {"no-key": "'probabilities'", "shape": "(2, 1, H, W)", "size": "4x4 pixels", "labels": "found 255",
                "missing": "no prediction file for 1 of", "unknown": "IMGX999.png"}
    for name, spoil in cases.items():
        folder = copy(name)
        spoil(folder)
        with pytest.raises(SubmissionError) as err:
            import_predictions("nnunet", folder, model_name="m", data=built_v1)
        assert expected[name] in str(err.value) and str(folder) in str(err.value), (name, str(err.value))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionError, match="no nnU-Net predictions"):
        import_predictions("nnunet", tmp_path / "empty", model_name="m", data=built_v1)


def test_cli_import_then_score(built_v1, folders, tmp_path, capsys):
    out = tmp_path / "sub.json"
    assert main(["import-preds", "nnunet", str(folders["npz"]), "--out", str(out), "--model-name", "nnU-Net 2d",
                 "--data", str(built_v1)]) == 0
    assert "valid segmentation submission" in capsys.readouterr().out
    assert json.loads(out.read_text())["task"] == "segmentation"
    assert main(["score", str(out), "--data", str(built_v1), "--bootstrap", "0"]) == 0
