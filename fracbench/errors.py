"""The typed exception hierarchy, one class per pipeline stage.

Every message names the file or field, what was expected, what was found and,
where there is one, the fix. The CLI turns any :class:`FracbenchError` into a
one-line message and exit code 1; it never shows a traceback for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class FracbenchError(Exception):
    """Base class of every error fracbench raises on bad input or state."""

    exit_code = 1


class ReleaseError(FracbenchError):
    """A FracAtlas release directory is missing, incomplete or malformed."""


class ReleaseNotFoundError(ReleaseError):
    """The given path does not hold a FracAtlas release."""


class MissingFilesError(ReleaseError):
    """Image or annotation files the release lists are absent.

    Attributes:
        missing: every missing path, relative to the release root.
    """

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = missing


class AnnotationError(ReleaseError):
    """An annotation file cannot be parsed or contradicts the image it describes."""


class DownloadError(FracbenchError):
    """Downloading or extracting a release failed."""


class ChecksumError(DownloadError):
    """A file's size or digest is not the pinned one."""


class UnsafeArchiveError(DownloadError):
    """An archive member escapes the target, is a link, or is absurdly large."""


class SplitError(FracbenchError):
    """A split manifest is missing, tampered with or breaks an invariant."""


class DatasetError(FracbenchError):
    """A built dataset directory is missing or inconsistent."""


class DatasetNotFoundError(DatasetError):
    """No built dataset was found where one was looked for."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a submission (or a file being imported as one).

    Attributes:
        location: where, as a JSON path (``predictions[17].boxes[2].bbox``), ``line 3``,
            ``(file)``, or empty when the message says where.
        code: a stable machine-readable kind, e.g. ``unknown_image_id``.
        message: what was expected and what was found, and the fix where there is one.
        expected: what the format wants there, when the problem is a mismatch.
        found: a short description of what was there (values cut to a few dozen characters).
    """

    location: str
    code: str
    message: str
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class SubmissionError(FracbenchError):
    """A submission file is invalid; ``problems`` lists every problem found.

    Attributes:
        source: the file (or folder) the problems are in, when known.
        problems: every problem, structured (strings given are kept as location-less problems).
    """

    def __init__(self, message: str, problems: list[Problem | str] | None = None, *, source: str | None = None):
        super().__init__(message)
        self.source = source
        self.problems = [p if isinstance(p, Problem) else Problem("", "invalid", p) for p in problems or []]


class ScoringError(FracbenchError):
    """Scoring could not be carried out (e.g. ground truth and split disagree)."""


class LeaderboardError(FracbenchError):
    """A leaderboard entry is invalid, duplicated or fails verification."""


class HubError(FracbenchError):
    """Publishing to the Hugging Face Hub failed."""


class BaselineError(FracbenchError):
    """A baseline run cannot be trained, resumed or used for prediction."""


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The choice closest to a mistyped ``word`` (for "did you mean ...?"), or None.

    The one spelling-suggestion rule of fracbench (``difflib``, its default cutoff 0.6).
    """
    import difflib

    found = difflib.get_close_matches(str(word), list(choices), n=1)
    return found[0] if found else None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    near = closest(word, choices)
    return f" (did you mean {near!r}?)" if near else ""
