"""The audit on the real (partial) FracAtlas release; skips without it.

The pixel checks run on a subset (``image_ids``) to stay well under a minute on two
cores: ids IMG0002600-IMG0003100 and IMG0004020-IMG0004400, where the release keeps most
of its re-encoded and truncated copies (the 2023 release repeats IMG0002617-IMG0003064
as IMG0004028-IMG0004376). The per-image facts (truncated, EXIF-rotated, label
conflicts) always cover the whole release. The pairs asserted below were checked by eye
on the contact sheet of the complete release.
"""

from __future__ import annotations

import json

import pytest

from fracbench.release.audit import audit_release
from fracbench.release.audit_render import write_audit
from fracbench.release.reader import read_release

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _in_subset(image_id: str) -> bool:
    n = int(image_id[3:])
    return 2600 <= n <= 3100 or 4020 <= n <= 4400


@pytest.fixture(scope="module")
def audited(real_release, tmp_path_factory):
    release = read_release(real_release, allow_missing=True)
    ids = [r.image_id for r in release.records if r.present and _in_subset(r.image_id)]
    report = audit_release(release, image_ids=ids, workers=2)
    out = tmp_path_factory.mktemp("audit")
    write_audit(report, release, out)
    return release, report, out


def _group(groups, image_id):
    return next((set(g) for g in groups if image_id in g), {image_id})


def test_per_image_facts_cover_the_release(audited, real_absent):
    release, report, _ = audited
    assert report.images == 4083 and report.present == 4083 - real_absent and len(report.missing) == real_absent
    assert len(report.truncated) == 59
    assert report.truncated[0] == "IMG0004028" and report.truncated[-1] == "IMG0004347"
    assert len(report.exif_rotated) == 25
    assert {"IMG0002588", "IMG0002628"} <= set(report.exif_rotated)
    assert [c.image_id for c in report.label_conflicts] == ["IMG0003298"]
    assert set(report.decoded_truncated) == set(report.truncated)  # all 59 are in the subset


def test_duplicates_in_the_subset(audited):
    _, report, _ = audited
    # byte-identical files
    assert {"IMG0004308", "IMG0004347"} in [set(g) for g in report.exact_duplicate_groups]
    # re-encoded copy, labelled fractured in one folder and not in the other
    assert _group(report.near_duplicate_groups, "IMG0002886") == {"IMG0002886", "IMG0004243"}
    assert ["IMG0002886", "IMG0004243"] in report.mixed_label_groups
    # copy whose lower quarter is garbled (decodes without error)
    assert "IMG0004150" in _group(report.near_duplicate_groups, "IMG0002791")
    # truncated copy (grey fill below the cut)
    assert "IMG0004029" in _group(report.near_duplicate_groups, "IMG0002618")
    # look-alike wrists of different radiographs stay apart
    assert "IMG0003110" not in _group(report.near_duplicate_groups, "IMG0003104")
    assert all(len(g) <= 5 for g in report.near_duplicate_groups)
    # every copy group and every region run sits inside one leakage group
    for group in [*report.near_duplicate_groups, *report.neighbour_groups, *report.region_run_groups]:
        assert any(set(group) <= set(g) for g in report.leakage_groups), group


def test_audit_json_written(audited):
    release, report, out = audited
    data = json.loads((out / "audit.json").read_text())
    assert data["release"]["fingerprint"] == release.fingerprint
    assert data["near_duplicate_groups"] == report.near_duplicate_groups
    assert data["warnings"] and "subset" in data["warnings"][0]
    assert (out / "near_duplicate_candidates.png").stat().st_size > 10_000
