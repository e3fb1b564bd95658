"""Shared fixtures: the real release (skips without it) and HF cache isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_release_root() -> Path | None:
    """The real FracAtlas release: ``$FRACBENCH_RAW`` or ``../shared/fracatlas``."""
    candidates = []
    if os.environ.get("FRACBENCH_RAW"):
        candidates.append(Path(os.environ["FRACBENCH_RAW"]))
    candidates.append(REPO.parent / "shared" / "fracatlas")
    for c in candidates:
        for root in (c, c / "FracAtlas"):
            if (root / "dataset.csv").is_file():
                return root
    return None


@pytest.fixture(scope="session")
def real_release() -> Path:
    """Path of the real release's ``FracAtlas/`` dir; skips with the reason when absent."""
    root = real_release_root()
    if root is None:
        pytest.skip(
            "real FracAtlas release not found: set FRACBENCH_RAW or place it at ../shared/fracatlas"
        )
    return root


@pytest.fixture(scope="session")
def real_absent(real_release) -> int:
    """How many release images the real copy lacks: 249 in the partial copy (its MISSING.txt), 0 complete."""
    listing = real_release.parent / "MISSING.txt"
    return sum(1 for line in listing.read_text().splitlines() if line.strip()) if listing.is_file() else 0


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's Hugging Face cache, and nothing goes online."""
    home = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def synthetic_release(tmp_path_factory) -> Path:
    """Path of a synthetic release's ``FracAtlas/`` dir, written once per session.

    Made by ``tests/data/fracatlas/generate.py``; what it planted is in that module's
    ``EXPECTED`` (``from tests.data.fracatlas.generate import EXPECTED``).
    """
    from tests.data.fracatlas.generate import generate

    return generate(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def built_v1(synthetic_release, tmp_path_factory) -> Path:
    """The synthetic release built with a v1-style manifest (its planted groups kept together)."""
    from fracbench.dataset.build import build_dataset
    from fracbench.release.reader import read_release
    from fracbench.splits.derive import LeakageEvidence, derive_rows
    from fracbench.splits.manifest import read_manifest, write_manifest
    from tests.data.fracatlas.generate import EXPECTED

    release = read_release(synthetic_release)
    groups = EXPECTED["exact_duplicates"] + EXPECTED["pixel_duplicates"] + EXPECTED["near_duplicates"]
    evidence = LeakageEvidence(leakage_groups=groups, duplicate_groups=groups,
                               mixed_label_groups=EXPECTED["mixed_label_groups"], conflict_ids=EXPECTED["label_conflicts"])
    tmp = tmp_path_factory.mktemp("lb-built")
    write_manifest(tmp / "manifest.csv", derive_rows(release.records, evidence), {"version": "v1"})
    return build_dataset(release, tmp / "fracatlas", manifest=read_manifest(tmp / "manifest.csv"))
