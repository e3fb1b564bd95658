"""Check a submission against the format and the ground truth, reporting every problem.

Reading (size limits, gzip, UTF-8, JSON) never raises on bad input: whatever is
wrong becomes a :class:`Problem` with its location (``predictions[17].boxes[2].bbox``)
and a message saying what was expected and what was found. The structural walk is
hand-written (:mod:`fracbench.validate_checks`) rather than left to pydantic, so
messages name expected and found values and every problem is reported at once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fracbench.dataset.groundtruth import GroundTruth
from fracbench.errors import SubmissionError
from fracbench.submission import MAX_SUBMISSION_BYTES, parse_submission
from fracbench.validate_checks import Problems, check_document

MAX_PROBLEMS = 10_000
"""Problems recorded per report; beyond this one final entry counts the rest."""

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a submission.

    Attributes:
        location: where, as a JSON path (``predictions[17].boxes[2].bbox``), or ``(file)``.
        code: a stable machine-readable kind, e.g. ``unknown_image_id``.
        message: what was expected and what was found, and the fix where there is one.
    """

    location: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


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
            SubmissionError: ``problems`` holds one ``location: message`` string per problem.
        """
        if self.problems:
            first = self.problems[0]
            more = f" (and {len(self.problems) - 1} more; run `fracbench validate {self.source}` for all)" if len(self.problems) > 1 else ""
            raise SubmissionError(
                f"{self.source}: invalid submission, {len(self.problems)} problem(s): {first}{more}",
                problems=[str(p) for p in self.problems],
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
    problems: list[Problem] = []

    def fail(message: str, code: str = "unreadable") -> RawDocument:
        return RawDocument(source, sha, None, [Problem("(file)", code, message)])

    sha = None
    try:
        size = os.stat(path).st_size
        if not Path(path).is_file():
            return fail(f"expected a submission file, found a directory or special file at {source}")
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
    data, problem = parse_json_bytes(text_bytes)
    if problem:
        problems.append(problem)
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


def _object_hook(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: Counter[str] = Counter(k for k, _ in pairs)
        obj.duplicate_keys = tuple(k for k, n in seen.items() if n > 1)
    return obj


def parse_json_bytes(data: bytes) -> tuple[Any, Problem | None]:
    """Parse UTF-8 JSON text; ``NaN``/``Infinity`` parse to floats so the walk can flag them.

    Returns:
        tuple: the parsed value (None on failure) and the problem, if any.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, Problem(
            "(file)",
            "not_json",
            f"expected UTF-8 JSON text, found byte 0x{data[exc.start]:02x} at offset {exc.start} that is not UTF-8 "
            "(is this a binary or a wrongly compressed file?)",
        )
    try:
        return json.loads(text, object_pairs_hook=_object_hook, parse_constant=float), None
    except json.JSONDecodeError as exc:
        return None, Problem("(file)", "not_json", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return None, Problem("(file)", "not_json", "JSON nested too deeply; a submission is at most 6 levels deep")
    except ValueError as exc:  # e.g. an integer literal with thousands of digits
        return None, Problem("(file)", "not_json", f"not valid JSON: {exc}")


def validate_submission(path_or_obj: str | Path | dict[str, Any] | RawDocument, gt: GroundTruth | None, *, split: str | None = None) -> ValidationReport:
    """Validate a submission against the v1 format and, when given, the split's ground truth.

    Args:
        path_or_obj: a submission file (``.json`` or gzipped), an already parsed JSON
            object, or a :class:`RawDocument` from :func:`read_document`.
        gt: the ground truth of the split the submission is for; None checks only what
            needs no ground truth (no image ids, sizes or bounds).
        split: the split the caller means to score; None accepts the declared split
            (``gt.split`` must then match it).

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
    sink = Problems(MAX_PROBLEMS)
    for p in doc.problems:
        sink.add(p.location, p.code, p.message)
    if gt is not None:
        report.checked_against = f"{gt.split} split of splits {gt.splits_version} ({len(gt.images)} images)"
    if doc.data is not None or not doc.problems:
        summary = check_document(doc.data, gt, split, sink)
        report.task, report.split, report.splits_version, report.n_predictions = summary
    report.problems = [Problem(*p) for p in sink.finish()]
    if gt is not None and doc.data is not None:
        from fracbench.conventions import box_convention_warnings

        report.warnings = box_convention_warnings(doc.data, {g.image_id: (g.width, g.height) for g in gt.images})
    if report.ok:
        try:
            report.submission = parse_submission(doc.data)
        except ValidationError as exc:  # the walk should have caught everything; never lose a problem
            report.problems = [
                Problem(_loc(err["loc"]), "invalid", f"{err['msg']} (found {str(err.get('input'))[:80]!r})") for err in exc.errors()
            ]
    return report


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("ClassificationSubmission", "LocalizationSubmission", "SegmentationSubmission", "classification", "localization", "segmentation"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"
