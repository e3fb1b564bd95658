"""The built dataset, opened: its record (``fracbench.json``), verified files, one reader.

``fracbench.json`` is the build's record of itself (versions, release and manifest
identity, every file with its sha256, fingerprint). It is parsed here and nowhere else,
into :class:`DatasetRecord`; :class:`BuiltDataset` hands out the parquet files of a
config split only after checking them against it, and reads them (whole, or in batches).
The scorer's ground truth, the exports, the baselines' cache and the CLI all open the
dataset through :meth:`BuiltDataset.open`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fracbench.errors import DatasetError, DatasetNotFoundError, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

METADATA_FILENAME = "fracbench.json"
METADATA_SCHEMA = "fracbench.dataset/v1"

SOURCE_CONFIG = "segmentation"
"""The config whose parquet files hold every column (the other task configs share its rows)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class SplitRecord(_Record):
    """One split of one config: its parquet files (relative to the root) and row count."""

    files: list[str]
    num_examples: int = Field(ge=0)
    num_bytes: int = 0
    download_size: int = 0


class ConfigRecord(_Record):
    """One built config (``classification``, ..., ``legacy``)."""

    splits: dict[str, SplitRecord]


class SplitsRecord(_Record):
    """The split manifest the dataset was built with."""

    version: str
    manifest_sha256: str


class DatasetRecord(_Record):
    """The content of ``fracbench.json`` (written by :mod:`fracbench.dataset.build`)."""

    schema_: Literal["fracbench.dataset/v1"] = Field(alias="schema")
    dataset_version: str
    fingerprint: str
    splits: SplitsRecord
    configs: dict[str, ConfigRecord]
    files: dict[str, str]
    missing: list[str] = Field(default_factory=list)
    subset: bool = False
    legacy: dict[str, Any] = Field(default_factory=dict)


def read_record(root: str | Path) -> DatasetRecord:
    """Parse ``root/fracbench.json``.

    Raises:
        DatasetNotFoundError: no ``fracbench.json`` in ``root``.
        DatasetError: not valid JSON, another schema, or a required key missing or malformed.
    """
    path = Path(root) / METADATA_FILENAME
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} not found: {root} is not a built fracbench dataset; run `fracbench build --raw RAW_DIR --out DIR`"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); rebuild with `fracbench build`") from exc
    if not isinstance(meta, dict) or meta.get("schema") != METADATA_SCHEMA:
        found = meta.get("schema") if isinstance(meta, dict) else type(meta).__name__
        raise DatasetError(
            f"{path}: schema expected {METADATA_SCHEMA!r}, found {found!r}; "
            "rebuild with this fracbench version (`fracbench build`)"
        )
    try:
        return DatasetRecord.model_validate(meta)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        what = "missing" if err["type"] == "missing" else f"{err['msg'].lower()}"
        raise DatasetError(f"{path}: key {where} {what}; rebuild with `fracbench build`") from None


@dataclass(frozen=True)
class BuiltDataset:
    """A built fracbench dataset, opened.

    Attributes:
        root: the dataset directory (holding ``fracbench.json``).
        record: the parsed ``fracbench.json``.
        verify: check each parquet file's sha256 against the record before handing it out.
    """

    root: Path
    record: DatasetRecord
    verify: bool = True

    @classmethod
    def open(cls, data: str | Path | None = None, *, verify: bool = True) -> BuiltDataset:
        """Find and open a built dataset.

        Args:
            data: the dataset directory (or its parent); None: ``$FRACBENCH_DATA``, then
                the default build directory (:func:`fracbench.dataset.locate.resolve_data_dir`).
            verify: check parquet sha256s before reading.

        Raises:
            DatasetNotFoundError: nothing built where looked.
            DatasetError: ``fracbench.json`` unreadable.
        """
        from fracbench.dataset.locate import resolve_data_dir

        root = resolve_data_dir(data)
        return cls(root, read_record(root), verify)

    @property
    def splits_version(self) -> str:
        """Version name of the split manifest the dataset was built with (e.g. ``v1``)."""
        return self.record.splits.version

    @property
    def manifest_sha256(self) -> str:
        """sha256 of the split manifest the dataset was built with."""
        return self.record.splits.manifest_sha256

    @property
    def fingerprint(self) -> str:
        """The build's fingerprint (its identity: same inputs, same fingerprint)."""
        return self.record.fingerprint

    @property
    def dataset_version(self) -> str:
        """The dataset version (e.g. ``1.0.0``)."""
        return self.record.dataset_version

    @property
    def missing(self) -> list[str]:
        """Image ids a partial release lacked, left out of the build."""
        return list(self.record.missing)

    def require(self, config: str) -> ConfigRecord:
        """The record of a built config.

        Raises:
            DatasetError: the config was not built.
        """
        if config not in self.record.configs:
            raise DatasetError(f"{self.root}: config {config!r} was not built (built: {', '.join(self.record.configs)}); "
                               "rebuild with `fracbench build`")
        return self.record.configs[config]

    def num_rows(self, split: str, config: str = SOURCE_CONFIG) -> int:
        """Images in ``split`` (0 for a split an ``ids=`` subset build left empty)."""
        entry = self.require(config).splits.get(split)
        return entry.num_examples if entry else 0

    def split_files(self, config: str, split: str) -> list[Path]:
        """The parquet files of one config split, in order, checked against the record.

        Raises:
            DatasetError: unknown config or split, a file missing, or (``verify``) a file
                modified since the build.
        """
        from fracbench.dataset.shards import file_sha256

        splits = self.require(config).splits
        if split not in splits:
            raise DatasetError(f"split {split!r} unknown{did_you_mean(split, list(splits))}; expected one of {', '.join(splits)}")
        files = []
        for rel in splits[split].files:
            path = self.root / rel
            if not path.is_file():
                raise DatasetError(f"{path} is missing from the built dataset; rebuild with `fracbench build`")
            if self.verify and file_sha256(path) != self.record.files.get(rel):
                raise DatasetError(
                    f"{path}: sha256 differs from the one recorded in {METADATA_FILENAME} at build time; "
                    "the dataset was modified: rebuild it with `fracbench build` (or re-download it)"
                )
            files.append(path)
        return files

    def table(self, config: str, split: str, columns: list[str], *, image_ids: list[str] | None = None) -> pa.Table:
        """The whole split as one table, only ``columns`` read (only the rows of ``image_ids`` when given).

        Raises:
            DatasetError: files missing, modified, unreadable, or the row count not the recorded one.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = self.split_files(config, split)
        filters = [("image_id", "in", image_ids)] if image_ids is not None else None
        try:
            table = pa.concat_tables([pq.read_table(f, columns=columns, filters=filters) for f in files])
        except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
            raise DatasetError(f"{self.root}/{config}/{split}: unreadable parquet or column ({exc}); rebuild with `fracbench build`") from exc
        if image_ids is None:
            self._check_rows(config, split, table.num_rows)
        return table

    def rows(self, split: str, columns: tuple[str, ...] | list[str], *, config: str = SOURCE_CONFIG, batch_size: int = 16) -> Iterator[dict[str, Any]]:
        """Yield the rows of one split in stored order, only ``columns`` read, ``batch_size`` at a time.

        Raises:
            DatasetError: files missing, modified, unreadable, or the row count not the recorded one.
        """
        if not self.num_rows(split, config):
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = self.split_files(config, split)
        seen = 0
        try:
            for path in files:
                for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=list(columns)):
                    for row in batch.to_pylist():
                        seen += 1
                        yield row
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"{self.root}/{config}/{split}: unreadable parquet ({exc}); rebuild with `fracbench build`") from exc
        self._check_rows(config, split, seen)

    def columns(self, config: str, split: str) -> list[str]:
        """The column names stored for one config split (read from the first file's schema;
        its bytes are verified when rows are read, not here, so a decode hashes each file once)."""
        import pyarrow.parquet as pq

        entry = self.require(config).splits.get(split)
        if entry is None or not entry.files:
            return []
        try:
            return list(pq.ParquetFile(self.root / entry.files[0]).schema_arrow.names)
        except (OSError, ValueError) as exc:  # missing, or not parquet (pyarrow's ArrowInvalid is a ValueError)
            raise DatasetError(f"{self.root / entry.files[0]}: unreadable parquet ({exc}); rebuild with `fracbench build`") from exc

    def _check_rows(self, config: str, split: str, seen: int) -> None:
        expected = self.require(config).splits[split].num_examples
        if seen != expected:
            raise DatasetError(
                f"{self.root}/{config}/{split}: {seen} rows, {METADATA_FILENAME} records {expected}; rebuild with `fracbench build`"
            )

    def provenance(self) -> dict[str, Any]:
        """What an export records about its source: versions, fingerprint, manifest."""
        return {
            "dataset_version": self.dataset_version,
            "fingerprint": self.fingerprint,
            "splits_version": self.splits_version,
            "manifest_sha256": self.manifest_sha256,
            "subset": self.record.subset,
            "missing": len(self.record.missing),
        }
