"""Shared fixtures: the real release (skips without it), the synthetic release and its builds, HF cache isolation."""

from __future__ import annotations

import os
from pathlib import Path

# The README runs the suite as two xdist workers on two cores: one BLAS/OpenMP thread each (and in the
# processes tests start, which inherit this), instead of two each fighting over the cores. Set before
# numpy or torch is imported; an explicit setting wins.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

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


def _synthetic_evidence():
    """The audit evidence planted in the synthetic release (its groups and label conflicts)."""
    from fracbench.splits.derive import LeakageEvidence
    from tests.data.fracatlas.generate import EXPECTED

    groups = EXPECTED["exact_duplicates"] + EXPECTED["pixel_duplicates"] + EXPECTED["near_duplicates"]
    return LeakageEvidence(leakage_groups=groups, duplicate_groups=groups,
                           mixed_label_groups=EXPECTED["mixed_label_groups"], conflict_ids=EXPECTED["label_conflicts"])


@pytest.fixture(scope="session")
def parsed_release(synthetic_release):
    """The synthetic release read by ``read_release`` (a ``Release``), once per session; do not mutate."""
    from fracbench.release.reader import read_release

    return read_release(synthetic_release)


@pytest.fixture(scope="session")
def synthetic_manifest(parsed_release, tmp_path_factory):
    """The synthetic release's split manifest, recorded as splits version ``synthetic``.

    Derived from the planted groups and conflicts, with audit group counts in ``MANIFEST.json``
    (the dataset card quotes them). The version is not a shipped one, so commands that look up a
    shipped manifest by version (the nnU-Net export) must be given this file.
    """
    from fracbench.splits.derive import derive_rows
    from fracbench.splits.manifest import read_manifest, write_manifest

    path = tmp_path_factory.mktemp("synthetic-manifest") / "manifest.csv"
    counts = {"exact_duplicate_groups": 1, "mixed_label_groups": 1, "leakage_groups": 5}
    write_manifest(path, derive_rows(parsed_release.records, _synthetic_evidence()),
                   {"version": "synthetic", "audit_group_counts": counts})
    return read_manifest(path)


@pytest.fixture(scope="session")
def built_synthetic(parsed_release, synthetic_manifest, tmp_path_factory) -> Path:
    """The synthetic release built with ``synthetic_manifest``: the build, ground truth and export tests read it.

    Read-only: a test that changes files copies it first.
    """
    from fracbench.dataset.build import build_dataset

    return build_dataset(parsed_release, tmp_path_factory.mktemp("built-synthetic") / "fracatlas",
                         manifest=synthetic_manifest)


@pytest.fixture(scope="session")
def built_v1(parsed_release, tmp_path_factory) -> Path:
    """The synthetic release built with a manifest recorded as splits ``v1`` (its planted groups kept together).

    A second build beside ``built_synthetic`` because leaderboards and the scorer's v1 checks accept
    splits ``v1`` only; its manifest is ``built_v1.parent / "manifest.csv"``. Read-only.
    """
    from fracbench.dataset.build import build_dataset
    from fracbench.splits.derive import derive_rows
    from fracbench.splits.manifest import read_manifest, write_manifest

    tmp = tmp_path_factory.mktemp("lb-built")
    write_manifest(tmp / "manifest.csv", derive_rows(parsed_release.records, _synthetic_evidence()), {"version": "v1"})
    return build_dataset(parsed_release, tmp / "fracatlas", manifest=read_manifest(tmp / "manifest.csv"))
