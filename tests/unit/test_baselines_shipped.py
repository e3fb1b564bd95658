"""The shipped reference runs: predict by task name, and publish them to a Hub model repo."""

from __future__ import annotations

import hashlib
import json

import huggingface_hub
import pytest

from fracbench.baselines.predict import predict, write_submission
from fracbench.baselines.reference import REFERENCE_DIR, read_record
from fracbench.cli import main
from fracbench.errors import BaselineError
from fracbench.submission import parse_submission
from tests.unit.test_baselines_dataset import tiny_dataset  # noqa: F401
from tests.unit.test_hub import TOKEN, FakeApi

SHIPPED = read_record()


@pytest.mark.parametrize("task", ["classification", "localization", "segmentation"])
def test_every_task_has_a_shipped_reference_with_matching_weights(task):
    assert task in SHIPPED, "the reference runs ship with the package (fracbench/baselines/reference/)"
    entry = SHIPPED[task]
    assert hashlib.sha256((REFERENCE_DIR / entry["weights"]).read_bytes()).hexdigest() == entry["sha256"]
    assert entry["training"]["command"].startswith("fracbench baseline train")


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "localization", "segmentation"])
def test_shipped_reference_predicts_by_task_name(task, tiny_dataset, tmp_path):  # noqa: F811
    sub = predict(task, "test", data=tiny_dataset, device="cpu", cache_dir=tmp_path / "cache")
    assert sub["task"] == task and len(sub["predictions"]) == 6
    parse_submission(json.loads(write_submission(sub, tmp_path / "p.json").read_text()))
    with pytest.raises(BaselineError, match="--data"):
        predict(task, "test")


def test_publish_dry_run_lists_weights_record_and_cards(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    (tmp_path / "model-localization.md").write_text("# card\n")
    assert main(["baseline", "publish", "--repo-id", "org/refs", "--cards", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    for entry in SHIPPED.values():
        assert f"{entry['sha256']}" in out and entry["weights"] in out
    assert "references.json" in out and "model-localization.md" in out and "README.md" in out
    assert "model org/refs" in out


def test_publish_pushes_one_model_commit_without_showing_the_token(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = FakeApi()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda **kwargs: api)
    assert main(["baseline", "publish", "--repo-id", "org/refs", "--cards", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    args, kwargs = api.call("create_commit")
    assert kwargs["repo_type"] == "model" and kwargs["token"] == TOKEN
    sent = {op.path_in_repo for op in args[1]}
    assert {"references.json", "README.md"} | {e["weights"] for e in SHIPPED.values()} == sent
    assert TOKEN not in captured.out + captured.err
