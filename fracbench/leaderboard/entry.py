"""Leaderboard entries: model metadata, the entry file format, its integrity hash.

An entry is one scored submission on one task of one splits version, stored at
``<board>/fracatlas-<splits_version>/<task>/<slug>.json``. It is a public,
versioned file format (``fracbench.leaderboard-entry/v1``); old entries must
keep loading, so :data:`ENTRY_LOADERS` maps every schema id ever written to the
function that reads it. Readers are strict (unknown fields are errors), so any
change to the fields is a new schema id, with a converter for the older ones.

The entry's ``entry_sha256`` is the sha256 of the canonical JSON (Python's
``json.dumps`` with sorted keys, no whitespace, UTF-8, no NaN) of every other
top-level field *as stored in the file*, so any edit, even one that pydantic
would accept, is detected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fracbench.errors import LeaderboardError
from fracbench.result import Result

ENTRY_SCHEMA = "fracbench.leaderboard-entry/v1"

MAX_AUTHORS = 100
MAX_AUTHOR_LENGTH = 200
"""Bounds on ``authors`` in meta.yaml: names, not documents."""

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

# Keys that would smuggle numbers onto the board; every number is computed by
# fracbench from the submission itself.
SCORE_KEYS = frozenset(
    {
        "score", "scores", "main_score", "metric", "metrics", "result", "results",
        "auroc", "auc", "roc_auc", "ap", "map", "map50", "mAP", "dice", "iou",
        "sensitivity", "specificity", "accuracy", "f1", "froc", "ci", "ci95", "curves",
    }
)


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host, else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def slugify(name: str) -> str:
    """A file-name-safe slug of a model name: ``ResNet-50 (ImageNet)`` -> ``resnet-50-imagenet``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:64].rstrip("-")


class ModelMeta(BaseModel):
    """What a submitter tells us about the model (``meta.yaml``); never any score.

    Attributes:
        name: display name of the model.
        slug: file name of the entry; derived from ``name`` when absent.
        paper_url, code_url: http(s) links.
        parameters: number of trainable parameters.
        training_data: what the model was trained on (e.g. "fracbench v1 train+validation").
        pretrained_weights: initialisation (e.g. "ImageNet-1k (timm)", "none").
        hardware: what it was trained on (e.g. "1x H100, 2 h").
        date: date of the model or submission (ISO ``YYYY-MM-DD``).
        authors: who made it.
        notes: free text.
        training: how the model was trained, for reproduction: e.g. ``command``,
            ``git_commit``, ``epochs``, ``image_size``, ``seed``, ``wall_time_s``.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    slug: str | None = None
    paper_url: str | None = None
    code_url: str | None = None
    parameters: int | None = Field(default=None, ge=0)
    training_data: str | None = Field(default=None, max_length=500)
    pretrained_weights: str | None = Field(default=None, max_length=300)
    hardware: str | None = Field(default=None, max_length=300)
    date: dt.date | None = None
    authors: list[Annotated[str, Field(min_length=1, max_length=MAX_AUTHOR_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_AUTHORS
    )
    notes: str | None = Field(default=None, max_length=2000)
    # Omitted when absent so entries written before this field re-serialise to the same bytes.
    training: dict[str, str | int | float] | None = Field(default=None, exclude_if=lambda v: v is None)

    @field_validator("slug")
    @classmethod
    def _slug_shape(cls, v: str | None) -> str | None:
        if v is not None and not SLUG_RE.match(v):
            raise ValueError(f"expected lowercase letters, digits and '-' (at most 64), found {v!r}")
        return v

    @field_validator("paper_url", "code_url")
    @classmethod
    def _http_only(cls, v: str | None) -> str | None:
        if v is not None and safe_url(v) is None:
            raise ValueError(f"expected an absolute http:// or https:// URL, found {v!r}")
        return v

    @field_validator("authors", mode="before")
    @classmethod
    def _one_author(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def resolved_slug(self) -> str:
        """``slug`` or one derived from ``name``.

        Raises:
            LeaderboardError: the name has no letters or digits to make a slug from.
        """
        slug = self.slug or slugify(self.name)
        if not slug:
            raise LeaderboardError(
                f"meta: field 'slug': cannot derive a slug from name {self.name!r}; add `slug: my-model`"
            )
        return slug


class SubmissionRef(BaseModel):
    """The submission file an entry was scored from, and how it is stored beside the entry.

    Attributes:
        sha256: sha256 of the submitted file's bytes (what the Result's provenance records).
        path: the stored copy, relative to the entry file (``submissions/<slug>.json.gz``).
        size: bytes of the submitted file.
        stored_as: ``gzip``: the stored copy is the submitted file gzipped;
            ``verbatim``: the submitted file was already gzipped and is stored as is.
    """

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    path: str
    size: int = Field(ge=0)
    stored_as: Literal["gzip", "verbatim"] = "gzip"


class EntryV1(BaseModel):
    """A ``fracbench.leaderboard-entry/v1`` file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(default=ENTRY_SCHEMA, alias="schema")
    slug: str = Field(pattern=SLUG_RE.pattern)
    task: str
    splits_version: str
    added_at: str
    model: ModelMeta
    submission: SubmissionRef
    result: Result
    entry_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with public names (``schema``), dates as ISO strings."""
        return json.loads(self.model_dump_json(by_alias=True))


LeaderboardEntry = EntryV1
"""The entry model new entries are written with."""

ENTRY_LOADERS: dict[str, Callable[[dict[str, Any]], EntryV1]] = {ENTRY_SCHEMA: EntryV1.model_validate}
"""Every entry schema id ever written -> a function reading it into the current model.

Never remove one: a new schema adds its id here and the older ones gain a converter."""


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: the bytes the entry hash covers."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``data`` without its ``entry_sha256`` key."""
    body = {k: v for k, v in data.items() if k != "entry_sha256"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def seal(entry: EntryV1) -> dict[str, Any]:
    """The entry as a dict with ``entry_sha256`` filled in, ready to write."""
    data = entry.to_dict()
    data["entry_sha256"] = entry_hash(data)
    return data


def dump_entry(entry: EntryV1) -> str:
    """The sealed entry file's text: 2-space indent, sorted keys, trailing newline."""
    return json.dumps(seal(entry), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _describe(exc: ValidationError) -> str:
    """Pydantic errors as ``field 'a.b': message`` joined by '; '."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"field '{loc}': {msg}")
    return "; ".join(parts)


def parse_meta(data: Any, *, source: str = "meta") -> ModelMeta:
    """Validate submitter metadata; reject anything that carries scores.

    Args:
        data: the parsed ``meta.yaml`` mapping.
        source: file name used in messages.

    Returns:
        ModelMeta: the validated metadata.

    Raises:
        LeaderboardError: one line naming every bad field, what was expected and found.
    """
    if not isinstance(data, dict):
        raise LeaderboardError(
            f"{source}: expected a mapping of fields (name, paper_url, ...), found {type(data).__name__}"
        )
    score_keys = {s.lower() for s in SCORE_KEYS}
    training = data.get("training") if isinstance(data.get("training"), dict) else {}
    smuggled = sorted([k for k in data if str(k).lower() in score_keys]
                      + [f"training.{k}" for k in training if str(k).lower() in score_keys])
    if smuggled:
        raise LeaderboardError(
            f"{source}: field {smuggled[0]!r}: metadata must not contain scores "
            f"(found {', '.join(map(repr, smuggled))}); fracbench computes every number "
            "from the submission file, remove these fields"
        )
    try:
        return ModelMeta.model_validate(data)
    except ValidationError as exc:
        raise LeaderboardError(f"{source}: {_describe(exc)}") from None


def read_meta(path: str | Path) -> ModelMeta:
    """Read and validate a ``meta.yaml`` (or JSON) file.

    Raises:
        LeaderboardError: the file is missing, not YAML, or fails :func:`parse_meta`.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LeaderboardError(f"{path}: metadata file not found; pass --meta meta.yaml") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise LeaderboardError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_meta(data, source=str(path))


def load_entry_data(data: Any, *, source: str = "entry") -> EntryV1:
    """Check an entry dict's hash and schema and return the model.

    Args:
        data: the parsed JSON of an entry file.
        source: name used in messages (e.g. ``classification/resnet50.json``).

    Returns:
        EntryV1: the entry (a future version's model is converted by its loader).

    Raises:
        LeaderboardError: unknown schema id, wrong hash, or schema violations.
    """
    if not isinstance(data, dict):
        raise LeaderboardError(f"{source}: expected a JSON object, found {type(data).__name__}")
    schema = data.get("schema")
    loader = ENTRY_LOADERS.get(schema)
    if loader is None:
        known = ", ".join(sorted(ENTRY_LOADERS))
        raise LeaderboardError(
            f"{source}: field 'schema': unknown entry schema {schema!r}; known: {known} "
            "(upgrade fracbench to read newer entries)"
        )
    stored = data.get("entry_sha256")
    computed = entry_hash(data)
    if stored != computed:
        raise LeaderboardError(
            f"{source}: field 'entry_sha256': stored {str(stored)[:12]}..., content hashes to "
            f"{computed[:12]}...; the file was edited after it was added (restore it from git, "
            "or remove it and `fracbench leaderboard add` the submission again)"
        )
    try:
        return loader(data)
    except ValidationError as exc:
        raise LeaderboardError(f"{source}: {_describe(exc)}") from None


def load_entry(path: str | Path) -> EntryV1:
    """Read, hash-check and validate one entry file.

    Raises:
        LeaderboardError: unreadable JSON or any :func:`load_entry_data` problem.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LeaderboardError(f"{path}: not a readable JSON entry: {exc}") from None
    return load_entry_data(data, source=str(path))
