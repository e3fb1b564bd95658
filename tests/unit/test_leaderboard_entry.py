"""Leaderboard entries: metadata validation, the sealed file format, historic entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fracbench.errors import LeaderboardError
from fracbench.leaderboard.entry import (
    ENTRY_LOADERS,
    ENTRY_SCHEMA,
    dump_entry,
    entry_hash,
    load_entry,
    load_entry_data,
    parse_meta,
    read_meta,
    safe_url,
    slugify,
)
from fracbench.leaderboard.render_html import render_html
from fracbench.leaderboard.render_md import render_markdown

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "leaderboard"
HISTORIC = sorted(FIXTURES.glob("v*/*.json"))


def test_minimal_meta_and_defaults():
    meta = parse_meta({"name": "ResNet-50", "authors": "Solo Author"})
    assert meta.resolved_slug() == "resnet-50"
    assert meta.authors == ["Solo Author"]
    assert meta.paper_url is None and meta.parameters is None


@pytest.mark.parametrize("key", ["main_score", "auroc", "metrics", "Scores", "ci95"])
def test_meta_with_scores_is_rejected(key):
    with pytest.raises(LeaderboardError, match=rf"field '{key}': metadata must not contain scores") as exc:
        parse_meta({"name": "m", key: 0.99})
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("meta", "field", "found"),
    [
        ({"name": "m", "paper_url": "javascript:alert(1)"}, "paper_url", "javascript:alert(1)"),
        ({"name": "m", "code_url": "ftp://host/x"}, "code_url", "ftp://host/x"),
        ({"name": "m", "code_url": "https:///nohost"}, "code_url", "https:///nohost"),
        ({"name": "m", "parameters": -3}, "parameters", "greater than or equal to 0"),
        ({"name": "m", "slug": "Has Spaces"}, "slug", "Has Spaces"),
        ({"name": "m", "date": "yesterday"}, "date", "date"),
        ({"name": "m", "colour": "red"}, "colour", "unknown field"),
        ({"paper_url": "https://x.org"}, "name", "Field required"),
    ],
)
def test_meta_errors_name_the_field(meta, field, found):
    with pytest.raises(LeaderboardError) as exc:
        parse_meta(meta, source="meta.yaml")
    message = str(exc.value)
    assert message.startswith("meta.yaml: ") and f"field '{field}'" in message and found in message
    assert "\n" not in message


def test_meta_must_be_a_mapping_and_yaml(tmp_path):
    with pytest.raises(LeaderboardError, match="expected a mapping"):
        parse_meta(["name", "x"])
    bad = tmp_path / "meta.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(LeaderboardError, match=r"not valid YAML \(line"):
        read_meta(bad)
    with pytest.raises(LeaderboardError, match="metadata file not found"):
        read_meta(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text("name: My Model\ndate: 2025-01-31\nparameters: 1000\n")
    assert read_meta(good).date.isoformat() == "2025-01-31"


def test_unsluggable_name_needs_a_slug():
    with pytest.raises(LeaderboardError, match="field 'slug'"):
        parse_meta({"name": "???"}).resolved_slug()
    assert parse_meta({"name": "???", "slug": "q"}).resolved_slug() == "q"


@pytest.mark.parametrize(
    ("name", "slug"),
    [("ResNet-50 (ImageNet)", "resnet-50-imagenet"), ("Über  Net", "uber-net"), ("<script>", "script"), ("a" * 80, "a" * 64)],
)
def test_slugify(name, slug):
    assert slugify(name) == slug


@pytest.mark.parametrize(
    ("url", "ok"),
    [("https://a.org/x", True), ("http://a.org", True), ("javascript:alert(1)", False), ("data:text/html,x", False),
     ("//a.org", False), ("", False), (None, False), ("HTTPS://A.ORG", True), ("http://[bad", False)],
)
def test_safe_url(url, ok):
    assert (safe_url(url) is not None) is ok


def _fixture_data() -> dict:
    return json.loads(HISTORIC[0].read_text())


def test_dump_and_load_round_trip(tmp_path):
    entry = load_entry(HISTORIC[0])
    path = tmp_path / "e.json"
    path.write_text(dump_entry(entry))
    again = load_entry(path)
    assert again == entry
    assert json.loads(path.read_text())["entry_sha256"] == entry_hash(json.loads(path.read_text()))


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["result"]["main_score"].__setitem__("value", 0.999),
        lambda d: d["model"].__setitem__("name", "Someone else"),
        lambda d: d.__setitem__("extra", 1),
        lambda d: d["result"]["curves"]["roc"]["tpr"].pop(),
    ],
    ids=["number", "name", "added-field", "curve-point"],
)
def test_any_edit_breaks_the_hash(edit):
    data = _fixture_data()
    edit(data)
    with pytest.raises(LeaderboardError, match="field 'entry_sha256'.*edited after it was added"):
        load_entry_data(data, source="classification/x.json")


def test_resealed_but_invalid_entry_fails_schema():
    data = _fixture_data()
    data["result"]["main_score"]["value"] = "high"
    data["entry_sha256"] = entry_hash(data)
    with pytest.raises(LeaderboardError, match=r"field 'result.main_score.value'"):
        load_entry_data(data, source="x.json")


def test_unknown_schema_lists_known_ones():
    data = _fixture_data()
    data["schema"] = "fracbench.leaderboard-entry/v99"
    with pytest.raises(LeaderboardError, match=rf"unknown entry schema .*v99.*known: {ENTRY_SCHEMA}"):
        load_entry_data(data)


def test_unreadable_entry_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LeaderboardError, match="not a readable JSON entry"):
        load_entry(bad)


# --- historic entries: every file ever committed under tests/fixtures/leaderboard/v*/ keeps loading


def test_historic_fixtures_exist_for_every_schema():
    assert len(HISTORIC) >= 5, f"expected committed historic entries under {FIXTURES}"
    seen = {json.loads(p.read_text())["schema"] for p in HISTORIC}
    assert seen <= set(ENTRY_LOADERS), f"fixtures of schemas the loader forgot: {seen - set(ENTRY_LOADERS)}"
    assert ENTRY_SCHEMA in seen, "commit fixtures made with the current entry schema (make_fixtures.py)"


@pytest.mark.parametrize("path", HISTORIC, ids=[f"{p.parent.name}/{p.name}" for p in HISTORIC])
def test_historic_entry_loads(path):
    entry = load_entry(path)
    task, slug = path.stem.split(".", 1)
    assert (entry.task, entry.slug) == (task, slug)
    assert entry.result.main_score.value is not None
    assert entry.submission.sha256 == entry.result.provenance.submission_sha256


def test_historic_entries_render():
    entries = [load_entry(p) for p in HISTORIC]
    md, page = render_markdown(entries), render_html(entries)
    for e in entries:
        assert e.slug in page
    assert "ResNet-50 \\(ImageNet init\\)" in md


def test_training_provenance_is_kept_and_cannot_smuggle_scores():
    from fracbench.leaderboard.entry import parse_meta

    meta = parse_meta({"name": "m", "training": {"epochs": 5, "seed": 0, "git_commit": "abc"}})
    assert meta.training == {"epochs": 5, "seed": 0, "git_commit": "abc"}
    with pytest.raises(LeaderboardError, match="training.auroc"):
        parse_meta({"name": "m", "training": {"auroc": 0.99}})
    assert "training" not in parse_meta({"name": "m"}).model_dump()
