"""The typed exception hierarchy, one class per pipeline stage.

Every message names the file or field, what was expected, what was found and,
where there is one, the fix. The CLI turns any :class:`FracbenchError` into a
one-line message and exit code 1; it never shows a traceback for them.
"""

from __future__ import annotations


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


class SubmissionError(FracbenchError):
    """A submission file is invalid; ``problems`` lists every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


class ScoringError(FracbenchError):
    """Scoring could not be carried out (e.g. ground truth and split disagree)."""


class LeaderboardError(FracbenchError):
    """A leaderboard entry is invalid, duplicated or fails verification."""


class HubError(FracbenchError):
    """Publishing to the Hugging Face Hub failed."""


class BaselineError(FracbenchError):
    """A baseline run cannot be trained, resumed or used for prediction."""
