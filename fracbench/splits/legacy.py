"""The authors' split (``Utilities/Fracture Split``), kept for comparison with published numbers.

It is **positive-only**: 574 / 82 / 61 fractured images in train / validation /
test, no negatives, no leakage grouping. It is not a benchmark split; fracbench
ships it so results can be compared with papers that used it. The id lists ship
as our own derived package data, ``fracbench/splits/legacy/manifest.csv``
(``image_id,split``, sorted by id, LF), so the dataset builder needs no
FracAtlas file; :func:`compare_with_release` checks them against a raw release.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fracbench.atomic import write_bytes
from fracbench.errors import SplitError
from fracbench.release.records import Release
from fracbench.splits.manifest import sha256_hex
from fracbench.vocab import SPLITS

COLUMNS = ("image_id", "split")
"""Columns of the legacy manifest."""

RAW_FILES = {"train": "train.csv", "validation": "valid.csv", "test": "test.csv"}
"""The authors' split files in ``Utilities/Fracture Split/``, by split."""

PINNED_SHA256: str | None = "cfc25a2128252890bdc09cbf483f537e191b5e45e477d20c0578c682e59e0beb"
"""sha256 of the shipped legacy manifest."""

NOTE = "authors' split (Utilities/Fracture Split): positive-only, fractured images only, no leakage grouping"


@dataclass
class LegacySplit:
    """The authors' split.

    Attributes:
        ids: split name → sorted image ids (fractured images only).
        sha256: sha256 of the manifest bytes it was read from, or that it renders to.
        path: the file it was read from, if any.
    """

    ids: dict[str, list[str]]
    sha256: str = ""
    path: Path | None = None
    note: str = field(default=NOTE)
    positive_only: bool = True

    def __len__(self) -> int:
        return sum(len(v) for v in self.ids.values())

    def split_of(self) -> dict[str, str]:
        """Image id → split name."""
        return {i: s for s, ids in self.ids.items() for i in ids}

    def counts(self) -> dict[str, int]:
        """Images per split."""
        return {s: len(self.ids.get(s, [])) for s in SPLITS}


def render_legacy_csv(split: LegacySplit) -> bytes:
    """The legacy manifest's exact bytes: ``image_id,split``, sorted by id, LF, final newline."""
    rows = sorted(split.split_of().items())
    return ("\n".join([",".join(COLUMNS)] + [f"{i},{s}" for i, s in rows]) + "\n").encode("utf-8")


def legacy_from_release(release: Release) -> LegacySplit:
    """The authors' split as the release gives it (``Release.legacy_split``).

    Raises:
        SplitError: the release has no authors' split, or an id sits in two splits.
    """
    if not release.legacy_split:
        raise SplitError(f"{release.root}: no 'Utilities/Fracture Split' found; the authors' split needs the raw release")
    ids = {s: sorted(release.legacy_split.get(s, [])) for s in SPLITS}
    twice = [i for i, k in Counter(i for v in ids.values() for i in v).items() if k > 1]
    if twice:
        raise SplitError(f"{release.root}: authors' split lists {sorted(twice)[:5]} in more than one split")
    split = LegacySplit(ids=ids)
    split.sha256 = sha256_hex(render_legacy_csv(split))
    return split


def parse_legacy_csv(data: bytes, source: str = "legacy manifest") -> tuple[LegacySplit, list[str]]:
    """Parse legacy manifest bytes strictly, collecting every problem."""
    problems = []
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        problems.append(f"{source}: CR line endings found; expected LF only")
    if not text.endswith("\n"):
        problems.append(f"{source}: no final newline")
    lines = text.replace("\r", "").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    ids: dict[str, list[str]] = {s: [] for s in SPLITS}
    if not lines or lines[0] != ",".join(COLUMNS):
        return LegacySplit(ids=ids), problems + [f"{source}: header expected 'image_id,split', found {lines[:1]}"]
    order = []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        if len(cells) != 2 or cells[1] not in SPLITS or not cells[0]:
            problems.append(f"{source} line {n}: expected 'image_id,split' with split in {', '.join(SPLITS)}, found {line!r}")
            continue
        ids[cells[1]].append(cells[0])
        order.append(cells[0])
    twice = sorted(i for i, k in Counter(order).items() if k > 1)
    if twice:
        problems.append(f"{source}: images listed more than once: {', '.join(twice[:5])}")
    if order != sorted(order):
        problems.append(f"{source}: rows not sorted by image_id")
    return LegacySplit(ids={s: sorted(v) for s, v in ids.items()}, sha256=sha256_hex(data)), problems


def package_legacy_path() -> Path:
    """Path of the shipped legacy manifest."""
    return Path(str(resources.files("fracbench.splits") / "legacy" / "manifest.csv"))


def read_legacy(path: str | Path) -> LegacySplit:
    """Read a legacy manifest.

    Raises:
        SplitError: missing or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"legacy split manifest {path} not found; reinstall fracbench")
    split, problems = parse_legacy_csv(path.read_bytes(), str(path))
    if problems:
        raise SplitError(f"{problems[0]}; restore the file or run `fracbench splits derive --version legacy`")
    split.path = path
    return split


def load_legacy() -> LegacySplit:
    """The authors' split shipped with fracbench (no FracAtlas file needed).

    Raises:
        SplitError: the shipped file was altered (sha256 is not the pinned one).
    """
    split = read_legacy(package_legacy_path())
    if PINNED_SHA256 and split.sha256 != PINNED_SHA256:
        raise SplitError(
            f"{split.path}: sha256 mismatch: expected {PINNED_SHA256} (legacy split), found {split.sha256}; reinstall fracbench"
        )
    return split


def write_legacy(path: str | Path, split: LegacySplit) -> str:
    """Write a legacy manifest atomically; returns its sha256."""
    data = render_legacy_csv(split)
    write_bytes(path, data)
    return sha256_hex(data)


def compare_with_release(split: LegacySplit, release: Release) -> list[str]:
    """Problems between a legacy manifest and the release's ``Utilities/Fracture Split``."""
    raw = legacy_from_release(release)
    problems = []
    for s in SPLITS:
        want, got = set(raw.ids[s]), set(split.ids.get(s, []))
        if want != got:
            lost, extra = sorted(want - got), sorted(got - want)
            problems.append(
                f"legacy {s}: {len(got)} ids, release lists {len(want)}"
                + (f"; missing {', '.join(lost[:5])}" if lost else "")
                + (f"; not in the release's {RAW_FILES[s]}: {', '.join(extra[:5])}" if extra else "")
            )
    return problems
