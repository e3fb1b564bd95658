"""Deterministic parquet shards of one config split.

Building twice from the same release must give byte-identical files, so every
writer setting that could vary is fixed here: row-group size, per-column
compression and dictionary use, no statistics on pixel columns, and no
timestamps anywhere (pyarrow writes none; ``created_by`` names its version).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_SIZE = 100
"""Rows per parquet row group (the Hugging Face default for image datasets)."""

MAX_SHARD_BYTES = 500 * 1024 * 1024
"""Encoded pixel bytes a shard may hold; a row that would pass it starts the next shard."""

_PIXEL_LEAVES = ("bytes",)


def shard_name(split: str, index: int, count: int) -> str:
    """``<split>-<index>-of-<count>.parquet``, both numbers zero-padded to 5 digits."""
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


class ShardWriter:
    """Writes the rows of one config split into size-bounded parquet shards.

    Rows must be added in their final order (sorted by image id). Shards are
    written under provisional names and renamed to ``...-of-N`` by :meth:`close`.

    Args:
        directory: the config directory (``<out>/<config>``).
        split: ``train``, ``validation`` or ``test`` (the file-name prefix).
        schema: the Arrow schema (``Features.arrow_schema``, with its HF metadata).
        pixel_columns: columns holding encoded pixels (stored uncompressed, no stats).
        projections: named column subsets whose Arrow size is also counted
            (``num_bytes_of[name]``), for configs that read these files through a projection.
        max_shard_bytes: pixel bytes a shard may hold (a single larger row gets its own shard).
    """

    def __init__(
        self,
        directory: Path,
        split: str,
        schema: pa.Schema,
        pixel_columns: Iterable[str],
        *,
        projections: dict[str, list[str]] | None = None,
        max_shard_bytes: int = MAX_SHARD_BYTES,
    ) -> None:
        self.directory = directory
        self.split = split
        self.schema = schema
        self.max_shard_bytes = max_shard_bytes
        self.num_rows = 0
        self.num_bytes = 0  # Arrow in-memory bytes, the Hub's ``num_bytes`` convention
        self.projections = dict(projections or {})
        self.num_bytes_of = dict.fromkeys(self.projections, 0)
        self._pixel_columns = [c for c in pixel_columns if c in schema.names]
        self._buffer: list[dict[str, Any]] = []
        self._buffer_pixel_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._shard_pixel_bytes = 0
        self._shard_rows = 0
        self._paths: list[Path] = []

    def add(self, row: dict[str, Any]) -> None:
        """Append one row (a dict of column values in the schema's types)."""
        size = sum(len(row[c]["bytes"]) for c in self._pixel_columns)
        pending = self._shard_pixel_bytes + self._buffer_pixel_bytes
        if (self._shard_rows or self._buffer) and pending + size > self.max_shard_bytes:
            self._flush()
            self._close_shard()
        self._buffer.append(row)
        self._buffer_pixel_bytes += size
        if len(self._buffer) >= ROW_GROUP_SIZE:
            self._flush()

    def close(self) -> list[Path]:
        """Flush, close and rename the shards.

        Returns:
            list[Path]: the final shard paths, in order; empty when no row was added
            (the Hugging Face loader rejects a declared split without rows).
        """
        self._flush()
        self._close_shard()
        count = len(self._paths)
        final = []
        for i, tmp in enumerate(self._paths):
            path = self.directory / shard_name(self.split, i, count)
            os.replace(tmp, path)
            final.append(path)
        self._paths = final
        return final

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f".{self.split}-{len(self._paths):05d}.parquet.tmp"
        leaves = _leaf_paths(self.schema)
        pixel = {leaf for leaf in leaves if _is_pixel_leaf(leaf, self._pixel_columns)}
        self._writer = pq.ParquetWriter(
            path,
            self.schema,
            compression={leaf: ("NONE" if leaf in pixel else "ZSTD") for leaf in leaves},
            compression_level=None,
            use_dictionary=[leaf for leaf in leaves if leaf not in pixel],
            write_statistics=[leaf for leaf in leaves if leaf not in pixel],
            data_page_version="2.0",
            version="2.6",
        )
        self._paths.append(path)

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self._open()
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self.num_rows += table.num_rows
        self.num_bytes += table.nbytes
        for name, columns in self.projections.items():
            self.num_bytes_of[name] += table.select(columns).nbytes
        self._shard_rows += table.num_rows
        self._shard_pixel_bytes += self._buffer_pixel_bytes
        self._buffer = []
        self._buffer_pixel_bytes = 0

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._shard_pixel_bytes = 0
        self._shard_rows = 0


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """Dotted parquet column paths of every leaf, as the writer names them.

    Nested list leaves are named by the writer (``boxes.list.element``), so the names
    are taken from the parquet schema of an empty table rather than guessed.
    """
    buf = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), buf)
    meta = pq.ParquetFile(pa.BufferReader(buf.getvalue())).schema
    return [meta.column(i).path for i in range(len(meta))]


def _is_pixel_leaf(leaf: str, pixel_columns: list[str]) -> bool:
    head, _, tail = leaf.partition(".")
    return head in pixel_columns and tail in _PIXEL_LEAVES


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (``hashlib.file_digest``: streamed, never whole in memory)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def dataset_fingerprint(file_digests: dict[str, str]) -> str:
    """The built dataset's fingerprint.

    Args:
        file_digests: sha256 per parquet file, keyed by its POSIX path relative to the
            dataset directory.

    Returns:
        str: sha256 over the lines ``"<sha256>  <path>\\n"`` in sorted path order (the
        ``sha256sum`` format), so it changes when any file's content or name changes.
    """
    lines = "".join(f"{file_digests[p]}  {p}\n" for p in sorted(file_digests))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()
