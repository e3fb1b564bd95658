"""One definition of the format: the pydantic models, the published JSON Schema and
``fracbench validate --schema-only`` give every document the same verdict."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys

import pytest

from fracbench.submission import SCHEMA_FILE, parse_submission
from fracbench.validate import RawDocument, validate_submission
from tests.synthetic_gt import (
    classification_predictions,
    localization_predictions,
    make_ground_truth,
    segmentation_predictions,
    submission,
)

jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="jsonschema-rs (a test extra) validates draft 2020-12")

GT = make_ground_truth(5, seed=3, prevalence=0.6)
PREDICTORS = {"classification": classification_predictions, "localization": localization_predictions, "segmentation": segmentation_predictions}
N_DOCUMENTS = 10_000

EDGE_VALUES = [
    None, True, False, 0, 1, -1, 2, 0.0, 0.5, 1.0, 1.5, -0.5, 1e15, 1e16, -1e16, 3, 4.25,
    "", " ", "x", "v1", "v2", "legacy", "test", "validation", "train", "IMG0000001", "IMG0000001.jpg", "img0000001",
    "classification", "localization", "segmentation", "fracbench.submission/v1", "0", "PP", "a" * 201,
    [], [1, 2, 3, 4], [0, 0, 0, 1], [1, 2, 3, 4, 5, 6, 7], [[1, 2, 3, 4, 5, 6]], [5, 5], [0, 5], [1.5, 2],
    {}, {"name": "m"}, {"size": [2, 2], "counts": "4"}, {"bbox": [0, 0, 1, 1], "score": 0.5},
]
KEYS = ["schema", "task", "splits_version", "split", "model", "predictions", "threshold", "image_id", "score",
        "boxes", "bbox", "instances", "rle", "polygon", "size", "counts", "name", "url", "description", "label"]


def _base(rng: random.Random) -> dict:
    task = rng.choice(list(PREDICTORS))
    doc = submission(GT, task, PREDICTORS[task](GT), threshold=rng.choice([None, 0.3]))
    if task == "segmentation" and rng.random() < 0.5:  # polygons as well as RLE
        for entry in doc["predictions"]:
            for inst in entry["instances"]:
                inst.pop("rle", None)
                inst["polygon"] = [[1.0, 1.0, 8.0, 1.0, 4.0, 6.0]]
    return json.loads(json.dumps({k: v for k, v in doc.items() if v is not None}))


def _nodes(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nodes(v, (*path, i))


def _mutate(doc: dict, rng: random.Random) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        path, node = rng.choice(list(_nodes(doc)))
        op = rng.random()
        if isinstance(node, dict) and op < 0.25:
            if node and rng.random() < 0.5:
                node.pop(rng.choice(list(node)))
            else:
                node[rng.choice(KEYS)] = copy.deepcopy(rng.choice(EDGE_VALUES))
        elif isinstance(node, list) and op < 0.25:
            if node and rng.random() < 0.5:
                node.pop(rng.randrange(len(node)))
            elif node:
                node.append(copy.deepcopy(rng.choice(node)))
            else:
                node.append(copy.deepcopy(rng.choice(EDGE_VALUES)))
        elif path:
            parent = doc
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = copy.deepcopy(rng.choice(EDGE_VALUES))
        else:
            doc = copy.deepcopy(rng.choice(EDGE_VALUES))
            if not isinstance(doc, dict):
                return doc
    return doc


def _pydantic_ok(doc) -> bool:
    try:
        parse_submission(doc)
    except Exception:  # noqa: BLE001 - pydantic's ValidationError is the only one expected
        return False
    return True


def test_models_schema_and_validator_agree_on_fuzzed_documents():
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    rng = random.Random(20261203)
    bases = [_base(rng) for _ in range(30)]
    verdicts = {True: 0, False: 0}
    disagreements = []
    for n in range(N_DOCUMENTS):
        doc = _mutate(rng.choice(bases), rng)
        by_models = _pydantic_ok(doc)
        by_schema = validator.is_valid(doc)
        by_validate = validate_submission(RawDocument("<fuzz>", None, doc, []), None, schema_only=True).ok
        verdicts[by_models] += 1
        if not by_models == by_schema == by_validate:
            disagreements.append((n, by_models, by_schema, by_validate, json.dumps(doc)[:300]))
    assert not disagreements, disagreements[:5]
    # the fuzz must exercise both verdicts, or agreement says nothing
    assert verdicts[True] > N_DOCUMENTS * 0.15 and verdicts[False] > N_DOCUMENTS * 0.3, verdicts


def test_the_review_document_is_refused_by_all_three(tmp_path):
    """splits_version "v2", a blank model name and a 7-number polygon: once accepted by the models."""
    doc = json.loads(json.dumps(submission(GT, "segmentation", segmentation_predictions(GT))))
    doc["splits_version"] = "v2"
    doc["model"]["name"] = "   "
    doc["predictions"][0]["instances"] = [{"score": 0.5, "polygon": [[1, 1, 8, 1, 4, 6, 9]]}]
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    assert not validator.is_valid(doc)
    assert not _pydantic_ok(doc)
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(doc))
    run = subprocess.run([sys.executable, "-m", "fracbench", "validate", str(path), "--schema-only"], capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "splits_version" in run.stdout and "model.name" in run.stdout
    # the odd polygon is a content rule (JSON Schema cannot say "even"): full validation names it
    report = validate_submission(doc, GT)
    assert ("predictions[0].instances[0].polygon[0]", "bad_polygon") in {(p.location, p.code) for p in report.problems}


def test_a_custom_manifest_version_is_accepted_only_against_its_dataset():
    from dataclasses import replace

    gt = replace(GT, splits_version="synthetic")
    doc = json.loads(json.dumps(submission(gt, "classification", classification_predictions(gt))))
    assert doc["splits_version"] == "synthetic"
    assert validate_submission(doc, gt).ok
    assert not validate_submission(doc, None, schema_only=True).ok
