"""The training recipe: windows and jitter, EMA, encoder LR, reproducibility, box-ellipse masks, shipped runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fracbench.baselines.augment import Jitter, _affine, sample_crop, sample_full, warp_boxes
from fracbench.baselines.boxseg import ellipse_polygon
from fracbench.baselines.predict import fit_postprocessing, load_run, predict, write_submission
from fracbench.baselines.reference import load_reference, read_record, ship
from fracbench.baselines.train import EMA, TrainConfig, param_groups, train
from fracbench.errors import BaselineError
from fracbench.submission import parse_submission
from tests.unit.test_baselines_dataset import tiny_dataset  # noqa: F401

STILL = Jitter(scale=(1.0, 1.0), rotate_deg=0.0, flip=0.0, gain=(1.0, 1.0), bias=(0.0, 0.0))


def _frame_with_box(size=200, box=(120, 40, 150, 70)):
    img = np.zeros((size, size), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img, np.array([box], np.float32)


def test_identity_warp_keeps_boxes():
    m = _affine((50.0, 50.0), (50.0, 50.0), 1.0, 0.0, False)
    boxes = np.array([[10, 20, 30, 60]], np.float32)
    assert np.allclose(warp_boxes(boxes, m, 100, 0.5), boxes)


@pytest.mark.parametrize("flip", [0.0, 1.0])
@pytest.mark.parametrize("scale", [0.7, 1.0, 1.4])
def test_crop_boxes_land_on_the_drawn_pixels(flip, scale):
    img, boxes = _frame_with_box()
    jitter = Jitter(scale=(scale, scale), rotate_deg=0.0, flip=flip, gain=(1.0, 1.0), bias=(0.0, 0.0))
    for seed in range(5):
        # a window wide enough that the jittered centre never pushes the box out of it
        window, out = sample_crop(img, (200, 200), boxes, 160, np.random.default_rng(seed), jitter, on_fracture=True)
        assert window.shape == (160, 160) and len(out) == 1
        x1, y1, x2, y2 = out[0]
        assert x2 - x1 == pytest.approx(30 * scale, abs=1.0) and y2 - y1 == pytest.approx(30 * scale, abs=1.0)
        inner = window[int(y1) + 2 : int(y2) - 2, int(x1) + 2 : int(x2) - 2]
        assert inner.size and inner.min() > 200  # the box sits on the bright patch
        assert window.sum() == pytest.approx(255 * (x2 - x1) * (y2 - y1), rel=0.15)  # and nothing else is bright


def test_rotated_box_is_the_ellipse_bound_not_the_corner_bound():
    m = _affine((100.0, 100.0), (50.0, 50.0), 1.0, np.pi / 4, False)
    out = warp_boxes(np.array([[80, 80, 120, 120]], np.float32), m, 100, 0.1)
    # a 40 px square turned 45 degrees: corners span 56.6 px, its inscribed circle 40 px
    assert out[0, 2] - out[0, 0] == pytest.approx(40, abs=0.5)


def test_mostly_hidden_boxes_are_dropped():
    img, boxes = _frame_with_box(box=(0, 0, 30, 30))
    m = _affine((100.0, 100.0), (10.0, 10.0), 1.0, 0.0, False)  # window [90, 190): the box is outside
    assert len(warp_boxes(boxes, m, 100, 0.45)) == 0
    window, out = sample_crop(img, (200, 200), np.zeros((0, 4), np.float32), 64, np.random.default_rng(0), STILL,
                              on_fracture=True)
    assert window.shape == (64, 64) and out.shape == (0, 4)


def test_full_image_jitter_keeps_the_image_at_the_top_left():
    img = np.zeros((100, 100), np.uint8)
    img[:80, :60] = 200  # content 60 x 80, padding right and below
    flipped = sample_full(img, (80, 60), np.random.default_rng(0), Jitter(scale=(1.0, 1.0), rotate_deg=0.0, flip=1.0,
                                                                          gain=(1.0, 1.0), bias=(0.0, 0.0)))
    assert flipped[:, 70:].max() == 0 and flipped[85:, :].max() == 0
    assert flipped[10:70, 5:55].min() == 200


def test_ema_ramps_then_averages():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, 0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, 0)  # decay min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.9))
    ema.update(model, 1000)  # decay 0.9
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.91))
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_param_groups_put_the_encoder_at_its_own_rate():
    from fracbench.baselines.registry import get_baseline

    model = get_baseline("classification").build_model(pretrained=False)
    head, enc = param_groups(model, "", 1e-3, 0.25)
    assert head["lr"] == 1e-3 and enc["lr"] == pytest.approx(2.5e-4)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in head["params"]} == {"classifier.weight", "classifier.bias"}
    det = get_baseline("localization").build_model(pretrained=False)
    groups = param_groups(det, "backbone.body.", 1e-3, 0.5)
    assert sum(len(g["params"]) for g in groups) == sum(1 for _ in det.parameters())
    assert all(names_.startswith("backbone.body.") for names_, p in det.named_parameters()
               if any(p is q for q in groups[1]["params"]))


def _cfg(task, data, out, cache, **kw):
    base = dict(task=task, data=str(data), out=str(out), epochs=2, image_size=64, batch_size=4, seed=3,
                device="cpu", cache_dir=str(cache), threads=1, pretrained=False, max_train_images=8, crop=48,
                ema_decay=0.9, val_every=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_same_command_and_seed_reproduce_the_run(tiny_dataset, tmp_path):  # noqa: F811
    a = train(_cfg("localization", tiny_dataset, tmp_path / "a", tmp_path / "cache"))
    b = train(_cfg("localization", tiny_dataset, tmp_path / "b", tmp_path / "cache"))
    assert a["final_weights_sha256"] == b["final_weights_sha256"]
    assert [h["val_ap50"] for h in a["history"]] == [h["val_ap50"] for h in b["history"]]
    assert a["config"]["crop"] == 48 and a["config"]["ema_decay"] == 0.9
    c = train(_cfg("localization", tiny_dataset, tmp_path / "c", tmp_path / "cache", seed=4))
    assert c["final_weights_sha256"] != a["final_weights_sha256"]


@pytest.mark.slow
def test_validation_every_n_epochs_and_always_the_last(tiny_dataset, tmp_path):  # noqa: F811
    s = train(_cfg("classification", tiny_dataset, tmp_path / "r", tmp_path / "cache", epochs=3, val_every=2))
    assert [h["val_auroc"] is not None for h in s["history"]] == [False, True, True]


def test_ellipse_polygon_is_inscribed_and_clipped():
    from fracbench.metrics.rle import area, polygons_to_rle

    poly = ellipse_polygon([10, 20, 40, 20], 1.0, 100, 100)
    xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
    assert xs.min() == pytest.approx(10, abs=0.1) and xs.max() == pytest.approx(50, abs=0.2)
    assert ys.min() == pytest.approx(20, abs=0.1) and ys.max() == pytest.approx(40, abs=0.2)
    assert area(polygons_to_rle([poly], 100, 100)) == pytest.approx(np.pi * 20 * 10, rel=0.06)
    edge = ellipse_polygon([90, 90, 20, 20], 1.0, 100, 100)
    assert max(edge) <= 100


@pytest.mark.slow
def test_box_ellipse_segmentation_from_a_localization_run(tiny_dataset, tmp_path):  # noqa: F811
    run = tmp_path / "loc"
    train(_cfg("localization", tiny_dataset, run, tmp_path / "cache", epochs=1))
    post = fit_postprocessing(run, kind="box-ellipse", device="cpu", cache_dir=tmp_path / "cache")
    assert set(post) >= {"ellipse_scale", "min_score", "validation_mask_ap50_grid"}
    assert len(post["validation_mask_ap50_grid"]) == 30
    sub = predict(run, "test", kind="box-ellipse", device="cpu", cache_dir=tmp_path / "cache")
    assert sub["task"] == "segmentation" and sub["model"]["name"] == "fracbench-ref-fcos-lite0-ellipses-640"
    parse_submission(json.loads(write_submission(sub, tmp_path / "p.json").read_text()))
    with pytest.raises(BaselineError, match="box-ellipse segmentation reads a localization run"):
        cls = tmp_path / "cls"
        train(_cfg("classification", tiny_dataset, cls, tmp_path / "cache", epochs=1))
        load_run(cls, kind="box-ellipse")


@pytest.mark.slow
def test_ship_round_trips_fp16_weights_and_refuses_altered_files(tiny_dataset, tmp_path):  # noqa: F811
    run = tmp_path / "cls"
    train(_cfg("classification", tiny_dataset, run, tmp_path / "cache", epochs=1))
    folder = tmp_path / "ref"
    entry = ship(run, "classification", training={"command": "fracbench baseline train classification"},
                 folder=folder)
    assert read_record(folder)["classification"]["sha256"] == entry["sha256"]
    baseline, config, summary, model = load_reference("classification", folder)
    best = torch.load(run / "best.pt", weights_only=True)["model"]
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, best[k].half().float())
    assert config["image_size"] == 64 and "temperature" in summary["postprocessing"]
    with pytest.raises(BaselineError, match="no shipped reference run for 'localization'"):
        load_reference("localization", folder)
    (folder / entry["weights"]).write_bytes(b"x" + (folder / entry["weights"]).read_bytes()[1:])
    with pytest.raises(BaselineError, match="sha256"):
        load_reference("classification", folder)


def test_youden_threshold_matches_scikit_learn():
    from sklearn.metrics import roc_curve

    from fracbench.baselines.classification import youden_threshold

    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 200)
        p = np.round(np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1), 2)  # ties on purpose
        fpr, tpr, thr = roc_curve(y, p)
        assert youden_threshold(p, y) == pytest.approx(min(thr[int(np.argmax(tpr - fpr))], 1.0))


@pytest.mark.slow
def test_stop_then_resume_with_a_new_length_is_deterministic(tiny_dataset, tmp_path):  # noqa: F811
    finals = []
    for name in ("a", "b"):
        first = train(_cfg("classification", tiny_dataset, tmp_path / name, tmp_path / "cache", epochs=4,
                           stop_after=1, val_every=2))
        assert first["stopped_after"] == 1 and not (tmp_path / name / "run.json").exists()
        done = train(_cfg("classification", tiny_dataset, tmp_path / name, tmp_path / "cache", epochs=2,
                          val_every=2, resume=True))
        assert done["epochs_run"] == 2 and done["replans"] == [{"after_epoch": 1, "epochs_from": 4, "epochs_to": 2}]
        finals.append(done["final_weights_sha256"])
    assert finals[0] == finals[1]
    with pytest.raises(BaselineError, match="other settings"):
        train(_cfg("classification", tiny_dataset, tmp_path / "a", tmp_path / "cache", epochs=3, lr=0.5,
                   resume=True))


@pytest.mark.slow
def test_a_time_limit_before_any_validation_still_finishes(tiny_dataset, tmp_path):  # noqa: F811
    s = train(_cfg("classification", tiny_dataset, tmp_path / "r", tmp_path / "cache", epochs=4, val_every=3,
                   time_limit_min=1e-6))
    assert s["stopped_early"] and s["epochs_run"] == 1 and (tmp_path / "r" / "best.pt").is_file()
