"""A tiny built dataset (parquet in the built layout) for the baseline tests, and its own checks.

Each image is a dark noisy field with a bright "bone" bar; fractured ones have a
dark crack across the bar whose box and polygon are the annotation. Sizes vary
(landscape and portrait) so letterbox scaling is exercised.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fracbench.dataset.built import METADATA_FILENAME, METADATA_SCHEMA
from fracbench.dataset.shards import file_sha256

SPLITS = {"train": (10, 4), "validation": (6, 2), "test": (6, 2)}
SIZES = [(80, 64), (64, 96), (72, 72), (96, 56)]


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _rows(split: str, n: int, n_pos: int, start: int, rng: np.random.Generator) -> list[dict]:
    rows = []
    for k in range(n):
        w, h = SIZES[(start + k) % len(SIZES)]
        pixels = rng.normal(40, 8, (h, w)).clip(0, 255).astype(np.uint8)
        img = Image.fromarray(pixels, "L")
        draw = ImageDraw.Draw(img)
        draw.rectangle([w // 2 - 6, 4, w // 2 + 6, h - 5], fill=200)
        boxes, polys = [], []
        mask = Image.new("L", (w, h), 0)
        if k < n_pos:
            y = h // 3 + (k % 3) * 4
            poly = [w // 2 - 8, y, w // 2 + 8, y, w // 2 + 8, y + 5, w // 2 - 8, y + 5]
            draw.polygon(poly, fill=10)
            ImageDraw.Draw(mask).polygon(poly, fill=1)
            boxes.append([w / 2 - 8, float(y), 16.0, 5.0])
            polys.append([[float(v) for v in poly]])
        iid = f"IMG{start + k:07d}"
        rows.append({
            "image": {"bytes": _png(img.convert("RGB")), "path": f"{iid}.png"}, "image_id": iid,
            "label": int(k < n_pos), "width": w, "height": h, "group_id": f"g{start + k}", "scored": True,
            "boxes": boxes, "polygons": polys, "mask": {"bytes": _png(mask), "path": f"{iid}_mask.png"},
        })
    return rows


def make_tiny_dataset(root: Path) -> Path:
    """Write a built dataset with configs classification/localization/segmentation/legacy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    start = 1
    by_split = {}
    for split, (n, n_pos) in SPLITS.items():
        by_split[split] = _rows(split, n, n_pos, start, rng)
        start += n
    columns = {
        "classification": ["image", "image_id", "label", "width", "height", "group_id", "scored"],
        "localization": ["image", "image_id", "label", "width", "height", "group_id", "scored", "boxes"],
        "segmentation": ["image", "image_id", "label", "width", "height", "group_id", "scored", "boxes",
                         "polygons", "mask"],
    }
    columns["legacy"] = columns["localization"]
    configs, files = {}, {}
    for config, cols in columns.items():
        (root / config).mkdir(exist_ok=True)
        configs[config] = {"splits": {}}
        for split, rows in by_split.items():
            table = pa.Table.from_pylist([{c: r[c] for c in cols} for r in rows])
            rel = f"{config}/{split}-00000-of-00001.parquet"
            pq.write_table(table, root / rel)
            configs[config]["splits"][split] = {"files": [rel], "num_examples": len(rows)}
            files[rel] = file_sha256(root / rel)
    record = {  # the record `fracbench build` writes, as far as readers need it
        "schema": METADATA_SCHEMA, "dataset_version": "0.0.0-tiny", "fingerprint": "tiny-test",
        "splits": {"version": "v1", "manifest_sha256": "0" * 64}, "configs": configs, "files": files,
    }
    (root / METADATA_FILENAME).write_text(json.dumps(record, indent=2))
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Session-wide tiny built dataset."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "fracatlas")


def test_tiny_dataset_has_every_config(tiny_dataset):
    for config in ("classification", "localization", "segmentation", "legacy"):
        assert (tiny_dataset / config / "test-00000-of-00001.parquet").is_file()
