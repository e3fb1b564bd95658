"""The submission file format ``fracbench.submission/v1`` (``preds.json``).

A submission holds one prediction per image of one split, for one task. These
pydantic models are the format's only definition: the published JSON Schema
(``fracbench/schemas/submission.schema.json``) is generated from them by
:func:`submission_json_schema` and accepts exactly what they accept, and
:mod:`fracbench.validate` runs them, then one pass over the content that no
schema can express (:data:`CONTENT_RULES`), reporting every problem at once.

Coordinates are pixels of the EXIF-corrected image at original resolution;
boxes are ``[x, y, w, h]``; masks are COCO compressed RLE (``size`` is
``[height, width]``) or COCO polygons (lists of flat ``[x1, y1, x2, y2, ...]``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from fracbench.atomic import write_text
from fracbench.vocab import (  # noqa: F401 (re-exported)
    LEGACY_SPLITS_VERSION,
    SCORABLE_SPLITS,
    SPLITS_VERSIONS,
    TASKS,
)

SUBMISSION_SCHEMA = "fracbench.submission/v1"
"""The ``schema`` value of every v1 submission."""

TASK_NAMES = TASKS
"""The benchmark's tasks (:data:`fracbench.vocab.TASKS`)."""

MAX_SUBMISSION_BYTES = 200 * 1024 * 1024
"""Largest accepted submission, uncompressed (checked before parsing and while un-gzipping)."""

MAX_OBJECTS_PER_IMAGE = 100
"""Most boxes (localization) or instances (segmentation) per image; COCO's ``maxDets``."""

BOX_TOLERANCE_PX = 2.0
"""How far (pixels) a box or polygon may reach outside the image and still be valid."""

MAX_POLYGONS_PER_INSTANCE = 50
"""Most polygons one segmentation instance may have."""

MAX_POLYGON_COORDS = 20_000
"""Most numbers (2 per vertex) in one polygon."""

IMAGE_ID_PATTERN = r"^IMG[0-9]{7}$"
"""FracAtlas image ids: ``IMG`` + 7 digits, without file extension."""

SCHEMA_FILE = Path(__file__).parent / "schemas" / "submission.schema.json"
"""The committed JSON Schema (package data)."""

SCHEMA_ID = "https://github.com/fracbench/fracbench/blob/main/fracbench/schemas/submission.schema.json"

MAX_COORDINATE = 1e15
"""Largest coordinate magnitude accepted (larger numbers are no pixel position)."""

MAX_MASK_SIDE = 100_000
"""Largest RLE ``size`` side accepted by the format (the content pass checks the image's size)."""

CONTENT_RULES = (
    "each image of the split exactly once (image ids unique and known)",
    "boxes and polygons inside the image (2 px tolerance)",
    "an even number of polygon coordinates",
    "RLE size equal to the image's [height, width] and counts that decode to exactly that many pixels",
    "splits_version and split equal to those of the ground truth being scored",
)
"""What :func:`fracbench.validate.validate_submission` checks beyond these models: rules
that need the ground truth or that JSON Schema cannot express."""

# Numbers are strict: JSON true/false or "5" are not numbers (as in JSON Schema).
Probability = Annotated[float, Strict(), Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Coordinate = Annotated[float, Strict(), Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE, allow_inf_nan=False)]
Extent = Annotated[float, Strict(), Field(gt=0, le=MAX_COORDINATE, allow_inf_nan=False)]
MaskSide = Annotated[int, Strict(), Field(gt=0, le=MAX_MASK_SIDE)]
ImageId = Annotated[str, Field(pattern=IMAGE_ID_PATTERN, description="FracAtlas image id, e.g. IMG0000019")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelCard(_Strict):
    """What was submitted: a name, optionally a link and a description."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S", description="not blank")]
    url: Annotated[str, Field(max_length=2000)] | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None


class ClassificationPrediction(_Strict):
    """One image's probability of showing a fracture."""

    image_id: ImageId
    score: Probability


class Box(_Strict):
    """One predicted fracture box: ``[x, y, w, h]`` pixels and a confidence."""

    bbox: Annotated[tuple[Coordinate, Coordinate, Extent, Extent], Field(description="[x, y, w, h] in pixels; w, h > 0")]
    score: Probability


class LocalizationPrediction(_Strict):
    """Every box predicted on one image (empty: nothing found)."""

    image_id: ImageId
    boxes: Annotated[list[Box], Field(max_length=MAX_OBJECTS_PER_IMAGE)]


class RLE(_Strict):
    """COCO compressed run-length encoding of a binary mask."""

    size: Annotated[tuple[MaskSide, MaskSide], Field(description="[height, width] of the image")]
    counts: Annotated[str, Field(description="COCO compressed RLE string (pycocotools.mask.encode)")]


class RLEInstance(_Strict):
    """One predicted fracture instance as an RLE mask."""

    score: Probability
    rle: RLE


Polygon = Annotated[
    list[Coordinate],
    Field(min_length=6, max_length=MAX_POLYGON_COORDS,
          description="flat [x1, y1, x2, y2, ...]: an even number of coordinates (checked by `fracbench validate`; "
          "JSON Schema cannot say 'even')"),
]


class PolygonInstance(_Strict):
    """One predicted fracture instance as COCO polygons (their union is the mask)."""

    score: Probability
    polygon: Annotated[list[Polygon], Field(min_length=1, max_length=MAX_POLYGONS_PER_INSTANCE)]


def _mask_kind(value: Any) -> str | None:
    """Which instance model applies: the one whose mask key the object has."""
    if isinstance(value, dict):
        return "rle-instance" if "rle" in value else "polygon-instance" if "polygon" in value else None
    return "rle-instance" if isinstance(value, RLEInstance) else "polygon-instance" if isinstance(value, PolygonInstance) else None


Instance = Annotated[
    Union[Annotated[RLEInstance, Tag("rle-instance")], Annotated[PolygonInstance, Tag("polygon-instance")]],
    Discriminator(_mask_kind, custom_error_type="missing_mask",
                  custom_error_message="expected an object with a score and either 'rle' or 'polygon'"),
]


class SegmentationPrediction(_Strict):
    """Every instance predicted on one image (empty: nothing found)."""

    image_id: ImageId
    instances: Annotated[list[Instance], Field(max_length=MAX_OBJECTS_PER_IMAGE)]


class _SubmissionBase(_Strict):
    schema_: Literal["fracbench.submission/v1"] = Field(alias="schema")
    splits_version: Annotated[
        str,
        Field(
            json_schema_extra={"enum": list(SPLITS_VERSIONS)},
            description="v1; or legacy: the authors' positive-only split (localization and segmentation only, "
            "for comparison with published numbers, never on a leaderboard)",
        ),
    ]
    split: Literal["validation", "test"]
    model: ModelCard
    threshold: Probability | None = Field(
        None, description="operating threshold on the scores, chosen on the validation split"
    )


    @field_validator("splits_version")
    @classmethod
    def _known_version(cls, value: str, info: ValidationInfo) -> str:
        # a dataset built from a custom manifest scores its own version: the validator passes it as context
        extra = (info.context or {}).get("splits_version")
        if value not in SPLITS_VERSIONS and value != extra:
            known = ", ".join(repr(v) for v in (*SPLITS_VERSIONS, *([extra] if extra else [])))
            raise ValueError(f"expected one of {known}")
        return value


class ClassificationSubmission(_SubmissionBase):
    """A classification submission: one fracture probability per image."""

    task: Literal["classification"]
    predictions: list[ClassificationPrediction]


class LocalizationSubmission(_SubmissionBase):
    """A localization submission: scored boxes per image."""

    task: Literal["localization"]
    predictions: list[LocalizationPrediction]


class SegmentationSubmission(_SubmissionBase):
    """A segmentation submission: scored instance masks per image."""

    task: Literal["segmentation"]
    predictions: list[SegmentationPrediction]


Submission = Annotated[
    Union[ClassificationSubmission, LocalizationSubmission, SegmentationSubmission],
    Field(discriminator="task"),
]
"""Any v1 submission; ``task`` selects the model."""

SUBMISSION_MODELS: dict[str, type[_SubmissionBase]] = {
    "classification": ClassificationSubmission,
    "localization": LocalizationSubmission,
    "segmentation": SegmentationSubmission,
}

ENTRY_MODELS: dict[str, type[BaseModel]] = {
    task: model.model_fields["predictions"].annotation.__args__[0] for task, model in SUBMISSION_MODELS.items()
}
"""The model of one ``predictions`` entry, per task."""

_ADAPTER: TypeAdapter[Any] = TypeAdapter(Submission)


def parse_submission(data: Any, *, splits_version: str | None = None) -> ClassificationSubmission | LocalizationSubmission | SegmentationSubmission:
    """Build the typed submission from parsed JSON (raises pydantic's ValidationError).

    Use :func:`fracbench.validate.validate_submission` for user input: it reports
    every problem with expected and found values, and the content rules, then calls this.

    Args:
        data: the parsed JSON.
        splits_version: a further splits version to accept (a dataset built from a custom manifest).
    """
    return _ADAPTER.validate_python(data, context={"splits_version": splits_version})


def submission_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``fracbench.submission/v1``, generated from the models."""
    schema = _ADAPTER.json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "fracbench submission v1",
        "description": (
            "Predictions for one task on one split of the fracbench FracAtlas benchmark: one entry per "
            "image of the split, each image exactly once. Coordinates are pixels of the EXIF-corrected "
            "image; boxes are [x, y, w, h]; masks are COCO compressed RLE or COCO polygons. Checks the "
            "schema cannot express (image ids of the split, box bounds, RLE size and counts) are done "
            "by `fracbench validate`. See docs/PROTOCOL.md."
        ),
        **schema,
    }


def schema_text() -> str:
    """The schema file's exact text: 2-space indent, sorted keys, trailing newline."""
    return json.dumps(submission_json_schema(), indent=2, sort_keys=True) + "\n"


def write_json_schema(path: str | Path = SCHEMA_FILE) -> Path:
    """Regenerate the committed schema file (``python -m fracbench.submission``)."""
    return write_text(path, schema_text())


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    print(write_json_schema())
