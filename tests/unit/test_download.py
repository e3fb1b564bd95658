"""Download (resume, retries, checksums), safe extraction and ``fracbench download``.

Everything runs against the threaded test server in ``tests/httpserver.py`` on
127.0.0.1, serving a zip of the synthetic release.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import stat
import zipfile
from pathlib import Path

import pytest

from fracbench.cli import main
from fracbench.errors import ChecksumError, DownloadError, ReleaseNotFoundError, UnsafeArchiveError
from fracbench.release import download as dl
from fracbench.release.archive import (EXTRACTED_MARKER, ExtractionLimits, extract_release, inspect_archive,
                                       safe_extract)
from fracbench.release.download import PinnedFile, download_file, fetch_release, open_local_release, part_path
from tests.httpserver import Fault, FileServer

FAST = {"timeout": 2.0, "backoff": 0.0}


def _zip_tree(root: Path, arcroot: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, f"{arcroot}/{path.relative_to(root).as_posix()}")
    return buf.getvalue()


def _zip_members(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def release_zip(synthetic_release: Path) -> bytes:
    """The synthetic release zipped like figshare's: everything under ``FracAtlas/``."""
    return _zip_tree(synthetic_release, "FracAtlas")


@pytest.fixture()
def server():
    with FileServer() as srv:
        yield srv


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    """Temporary or partial files a failed step must not leave behind."""
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith((".partial", ".tmp", ".part")))


# --- download_file --------------------------------------------------------------------------


def test_full_download_follows_redirect_verifies_and_extracts(server, release_zip, synthetic_release, tmp_path):
    server.serve("/files/65518038", release_zip)
    url = server.redirect("/ndownloader/files/65518038", "/files/65518038")
    pinned = PinnedFile(name="FracAtlas.zip", url=url, size=len(release_zip), md5=_md5(release_zip))
    seen = []
    got = fetch_release(tmp_path, pinned=pinned, progress=lambda d, t: seen.append((d, t)), **FAST)
    assert got.archive == tmp_path / "FracAtlas.zip" and got.archive.read_bytes() == release_zip
    assert got.pinned == pinned and got.md5 == pinned.md5
    assert [r.path for r in server.requests] == ["/ndownloader/files/65518038", "/files/65518038"]
    assert got.root == tmp_path / f"FracAtlas-{pinned.md5[:8]}" / "FracAtlas"
    want = {p.relative_to(synthetic_release): p.read_bytes() for p in synthetic_release.rglob("*") if p.is_file()}
    have = {p.relative_to(got.root): p.read_bytes() for p in got.root.rglob("*") if p.is_file()}
    assert have == want
    assert seen[-1] == (len(release_zip), len(release_zip))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert not part_path(got.archive).exists() and _leftovers(tmp_path) == []


def test_dropped_connection_is_resumed_with_range(server, release_zip, tmp_path):
    cut = len(release_zip) // 3
    url = server.serve("/f.zip", release_zip)
    server.inject(Fault(drop_after=cut))
    dest = download_file(url, tmp_path / "f.zip", md5=_md5(release_zip), size=len(release_zip), **FAST)
    assert dest.read_bytes() == release_zip
    first, second = server.file_requests("/f.zip")
    assert "range" not in first.headers
    assert second.headers["range"] == f"bytes={cut}-"


def test_interrupted_run_keeps_part_and_next_run_resumes(server, release_zip, tmp_path):
    cut = len(release_zip) // 2
    url = server.serve("/f.zip", release_zip)
    server.inject(Fault(drop_after=cut), Fault(status=503))
    dest = tmp_path / "f.zip"
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        download_file(url, dest, md5=_md5(release_zip), size=len(release_zip), retries=0, **FAST)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == release_zip[:cut]
    download_file(url, dest, md5=_md5(release_zip), size=len(release_zip), **FAST)
    assert dest.read_bytes() == release_zip and not part_path(dest).exists()
    assert server.file_requests("/f.zip")[-1].headers["range"] == f"bytes={cut}-"


def test_server_without_range_support_restarts_from_zero(release_zip, tmp_path):
    cut = len(release_zip) // 4
    with FileServer(range_support=False) as server:
        url = server.serve("/f.zip", release_zip)
        server.inject(Fault(drop_after=cut))
        dest = download_file(url, tmp_path / "f.zip", md5=_md5(release_zip), size=len(release_zip), **FAST)
        assert server.file_requests("/f.zip")[1].headers["range"] == f"bytes={cut}-"
    assert dest.read_bytes() == release_zip


def test_stale_part_with_wrong_bytes_is_caught_by_md5(server, release_zip, tmp_path):
    url = server.serve("/f.zip", release_zip)
    dest = tmp_path / "f.zip"
    part_path(dest).write_bytes(b"\0" * 100)  # a foreign .part: resumed, then rejected
    with pytest.raises(ChecksumError):
        download_file(url, dest, md5=_md5(release_zip), size=len(release_zip), **FAST)
    assert not dest.exists() and not part_path(dest).exists()


@pytest.mark.parametrize("size_known", [True, False])
def test_complete_part_is_verified_and_renamed(server, release_zip, tmp_path, size_known):
    url = server.serve("/f.zip", release_zip)
    dest = tmp_path / "f.zip"
    part_path(dest).write_bytes(release_zip)  # interrupted just before the rename
    size = len(release_zip) if size_known else None
    download_file(url, dest, md5=_md5(release_zip), size=size, **FAST)
    assert dest.read_bytes() == release_zip
    assert [r.headers["range"] for r in server.file_requests("/f.zip")] == [f"bytes={len(release_zip)}-"]


def test_wrong_checksum_names_both_and_leaves_nothing(server, release_zip, tmp_path):
    url = server.serve("/f.zip", release_zip)
    dest = tmp_path / "f.zip"
    with pytest.raises(ChecksumError) as err:
        download_file(url, dest, md5="0" * 32, size=len(release_zip), **FAST)
    assert "0" * 32 in str(err.value) and _md5(release_zip) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_server_announcing_another_size_is_refused_early(server, release_zip, tmp_path):
    url = server.serve("/f.zip", release_zip)
    with pytest.raises(ChecksumError, match=f"serves {len(release_zip):,} bytes, expected"):
        download_file(url, tmp_path / "f.zip", md5=_md5(release_zip), size=len(release_zip) + 1, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_stalled_server_times_out_and_is_retried(server, release_zip, tmp_path):
    url = server.serve("/f.zip", release_zip)
    server.inject(Fault(stall=5.0))  # the stalled handler sleeps on in its daemon thread
    dest = download_file(url, tmp_path / "f.zip", md5=_md5(release_zip), timeout=1.0, backoff=0.0)
    assert dest.read_bytes() == release_zip and len(server.file_requests("/f.zip")) >= 2


def test_server_errors_are_retried_then_given_up(server, release_zip, tmp_path):
    url = server.serve("/f.zip", release_zip)
    server.inject(*[Fault(status=503)] * 3)
    with pytest.raises(DownloadError, match="failed 3 times in a row"):
        download_file(url, tmp_path / "f.zip", md5=_md5(release_zip), retries=2, **FAST)
    assert len(server.requests) == 3 and not (tmp_path / "f.zip").exists()


def test_missing_file_fails_at_once(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.url("/nope.zip"), tmp_path / "f.zip", md5="0" * 32, **FAST)
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []  # no empty .part left behind


def test_verified_file_is_not_downloaded_again(server, release_zip, tmp_path):
    url = server.serve("/f.zip", release_zip)
    (tmp_path / "f.zip").write_bytes(release_zip)
    download_file(url, tmp_path / "f.zip", md5=_md5(release_zip), size=len(release_zip), **FAST)
    assert server.requests == []


def test_second_concurrent_download_is_refused(server, release_zip, tmp_path):
    url = server.serve("/f.zip", release_zip)
    with dl._locked_part(part_path(tmp_path / "f.zip")):
        with pytest.raises(DownloadError, match="another fracbench download"):
            download_file(url, tmp_path / "f.zip", md5=_md5(release_zip), **FAST)


def test_default_raw_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dl.default_raw_dir() == tmp_path / "fracbench" / "raw"


# --- safe extraction ------------------------------------------------------------------------


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _fifo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    return info


@pytest.mark.parametrize(("member", "why"), [
    ("../evil", "escapes"),
    ("FracAtlas/../../evil", "escapes"),
    ("..\\evil", "escapes"),
    ("/etc/evil", "absolute"),
    ("C:\\evil", "absolute"),
    (_symlink("FracAtlas/link"), "symbolic link"),
    (_fifo("FracAtlas/pipe"), "special file"),
])
def test_unsafe_members_are_refused_and_nothing_is_extracted(tmp_path, member, why):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip_members([("FracAtlas/dataset.csv", b"image_id\n"), (member, b"/etc/passwd")]))
    dest = tmp_path / "out" / "release"
    with pytest.raises(UnsafeArchiveError, match=why):
        safe_extract(archive, dest)
    assert not dest.exists() and not (tmp_path / "evil").exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_oversize_member_bomb_and_counts_are_refused(tmp_path):
    archive = tmp_path / "big.zip"
    archive.write_bytes(_zip_members([("a.bin", b"x" * 5000), ("b.txt", b"ok")]))
    with pytest.raises(UnsafeArchiveError, match="over the per-member limit of 4,096"):
        safe_extract(archive, tmp_path / "o1", limits=ExtractionLimits(max_member_size=4096))
    with pytest.raises(UnsafeArchiveError, match="in all, over the total limit"):
        safe_extract(archive, tmp_path / "o2", limits=ExtractionLimits(max_total_size=5001))
    with pytest.raises(UnsafeArchiveError, match="more than the limit of 1"):
        safe_extract(archive, tmp_path / "o3", limits=ExtractionLimits(max_members=1))
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(_zip_members([("zeros.bin", bytes(4 << 20))]))  # 4 MiB of zeros: ~1000x
    with pytest.raises(UnsafeArchiveError, match="archive bomb"):
        safe_extract(bomb, tmp_path / "o4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zip", "bomb.zip"]


def test_every_problem_is_listed_and_duplicates_are_refused(tmp_path):
    archive = tmp_path / "bad.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = _zip_members([("../a", b""), (_symlink("b"), b"t"), ("c", b"1"), ("c", b"2"), ("c/d", b"")])
    archive.write_bytes(data)
    with pytest.raises(UnsafeArchiveError) as err:
        inspect_archive(archive)
    text = str(err.value)
    assert "4 unsafe member(s)" in text
    assert "'../a'" in text and "'b' (symbolic link)" in text and "duplicate member name" in text
    assert "its parent 'c' is a file" in text


def test_corrupt_member_leaves_nothing(tmp_path):
    data = bytearray(_zip_members([("FracAtlas/x.txt", b"fracture " * 1000)]))
    start = data.index(b"FracAtlas/x.txt") + len("FracAtlas/x.txt") + 10
    data[start:start + 4] = b"\xff\xff\xff\xff"  # damage the deflate stream, not the headers
    archive = tmp_path / "c.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="corrupt"):
        safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zip"]


def test_extract_release_reuses_a_complete_extraction(tmp_path, release_zip, monkeypatch):
    archive = tmp_path / "FracAtlas.zip"
    archive.write_bytes(release_zip)
    root = extract_release(archive, tmp_path / "raw")
    assert (root / "dataset.csv").is_file()
    assert (root.parent / EXTRACTED_MARKER).read_text().strip() == _md5(release_zip)

    def boom(*a, **k):
        raise AssertionError("extracted twice")

    monkeypatch.setattr("fracbench.release.archive.safe_extract", boom)
    assert extract_release(archive, tmp_path / "raw") == root


# --- local copies -----------------------------------------------------------------------------


def test_local_directory_is_used_in_place(synthetic_release, tmp_path):
    got = open_local_release(synthetic_release.parent, tmp_path / "raw")
    assert got.root == synthetic_release and got.archive is None
    assert not (tmp_path / "raw").exists()
    with pytest.raises(ReleaseNotFoundError, match="dataset.csv"):
        open_local_release(tmp_path, tmp_path / "raw")


def test_local_zip_known_unknown_and_expected(release_zip, tmp_path, caplog):
    archive = tmp_path / "copy.zip"
    archive.write_bytes(release_zip)
    known = (PinnedFile(name="FracAtlas.zip", url="", size=len(release_zip), md5=_md5(release_zip), label="K"),)
    got = open_local_release(archive, tmp_path / "raw", known=known)
    assert got.pinned == known[0] and (got.root / "dataset.csv").is_file()
    with caplog.at_level(logging.WARNING):
        got = open_local_release(archive, tmp_path / "raw")
    assert got.pinned is None and "unknown release" in caplog.text
    wrong = PinnedFile(name="copy.zip", url="", size=None, md5="f" * 32)
    with pytest.raises(ChecksumError, match="expected md5 f{32}"):
        open_local_release(archive, tmp_path / "raw", expected=wrong)


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_download_no_build(server, release_zip, tmp_path, capsys):
    url = server.serve("/FracAtlas.zip", release_zip)
    code = main(["download", "--url", url, "--md5", _md5(release_zip), "--size", str(len(release_zip)),
                 "--raw-out", str(tmp_path / "raw"), "--out", str(tmp_path / "data"), "--no-build"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"md5 {_md5(release_zip)} verified" in out and "not built (--no-build)" in out
    assert (tmp_path / "raw" / "FracAtlas.zip").read_bytes() == release_zip
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--url", "http://127.0.0.1:9/x.zip"], "--url needs --md5"),
    (["--url", "http://127.0.0.1:9/x.zip", "--md5", "xyz"], "is not an md5"),
    (["--md5", "0" * 32], "without --url or --from"),
    (["--size", "12"], "--size needs --md5"),
    (["--url", "http://127.0.0.1:9/x.zip", "--from", "x.zip", "--md5", "0" * 32], "exclude each other"),
])
def test_cli_download_bad_arguments_fail_in_one_line(argv, message, tmp_path, capsys):
    assert main(["download", "--raw-out", str(tmp_path), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_download_checksum_failure(server, release_zip, tmp_path, capsys):
    url = server.serve("/FracAtlas.zip", release_zip)
    code = main(["download", "--url", url, "--md5", "0" * 32, "--raw-out", str(tmp_path), "--no-build",
                 "--retries", "0"])
    assert code == 1 and "expected md5 " + "0" * 32 in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _synthetic_manifest(path: Path) -> Path:
    """A split manifest for the synthetic release: singleton groups, labels by folder."""
    from fracbench.splits.manifest import ManifestRow, group_id_for, write_manifest
    from tests.data.fracatlas.generate import plan

    rows = []
    for n, (image_id, planned) in enumerate(sorted(plan().items())):
        regions = [r for r in ("hand", "leg", "hip", "shoulder") if planned.flags[r]]
        split = ("test", "validation", "train", "train", "train", "train")[n % 6]
        rows.append(ManifestRow(
            image_id=image_id, group_id=group_id_for([image_id]), split=split,
            fold=-1 if split == "test" else n % 5, label=int(planned.folder == "Fractured"),
            region="mixed" if planned.flags["mixed"] else regions[0],
            hardware=planned.flags["hardware"], scored=1))
    write_manifest(path, rows, {"version": "synthetic"})
    return path


def test_cli_download_from_local_zip_warns_unknown_release(release_zip, tmp_path, capsys):
    archive = tmp_path / "FracAtlas.zip"
    archive.write_bytes(release_zip)
    code = main(["download", "--from", str(archive), "--raw-out", str(tmp_path / "raw"), "--no-build"])
    captured = capsys.readouterr()
    assert code == 0 and f"unknown release archive, md5 {_md5(release_zip)}" in captured.out
    assert f"raw release: {tmp_path / 'raw' / f'FracAtlas-{_md5(release_zip)[:8]}' / 'FracAtlas'}" in captured.out


def test_pinned_release_is_figshare_v7():
    assert (dl.FRACATLAS_FIGSHARE_V7.url, dl.FRACATLAS_FIGSHARE_V7.size, dl.FRACATLAS_FIGSHARE_V7.md5) == (
        "https://figshare.com/ndownloader/files/65518038", 338_436_460, "fe9da2c7c285915ebee69dfdab8fd396")
    assert dl.FRACATLAS_FIGSHARE_V7 in dl.KNOWN_ARCHIVES


def test_cli_download_then_build_end_to_end(server, release_zip, synthetic_release, tmp_path, capsys):
    pytest.importorskip("fracbench.dataset.build", reason="the dataset builder is not written yet")
    pytest.importorskip("fracbench.release.reader", reason="the release reader is not written yet")
    server.serve("/files/1", release_zip)
    url = server.redirect("/ndownloader/files/1", "/files/1")
    server.inject(Fault(drop_after=len(release_zip) // 2))
    manifest = _synthetic_manifest(tmp_path / "splits" / "manifest.csv")
    argv = ["download", "--url", url, "--md5", _md5(release_zip), "--size", str(len(release_zip)),
            "--raw-out", str(tmp_path / "raw"), "--out", str(tmp_path / "data"), "--manifest", str(manifest)]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"dataset: {tmp_path / 'data'}" in captured.out
    import pyarrow.parquet as pq

    n_images = len(list(synthetic_release.glob("images/*/*.jpg")))
    meta = json.loads((tmp_path / "data" / "fracbench.json").read_text())
    splits = meta["configs"]["classification"]["splits"]
    assert sum(s["num_examples"] for s in splits.values()) == n_images
    rows = sum(pq.read_metadata(f).num_rows for f in (tmp_path / "data" / "classification").glob("*.parquet"))
    assert rows == n_images and (tmp_path / "data" / "README.md").is_file()
    assert main(argv) == 1 and "already built" in capsys.readouterr().err
    assert main(["publish-dataset", "--repo-id", "org/fracatlas", "--data", str(tmp_path / "data"), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    built = sorted(p for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert f"total: {len(built)} files" in plan
    assert all(f"  {p.relative_to(tmp_path / 'data').as_posix()}\n" in plan for p in built)
