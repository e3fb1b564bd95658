"""Splits: derivation invariants and determinism, the shipped manifests, verify on tamperings, CLI."""

from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fracbench.cli import main
from fracbench.errors import SplitError
from fracbench.release.records import REGIONS, ImageRecord
from fracbench.splits.derive import (
    DerivationParams,
    LeakageEvidence,
    assign_groups,
    derive_rows,
    evidence_from_audit,
    merge_groups,
)
from fracbench.splits.legacy import load_legacy, package_legacy_path
from fracbench.splits.manifest import (
    COLUMNS,
    MANIFEST_JSON,
    PINNED_SHA256,
    group_id_for,
    load_manifest,
    package_manifest_path,
    parse_manifest_csv,
    read_manifest,
    render_manifest_csv,
    sha256_hex,
    write_manifest,
)
from fracbench.splits.verify import proportions, verify_legacy, verify_manifest

FLAGS = ("hand", "leg", "hip", "shoulder", "mixed")


def record(image_id: str, *, fractured: bool = False, region: str = "leg", hardware: bool = False) -> ImageRecord:
    """A hand-made record: only the fields splits read are meaningful."""
    flags = {f: f == region for f in FLAGS}
    return ImageRecord(
        image_id=image_id, path=f"images/x/{image_id}.jpg", present=True, fractured=fractured, width=1, height=1,
        stored_width=1, stored_height=1, exif_orientation=1, mode="L", truncated=False, sha256=None,
        hardware=hardware, multiscan=False, frontal=True, lateral=False, oblique=False,
        fracture_count=int(fractured), **flags,
    )


def population(n: int = 2400, seed: int = 7) -> tuple[list[ImageRecord], list[list[str]]]:
    """Records with FracAtlas-like strata and leakage groups of sizes 2-12 (some mixed strata)."""
    rnd = random.Random(seed)
    regions = rnd.choices(REGIONS, weights=[31, 52, 4, 3, 10], k=n)
    records = [
        record(f"IMG{i:07d}", fractured=rnd.random() < 0.18, region=regions[i], hardware=rnd.random() < 0.025)
        for i in range(n)
    ]
    groups, i = [], 0
    while i < n - 12:
        if rnd.random() < 0.08:
            k = rnd.choice([2, 2, 2, 3, 4, 6, 12])
            groups.append([f"IMG{j:07d}" for j in range(i, i + k)])
            i += k
        i += 1
    return records, groups


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    records, groups = population()
    rows = derive_rows(records, LeakageEvidence(leakage_groups=groups))
    path = tmp_path_factory.mktemp("derived") / "manifest.csv"
    write_manifest(path, rows, {"version": "test"})
    return records, groups, rows, path


def test_group_id_is_G_plus_the_smallest_id():
    assert group_id_for(["IMG0000123", "IMG0000042"]) == "G0000042"
    assert group_id_for(["IMG0000007"]) == "G0000007"


def test_merge_groups_closes_overlapping_groups_and_rejects_unknown_ids():
    ids = [f"IMG{i:07d}" for i in range(6)]
    group_of = merge_groups(ids, [["IMG0000003", "IMG0000001"], ["IMG0000003", "IMG0000005"]])
    assert {group_of[i] for i in ("IMG0000001", "IMG0000003", "IMG0000005")} == {"G0000001"}
    assert group_of["IMG0000002"] == "G0000002"
    with pytest.raises(SplitError, match="IMG9"):
        merge_groups(ids, [["IMG0000001", "IMG9"]])


def test_assign_groups_hits_exact_targets_on_singletons():
    strata = [{"a": 1}] * 70 + [{"b": 1}] * 30
    cells = assign_groups(strata, [Fraction(7, 10), Fraction(1, 10), Fraction(2, 10)], [f"{i:03d}" for i in range(100)])
    per = defaultdict(lambda: defaultdict(int))
    for g, c in zip(strata, cells, strict=True):
        per[c][next(iter(g))] += 1
    assert [dict(per[c]) for c in range(3)] == [{"a": 49, "b": 21}, {"a": 7, "b": 3}, {"a": 14, "b": 6}]


def test_large_groups_spread_over_cells_instead_of_all_landing_in_train():
    strata = [{"a": 10}] * 10 + [{"a": 1}] * 100
    cells = assign_groups(strata, [Fraction(7, 10), Fraction(1, 10), Fraction(2, 10)], [f"{i:03d}" for i in range(110)])
    assert {cells[i] for i in range(10)} == {0, 1, 2}


def test_groups_never_cross_splits_or_folds_and_every_id_once(derived):
    records, groups, rows, _ = derived
    assert sorted(r.image_id for r in rows) == sorted(r.image_id for r in records)
    place = {r.image_id: (r.split, r.fold) for r in rows}
    for g in groups:
        assert len({place[i] for i in g}) == 1, g
    group_of = {r.image_id: r.group_id for r in rows}
    assert all(group_of[i] == group_id_for(g) for g in groups for i in g)
    assert {r.fold for r in rows if r.split == "test"} == {-1}
    assert {r.fold for r in rows if r.split != "test"} == {0, 1, 2, 3, 4}


def test_proportions_within_two_points_for_every_split_and_fold(derived):
    _, _, rows, _ = derived
    whole = proportions(rows)
    parts = [[r for r in rows if r.split == s] for s in ("train", "validation", "test")]
    parts += [[r for r in rows if r.fold == f] for f in range(5)]
    for sel in parts:
        for key, value in proportions(sel).items():
            assert abs(value - whole[key]) <= 2.0, (key, value, whole[key])
    sizes = [len(p) / len(rows) for p in parts[:3]]
    assert sizes == pytest.approx([0.7, 0.1, 0.2], abs=0.01)


def test_derivation_is_deterministic_independent_of_input_order_and_seeded(derived):
    records, groups, rows, _ = derived
    shuffled = list(records)
    random.Random(1).shuffle(shuffled)
    again = derive_rows(shuffled, LeakageEvidence(leakage_groups=[list(reversed(g)) for g in reversed(groups)]))
    assert render_manifest_csv(again) == render_manifest_csv(rows)
    other = derive_rows(records, LeakageEvidence(leakage_groups=groups), DerivationParams(seed=1))
    assert render_manifest_csv(other) != render_manifest_csv(rows)


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.tuples(st.booleans(), st.sampled_from(REGIONS), st.booleans()), min_size=1, max_size=60),
    links=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 59)), max_size=30),
    seed=st.integers(0, 3),
)
def test_property_every_id_once_and_linked_images_share_split_and_fold(labels, links, seed):
    records = [record(f"IMG{i:07d}", fractured=f, region=r, hardware=h) for i, (f, r, h) in enumerate(labels)]
    n = len(records)
    groups = [[f"IMG{a % n:07d}", f"IMG{b % n:07d}"] for a, b in links]
    rows = derive_rows(records, LeakageEvidence(leakage_groups=groups), DerivationParams(seed=seed))
    assert [r.image_id for r in rows] == sorted(r.image_id for r in records)
    place = {r.image_id: (r.split, r.fold, r.group_id) for r in rows}
    for a, b in groups:
        assert place[a] == place[b]
    assert all((r.fold == -1) == (r.split == "test") for r in rows)


def test_label_conflict_policy_unscores_conflicts_and_their_copies_only():
    records = [record(f"IMG{i:07d}", fractured=i % 2 == 0) for i in range(40)]
    evidence = LeakageEvidence(
        # 1-2 copies, 2-3 neighbours (different radiographs), 10-11 mixed-label copies
        leakage_groups=[["IMG0000001", "IMG0000002", "IMG0000003"], ["IMG0000010", "IMG0000011"]],
        duplicate_groups=[["IMG0000001", "IMG0000002"], ["IMG0000010", "IMG0000011"]],
        mixed_label_groups=[["IMG0000010", "IMG0000011"]],
        conflict_ids=["IMG0000001"],
    )
    rows = {r.image_id: r for r in derive_rows(records, evidence)}
    assert (rows["IMG0000001"].scored, rows["IMG0000001"].exclude_reason) == (0, "label_conflict")
    assert (rows["IMG0000002"].scored, rows["IMG0000002"].exclude_reason) == (0, "label_conflict_group")
    assert (rows["IMG0000003"].scored, rows["IMG0000003"].exclude_reason) == (1, "")
    assert {rows[i].exclude_reason for i in ("IMG0000010", "IMG0000011")} == {"label_conflict_group"}
    assert sum(r.scored for r in rows.values()) == 36
    assert rows["IMG0000003"].group_id == "G0000001" and rows["IMG0000003"].split == rows["IMG0000001"].split


def test_evidence_from_audit_json_and_unknown_ids_fail():
    audit = {
        "leakage_groups": [["IMG0000001", "IMG0000002"]],
        "exact_duplicate_groups": [["IMG0000001", "IMG0000002"]],
        "mixed_label_groups": [],
        "label_conflicts": [{"image_id": "IMG0000003", "sources": {}, "decided": True, "rule": "folder"}],
    }
    ev = evidence_from_audit(audit)
    assert ev.conflict_ids == ["IMG0000003"] and ev.duplicate_groups == [["IMG0000001", "IMG0000002"]]
    assert ev.group_counts["leakage_groups"] == 1 and ev.group_counts["label_conflicts"] == 1
    with pytest.raises(SplitError, match="leakage_groups"):
        evidence_from_audit({"images": 3})
    with pytest.raises(SplitError, match="IMG0000003"):
        derive_rows([record("IMG0000001"), record("IMG0000002")], ev)


def test_manifest_bytes_are_exact(derived):
    _, _, rows, path = derived
    data = path.read_bytes()
    assert data.startswith(b",".join(c.encode() for c in COLUMNS) + b"\n") and data.endswith(b"\n")
    assert b"\r" not in data
    meta = json.loads(path.with_name(MANIFEST_JSON).read_text())
    assert meta["manifest_sha256"] == sha256_hex(data) and meta["counts"]["images"] == len(rows)
    parsed, problems = parse_manifest_csv(data)
    assert problems == [] and parsed == rows


def test_parse_reports_crlf_missing_newline_bad_values_and_order():
    good = render_manifest_csv([])
    _, problems = parse_manifest_csv(good.replace(b"\n", b"\r\n").rstrip(b"\n"))
    assert any("CR line endings" in p for p in problems) and any("final newline" in p for p in problems)
    bad = good + b"IMG2,G2,train,0,1,leg,0,1,\nIMG1,G1,tset,7,1,arm,0,1,\n"
    _, problems = parse_manifest_csv(bad)
    assert any("split 'tset'" in p for p in problems) and any("region 'arm'" in p for p in problems)
    assert any("fold '7'" in p for p in problems)


# -- verify on tampered copies ----------------------------------------------------------------


def tampered(tmp_path: Path, source: Path, edit, *, fix_sha: bool = False) -> Path:
    """A copy of ``source`` (and MANIFEST.json) with ``edit`` applied to its lines."""
    out = tmp_path / "manifest.csv"
    shutil.copy(source.with_name(MANIFEST_JSON), tmp_path / MANIFEST_JSON)
    lines = source.read_text().splitlines(keepends=True)
    out.write_text("".join(edit(lines)))
    if fix_sha:
        meta = json.loads((tmp_path / MANIFEST_JSON).read_text())
        meta["manifest_sha256"] = sha256_hex(out.read_bytes())
        (tmp_path / MANIFEST_JSON).write_text(json.dumps(meta))
    return out


def _set(line: str, **cells) -> str:
    values = dict(zip(COLUMNS, line.rstrip("\n").split(","), strict=True))
    values.update({k: str(v) for k, v in cells.items()})
    return ",".join(values[c] for c in COLUMNS) + "\n"


def test_verify_passes_on_a_derived_manifest(derived):
    report = verify_manifest(derived[3])
    assert report.ok, report.problems
    assert {"sha256", "format", "counts", "groups", "folds", "scored", "proportions"} <= set(report.checks)


def test_verify_names_a_changed_split(tmp_path, derived):
    path = tampered(tmp_path, derived[3], lambda ls: [ls[0], _set(ls[1], split="test", fold=-1), *ls[2:]])
    problems = verify_manifest(path).problems
    assert any(p.startswith("sha256 mismatch: expected ") and ", found " in p for p in problems)
    assert any(p.startswith("split test: images expected") for p in problems)


def test_verify_names_a_duplicated_row(tmp_path, derived):
    path = tampered(tmp_path, derived[3], lambda ls: [*ls[:3], ls[2], *ls[3:]], fix_sha=True)
    problems = verify_manifest(path).problems
    image_id = derived[3].read_text().splitlines()[2].split(",")[0]
    assert f"manifest.csv: image {image_id} appears 2 times; expected exactly once" in problems


def test_verify_names_a_group_crossing_splits_even_with_a_fixed_sha(tmp_path, derived):
    rows = derived[2]
    g = next(r for r in rows if r.group_id != "G" + r.image_id[3:])  # a non-smallest member of a group
    other = "test" if g.split != "test" else "train"
    fold = -1 if other == "test" else 0

    def edit(lines):
        return [_set(ln, split=other, fold=fold) if ln.startswith(g.image_id + ",") else ln for ln in lines]

    problems = verify_manifest(tampered(tmp_path, derived[3], edit, fix_sha=True)).problems
    assert f"group {g.group_id} is in {' and '.join(sorted({g.split, other}, key=['train', 'validation', 'test'].index))}" in problems


def test_verify_names_an_edited_byte(tmp_path, derived):
    def edit(lines):
        region = lines[1].split(",")[5]
        return [lines[0], _set(lines[1], region="hip" if region != "hip" else "leg"), *lines[2:]]

    path = tampered(tmp_path, derived[3], edit)
    report = verify_manifest(path)
    expected = json.loads(derived[3].with_name(MANIFEST_JSON).read_text())["manifest_sha256"]
    assert f"sha256 mismatch: expected {expected} (MANIFEST.json), found {report.sha256}" in report.problems


def test_verify_names_a_test_row_with_a_fold_and_unbalanced_proportions(tmp_path, derived):
    def edit(lines):
        out = [lines[0]]
        for ln in lines[1:]:  # every test image labelled fractured
            out.append(_set(ln, label=1) if ",test," in ln else ln)
        first_test = next(i for i, ln in enumerate(out) if ",test," in ln)
        out[first_test] = _set(out[first_test], fold=3)
        return out

    problems = verify_manifest(tampered(tmp_path, derived[3], edit, fix_sha=True)).problems
    assert any("is in test with fold 3; expected -1" in p for p in problems)
    assert any(p.startswith("split test: fractured 100.00% vs") for p in problems)


# -- the shipped manifests ----------------------------------------------------------------------


def test_shipped_v1_loads_and_matches_its_pinned_sha():
    manifest = load_manifest("v1")
    assert len(manifest) == 4083 and len(set(manifest.ids())) == 4083
    assert manifest.sha256 == PINNED_SHA256["v1"] == manifest.metadata["manifest_sha256"]
    assert manifest.metadata["release"]["images"] == 4083 and manifest.metadata["release"]["missing_files"] == 0
    counts = manifest.counts()
    assert counts["fractured"] == 717 and counts["hardware"] == 99
    assert [counts["splits"][s]["images"] for s in ("train", "validation", "test")] == pytest.approx(
        [0.7 * 4083, 0.1 * 4083, 0.2 * 4083], abs=0.01 * 4083
    )
    train, held = manifest.fold(0)
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(manifest.ids("train")) + len(manifest.ids("validation"))
    assert list(manifest.to_frame().columns) == list(COLUMNS)
    assert manifest.excluded() == manifest.metadata["excluded"] and "IMG0003298" in manifest.excluded()
    with pytest.raises(SplitError, match="v2"):
        load_manifest("v2")


def test_shipped_manifests_verify():
    rows = load_manifest().rows
    assert verify_manifest().ok, verify_manifest().problems
    report = verify_legacy(manifest_rows=rows)
    assert report.ok, report.problems


def test_shipped_legacy_is_positive_only_574_82_61():
    legacy = load_legacy()
    assert legacy.counts() == {"train": 574, "validation": 82, "test": 61}
    assert legacy.positive_only and len(set(legacy.split_of())) == 717


def test_read_manifest_refuses_an_edited_copy(tmp_path):
    path = tampered(tmp_path, package_manifest_path(), lambda ls: [*ls[:-1], ls[-1].replace(",1,", ",0,", 1)])
    with pytest.raises(SplitError, match="sha256 mismatch"):
        read_manifest(path)


def test_verify_legacy_names_a_tampered_copy(tmp_path):
    path = tmp_path / "legacy.csv"
    lines = package_legacy_path().read_text().splitlines(keepends=True)
    path.write_text("".join([lines[0], lines[1].replace(",train", ",test").replace(",validation", ",test"), *lines[2:]]))
    problems = verify_legacy(path).problems
    assert any(p.startswith("sha256 mismatch: expected ") for p in problems), problems


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_verify_exit_codes(tmp_path, capsys):
    assert main(["splits", "verify"]) == 0
    assert "ok" in capsys.readouterr().out
    path = tampered(tmp_path, package_manifest_path(), lambda ls: [ls[0], ls[2], ls[1], *ls[3:]])
    assert main(["splits", "verify", "--manifest", str(path)]) == 1
    err = capsys.readouterr().err
    assert "sha256 mismatch: expected" in err and "not sorted by image_id" in err


def test_cli_show_prints_counts_and_legacy_is_labelled_positive_only(capsys):
    manifest = load_manifest()
    assert main(["splits", "show"]) == 0
    out = capsys.readouterr().out
    assert f"FracAtlas splits v1  sha256 {manifest.sha256}" in out
    test = manifest.counts()["splits"]["test"]
    assert f"test       fractured     {test['by_label_region']['fractured']['hand']} " in out
    # Every header and cell whole (nothing cut with "…") within the 80 columns of a captured console.
    assert "…" not in out and "unscored" in out and "validation" in out and "shoulder" in out
    assert max(len(line) for line in out.splitlines() if not line.startswith("FracAtlas splits")) <= 80
    assert main(["splits", "show", "--version", "legacy"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "manifest" in out
    assert main(["splits", "show", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert f"| test | {test['images']} | 20.0% | {test['fractured']} |" in out
    assert main(["splits", "show", "--version", "legacy", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "POSITIVE-ONLY" in out and "| test | 61 |" in out


# -- the synthetic release: derive end to end ----------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_derived(synthetic_release, tmp_path_factory):
    """The synthetic release derived through the CLI twice (auditing it) and once from a saved audit."""
    from fracbench.release.audit import audit_release
    from fracbench.release.reader import read_release

    audit = tmp_path_factory.mktemp("audit") / "audit.json"
    audit.write_text(audit_release(read_release(synthetic_release)).model_dump_json())
    outs = []
    for name, extra in (("a", []), ("b", []), ("c", ["--audit", str(audit)])):
        out = tmp_path_factory.mktemp(f"derive-{name}") / "manifest.csv"
        assert main(["splits", "derive", "--raw", str(synthetic_release), "--out", str(out), *extra]) == 0
        outs.append(out)
    return outs


@pytest.mark.slow
def test_derive_twice_on_the_synthetic_release_is_byte_identical(synthetic_derived):
    a, b, from_audit = synthetic_derived
    assert a.read_bytes() == b.read_bytes() == from_audit.read_bytes()
    assert a.with_name(MANIFEST_JSON).read_bytes() == b.with_name(MANIFEST_JSON).read_bytes()
    assert a.with_name(MANIFEST_JSON).read_bytes() == from_audit.with_name(MANIFEST_JSON).read_bytes()
    meta = json.loads(a.with_name(MANIFEST_JSON).read_text())
    assert meta["manifest_sha256"] == sha256_hex(a.read_bytes())
    assert meta["release"]["images"] == 36 and meta["audit_group_counts"]["leakage_groups"] >= 5


@pytest.mark.slow
def test_synthetic_planted_groups_stay_together_and_conflicts_are_unscored(synthetic_derived):
    from tests.data.fracatlas.generate import EXPECTED

    rows = read_manifest(synthetic_derived[0]).by_id()
    assert len(rows) == EXPECTED["images"]
    for key in ("exact_duplicates", "pixel_duplicates", "near_duplicates"):
        for group in EXPECTED[key]:
            assert {rows[i].group_id for i in group} == {group_id_for(group)}, (key, group)
            assert len({(rows[i].split, rows[i].fold) for i in group}) == 1
    assert {i for i, r in rows.items() if r.label} == set(EXPECTED["fractured"])
    assert rows[EXPECTED["label_conflicts"][0]].exclude_reason == "label_conflict"
    for i in EXPECTED["mixed_label_groups"][0]:
        assert rows[i].exclude_reason == "label_conflict_group"
    assert sum(r.scored for r in rows.values()) == 36 - 1 - len(EXPECTED["mixed_label_groups"][0])
