"""The hostile review of issue 11 as a suite: every probe, counted.

Each probe tries a bounded set of cases and records, per case, whether it was
handled (a clean one-line error or a correct result with the documented exit
code: 0 valid, 1 invalid, 2 usage; never a traceback, never raw terminal
controls, bounded output). When the module finishes, the case table is written
to ``tests/.hardening_table.md`` (git-ignored) and printed (``pytest -s``).

Probes: CLI fuzzing through real ``python -m fracbench`` processes; tampered
boards; kill-and-rerun of a download and of a build (real SIGKILL); archive
bombs and non-release archives; download failures (disk full, HTTP 500).
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fracbench.cli import main
from fracbench.errors import DownloadError, ReleaseNotFoundError, UnsafeArchiveError
from fracbench.leaderboard.entry import entry_hash
from fracbench.release import download as dl
from fracbench.release.archive import ExtractionLimits, extract_release, inspect_archive
from fracbench.release.download import download_file, part_path
from tests.httpserver import Fault, FileServer

REPO = Path(__file__).resolve().parents[2]
TABLE_PATH = REPO / "tests" / ".hardening_table.md"
MAX_OUTPUT = 64_000
"""Bytes of stdout+stderr a CLI run may print for any of these inputs."""

_TABLE: dict[str, list[int]] = {}
_FAILED: dict[str, list[str]] = {}


def record(probe: str, case: str, handled: bool, why: str = "") -> None:
    """Count one case of ``probe``; keep a description of it when it was not handled."""
    row = _TABLE.setdefault(probe, [0, 0])
    row[0] += 1
    row[1] += bool(handled)
    if not handled:
        _FAILED.setdefault(probe, []).append(f"{case}: {why}")


def assert_probe(probe: str) -> None:
    """Fail naming every case of ``probe`` that was not handled."""
    assert not _FAILED.get(probe), f"{probe}: unhandled cases:\n" + "\n".join(_FAILED[probe])


@pytest.fixture(scope="module", autouse=True)
def _case_table():
    yield
    if not _TABLE:
        return
    lines = ["| probe | cases tried | cases handled |", "|---|---:|---:|"]
    lines += [f"| {probe} | {tried} | {handled} |" for probe, (tried, handled) in _TABLE.items()]
    total = [sum(v[i] for v in _TABLE.values()) for i in (0, 1)]
    lines.append(f"| **all** | **{total[0]}** | **{total[1]}** |")
    text = "\n".join(lines) + "\n"
    TABLE_PATH.write_text(text, encoding="utf-8")
    print("\n" + text)


# --- CLI fuzzing through real processes ----------------------------------------------------------


def _env(data: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRACBENCH_", "PYTEST"))}
    env.update(PYTHONPATH=str(REPO), COLUMNS="120", HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    if data is not None:
        env["FRACBENCH_DATA"] = str(data)
    return env


def _run_cli(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "fracbench", *argv], env=env, cwd=cwd,
                          capture_output=True, timeout=120)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def _judge(out: str, rc: int, expect: set[int], must_show: str | None) -> str | None:
    """Why a CLI run was not handled, or None."""
    if "Traceback" in out:
        return "traceback: " + out[-300:]
    if rc not in expect:
        return f"exit {rc}, expected {sorted(expect)}: {out[-300:]!r}"
    if len(out.encode()) > MAX_OUTPUT:
        return f"{len(out.encode()):,} bytes of output"
    if any(ch in out for ch in ("\x1b", "\x9b", "\x07", "\u202e")):
        return "raw terminal control or bidi override printed"
    if must_show is not None and must_show not in out:
        return f"output lacks {must_show!r}: {out[-300:]!r}"
    return None


HOSTILE_NAME = "evil\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eRLO [bold]x[/bold] [/x]"


def _mutate(doc: dict, rng: random.Random) -> object:
    """One random structural mutation of a submission document (a copy)."""
    doc = json.loads(json.dumps(doc))
    junk = [None, True, -1, 1e308, "", "x" * 5000, [], {}, [[[[]]]], {"[bold]": "\x1b[31m"}, "NaN", 2**70]
    kind = rng.randrange(6)
    preds = doc.get("predictions") or []
    if kind == 0:
        doc.pop(rng.choice(sorted(doc)))
    elif kind == 1:
        doc[rng.choice(sorted(doc))] = rng.choice(junk)
    elif kind == 2 and preds:
        p = rng.choice(preds)
        p[rng.choice(sorted(p))] = rng.choice(junk)
    elif kind == 3 and preds:
        preds.append(rng.choice(junk))
    elif kind == 4:
        doc["predictions"] = preds * 3  # repeated image ids
    else:
        return rng.choice(junk)
    return doc


@pytest.mark.slow
def test_cli_fuzz_through_real_processes(built_v1, tmp_path):
    from fracbench.dataset.groundtruth import load_ground_truth
    from tests.synthetic_gt import classification_predictions, submission, write_submission

    gt = load_ground_truth(built_v1, "test")
    doc = submission(gt, "classification", classification_predictions(gt))
    valid = write_submission(tmp_path / "valid.json", doc)
    hostile = write_submission(tmp_path / "hostile.json", {**doc, "model": {"name": HOSTILE_NAME}})
    other = write_submission(tmp_path / "other.json", submission(gt, "classification", classification_predictions(gt, seed=5)))
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "garbage.json").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "obj.json").write_text("{}")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "\x1b[31mboard").mkdir()  # an empty board whose path holds an escape sequence
    markup = tmp_path / "[bold]x[/bold]"
    markup.mkdir(parents=True)
    # (argv, accepted exit codes, text the output must show)
    cases: list[tuple[list[str], set[int], str | None]] = [
        (["validate", str(valid)], {0}, "valid classification submission"),
        (["score", str(valid), "--bootstrap", "20"], {0}, "auroc"),
        (["score", str(hostile), "--bootstrap", "0"], {0}, "\\x1b[2J"),
        (["compare", str(valid), str(hostile), "--bootstrap", "20"], {0}, "\\u202eRLO"),
        (["compare", str(valid), str(other), "--bootstrap", "20", "--json", str(tmp_path / "dir.json")], {1}, "is a directory"),
        (["score", str(valid), "--bootstrap", "1000000000"], {1}, "100,000"),
        (["score", str(valid), "--bootstrap", "-3"], {1, 2}, None),
        (["score", str(valid), "--bootstrap", "many"], {2}, None),
        (["score", str(valid), "--json", str(tmp_path / "dir.json")], {1}, "is a directory"),
        (["score", str(tmp_path / "[/x]" / "p.json")], {1}, "[/x]"),
        (["audit", str(markup), "--out", str(tmp_path / "audit")], {1}, "[bold]x[/bold]"),
        (["validate", str(tmp_path / "empty.json")], {1}, None),
        (["validate", str(tmp_path / "garbage.json")], {1}, None),
        (["validate", str(tmp_path / "obj.json")], {1}, None),
        (["validate", str(tmp_path / "deep.json")], {1}, None),
        (["score", str(tmp_path / "obj.json")], {1}, None),
        (["scroe", str(valid)], {2}, "Did you mean: score"),
        (["score", str(valid), "--no-such-flag"], {2}, None),
        (["leaderboard", "verify", "--board", str(tmp_path / "\x1b[31mnone")], {1}, "\\x1b[31mnone"),
        (["leaderboard", "render", "--board", str(tmp_path / "\x1b[31mboard")], {0}, "\\x1b[31mboard/index.html"),
    ]
    rng = random.Random(11)
    for i in range(6):
        path = tmp_path / f"mutant{i}.json"
        path.write_text(json.dumps(_mutate(doc, rng)))
        cases.append((["validate", str(path)], {0, 1}, None))
    env = _env(built_v1)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: _run_cli(c[0], env, tmp_path), cases))
    for (argv, expect, must_show), (rc, out) in zip(cases, results, strict=True):
        why = _judge(out, rc, expect, must_show)
        record("CLI fuzz (real processes)", " ".join(argv)[:120], why is None, why or "")
    assert_probe("CLI fuzz (real processes)")


# --- tampered boards ------------------------------------------------------------------------------

COMMITTED_BOARD = REPO / "leaderboards"


def _forge(board: Path, rel: str, *, value: float | None = None, n_resamples: int | None = None,
           delete_submission: bool = False, reseal: bool = True) -> None:
    path = board / rel
    entry = json.loads(path.read_text())
    if value is not None:
        entry["result"]["main_score"]["value"] = value
    if n_resamples is not None:
        entry["result"]["provenance"]["bootstrap"]["n_resamples"] = n_resamples
    if reseal:
        entry["entry_sha256"] = entry_hash(entry)
    path.write_text(json.dumps(entry))
    if delete_submission:
        (path.parent / entry["submission"]["path"]).unlink()


def test_tampered_boards_fail_verify_and_are_never_rendered(built_v1, tmp_path, monkeypatch, capsys):
    from tests.synthetic_gt import write_predictions

    monkeypatch.delenv("FRACBENCH_DATA", raising=False)
    data = built_v1
    clean = tmp_path / "clean"
    for i, name in enumerate(["Model A", "Model B"]):
        sub = write_predictions(tmp_path / f"s{i}.json", data, name=name, separation=2.0 - i, seed=i)
        meta = tmp_path / f"meta{i}.yaml"
        meta.write_text(f"name: {name}\n")
        assert main(["leaderboard", "add", str(sub), "--meta", str(meta), "--board", str(clean), "--data", str(data),
                     "--n-resamples", "30"]) == 0
    rel = "fracatlas-v1/classification/model-a.json"
    sub_rel = "fracatlas-v1/classification/submissions/model-a.json.gz"

    def swap_submission(board: Path) -> None:
        (board / sub_rel).write_bytes(gzip.compress(b'{"other": 1}'))

    tampers: dict[str, Callable[[Path], None]] = {
        "score edited, not resealed": lambda b: _forge(b, rel, value=0.999, reseal=False),
        "score edited and resealed": lambda b: _forge(b, rel, value=0.999),
        "resealed, stored submission deleted": lambda b: _forge(b, rel, value=0.999, delete_submission=True),
        "resealed with n_resamples 10**9": lambda b: _forge(b, rel, n_resamples=10**9),
        "stored submission swapped": swap_submission,
        "entry moved to another task": lambda b: (b / "fracatlas-v1/localization").mkdir()
        or shutil.move(b / rel, b / "fracatlas-v1/localization/model-a.json"),
    }
    probe = "board tamper: verify exits 1 naming the entry, render refuses"
    for name, tamper in tampers.items():
        board = tmp_path / name.replace(" ", "-").replace("*", "")
        shutil.copytree(clean, board)
        tamper(board)
        capsys.readouterr()
        rc_verify = main(["leaderboard", "verify", "--board", str(board), "--data", str(data)])
        err = capsys.readouterr().err
        rc_render = main(["leaderboard", "render", "--board", str(board), "--data", str(data), "--allow-unverified"])
        render_err = capsys.readouterr().err
        named = "model-a.json" in err and "model-a.json" in render_err
        ok = rc_verify == 1 and rc_render == 1 and named and not (board / "index.html").exists()
        record(probe, name, ok, f"verify {rc_verify}, render {rc_render}: {err[-200:]!r} {render_err[-200:]!r}")

    # Cannot be re-scored (no dataset): verify fails, render refuses unless --allow-unverified, then marks it.
    board = tmp_path / "unverifiable"
    shutil.copytree(clean, board)
    rc = main(["leaderboard", "verify", "--board", str(board), "--data", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    record(probe, "no dataset to re-score", rc == 1 and "UNVERIFIED fracatlas-v1/classification/model-a.json" in err, err)
    rc = main(["leaderboard", "render", "--board", str(board), "--data", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    record(probe, "render unverified", rc == 1 and "--allow-unverified" in err and not (board / "index.html").exists(), err)
    rc = main(["leaderboard", "render", "--board", str(board), "--data", str(tmp_path / "nothing"), "--allow-unverified"])
    page = (board / "index.html").read_text() if (board / "index.html").exists() else ""
    record(probe, "render --allow-unverified marks it", rc == 0 and page.count('class="unverified"') == 2, str(rc))
    assert_probe(probe)


def test_forged_committed_board_fails_in_a_real_process(tmp_path):
    """The issue's reproduction on the committed board, through ``python -m fracbench``."""
    entries = sorted(COMMITTED_BOARD.glob("fracatlas-v1/*/*.json"))
    if not entries:
        pytest.skip("no committed leaderboard entries")
    board = tmp_path / "board"
    shutil.copytree(COMMITTED_BOARD, board, ignore=shutil.ignore_patterns(".lock"))
    rel = entries[0].relative_to(COMMITTED_BOARD).as_posix()
    _forge(board, rel, value=0.999, delete_submission=True)
    env = _env()
    probe = "board tamper: committed board forged (real process)"
    for argv in (["leaderboard", "verify", "--no-rescore", "--board", str(board)],
                 ["leaderboard", "verify", "--board", str(board), "--data", str(tmp_path / "none")],
                 ["leaderboard", "render", "--board", str(board), "--allow-unverified"]):
        rc, out = _run_cli(argv, env, tmp_path)
        why = _judge(out, rc, {1}, f"{rel}: stored submission")
        record(probe, " ".join(argv[:2]), why is None, why or "")
    assert (board / "index.html").read_bytes() == (COMMITTED_BOARD / "index.html").read_bytes(), "page rewritten"
    assert_probe(probe)


# --- archives ----------------------------------------------------------------------------------


def _declare_sizes(data: bytes, size: int) -> bytes:
    """Rewrite every central-directory record's uncompressed size (what a hostile zip declares)."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at != -1:
        struct.pack_into("<I", out, at + 24, size)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", out, at + 28)
        at = out.find(b"PK\x01\x02", at + 46 + name_len + extra_len + comment_len)
    return bytes(out)


def _zip(members: list[tuple[str, bytes]], level: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", level) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def test_archive_bombs_and_non_release_archives(tmp_path):
    probe = "archives: bombs and non-release zips refused before extraction"
    just_under = (1 << 20) - 1
    cases: dict[str, tuple[bytes, type[Exception], str]] = {
        # the zip: 8,001 members declaring just under 1 MiB each (8.39 GB) in a small file
        "8,001 x (1 MiB - 1) declared": (
            _declare_sizes(_zip([(f"FracAtlas/images/{i:05d}.bin", b"") for i in range(8001)], zipfile.ZIP_STORED),
                           just_under),
            UnsafeArchiveError, "over the total limit of 2,147,483,648"),
        "100 x 512 KiB of zeros (each under the ratio floor)": (
            _zip([("FracAtlas/dataset.csv", b"image_id\n")] + [(f"FracAtlas/z{i}", bytes(512 << 10)) for i in range(100)]),
            UnsafeArchiveError, "an archive bomb"),
        "one 4 MiB member of zeros": (_zip([("FracAtlas/zeros", bytes(4 << 20))]), UnsafeArchiveError, "archive bomb"),
        "member over the per-member limit (declared)": (
            _declare_sizes(_zip([("FracAtlas/dataset.csv", b"x")], zipfile.ZIP_STORED), (256 << 20) + 1),
            UnsafeArchiveError, "per-member limit"),
        "no dataset.csv": (_zip([("photos/a.jpg", b"\xff\xd8"), ("readme.md", b"hello")]),
                           ReleaseNotFoundError, "not a FracAtlas release zip"),
        "dataset.csv two folders deep": (_zip([("a/b/dataset.csv", b"image_id\n")]),
                                         ReleaseNotFoundError, "nothing was extracted"),
        "two folders each with dataset.csv": (_zip([("a/dataset.csv", b"1"), ("b/dataset.csv", b"2")]),
                                              ReleaseNotFoundError, "not a FracAtlas release zip"),
        "path traversal": (_zip([("FracAtlas/dataset.csv", b"1"), ("../evil", b"x")]), UnsafeArchiveError, "escapes"),
        "empty zip": (_zip([]), ReleaseNotFoundError, "no members"),
    }
    for name, (data, error, needle) in cases.items():
        work = tmp_path / name.replace(" ", "_").replace(",", "")
        work.mkdir()
        archive = work / "release.zip"
        archive.write_bytes(data)
        raw = work / "raw"
        started = time.perf_counter()
        try:
            extract_release(archive, raw)
            why = "extracted"
        except error as exc:
            text = str(exc)
            why = None if needle in text and "\n" not in text else f"message {text[:300]!r}"
        except Exception as exc:  # noqa: BLE001 - any other exception is the finding
            why = f"{type(exc).__name__}: {exc}"[:300]
        left = sorted(p.name for p in raw.rglob("*")) if raw.exists() else []
        if why is None and left:
            why = f"left behind {left[:5]}"
        if why is None and time.perf_counter() - started > 5:
            why = "took more than 5 s to refuse"
        record(probe, name, why is None, why or "")
    # the count bound, with a small limit so the test stays fast
    archive = tmp_path / "many.zip"
    archive.write_bytes(_zip([(f"m{i}", b"") for i in range(101)]))
    try:
        inspect_archive(archive, ExtractionLimits(max_members=100))
        record(probe, "101 members, limit 100", False, "accepted")
    except UnsafeArchiveError as exc:
        record(probe, "101 members, limit 100", "more than the limit of 100" in str(exc), str(exc))
    assert_probe(probe)


# --- downloads ------------------------------------------------------------------------------------

PAYLOAD = bytes(random.Random(3).randbytes(3 << 20))


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class _FullDisk:
    """A ``.part`` file object whose writes fail with ENOSPC once ``room`` bytes are written."""

    def __init__(self, fh, room: int):
        self._fh, self._room = fh, room

    def write(self, chunk: bytes) -> int:
        if self._fh.tell() + len(chunk) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._fh.write(chunk)

    def __getattr__(self, name):
        return getattr(self._fh, name)


def test_download_failures_say_what_is_kept_and_rerun_succeeds(tmp_path, monkeypatch):
    probe = "download: disk full, HTTP 500, stall: honest message, rerun succeeds"
    fast = {"backoff": 0.0, "timeout": 2.0}
    with FileServer() as server:
        url = server.serve("/r.zip", PAYLOAD)
        dest = tmp_path / "r.zip"

        real_locked = dl._locked_part

        def full_disk(part):
            import contextlib

            @contextlib.contextmanager
            def cm():
                with real_locked(part) as fh:
                    yield _FullDisk(fh, 1 << 20)
            return cm()

        monkeypatch.setattr(dl, "_locked_part", full_disk)
        try:
            download_file(url, dest, md5=_md5(PAYLOAD), size=len(PAYLOAD), **fast)
            why = "no error"
        except DownloadError as exc:
            text = str(exc)
            why = None if "disk full" in text and "partial download was removed" in text else text
        if why is None and part_path(dest).exists():
            why = ".part kept"
        record(probe, "ENOSPC mid-download", why is None, why or "")
        monkeypatch.setattr(dl, "_locked_part", real_locked)
        download_file(url, dest, md5=_md5(PAYLOAD), size=len(PAYLOAD), **fast)
        record(probe, "rerun after ENOSPC", dest.read_bytes() == PAYLOAD, "rerun did not finish")
        dest.unlink()

        for name, faults, expect_kept in [
            ("HTTP 500 every time, nothing received", [Fault(status=500)] * 3, 0),
            ("500 after a dropped half", [Fault(drop_after=1 << 20)] + [Fault(status=500)] * 3, 1 << 20),
            ("stalls every time", [Fault(stall=1.0)] * 3, 0),
        ]:
            server.inject(*faults)
            try:
                download_file(url, dest, md5=_md5(PAYLOAD), size=len(PAYLOAD), retries=2, **{**fast, "timeout": 0.4})
                why = "no error"
            except DownloadError as exc:
                text, part = str(exc), part_path(dest)
                kept = part.stat().st_size if part.exists() else 0
                if kept != expect_kept:
                    why = f"{kept} bytes kept, expected {expect_kept}"
                elif kept:
                    why = None if f"{kept:,} bytes are kept in {part}" in text else text
                else:
                    why = None if "no partial file is kept" in text and "bytes are kept" not in text else text
            record(probe, name, why is None, why or "")
            download_file(url, dest, md5=_md5(PAYLOAD), size=len(PAYLOAD), **fast)
            record(probe, f"rerun after: {name}", dest.read_bytes() == PAYLOAD and not part_path(dest).exists(), "")
            dest.unlink()
    assert_probe(probe)


# --- kill and rerun ---------------------------------------------------------------------------


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.slow
def test_killed_download_resumes_and_leaves_nothing(tmp_path):
    probe = "kill -9 and rerun: download"
    with FileServer() as server:
        url = server.serve("/r.zip", PAYLOAD)
        server.inject(Fault(drop_after=1 << 20), Fault(stall=60.0))
        raw = tmp_path / "raw"
        code = ("import sys; from fracbench.release.download import download_file; "
                f"download_file({url!r}, sys.argv[1], md5={_md5(PAYLOAD)!r}, size={len(PAYLOAD)}, backoff=0.0, timeout=90)")
        proc = subprocess.Popen([sys.executable, "-c", code, str(raw / "r.zip")], env=_env(), cwd=tmp_path)
        try:
            reached = _wait_for(lambda: len(server.file_requests("/r.zip")) >= 2, 60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        part = part_path(raw / "r.zip")
        kept = part.stat().st_size if part.exists() else 0
        record(probe, "killed while stalled after 1 MiB", reached and kept == 1 << 20, f"reached {reached}, kept {kept}")
        download_file(url, raw / "r.zip", md5=_md5(PAYLOAD), size=len(PAYLOAD), backoff=0.0)
        resumed = server.file_requests("/r.zip")[-1].headers.get("range") == f"bytes={1 << 20}-"
        left = sorted(p.name for p in raw.iterdir())
        record(probe, "rerun resumes with Range and leaves only the file",
               resumed and left == ["r.zip"] and (raw / "r.zip").read_bytes() == PAYLOAD, f"{resumed} {left}")
    assert_probe(probe)


@pytest.mark.slow
def test_killed_build_leaves_no_partial_after_rerun(synthetic_release, tmp_path):
    from fracbench.dataset.build import build_dataset
    from fracbench.release.reader import read_release
    from fracbench.splits.derive import LeakageEvidence, derive_rows
    from fracbench.splits.manifest import read_manifest, write_manifest

    probe = "kill -9 and rerun: build"
    release = read_release(synthetic_release)
    manifest = tmp_path / "manifest.csv"
    write_manifest(manifest, derive_rows(release.records, LeakageEvidence()), {"version": "v1"})
    out = tmp_path / "work" / "fracatlas"
    code = ("import sys; from fracbench.dataset.build import build_dataset; "
            "from fracbench.splits.manifest import read_manifest; "
            "build_dataset(sys.argv[1], sys.argv[2], manifest=read_manifest(sys.argv[3]))")

    def partials() -> list[Path]:
        return sorted(out.parent.glob(f".{out.name}.*.partial")) if out.parent.exists() else []

    for attempt in range(2):  # two kills, as in the four-kill run
        proc = subprocess.Popen([sys.executable, "-c", code, str(synthetic_release), str(out), str(manifest)],
                                env=_env(), cwd=tmp_path)
        try:
            started = _wait_for(lambda: bool(partials()), 60)
            _wait_for(lambda: any(p.iterdir() for p in partials()), 0.5)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        record(probe, f"kill {attempt + 1} leaves a partial", started and len(partials()) >= 1 and not out.exists(),
               f"started {started}, partials {partials()}")
    build_dataset(synthetic_release, out, manifest=read_manifest(manifest))
    record(probe, "rerun removes every stale partial", partials() == [] and (out / "fracbench.json").is_file(),
           str(partials()))
    assert_probe(probe)
