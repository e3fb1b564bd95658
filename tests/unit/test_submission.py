"""The submission models and their published JSON Schema."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from fracbench.submission import SCHEMA_FILE, TASK_NAMES, parse_submission, schema_text, submission_json_schema
from tests.conftest import REPO
from tests.synthetic_gt import (
    classification_predictions,
    localization_predictions,
    make_ground_truth,
    segmentation_predictions,
    submission,
)

GT = make_ground_truth(12, seed=5, prevalence=0.5)
PREDICTORS = {"classification": classification_predictions, "localization": localization_predictions, "segmentation": segmentation_predictions}


def test_committed_schema_is_the_generated_one():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "fracbench/schemas/submission.schema.json is stale: run `python -m fracbench.submission`"
    )


def test_schema_covers_every_task():
    schema = submission_json_schema()
    text = json.dumps(schema)
    for task in TASK_NAMES:
        assert f'"const": "{task}"' in text
    assert schema["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("task", TASK_NAMES)
def test_models_parse_generated_submissions(task):
    doc = json.loads(json.dumps(submission(GT, task, PREDICTORS[task](GT), threshold=0.4)))
    sub = parse_submission(doc)
    assert sub.task == task and len(sub.predictions) == len(GT.images) and sub.threshold == 0.4
    assert sub.model_dump(by_alias=True, exclude_none=True)["schema"] == "fracbench.submission/v1"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("schema"),
        lambda d: d.update(task="detection"),
        lambda d: d.update(split="train"),
        lambda d: d["predictions"][0].update(score=1.5),
        lambda d: d["predictions"][0].update(score=float("nan")),
        lambda d: d["predictions"][0].pop("image_id"),
        lambda d: d["predictions"][0].update(image_id="IMG1.jpg"),
        lambda d: d.update(extra=1),
    ],
)
def test_models_reject_invalid(mutate):
    doc = submission(GT, "classification", classification_predictions(GT))
    mutate(doc)
    with pytest.raises(ValidationError):
        parse_submission(doc)


def test_json_schema_accepts_valid_and_rejects_invalid():
    jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="jsonschema-rs (a test extra) validates draft 2020-12")
    validator = jsonschema_rs.validator_for(submission_json_schema())
    for task in TASK_NAMES:
        doc = json.loads(json.dumps(submission(GT, task, PREDICTORS[task](GT))))
        assert validator.is_valid(doc), task
    bad = json.loads(json.dumps(submission(GT, "localization", localization_predictions(GT))))
    bad["predictions"][0]["boxes"] = [{"bbox": [0, 0, 1, 1], "score": 2}]
    assert not validator.is_valid(bad)
    bad["predictions"][0]["boxes"] = [{"bbox": [0, 0, 0, 1], "score": 0.5}]  # zero width: in the schema too
    assert not validator.is_valid(bad)


def test_protocol_examples_parse():
    """Every ```json block of docs/PROTOCOL.md that is a whole submission parses."""
    text = (REPO / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, flags=re.S)]
    docs = [b for b in blocks if isinstance(b, dict) and b.get("schema") == "fracbench.submission/v1"]
    assert {d["task"] for d in docs} == set(TASK_NAMES)
    for doc in docs:
        parse_submission(doc)
