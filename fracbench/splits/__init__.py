"""Frozen, leakage-aware splits of FracAtlas and the authors' legacy split.

``load_manifest("v1")`` gives the frozen manifest (package data, cited as
"FracAtlas splits v1" with its sha256); ``derive`` reproduces it from the raw
release and its audit; ``verify`` checks a manifest's sha256 and invariants;
``legacy`` holds the authors' positive-only split for comparison with papers.
"""

from fracbench.splits.manifest import ManifestRow, SplitManifest, load_manifest, read_manifest

__all__ = ["ManifestRow", "SplitManifest", "load_manifest", "read_manifest"]
