"""Adding entries (scoring, duplicates, versions, the lock) and verifying a board.

Every submission is a real ``fracbench.submission/v1`` file for the synthetic v1 build
(``built_v1``), scored by ``fracbench.score.score_submission``; where a test needs a scorer
that does something else, it wraps the real one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fracbench.errors import LeaderboardError, SubmissionError
from fracbench.leaderboard import Board, add_entry, load_entry, parse_meta, verify_board
from fracbench.leaderboard.entry import entry_hash
from fracbench.score import score_submission
from tests.synthetic_gt import write_predictions

REPO = Path(__file__).resolve().parents[2]


def _add(board, data, tmp_path, name, *, meta=None, **predict):
    """Write ``name``'s predictions for ``data`` (see ``write_predictions``) and add them, scored for real."""
    sub = write_predictions(tmp_path / f"{name}.json", data, name=name, **predict)
    return add_entry(board, sub, parse_meta({"name": name, **(meta or {})}), data=data, n_resamples=50)


@pytest.fixture(scope="module")
def partial_v1(synthetic_release, built_v1, tmp_path_factory) -> Path:
    """Another v1 build of the synthetic release: one train image absent, so another fingerprint, same test split.

    Module-scoped here, not shared: only the test of a board checked against another build needs it.
    """
    from fracbench.dataset.build import build_dataset
    from fracbench.release.reader import read_release
    from fracbench.splits.manifest import read_manifest

    manifest = read_manifest(built_v1.parent / "manifest.csv")
    copy = Path(shutil.copytree(synthetic_release, tmp_path_factory.mktemp("partial") / "FracAtlas"))
    gone = manifest.ids("train")[0]
    next(copy.glob(f"images/*/{gone}.jpg")).unlink()
    release = read_release(copy, allow_missing=True)
    return build_dataset(release, copy.parent / "fracatlas", manifest=manifest, allow_missing=True)


def test_add_writes_sealed_entry_and_gzipped_submission(built_v1, tmp_path):
    board = Board(tmp_path / "board")
    entry, path = _add(board, built_v1, tmp_path, "resnet", meta={"parameters": 10})
    assert path == board.root / "fracatlas-v1" / "classification" / "resnet.json"
    raw = (tmp_path / "resnet.json").read_bytes()
    stored = board.submission_path("v1", "classification", "resnet")
    assert gzip.decompress(stored.read_bytes()) == raw
    assert entry.submission.sha256 == hashlib.sha256(raw).hexdigest() == entry.result.provenance.submission_sha256
    assert entry.submission.path == "submissions/resnet.json.gz" and entry.submission.size == len(raw)
    data = json.loads(path.read_text())
    assert data["schema"] == "fracbench.leaderboard-entry/v1" and data["entry_sha256"] == entry_hash(data)
    assert data["model"]["parameters"] == 10 and data["result"]["curves"]["roc"]["fpr"]
    assert not list(board.root.rglob("*.tmp")), "atomic writes leave no temporaries"


def test_gzipped_submission_is_stored_verbatim_and_rescores(built_v1, tmp_path):
    board = Board(tmp_path / "board")
    plain = write_predictions(tmp_path / "m.json", built_v1, name="m")
    packed = tmp_path / "m.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    entry, _ = add_entry(board, packed, parse_meta({"name": "m"}), data=built_v1, n_resamples=50)
    assert entry.submission.stored_as == "verbatim"
    assert entry.submission.sha256 == hashlib.sha256(packed.read_bytes()).hexdigest()
    assert board.submission_path("v1", "classification", "m").read_bytes() == packed.read_bytes()
    report = verify_board(board, data=built_v1)
    assert [c.status for c in report.entries] == ["ok"]


def test_duplicate_submission_is_refused_before_scoring(built_v1, tmp_path):
    board = Board(tmp_path / "board")
    _add(board, built_v1, tmp_path, "resnet")
    calls = []

    def counting_scorer(*a, **k):
        calls.append(1)
        return score_submission(*a, **k)

    with pytest.raises(LeaderboardError, match=r"already on the board as fracatlas-v1/classification/resnet.json"):
        add_entry(board, tmp_path / "resnet.json", parse_meta({"name": "renamed"}), data=built_v1, scorer=counting_scorer)
    assert calls == []


def test_duplicate_slug_is_refused(built_v1, tmp_path):
    board = Board(tmp_path / "board")
    _add(board, built_v1, tmp_path, "resnet", seed=1)
    other = write_predictions(tmp_path / "other.json", built_v1, name="x", separation=1.0, seed=2)
    with pytest.raises(LeaderboardError, match=r"slug 'resnet' is already taken.*choose another `slug:`"):
        add_entry(board, other, parse_meta({"name": "ResNet"}), data=built_v1, n_resamples=50)
    # the same slug on another task is fine
    _add(board, built_v1, tmp_path, "resnet-loc", task="localization", meta={"slug": "resnet"})
    assert len(board.entry_files()) == 2


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        # the authors' test split has no scored image in the synthetic release: its validation split scores
        ({"splits_version": "legacy", "split": "validation", "task": "localization"},
         r"splits version 'legacy'; leaderboards accept splits v1 only"),
        ({"split": "validation"}, r"'validation' split; leaderboard entries are scored on the 'test' split"),
    ],
)
def test_other_versions_and_splits_are_refused(built_v1, tmp_path, kw, message):
    board = Board(tmp_path / "board")
    with pytest.raises(LeaderboardError, match=message):
        _add(board, built_v1, tmp_path, "m", **kw)
    assert board.entry_files() == []


def test_other_protocol_is_refused(built_v1, tmp_path):
    def protocol_two(*a, **k):
        result = score_submission(*a, **k)
        return result.model_copy(update={"provenance": result.provenance.model_copy(update={"protocol_version": "2"})})

    sub = write_predictions(tmp_path / "s.json", built_v1, name="m", separation=1.0)
    with pytest.raises(LeaderboardError, match=r"protocol '2'.*takes protocol '1'"):
        add_entry(tmp_path / "board", sub, parse_meta({"name": "m"}), data=built_v1, scorer=protocol_two, n_resamples=50)


def test_scorer_errors_pass_through_and_write_nothing(built_v1, tmp_path):
    sub = write_predictions(tmp_path / "s.json", built_v1, name="m", separation=1.0)
    doc = json.loads(sub.read_text())
    del doc["predictions"][0]  # an image left unpredicted: the scorer refuses the submission
    sub.write_text(json.dumps(doc))
    with pytest.raises(SubmissionError, match="s.json: invalid submission"):
        add_entry(tmp_path / "board", sub, parse_meta({"name": "m"}), data=built_v1)
    assert Board(tmp_path / "board").entry_files() == []


def test_missing_submission_file(built_v1, tmp_path):
    with pytest.raises(LeaderboardError, match="cannot read the submission file"):
        add_entry(tmp_path / "board", tmp_path / "nope.json", parse_meta({"name": "m"}), data=built_v1)


# --- concurrency: separate processes, a real fcntl lock

_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from fracbench.errors import LeaderboardError
    from fracbench.leaderboard import add_entry, parse_meta
    from fracbench.score import score_submission

    board, sub, name, go, scored, peers, data = sys.argv[1:8]
    def slow_scorer(*a, **k):
        result = score_submission(*a, **k)
        Path(scored).write_text("scored")
        # barrier: every peer is past the pre-check before any of them goes on to write
        deadline = time.monotonic() + 30
        while len(list(Path(scored).parent.glob("scored-*"))) < int(peers) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        return result
    while not Path(go).exists():
        time.sleep(0.01)
    try:
        add_entry(board, sub, parse_meta({{"name": name}}), data=data, scorer=slow_scorer, n_resamples=20)
        print("added")
    except LeaderboardError as exc:
        print("refused:", exc)
    """
).format(repo=str(REPO))


def _spawn(tmp_path, board, sub, name, tag, data, peers=2):
    go, scored = tmp_path / "go", tmp_path / f"scored-{tag}"
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, str(board), str(sub), name, str(go), str(scored), str(peers), str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    return proc, scored


def _finish(proc) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out.strip()


@pytest.mark.slow
def test_two_concurrent_adds_lose_nothing(built_v1, tmp_path):
    board = tmp_path / "board"
    subs = [write_predictions(tmp_path / f"s{i}.json", built_v1, name=f"m{i}", separation=1.0 + i, seed=i) for i in range(2)]
    procs = [_spawn(tmp_path, board, subs[i], f"model-{i}", i, built_v1)[0] for i in range(2)]
    (tmp_path / "go").touch()
    assert [_finish(p) for p in procs] == ["added", "added"]
    assert [p.name for p in Board(board).entry_files()] == ["model-0.json", "model-1.json"]
    report = verify_board(board, data=built_v1)
    assert report.ok and [c.status for c in report.entries] == ["ok", "ok"]


@pytest.mark.slow
def test_concurrent_adds_of_one_slug_admit_exactly_one(built_v1, tmp_path):
    board = tmp_path / "board"
    subs = [write_predictions(tmp_path / f"s{i}.json", built_v1, name="m", separation=1.0 + i, seed=i) for i in range(2)]
    procs = [_spawn(tmp_path, board, subs[i], "same-name", i, built_v1)[0] for i in range(2)]
    (tmp_path / "go").touch()
    outcomes = sorted(_finish(p) for p in procs)
    assert outcomes[0] == "added" and outcomes[1].startswith("refused:") and "already taken" in outcomes[1]
    entry = load_entry(Board(board).entry_files()[0])
    stored = gzip.decompress(Board(board).submission_path("v1", "classification", "same-name").read_bytes())
    assert hashlib.sha256(stored).hexdigest() == entry.submission.sha256, "the winner's submission is stored"


@pytest.mark.slow
def test_add_waits_for_the_lock(built_v1, tmp_path):
    board = Board(tmp_path / "board")
    sub = write_predictions(tmp_path / "s.json", built_v1, name="m", separation=1.0)
    with board.locked():
        proc, scored = _spawn(tmp_path, board.root, sub, "waiting", "w", built_v1, peers=1)
        (tmp_path / "go").touch()
        deadline = time.monotonic() + 30
        while not scored.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # scored, 0.2 s pause done: it now waits for the lock
        assert board.entry_files() == [], "an add wrote while another process held the lock"
    assert _finish(proc) == "added"
    assert [p.name for p in board.entry_files()] == ["waiting.json"]


# --- verify


@pytest.fixture
def board3(built_v1, tmp_path):
    board = Board(tmp_path / "board")
    for i, name in enumerate(["alpha", "beta"]):
        _add(board, built_v1, tmp_path, name, separation=1.0 + i, seed=i)
    _add(board, built_v1, tmp_path, "gamma", task="localization", seed=7)
    return board


def test_verify_clean_board_rescores_everything(board3, built_v1):
    report = verify_board(board3, data=built_v1)
    assert report.ok and report.rescore_skipped is None
    assert [c.status for c in report.entries] == ["ok", "ok", "ok"]


def test_verify_without_dataset_says_it_skipped(board3, tmp_path, monkeypatch):
    monkeypatch.delenv("FRACBENCH_DATA", raising=False)
    report = verify_board(board3, data=tmp_path / "nowhere")
    assert report.ok
    assert "no built fracbench dataset" in report.rescore_skipped
    assert all(c.status == "unverified" and "not re-scored" in c.notes[0] for c in report.entries)


def _edit(path: Path, change, *, reseal: bool) -> None:
    data = json.loads(path.read_text())
    change(data)
    if reseal:
        data["entry_sha256"] = entry_hash(data)
    path.write_text(json.dumps(data, indent=2))


def test_verify_catches_an_edited_number(board3, tmp_path):
    path = board3.entry_path("v1", "classification", "alpha")
    _edit(path, lambda d: d["result"]["main_score"].__setitem__("value", 0.99), reseal=False)
    report = verify_board(board3, data=tmp_path / "nowhere")
    assert not report.ok
    (bad,) = [c for c in report.entries if c.status == "failed"]
    assert bad.path == "fracatlas-v1/classification/alpha.json" and "entry_sha256" in bad.problems[0]


def test_verify_catches_a_resealed_edit_by_rescoring(board3, built_v1, tmp_path):
    path = board3.entry_path("v1", "classification", "beta")
    _edit(path, lambda d: d["result"]["metrics"]["sensitivity"].__setitem__("value", 0.99), reseal=True)
    report = verify_board(board3, data=built_v1)
    (bad,) = [c for c in report.entries if c.status == "failed"]
    assert bad.path.endswith("beta.json")
    assert any(p.startswith("result.metrics.sensitivity.value: stored 0.99, re-scored") for p in bad.problems)
    # without the dataset the forgery passes the hash check, but it is not verified (the CLI exits 1)
    report = verify_board(board3, data=tmp_path / "nowhere")
    assert report.ok and not report.verified and report.unverified()


def test_verify_catches_a_changed_submission_file(board3, tmp_path):
    sub = board3.submission_path("v1", "classification", "alpha")
    sub.write_bytes(gzip.compress(b'{"task": "classification"}'))
    report = verify_board(board3, data=tmp_path / "nowhere")
    (bad,) = [c for c in report.entries if c.status == "failed"]
    assert "submissions/alpha.json.gz holds a submission hashing to" in bad.problems[0]
    assert "was changed" in bad.problems[0]


def test_verify_flags_moved_entries_missing_and_orphan_submissions(board3, tmp_path):
    v1 = board3.version_dir("v1")
    (v1 / "classification" / "alpha.json").rename(v1 / "localization" / "alpha.json")
    board3.submission_path("v1", "classification", "beta").unlink()
    report = verify_board(board3, data=tmp_path / "nowhere")
    by_path = {c.path: c for c in report.entries}
    moved = by_path["fracatlas-v1/localization/alpha.json"]
    assert moved.status == "failed" and "under localization/" in moved.problems[0]
    beta = by_path["fracatlas-v1/classification/beta.json"]
    assert beta.status == "failed" and beta.problems == [
        "stored submission submissions/beta.json.gz is absent, so the entry's numbers cannot be re-scored; "
        "restore the file or remove the entry"
    ]
    assert report.notes == ["fracatlas-v1/classification/submissions/alpha.json.gz: no entry refers to this submission file"]


def test_verify_skips_rescoring_against_another_dataset_build(board3, partial_v1):
    fingerprint = json.loads((partial_v1 / "fracbench.json").read_text())["fingerprint"]
    report = verify_board(board3, data=partial_v1)
    assert report.ok
    assert all(c.status == "unverified" and f"fingerprint {fingerprint[:12]}" in c.notes[0] for c in report.entries)


def test_verify_missing_board(tmp_path):
    with pytest.raises(LeaderboardError, match="no leaderboard directory"):
        verify_board(tmp_path / "nope")
