"""Baselines end to end on a tiny built dataset: train, predict, resume, DDP (gloo, 2 processes)."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch

from fracbench.baselines.predict import predict, write_submission
from fracbench.baselines.train import TrainConfig, train
from fracbench.errors import BaselineError
from fracbench.submission import parse_submission
from tests.unit.test_baselines_dataset import tiny_dataset  # noqa: F401

pytestmark = pytest.mark.slow


def _cfg(task, data, out, cache, **kw):
    base = dict(task=task, data=str(data), out=str(out), epochs=1, image_size=48, batch_size=4, seed=0,
                device="cpu", cache_dir=str(cache), threads=1, pretrained=False, max_train_images=6)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("task", ["classification", "localization", "segmentation"])
def test_predict_writes_every_image_once_with_valid_geometry(task, tiny_dataset, tmp_path):  # noqa: F811
    import pyarrow.parquet as pq
    from pycocotools import mask as mask_utils

    run = tmp_path / "run"
    summary = train(_cfg(task, tiny_dataset, run, tmp_path / "cache"))
    assert summary["epochs_run"] == 1 and (run / "best.pt").is_file() and (run / "run.json").is_file()
    sub = predict(run, "test", device="cpu", cache_dir=tmp_path / "cache")
    path = write_submission(sub, tmp_path / "preds.json")
    sub = json.loads(path.read_text())
    assert type(parse_submission(sub)).__name__.lower().startswith(task)  # the public schema accepts it
    rows = pq.read_table(tiny_dataset / task / "test-00000-of-00001.parquet",
                         columns=["image_id", "width", "height"]).to_pylist()
    assert sorted(p["image_id"] for p in sub["predictions"]) == sorted(r["image_id"] for r in rows)
    assert sub["schema"] == "fracbench.submission/v1" and sub["task"] == task and sub["split"] == "test"
    size = {r["image_id"]: (r["width"], r["height"]) for r in rows}
    for p in sub["predictions"]:
        w, h = size[p["image_id"]]
        if task == "classification":
            assert 0.0 <= p["score"] <= 1.0
        for b in p.get("boxes", []):
            x, y, bw, bh = b["bbox"]
            assert 0 <= x and 0 <= y and bw > 0 and bh > 0 and x + bw <= w + 1e-3 and y + bh <= h + 1e-3
        for inst in p.get("instances", []):
            assert inst["rle"]["size"] == [h, w]
            assert mask_utils.decode({"size": [h, w], "counts": inst["rle"]["counts"].encode()}).sum() > 0
    if task == "classification":
        assert 0.0 <= sub["threshold"] <= 1.0
        assert summary["postprocessing"]["threshold_rule"] == "youden_j"


def test_legacy_predictions_need_a_localization_run_and_use_the_legacy_config(tiny_dataset, tmp_path):  # noqa: F811
    run = tmp_path / "loc"
    train(_cfg("localization", tiny_dataset, run, tmp_path / "cache", max_train_images=2))
    sub = predict(run, "validation", splits_version="legacy", device="cpu", cache_dir=tmp_path / "cache")
    assert sub["splits_version"] == "legacy" and len(sub["predictions"]) == 6
    with pytest.raises(BaselineError, match="not a finished baseline run"):
        predict(tmp_path / "nothing", "test")


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_dataset, tmp_path):  # noqa: F811
    cache = tmp_path / "cache"
    full = train(_cfg("classification", tiny_dataset, tmp_path / "a", cache, epochs=2))

    def interrupt(stage, done, total):
        if stage.startswith("epoch 2/2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg("classification", tiny_dataset, tmp_path / "b", cache, epochs=2), progress=interrupt)
    assert not (tmp_path / "b" / "run.json").exists() and (tmp_path / "b" / "last.pt").is_file()
    with pytest.raises(BaselineError, match="already holds a run"):
        train(_cfg("classification", tiny_dataset, tmp_path / "b", cache, epochs=2))
    with pytest.raises(BaselineError, match="other settings"):
        train(_cfg("classification", tiny_dataset, tmp_path / "b", cache, epochs=2, lr=0.5, resume=True))
    resumed = train(_cfg("classification", tiny_dataset, tmp_path / "b", cache, epochs=2, resume=True))
    assert resumed["final_weights_sha256"] == full["final_weights_sha256"]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["state"]["step"] == b["state"]["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg: TrainConfig, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    import torch.distributed as dist

    try:
        summary = train(cfg)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({"digest": summary["final_parameters_sha256"], "all": summary["final_weights_sha256"]}, fh)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_ddp_on_gloo_with_two_processes_keeps_replicas_identical(tiny_dataset, tmp_path):  # noqa: F811
    import torch.multiprocessing as mp

    cfg = _cfg("classification", tiny_dataset, tmp_path / "ddp", tmp_path / "cache", max_train_images=8, batch_size=2)
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    digests = [json.loads((tmp_path / f"rank{r}.json").read_text())["digest"] for r in range(2)]
    assert digests[0] == digests[1]
    run = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert run["final_weights_sha256"] == json.loads((tmp_path / "rank0.json").read_text())["all"]
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["world_size"] == 2
    # 8 images, 2 ranks x batch 2: two steps per epoch on each rank
    assert torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)["state"]["step"] == 2
    assert np.isfinite(run["history"][0]["loss"])


def test_explain_writes_one_overlay_per_positive_prediction(tiny_dataset, tmp_path):  # noqa: F811
    from PIL import Image

    from fracbench.baselines.explain import explain

    run = tmp_path / "cls"
    train(_cfg("classification", tiny_dataset, run, tmp_path / "cache", max_train_images=4))
    run_json = json.loads((run / "run.json").read_text())
    run_json["postprocessing"]["threshold"] = 0.0  # explain every image: a tiny run ranks at random
    (run / "run.json").write_text(json.dumps(run_json))
    written = explain(run, "test", tmp_path / "cams", device="cpu", limit=3)
    assert len(written) == 3
    assert all(Image.open(p).mode == "RGB" and max(Image.open(p).size) == 48 for p in written)
