"""Hub publishing: the upload plan, ``push`` against a fake HfApi, ``fracbench publish-dataset``.

Nothing here talks to the Hub: ``push`` gets a recording fake in place of ``HfApi``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

from fracbench.cli import main
from fracbench.dataset import hub
from fracbench.dataset.hub import plan_dataset_upload, plan_upload, push
from fracbench.errors import DatasetNotFoundError, HubError

TOKEN = "hf_TestTokenThatMustNeverBePrinted123"

FILES = {
    "README.md": b"---\nconfigs:\n- config_name: classification\n---\n# FracAtlas\n",
    "fracbench.json": b'{"schema": "fracbench.dataset/v1"}\n',
    "classification/train-00000-of-00001.parquet": os.urandom(3000),
    "classification/test-00000-of-00001.parquet": os.urandom(1000),
    "segmentation/test-00000-of-00001.parquet": os.urandom(500),
    ".gitattributes": b"*.parquet filter=lfs\n",
}
HIDDEN = {".git/config": b"[core]\n", ".fracbench.json.abc.tmp": b"half", "classification/.cache/x": b"c"}


@pytest.fixture()
def dataset_dir(tmp_path: Path) -> Path:
    root = tmp_path / "fracatlas"
    for rel, data in {**FILES, **HIDDEN}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


class FakeApi:
    """Records the HfApi calls ``push`` makes; optionally fails in ``create_commit``."""

    def __init__(self, fail_with: Exception | None = None):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.fail_with = fail_with

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))
        return SimpleNamespace(repo_id=args[0])

    def create_branch(self, *args, **kwargs):
        self.calls.append(("create_branch", args, kwargs))

    def create_commit(self, *args, **kwargs):
        self.calls.append(("create_commit", args, kwargs))
        if self.fail_with is not None:
            raise self.fail_with
        pr = "https://hf.co/datasets/org/name/discussions/1" if kwargs["create_pr"] else None
        return SimpleNamespace(commit_url="https://hf.co/datasets/org/name/commit/abc", pr_url=pr, oid="abc")

    def call(self, name: str) -> tuple[tuple, dict]:
        found = [(a, k) for n, a, k in self.calls if n == name]
        assert len(found) == 1, self.calls
        return found[0]


# --- the plan -----------------------------------------------------------------------------------


def test_plan_lists_every_file_with_size_and_sha256_and_skips_hidden(dataset_dir):
    plan = plan_upload(dataset_dir)
    assert [f.path_in_repo for f in plan.files] == sorted(FILES)
    for f in plan.files:
        assert f.size == len(FILES[f.path_in_repo])
        assert f.sha256 == hashlib.sha256(FILES[f.path_in_repo]).hexdigest()
        assert f.local_path == dataset_dir / f.path_in_repo
    assert plan.total_size == sum(len(v) for v in FILES.values())
    assert plan.as_dict()["files"][0]["sha256"] == plan.files[0].sha256


def test_plan_prefix_and_patterns(dataset_dir):
    plan = plan_upload(dataset_dir, path_in_repo="/boards/v1/", allow_patterns=["classification/"],
                       ignore_patterns="*test*")
    assert [f.path_in_repo for f in plan.files] == ["boards/v1/classification/train-00000-of-00001.parquet"]
    assert plan.path_in_repo == "boards/v1"


@pytest.mark.parametrize("bad", ["../up", "a/../../b", "a\\b"])
def test_plan_refuses_escaping_repo_paths(dataset_dir, bad):
    with pytest.raises(HubError, match="path_in_repo"):
        plan_upload(dataset_dir, path_in_repo=bad)


def test_plan_errors_name_the_folder(tmp_path, dataset_dir):
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        plan_upload(tmp_path / "absent")
    with pytest.raises(HubError, match="nothing to upload"):
        plan_upload(dataset_dir, allow_patterns="*.nothing")
    (dataset_dir / "README.md").unlink()
    with pytest.raises(DatasetNotFoundError, match="README.md is missing"):
        plan_dataset_upload(dataset_dir)


# --- push -----------------------------------------------------------------------------------------


def test_push_sends_one_commit_with_every_planned_file(dataset_dir, caplog):
    plan = plan_upload(dataset_dir)
    api = FakeApi()
    with caplog.at_level(logging.DEBUG):
        result = push(plan, "org/name", token=TOKEN, api=api, commit_message="msg")
    assert [name for name, _, _ in api.calls] == ["create_repo", "create_commit"]
    args, kwargs = api.call("create_repo")
    assert args == ("org/name",) and kwargs["repo_type"] == "dataset" and kwargs["exist_ok"] is True
    args, kwargs = api.call("create_commit")
    operations = args[1]
    assert [op.path_in_repo for op in operations] == [f.path_in_repo for f in plan.files]
    assert [op.path_or_fileobj for op in operations] == [str(f.local_path) for f in plan.files]
    assert [op.upload_info.sha256.hex() for op in operations] == [f.sha256 for f in plan.files]
    assert kwargs["repo_type"] == "dataset" and kwargs["create_pr"] is False and kwargs["token"] == TOKEN
    assert kwargs["commit_message"] == "msg"
    assert result.commit_url.endswith("/commit/abc") and result.pr_url is None
    assert "pushing 6 files" in caplog.text and TOKEN not in caplog.text


def test_push_as_pull_request_to_a_branch_with_env_token(dataset_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = FakeApi()
    result = push(plan_upload(dataset_dir), "org/board", repo_type="model", create_pr=True,
                  revision="dev", private=True, api=api)
    _, kwargs = api.call("create_commit")
    assert kwargs["create_pr"] is True and kwargs["revision"] == "dev" and kwargs["repo_type"] == "model"
    assert kwargs["token"] == TOKEN and api.call("create_repo")[1]["private"] is True
    assert "create_branch" not in [name for name, _, _ in api.calls]  # a PR is based on the branch
    assert result.pr_url.endswith("/discussions/1")


def test_push_to_a_branch_creates_it(dataset_dir):
    api = FakeApi()
    push(plan_upload(dataset_dir), "org/name", revision="v1.0", token=TOKEN, api=api)
    args, kwargs = api.call("create_branch")
    assert args == ("org/name",) and kwargs["branch"] == "v1.0" and kwargs["exist_ok"] is True


def test_push_without_token_fails_before_any_call(dataset_dir, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    api = FakeApi()
    with pytest.raises(HubError, match="no Hugging Face token: set HF_TOKEN"):
        push(plan_upload(dataset_dir), "org/name", api=api)
    assert api.calls == []


def test_hub_failure_is_one_hub_error_without_the_token(dataset_dir):
    api = FakeApi(fail_with=RuntimeError(f"401 Unauthorized for token {TOKEN}"))
    with pytest.raises(HubError) as err:
        push(plan_upload(dataset_dir), "org/name", token=TOKEN, api=api)
    assert "401 Unauthorized" in str(err.value) and TOKEN not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_files_changed_after_planning_are_refused(dataset_dir):
    plan = plan_upload(dataset_dir)
    (dataset_dir / "fracbench.json").write_bytes(b'{"edited": true, "longer": 1}\n')
    api = FakeApi()
    with pytest.raises(HubError, match="changed after the upload was planned"):
        push(plan, "org/name", token=TOKEN, api=api)
    assert api.calls == []


def test_bad_repo_id_is_a_hub_error(dataset_dir):
    with pytest.raises(HubError, match="org//name"):
        push(plan_upload(dataset_dir), "org//name", token=TOKEN, api=FakeApi())


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_dry_run_prints_the_plan_and_sends_nothing(dataset_dir, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)

    def no_push(*a, **k):
        raise AssertionError("dry run pushed")

    monkeypatch.setattr(hub, "push", no_push)
    code = main(["publish-dataset", "--repo-id", "org/fracatlas", "--data", str(dataset_dir), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "dry run, nothing sent" in out and "dataset org/fracatlas" in out
    lines = out.splitlines()
    for rel, data in FILES.items():
        assert f"{hashlib.sha256(data).hexdigest()}  {len(data):>13,}  {rel}" in lines
    assert not any(hidden in out for hidden in HIDDEN)
    assert f"total: {len(FILES)} files, {sum(map(len, FILES.values())):,} bytes" in out


def test_cli_publish_as_pr_never_shows_the_token(dataset_dir, monkeypatch, capsys, caplog):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = FakeApi()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda **kwargs: api)
    with caplog.at_level(logging.DEBUG):
        code = main(["-v", "publish-dataset", "--repo-id", "org/fracatlas", "--data", str(dataset_dir),
                     "--create-pr", "--private"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "pull request: https://hf.co/datasets/org/name/discussions/1" in captured.out
    _, kwargs = api.call("create_commit")
    assert kwargs["create_pr"] is True and kwargs["repo_type"] == "dataset" and kwargs["token"] == TOKEN
    assert TOKEN not in captured.out + captured.err + caplog.text


def test_cli_publish_without_token_fails_in_one_line(dataset_dir, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert main(["publish-dataset", "--repo-id", "org/fracatlas", "--data", str(dataset_dir)]) == 1
    err = capsys.readouterr().err
    assert "no Hugging Face token" in err and len(err.strip().splitlines()) == 1


def test_cli_publish_needs_a_built_dataset(tmp_path, capsys):
    assert main(["publish-dataset", "--repo-id", "org/x", "--data", str(tmp_path), "--dry-run"]) == 1
    assert "no built fracbench dataset" in capsys.readouterr().err
