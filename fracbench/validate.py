"""Check a submission against the format and the ground truth, reporting every problem.

Three steps, each reporting every problem it finds as a structured :class:`Problem`
(location such as ``predictions[17].boxes[2].bbox``, code, expected, found):

1. reading (:func:`read_document`: size limits, gzip, UTF-8, JSON, duplicate keys) never raises;
2. the format: the pydantic models of :mod:`fracbench.submission`, the format's only
   definition (the published JSON Schema is generated from them); their errors are
   translated into messages that say what was expected and what was found;
3. the content (:data:`fracbench.submission.CONTENT_RULES`): one pass over the entries
   for what no schema can express (unique and known image ids, bounds, RLE sizes and
   counts, even polygons), against the ground truth when one is given.

``fracbench validate --schema-only`` stops after step 2, so its verdict is the JSON
Schema's (``tests/unit/test_schema_agreement.py`` checks this on fuzzed documents).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from fracbench.dataset.groundtruth import GroundTruth, GTImage
from fracbench.errors import Problem, SubmissionError, closest
from fracbench.metrics.rle import check_rles
from fracbench.submission import (
    BOX_TOLERANCE_PX,
    ENTRY_MODELS,
    IMAGE_ID_PATTERN,
    MAX_OBJECTS_PER_IMAGE,
    MAX_POLYGON_COORDS,
    MAX_SUBMISSION_BYTES,
    RLE,
    SUBMISSION_MODELS,
    SUBMISSION_SCHEMA,
    Box,
    ModelCard,
    PolygonInstance,
    RLEInstance,
)
from fracbench.vocab import (
    LEGACY_SPLITS_VERSION,
    SCORABLE_SPLITS,
    SPLITS_VERSIONS,
    TASKS,
    unscorable_reason,
)

MAX_PROBLEMS = 10_000
"""Problems recorded per report; beyond this one final entry counts the rest."""

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class ValidationReport:
    """The outcome of validating one submission.

    Attributes:
        source: the file path, or ``<object>`` for an in-memory document.
        sha256: sha256 of the file's bytes as stored (None for an in-memory document).
        task, split, splits_version: as the submission declares them (None if unreadable).
        n_predictions: entries in ``predictions``.
        problems: every problem found (at most :data:`MAX_PROBLEMS`, then a count).
        checked_against: what ground truth it was checked against, None when none was given.
        submission: the typed submission when valid, else None.
        warnings: likely mistakes that are not format errors, e.g. boxes in another
            coordinate convention (:mod:`fracbench.conventions`).
    """

    source: str
    sha256: str | None = None
    task: str | None = None
    split: str | None = None
    splits_version: str | None = None
    n_predictions: int = 0
    problems: list[Problem] = field(default_factory=list)
    checked_against: str | None = None
    submission: Any = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def counts(self) -> dict[str, int]:
        """Problems per code, most frequent first."""
        return dict(Counter(p.code for p in self.problems).most_common())

    def raise_for_problems(self) -> None:
        """Raise :class:`SubmissionError` listing every problem, if there is any.

        Raises:
            SubmissionError: ``problems`` holds every :class:`Problem`.
        """
        if self.problems:
            first = self.problems[0]
            more = f" (and {len(self.problems) - 1} more; run `fracbench validate {self.source}` for all)" if len(self.problems) > 1 else ""
            raise SubmissionError(
                f"{self.source}: invalid submission, {len(self.problems)} problem(s): {first}{more}",
                problems=list(self.problems),
                source=self.source,
            )


@dataclass
class RawDocument:
    """A submission file read and parsed as far as it goes."""

    source: str
    sha256: str | None
    data: Any
    problems: list[Problem]


def read_document(path: str | Path) -> RawDocument:
    """Read a ``.json`` or gzipped submission and parse its JSON, never raising on bad input.

    Gzip is recognised by its magic bytes, whatever the extension. The size limit
    (:data:`MAX_SUBMISSION_BYTES`, uncompressed) is checked on the file before reading
    and on the decompressed stream while inflating, so a gzip bomb is stopped early.

    Args:
        path: the submission file.

    Returns:
        RawDocument: ``data`` is None when any problem prevented parsing.
    """
    source = str(path)

    def fail(message: str, code: str = "unreadable") -> RawDocument:
        return RawDocument(source, sha, None, [Problem("(file)", code, message)])

    sha = None
    try:
        size = os.stat(path).st_size
        if not Path(path).is_file():
            return fail(f"expected a submission file, found a directory or special file at {source}{import_hint(path)}")
        if size > MAX_SUBMISSION_BYTES:
            return fail(_too_big(size), "too_large")
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return fail(f"no such file: {source}", "not_found")
    except OSError as exc:
        return fail(f"cannot read {source}: {exc.strerror or exc}")
    except ValueError as exc:  # a path the OS cannot even look up, e.g. one with a NUL byte
        return fail(f"not a usable file path: {source!r} ({exc})")
    sha = hashlib.sha256(raw).hexdigest()
    if raw[:2] == _GZIP_MAGIC:
        text_bytes, problem = _gunzip(raw)
        if problem:
            return RawDocument(source, sha, None, [problem])
    else:
        text_bytes = raw
    data, problems = parse_json_bytes(text_bytes)
    if data is None and problems and problems[0].code == "not_json":
        p = problems[0]
        problems[0] = Problem(p.location, p.code, p.message + import_hint(path))
    return RawDocument(source, sha, data, problems)


def _too_big(size: int) -> str:
    limit = MAX_SUBMISSION_BYTES // (1024 * 1024)
    return (
        f"submission is {size / 1024 / 1024:.1f} MiB uncompressed (or more); at most {limit} MiB are accepted: "
        "keep at most 100 boxes/instances per image and round coordinates to 2 decimals"
    )


def _gunzip(raw: bytes) -> tuple[bytes, Problem | None]:
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                if out.tell() > MAX_SUBMISSION_BYTES:
                    return b"", Problem("(file)", "too_large", _too_big(out.tell()))
    except (OSError, EOFError, zlib.error) as exc:
        return b"", Problem("(file)", "bad_gzip", f"starts like gzip but does not decompress ({exc}); re-create it with `gzip preds.json`")
    return out.getvalue(), None


class _Object(dict):
    """A JSON object that remembers keys given more than once."""

    duplicate_keys: tuple[str, ...] = ()


class _DuplicateKeys:
    """An ``object_pairs_hook`` that marks objects with repeated keys and counts them."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in pairs}) == len(pairs):
            return dict(pairs)
        obj = _Object(pairs)
        seen: Counter[str] = Counter(k for k, _ in pairs)
        obj.duplicate_keys = tuple(k for k, n in seen.items() if n > 1)
        self.count += 1
        return obj


def parse_json_bytes(data: bytes) -> tuple[Any, list[Problem]]:
    """Parse UTF-8 JSON text; ``NaN``/``Infinity`` parse to floats so the format pass can flag them.

    Returns:
        tuple: the parsed value (None on failure) and the problems: the one that stopped
        parsing, or every key given twice in one object.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [Problem(
            "(file)",
            "not_json",
            f"expected UTF-8 JSON text, found byte 0x{data[exc.start]:02x} at offset {exc.start} that is not UTF-8 "
            "(is this a binary or a wrongly compressed file?)",
        )]
    hook = _DuplicateKeys()
    try:
        value = json.loads(text, object_pairs_hook=hook, parse_constant=float)
    except json.JSONDecodeError as exc:
        return None, [Problem("(file)", "not_json", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
    except RecursionError:
        return None, [Problem("(file)", "not_json", "JSON nested too deeply; a submission is at most 6 levels deep")]
    except ValueError as exc:  # e.g. an integer literal with thousands of digits
        return None, [Problem("(file)", "not_json", f"not valid JSON: {str(exc)[:200]}")]
    return value, _duplicate_key_problems(value) if hook.count else []


@dataclass(frozen=True, slots=True)
class Header:
    """What a submission declares about itself, each value None unless it is a known one.

    The one reading of the header: the CLI and the scorer use it to pick the ground truth
    before validating against it.
    """

    task: str | None
    split: str | None
    splits_version: str | None

    @classmethod
    def of(cls, data: Any) -> Header:
        """The header of parsed JSON (anything: unknown values and non-objects give None)."""
        get = data.get if isinstance(data, dict) else (lambda key: None)

        def known(key: str, allowed: tuple[str, ...]) -> str | None:
            value = get(key)
            return value if isinstance(value, str) and value in allowed else None

        return cls(known("task", TASKS), known("split", SCORABLE_SPLITS), known("splits_version", SPLITS_VERSIONS))


@dataclass(frozen=True, slots=True)
class ProblemGroup:
    """Problems of one kind at the same place in many entries, shown as one line.

    Attributes:
        pattern: the location with entry indices as ``[*]`` (``predictions[*].image_id``).
        first: the first problem (its message stands for the group).
        locations: every location, in order.
        expected: every problem's ``expected`` (what tells them apart when they share a location).
    """

    pattern: str
    first: Problem
    locations: tuple[str, ...]
    expected: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.locations)

    @property
    def message(self) -> str:
        """The first message, and where else it happens when it happens more than once."""
        if self.count == 1:
            return self.first.message
        where = self.locations if len(set(self.locations)) > 1 else self.expected
        shown = ", ".join(where[:GROUP_SHOWN])
        more = f" and {self.count - GROUP_SHOWN} more" if self.count > GROUP_SHOWN else ""
        return f"{self.first.message} [{self.count} times: {shown}{more}]"

    @property
    def location(self) -> str:
        return self.first.location if self.count == 1 else self.pattern


GROUP_SHOWN = 3
"""Locations a grouped problem names before counting the rest."""

_INDEX = re.compile(r"\[\d+\]")


def group_problems(problems: list[Problem]) -> list[ProblemGroup]:
    """Problems of the same code and expectation at the same place in different entries, as one group each.

    One systematic mistake (``.jpg`` on every image id) becomes one line with a count
    and the first locations instead of one line per image; groups keep the order in
    which their first problem was found.
    """
    groups: dict[tuple[str, str, str], list[Problem]] = {}
    for p in problems:
        pattern = _INDEX.sub("[*]", p.location)
        # across entries, one kind is one code with one expectation; at one place, one code
        same = (p.expected if p.expected is not None else p.message) if pattern != p.location else ""
        groups.setdefault((pattern, p.code, same), []).append(p)
    return [ProblemGroup(pattern, items[0], tuple(i.location for i in items), tuple(str(i.expected or i.message) for i in items))
            for (pattern, _, _), items in groups.items()]


def import_hint(path: str | Path, data: Any = None) -> str:
    """A pointer to ``fracbench import-preds`` when ``path`` (or its parsed ``data``) looks like a file it reads.

    Returns:
        str: ``"; it looks like ...: convert it with `fracbench import-preds ...`"``, or ``""``.
    """
    fmt, what = _import_format(Path(path), data)
    if fmt is None:
        return ""
    return f"; it looks like {what}: convert it with `fracbench import-preds {fmt} {path} --out preds.json --model-name NAME`"


def _import_format(path: Path, data: Any) -> tuple[str | None, str]:
    if isinstance(data, list):
        first = next((e for e in data[:50] if isinstance(e, dict)), None)
        if first is not None and "image_id" in first and ({"bbox", "segmentation", "category_id"} & set(first) or "score" in first):
            return "coco", "a COCO results list"
        return None, ""
    try:
        if path.is_dir():
            names = [p.name for p in path.iterdir()][:2000]
            if any(n.endswith(".txt") for n in names) or (path / "labels").is_dir():
                return "yolo", "an Ultralytics prediction folder (labels/ from save_txt=True save_conf=True)"
            if any(n.endswith((".npz", ".png", ".nii.gz")) for n in names):
                return "nnunet", "an nnUNetv2_predict output folder"
            return None, ""
        if data is None and path.is_file():
            with path.open("rb") as fh:
                head = fh.read(4096).decode("utf-8", "replace").lstrip("\ufeff")
            first = head.splitlines()[0].strip().lower() if head.strip() else ""
            if first.count(",") >= 1 and ("image_id" in first or re.match(r"img\d{7}", first)):
                return "csv", "an image_id,score CSV"
    except (OSError, ValueError):
        return None, ""
    return None, ""


def _duplicate_key_problems(data: Any, loc: str = "") -> list[Problem]:
    """Every object in ``data`` that gave a key more than once (see :class:`_DuplicateKeys`)."""
    found: list[Problem] = []
    stack = [(loc, data)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            for k in getattr(node, "duplicate_keys", ()):
                found.append(Problem(_join(where, k), "duplicate_key", f"key {k!r} given more than once; give each key once"))
            stack.extend((_join(where, k), v) for k, v in node.items() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(node) if isinstance(v, (dict, list)))
    return found


def _join(loc: str, key: Any) -> str:
    return f"{loc}.{key}" if loc else str(key)


class _Sink:
    """Collects problems up to a limit, one per (location, code, expected), then only counts them.

    RLE strings are checked in one vectorised batch: :meth:`defer_rle` queues one,
    :meth:`finish` checks the queue.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.items: list[Problem] = []
        self.seen: set[tuple[str, str, str | None]] = set()
        self.dropped = 0
        self._rles: list[tuple[str, str, tuple[int, int]]] = []

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit

    def add(self, problem: Problem) -> None:
        key = (problem.location, problem.code, problem.expected)
        if key in self.seen:
            return
        if len(self.items) < self.limit:
            self.items.append(problem)
            self.seen.add(key)
        else:
            self.dropped += 1

    def defer_rle(self, location: str, counts: str, height: int, width: int) -> None:
        self._rles.append((location, counts, (height, width)))

    def finish(self) -> list[Problem]:
        """The recorded problems, plus one entry counting those beyond the limit."""
        if self._rles:
            locations, counts, sizes = zip(*self._rles)
            for location, why in zip(locations, check_rles(counts, sizes)):
                if why:
                    self.add(Problem(location, "bad_rle", why))
            self._rles = []
        if self.dropped:
            return [*self.items, Problem("(file)", "too_many_problems", f"{self.dropped} further problems were not listed; fix the ones above first")]
        return list(self.items)


def describe(value: Any) -> str:
    """A short human description of a JSON value, for 'found ...' (never more than ~60 characters)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int) and abs(value) > 10**30:
        return f"an integer of {len(str(abs(value))) if abs(value) < 10**4000 else 'over 4000'} digits"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, float) and math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        text = repr(value)
        return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        keys = ", ".join(str(k)[:20] for k in list(value)[:6])
        return f"an object with keys {{{keys}}}" if value else "an empty object"
    return type(value).__name__


def validate_submission(
    path_or_obj: str | Path | dict[str, Any] | RawDocument,
    gt: GroundTruth | None,
    *,
    split: str | None = None,
    schema_only: bool = False,
) -> ValidationReport:
    """Validate a submission against the v1 format and, when given, the split's ground truth.

    Args:
        path_or_obj: a submission file (``.json`` or gzipped), an already parsed JSON
            object, or a :class:`RawDocument` from :func:`read_document`.
        gt: the ground truth of the split the submission is for; None checks the content
            rules that need none (unique ids, even polygons, RLE counts).
        split: the split the caller means to score; None accepts the declared split
            (``gt.split`` must then match it).
        schema_only: check the format only (the JSON Schema's verdict), not the content.

    Returns:
        ValidationReport: every problem found; ``submission`` is set when there is none.
    """
    if isinstance(path_or_obj, RawDocument):
        doc = path_or_obj
    elif isinstance(path_or_obj, (str, Path)):
        doc = read_document(path_or_obj)
    else:
        doc = RawDocument("<object>", None, path_or_obj, [])
    report = ValidationReport(source=doc.source, sha256=doc.sha256)
    sink = _Sink(MAX_PROBLEMS)
    for p in doc.problems:
        sink.add(p)
    if gt is not None:
        report.checked_against = f"{gt.split} split of splits {gt.splits_version} ({len(gt.images)} images)"
    data, typed = doc.data, None
    if data is not None or not doc.problems:
        extra_version = gt.splits_version if gt is not None and gt.splits_version not in SPLITS_VERSIONS else None
        hint = import_hint(doc.source, data) if isinstance(data, list) else ""
        task, typed = check_format(data, sink, splits_version=extra_version, hint=hint)
        if isinstance(data, dict):
            report.task = task
            report.split = data.get("split") if data.get("split") in SCORABLE_SPLITS else None
            version = data.get("splits_version")
            report.splits_version = version if isinstance(version, str) else None
            preds = data.get("predictions")
            report.n_predictions = len(preds) if isinstance(preds, list) else 0
            if not schema_only:
                check_content(data, task, gt, split, sink)
    report.problems = sink.finish()
    if gt is not None and isinstance(data, dict) and not schema_only:
        from fracbench.conventions import box_convention_warnings

        report.warnings = box_convention_warnings(data, {g.image_id: (g.width, g.height) for g in gt.images})
    if report.ok:
        report.submission = typed
    return report


# ---------------------------------------------------------------------------------------------
# step 2: the format, by the pydantic models

_CHUNK = 2000
"""Prediction entries validated per call, so memory stays bounded on a file full of errors."""


def check_format(data: Any, sink: _Sink, *, splits_version: str | None = None, hint: str = "") -> tuple[str | None, BaseModel | None]:
    """Run the submission models over ``data`` and translate every error into ``sink``.

    The header and the entries are validated separately (the entries in chunks), with
    exactly the models :func:`fracbench.submission.parse_submission` uses: the verdict is
    theirs. When ``task`` is unknown the entries are still checked by the model their
    keys look like, so one run reports everything.

    Returns:
        tuple: the declared task when it is one of :data:`fracbench.vocab.TASKS`, and the
        typed submission when the models accepted everything (else None).
    """
    if not isinstance(data, dict):
        sink.add(Problem("(top level)", "not_object", f"expected a JSON object with keys schema, task, splits_version, split, model, predictions; found {describe(data)}{hint}",
                         expected="a JSON object", found=describe(data)))
        return None, None
    context = {"splits_version": splits_version}
    task = data.get("task")
    known = task if isinstance(task, str) and task in TASKS else None
    if "task" not in data:
        sink.add(_missing("task"))
    elif known is None:
        near = closest(task, TASKS) if isinstance(task, str) else None
        hint = f". Did you mean {near!r}?" if near else ""
        sink.add(_mismatch("task", "unknown_task", f"one of {', '.join(TASKS)}", task, hint))
    looks = _infer_task(data.get("predictions"))
    if known is not None and looks is not None and looks != known:
        key = next(k for k in ENTRY_MODELS[looks].model_fields if k != "image_id")
        sink.add(Problem("task", "task_mismatch",
                         f"task is {known!r} but the predictions look like {looks} predictions (entries have {key!r}); "
                         f"declare \"task\": \"{looks}\", or give each entry what a {known} prediction holds",
                         expected=f"{known} entries", found=f"{looks} entries"))
    shape = known or looks or "localization"
    model = SUBMISSION_MODELS[shape]
    preds = data.get("predictions")
    header = {**data, "task": shape, "predictions": []} if isinstance(preds, list) else {**data, "task": shape}
    typed: BaseModel | None = None
    try:
        typed = model.model_validate(header, context=context)
    except ValidationError as exc:
        for err in exc.errors():
            if err["loc"] != ("task",):
                sink.add(_translate(err, (), data, model))
    if isinstance(preds, list):
        entries = ENTRY_MODELS[shape]
        adapter = _entry_adapter(shape)
        parsed: list[Any] = []
        for start in range(0, len(preds), _CHUNK):
            chunk = preds[start:start + _CHUNK]
            try:
                parsed.extend(adapter.validate_python(chunk, context=context))
            except ValidationError as exc:
                typed = None
                if sink.full:
                    sink.dropped += exc.error_count()
                    continue
                for err in exc.errors():
                    i, *rest = err["loc"]
                    err = {**err, "loc": ("predictions", start + i, *rest)}
                    sink.add(_translate(err, ("predictions",), data, entries))
        if typed is not None:
            typed.predictions = parsed  # validated above by the same models, chunk by chunk
    return known, (typed if known is not None else None)


_ADAPTERS: dict[str, Any] = {}


def _entry_adapter(task: str) -> Any:
    if task not in _ADAPTERS:
        from pydantic import TypeAdapter

        _ADAPTERS[task] = TypeAdapter(list[ENTRY_MODELS[task]])  # type: ignore[valid-type]
    return _ADAPTERS[task]


def _infer_task(preds: Any) -> str | None:
    """The task the entries look like, so they are checked even when ``task`` is wrong."""
    first = next((e for e in preds if isinstance(e, dict)), None) if isinstance(preds, list) else None
    if first is None:
        return None
    for task, model in ENTRY_MODELS.items():
        if any(k in first for k in model.model_fields if k != "image_id"):
            return task
    return None


def _loc(parts: tuple[Any, ...]) -> str:
    """A pydantic error location as a JSON path, without union tags."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (isinstance(part, str) and part.endswith("-instance")):  # union tags name no field
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _value_at(data: Any, parts: tuple[Any, ...]) -> Any:
    node = data
    for part in parts:
        if isinstance(part, str) and part.endswith("-instance"):
            continue
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _mismatch(loc: str, code: str, expected: str, value: Any, hint: str = "") -> Problem:
    found = describe(value)
    return Problem(loc, code, f"expected {expected}, found {found}{hint}", expected=expected, found=found)


def _missing(loc: str, what: str | None = None) -> Problem:
    name = loc.rsplit(".", 1)[-1]
    return Problem(loc, "missing_field", what or f"missing; expected field {name!r}", expected=f"field {name!r}", found="nothing")


_FIELD_MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    ("model",): ModelCard,
    ("predictions", "boxes"): Box,
    ("predictions", "instances", "rle-instance"): RLEInstance,
    ("predictions", "instances", "polygon-instance"): PolygonInstance,
    ("predictions", "instances", "rle-instance", "rle"): RLE,
}

_PROBABILITY = "a finite number in [0, 1]"
_EXPECTED_OBJECT = {
    "predictions": 'an object like {"image_id": "IMG0000019", ...}',
    "boxes": 'an object like {"bbox": [x, y, w, h], "score": 0.8}',
    "instances": 'an object like {"score": 0.8, "rle": {...}} or {"score": 0.8, "polygon": [[...]]}',
    "model": 'an object like {"name": "my-model"}',
    "rle": '{"size": [height, width], "counts": "..."}',
}


def _translate(err: dict[str, Any], base: tuple[str, ...], data: Any, model: type[BaseModel]) -> Problem:
    """One pydantic error as a :class:`Problem` saying what was expected and what was found."""
    kind, parts = err["type"], tuple(err["loc"])
    value = _value_at(data, parts) if kind != "missing" else None
    names = tuple(p for p in parts if isinstance(p, str))
    field = names[-1] if names else ""
    loc = _loc(parts)

    def inside(key: str) -> bool:  # the error is within this field's value, not about the field itself
        return key in parts and parts.index(key) < len(parts) - 1

    if kind == "missing" and not (inside("bbox") or inside("size")):
        return _missing(loc)
    if "bbox" in names and kind != "extra_forbidden":
        bbox_loc = _loc(parts[: parts.index("bbox") + 1])
        bbox = _value_at(data, parts[: parts.index("bbox") + 1])
        index = parts[-1] if isinstance(parts[-1], int) else None
        if kind == "greater_than" and index in (2, 3):
            w, h = bbox[2], bbox[3]
            return Problem(bbox_loc, "degenerate_box", f"expected width and height > 0, found w={w}, h={h}; boxes are [x, y, w, h], not [x1, y1, x2, y2]",
                           expected="w > 0 and h > 0", found=f"w={w}, h={h}")
        if isinstance(bbox, list) and len(bbox) == 4 and index is not None:
            return _mismatch(bbox_loc, "bad_bbox", "4 finite numbers [x, y, w, h] (each at most 1e15 in size)", bbox[index], " among them")
        return _mismatch(bbox_loc, "bad_bbox", "[x, y, w, h]: a list of 4 numbers", bbox)
    if kind == "extra_forbidden":
        parent_names = names[:-1]
        owner = model if parent_names == base else _FIELD_MODELS.get(parent_names, model)
        if owner is RLEInstance and field == "polygon":
            return Problem(loc.rsplit(".", 1)[0], "bad_instance", "found both 'rle' and 'polygon'; give exactly one mask per instance")
        allowed = tuple(f.alias or n for n, f in owner.model_fields.items())
        near = closest(field, allowed)
        hint = f" Did you mean {near!r}?" if near else ""
        return Problem(loc, "unknown_field", f"unknown field; allowed: {', '.join(allowed)}.{hint}", expected=", ".join(allowed), found=repr(field[:40]))
    if kind == "missing_mask":
        if not isinstance(value, dict):
            return _mismatch(loc, "not_object", _EXPECTED_OBJECT["instances"], value)
        return _missing(loc, "missing the mask; expected field 'rle' (COCO compressed RLE) or 'polygon'")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        code = {"model": "bad_model", "rle": "bad_rle"}.get(field, "not_object")
        return _mismatch(loc, code, _EXPECTED_OBJECT.get(field, "an object"), value)
    if field == "schema":
        hint = ""
        if isinstance(value, str) and value.startswith("fracbench.result"):
            hint = "; this is a Result JSON (scores), not a submission (predictions): pass the preds.json that was scored"
        return _mismatch(loc, "wrong_schema", repr(SUBMISSION_SCHEMA), value, hint)
    if field == "splits_version":
        hint = f"; predict the split of splits {SPLITS_VERSIONS[0]}"
        return _mismatch(loc, "wrong_splits_version", f"{SPLITS_VERSIONS[0]!r} (or {LEGACY_SPLITS_VERSION!r})" if kind != "value_error" else err["msg"].removeprefix("Value error, ").removeprefix("expected "), value, hint)
    if field == "split":
        return _mismatch(loc, "wrong_split", f"one of {', '.join(SCORABLE_SPLITS)}", value)
    if field == "threshold":
        return _mismatch(loc, "bad_score", f"a threshold: {_PROBABILITY}", value)
    if field == "score":
        return _mismatch(loc, "bad_score", f"a probability: {_PROBABILITY}", value)
    if names[:1] == ("model",) or field == "model":
        limits = {"name": "a non-empty string of at most 200 characters", "url": "a string of at most 2000 characters or null",
                  "description": "a string of at most 10000 characters or null"}
        return _mismatch(loc, "bad_model", limits.get(field, _EXPECTED_OBJECT["model"]), value)
    if field == "image_id":
        hint = ""
        if isinstance(value, str) and "." in value and re.match(IMAGE_ID_PATTERN, value.rsplit(".", 1)[0]):
            hint = f"; drop the file extension ({value.rsplit('.', 1)[0]!r})"
        return _mismatch(loc, "bad_image_id", "an image id like 'IMG0000019' (no extension)", value, hint)
    if field in ("boxes", "instances", "predictions") and kind in ("list_type", "too_long"):
        if kind == "too_long":
            n = len(value) if isinstance(value, list) else "too many"
            return Problem(loc, "too_many", f"{n} {field}; at most {MAX_OBJECTS_PER_IMAGE} per image are allowed: keep the highest-scoring {MAX_OBJECTS_PER_IMAGE}",
                           expected=f"at most {MAX_OBJECTS_PER_IMAGE}", found=str(n))
        what = "one entry per image" if field == "predictions" else f"{field} (empty when nothing is found)"
        return _mismatch(loc, "not_list", f"a list of {what}", value)
    if "rle" in names:
        sub = _loc(parts[: parts.index("size") + 1]) if "size" in parts else loc
        if field == "size" or "size" in parts:
            return _mismatch(sub, "bad_rle", "[height, width]: two positive integers", _value_at(data, parts[: parts.index("size") + 1]))
        if field == "counts":
            if isinstance(value, list):
                return Problem(loc, "bad_rle", "found uncompressed RLE (a list); expected the compressed string: pycocotools.mask.encode(mask)['counts'].decode('ascii')",
                               expected="a COCO compressed RLE string", found="a list")
            return _mismatch(loc, "bad_rle", "a COCO compressed RLE string", value)
    if "polygon" in names:
        idx = parts.index("polygon")
        poly_parts = parts[: idx + 2] if len(parts) > idx + 1 and isinstance(parts[idx + 1], int) else parts[: idx + 1]
        poly = _value_at(data, poly_parts)
        if len(poly_parts) == idx + 1:
            return _mismatch(_loc(poly_parts), "bad_polygon", "a list of 1 to 50 polygons [[x1, y1, x2, y2, ...], ...]", poly)
        found = f"{len(poly)} numbers" if isinstance(poly, list) and kind in ("too_short", "too_long") else describe(value if len(parts) > len(poly_parts) else poly)
        return Problem(_loc(poly_parts), "bad_polygon", f"expected a flat list [x1, y1, x2, y2, ...] of an even number of 6 to {MAX_POLYGON_COORDS} finite numbers (3+ vertices), found {found}",
                       expected="6+ finite numbers", found=found)
    return _mismatch(loc, "invalid", err["msg"].lower(), value)


# ---------------------------------------------------------------------------------------------
# step 3: the content, against the ground truth when given

_ID_RE = re.compile(IMAGE_ID_PATTERN)
_MAX_PIXELS = 1 << 31


def check_content(data: dict[str, Any], task: str | None, gt: GroundTruth | None, split: str | None, sink: _Sink) -> None:
    """The rules no schema can express (:data:`fracbench.submission.CONTENT_RULES`).

    Tolerant of anything the format pass already reported: it looks only at the parts
    that are well-formed enough to check.
    """
    version = data.get("splits_version")
    if gt is not None and version in (*SPLITS_VERSIONS, gt.splits_version) and version != gt.splits_version:
        want = gt.splits_version
        sink.add(_mismatch("splits_version", "wrong_splits_version", repr(want), version, f"; predict the split of splits {want}"))
    reason = unscorable_reason(task, gt.splits_version) if gt is not None else None
    if reason:
        sink.add(Problem("task", "task_not_scorable", reason))
    declared = data.get("split")
    want = split or (gt.split if gt is not None else None)
    if declared in SCORABLE_SPLITS and want is not None and declared != want:
        sink.add(Problem("split", "wrong_split", f"expected {want!r} (the split being checked), found {declared!r}; pass --split {declared} to check it against the {declared} split",
                         expected=repr(want), found=repr(declared)))
    preds = data.get("predictions")
    if not isinstance(preds, list):
        return
    shape = task or _infer_task(preds)
    images = gt.by_id() if gt is not None else {}
    seen: dict[str, int] = {}
    for i, entry in enumerate(preds):
        if not isinstance(entry, dict):
            continue
        loc = f"predictions[{i}]"
        image = _check_image_id(entry.get("image_id"), loc, gt, images, seen, i, sink)
        if shape == "localization" and image is not None and isinstance(entry.get("boxes"), list):
            _check_box_bounds(entry["boxes"], f"{loc}.boxes", image, sink)
        elif shape == "segmentation" and isinstance(entry.get("instances"), list):
            _check_instances(entry["instances"][:MAX_OBJECTS_PER_IMAGE], f"{loc}.instances", image, sink)
    if gt is not None:
        for g in gt.images:
            if g.image_id not in seen:
                sink.add(Problem("predictions", "missing_image", f"no prediction for {g.image_id} of the {gt.split} split; predict every image (an empty list means nothing found)",
                                 expected=g.image_id, found="nothing"))


def _check_image_id(image_id: Any, loc: str, gt: GroundTruth | None, images: dict[str, GTImage], seen: dict[str, int], i: int, sink: _Sink) -> GTImage | None:
    if not isinstance(image_id, str) or not _ID_RE.match(image_id):
        stem = image_id.rsplit(".", 1)[0] if isinstance(image_id, str) else None
        if stem and _ID_RE.match(stem):  # the format pass said "drop the extension"; not also "missing"
            seen.setdefault(stem, i)
        return None  # the format pass said so
    if image_id in seen:
        sink.add(Problem(f"{loc}.image_id", "duplicate_image_id", f"{image_id!r} is already predicted at predictions[{seen[image_id]}]; give each image exactly once",
                         expected="each image once", found=f"{image_id} again"))
        return None
    seen[image_id] = i
    if gt is None:
        return None
    image = images.get(image_id)
    if image is None:
        sink.add(Problem(f"{loc}.image_id", "unknown_image_id", f"{image_id!r} is not an image of the {gt.split} split (splits {gt.splits_version})",
                         expected=f"an image of the {gt.split} split", found=repr(image_id)))
    return image


def _usable_number(v: Any) -> bool:
    return (type(v) is float and math.isfinite(v) and abs(v) <= 1e15) or (type(v) is int and abs(v) <= 10**15)


def _check_box_bounds(boxes: list[Any], loc: str, image: GTImage, sink: _Sink) -> None:
    rows, index = [], []
    for j, box in enumerate(boxes[:MAX_OBJECTS_PER_IMAGE]):
        bbox = box.get("bbox") if isinstance(box, dict) else None
        if type(bbox) is list and len(bbox) == 4 and all(_usable_number(v) for v in bbox) and bbox[2] > 0 and bbox[3] > 0:
            rows.append(bbox)
            index.append(j)
    if not rows:
        return
    a = np.array(rows, dtype=np.float64)
    t = BOX_TOLERANCE_PX
    bad = (a[:, 0] < -t) | (a[:, 1] < -t) | (a[:, 0] + a[:, 2] > image.width + t) | (a[:, 1] + a[:, 3] > image.height + t)
    for r in np.flatnonzero(bad):
        x, y, w, h = rows[r]
        _bounds_problem(x, y, x + w, y + h, f"{loc}[{index[r]}].bbox", image, sink, "box")


def _bounds_problem(x0: float, y0: float, x1: float, y1: float, loc: str, image: GTImage, sink: _Sink, what: str) -> None:
    t = BOX_TOLERANCE_PX
    if x0 < -t or y0 < -t or x1 > image.width + t or y1 > image.height + t:
        sink.add(Problem(
            loc,
            "outside_image",
            f"{what} spans x {x0:g}..{x1:g}, y {y0:g}..{y1:g} but {image.image_id} is {image.width}x{image.height} "
            f"(width x height; {t:g} px tolerance); use pixels of the EXIF-corrected image at original resolution",
            expected=f"inside {image.width}x{image.height}", found=f"x {x0:g}..{x1:g}, y {y0:g}..{y1:g}",
        ))


def _check_instances(instances: list[Any], loc: str, image: GTImage | None, sink: _Sink) -> None:
    for j, inst in enumerate(instances):
        if not isinstance(inst, dict):
            continue
        iloc = f"{loc}[{j}]"
        rle, polygon = inst.get("rle"), inst.get("polygon")
        if isinstance(rle, dict):
            _check_rle(rle, f"{iloc}.rle", image, sink)
        elif isinstance(polygon, list):
            _check_polygon(polygon, f"{iloc}.polygon", image, sink)


def _check_rle(rle: dict[str, Any], loc: str, image: GTImage | None, sink: _Sink) -> None:
    size, counts = rle.get("size"), rle.get("counts")
    if not (type(size) is list and len(size) == 2 and all(type(v) is int and v > 0 for v in size)):
        return  # the format pass said so
    if image is not None and (size[0], size[1]) != (image.height, image.width):
        sink.add(Problem(
            f"{loc}.size",
            "mask_size_mismatch",
            f"expected [{image.height}, {image.width}] ([height, width] of {image.image_id}), found {size}; "
            "encode the mask at the original, EXIF-corrected resolution",
            expected=f"[{image.height}, {image.width}]", found=str(size),
        ))
        return
    if size[0] * size[1] > _MAX_PIXELS:
        sink.add(_mismatch(f"{loc}.size", "bad_rle", "a FracAtlas image size", size))
        return
    if isinstance(counts, str):
        sink.defer_rle(f"{loc}.counts", counts, size[0], size[1])


def _check_polygon(polygon: list[Any], loc: str, image: GTImage | None, sink: _Sink) -> None:
    for k, poly in enumerate(polygon[:50]):
        if not isinstance(poly, list) or not 6 <= len(poly) <= MAX_POLYGON_COORDS or not all(_usable_number(v) for v in poly):
            continue  # the format pass said so
        ploc = f"{loc}[{k}]"
        if len(poly) % 2:
            sink.add(Problem(ploc, "bad_polygon", f"expected a flat list [x1, y1, x2, y2, ...] of an even number of coordinates (x, y pairs), found {len(poly)} numbers",
                             expected="an even number of coordinates", found=f"{len(poly)} numbers"))
            continue
        if image is not None:
            xs, ys = poly[0::2], poly[1::2]
            _bounds_problem(min(xs), min(ys), max(xs), max(ys), ploc, image, sink, "polygon")
