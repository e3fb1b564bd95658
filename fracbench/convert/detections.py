"""What every prediction reader produces: :class:`Detection`, and the helpers they share.

Readers (:func:`fracbench.convert.yolo.read_yolo`, :func:`fracbench.convert.coco.read_coco_results`,
:func:`fracbench.convert.import_preds.read_score_csv`) turn a tool's file into detections per
image id; :func:`fracbench.convert.import_preds.import_predictions` lays them out as a submission.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fracbench.errors import SubmissionError

MAX_SHOWN = 3
"""Problems quoted in an error message (all of them are in ``SubmissionError.problems``)."""


@dataclass
class Detection:
    """One predicted object (or, for CSV, one image score), in pixels of the image.

    Attributes:
        score: confidence in 0..1.
        bbox: ``[x, y, w, h]``, or None when only a mask was given.
        polygon: flat polygons of the object, or None.
        rle: COCO compressed RLE ``{"size", "counts"}``, or None.
    """

    score: float
    bbox: list[float] | None = None
    polygon: list[list[float]] | None = None
    rle: dict[str, Any] | None = None


def predictions_error(source: str | Path, what: str, problems: list[str]) -> SubmissionError:
    """A one-line :class:`SubmissionError` quoting the first problems; all are kept in ``problems``."""
    shown = "; ".join(problems[:MAX_SHOWN])
    more = f" (and {len(problems) - MAX_SHOWN} more)" if len(problems) > MAX_SHOWN else ""
    return SubmissionError(f"{source}: {what}: {shown}{more}", problems=problems)


def file_stem(name: Any) -> str:
    """The image id a file name stands for: ``images/IMG0000019.jpg`` → ``IMG0000019``."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def polygon_box(polygons: list[list[float]]) -> list[float]:
    """The ``[x, y, w, h]`` box around flat polygons."""
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def load_json(path: str | Path) -> Any:
    """Parse a JSON file, a missing or malformed one raising :class:`SubmissionError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise SubmissionError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError(f"{path}: not readable JSON ({exc})") from None
