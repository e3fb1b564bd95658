"""Fingerprints of the FracAtlas releases fracbench knows, and recognising one.

A release directory is summarised by sha256 *manifests*: the sorted lines
``<sha256>  <path>\\n`` (the ``sha256sum`` format, paths relative to ``FracAtlas/``)
of a set of its files; a manifest's digest is the sha256 of those lines.

* ``metadata_digest``: every metadata file (``dataset.csv``, everything under
  ``Annotations/``, the split CSVs). These are small and present even in a partial
  mirror, so a partial copy is still recognised.
* ``image_digest``: every ``images/*/*.jpg`` (needs the complete image set).
* ``fingerprint``: the manifest of both, i.e. of every release file.

Only these digests and a handful of single-file hashes are pinned here, never the
12,256 per-file hashes. The 2023 values were computed with :func:`manifest_digest`
from the complete copy, itself checked against the release's ``SHA256SUMS``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZipArchive:
    """A downloadable release archive, pinned by size and md5 (what figshare publishes).

    Attributes:
        name: file name it is saved under.
        url: download URL.
        size: bytes.
        md5: lower-case hex.
        label: human name for messages.
        file_id: the figshare file id.
    """

    name: str
    url: str
    size: int
    md5: str
    label: str
    file_id: int


@dataclass(frozen=True)
class KnownRelease:
    """What is known of one published FracAtlas release.

    Attributes:
        key: ``fracatlas-2023`` or ``figshare-v7`` (``Release.identity``).
        title: human name, e.g. ``FracAtlas 2023 release``.
        images: number of JPEG files.
        fractured: images in ``images/Fractured``.
        annotations: COCO annotations (fracture instances).
        legacy_split: sizes of the authors' train/validation/test split.
        metadata_digest, image_digest, fingerprint: manifest digests (see module doc);
            None where not pinned.
        file_sha256: sha256 of single metadata files, to say *what* differs.
        in_both_folders: ids stored in both class folders.
        archive: the zip it is published as, where pinned.
    """

    key: str
    title: str
    images: int
    fractured: int
    annotations: int
    legacy_split: dict[str, int]
    metadata_digest: str | None = None
    image_digest: str | None = None
    fingerprint: str | None = None
    file_sha256: dict[str, str] = field(default_factory=dict)
    in_both_folders: tuple[str, ...] = ()
    archive: ZipArchive | None = None


FRACATLAS_FIGSHARE_V7 = ZipArchive(
    name="FracAtlas.zip",
    url="https://figshare.com/ndownloader/files/65518038",
    size=338_436_460,
    md5="fe9da2c7c285915ebee69dfdab8fd396",
    label="FracAtlas figshare v7 (file 65518038)",
    file_id=65518038,
)
"""The zip figshare reports as current (record 10.6084/m9.figshare.22363012, version 7)."""

FRACATLAS_2023 = KnownRelease(
    key="fracatlas-2023",
    title="FracAtlas 2023 release",
    images=4083,
    fractured=717,
    annotations=922,
    legacy_split={"train": 574, "validation": 82, "test": 61},
    metadata_digest="bd235f2d0c88287f6421e8c4403b4fead7f491beaafc298d3fb4d8e430584245",
    image_digest="01017b94cf88a27b87dc1faa3aa64e135e9097e74785622db724a419e5c45021",
    fingerprint="057149f1c5d5f9a562ecf7356a3442762805aad64084d52c29198fc7e0d4b589",
    file_sha256={
        "dataset.csv": "a92dcbe579753c20fc1f88c7681fd01b69d34414ae8f7ed46e5beda972056950",
        "Annotations/COCO JSON/COCO_fracture_masks.json":
            "8a2e3ff7ddf30dfb895940ccbb0d5ff1f5ac1a9d3c4d88498e143523d179dee1",
        "Annotations/VGG JSON/VGG_fracture_masks.json":
            "41050b9ba200a2b7ea34d605a34c692414e1b005705bc3d7996d6036fef4cd49",
        "Annotations/YOLO/labels.txt": "8a0e818f5494c4bb6405e01941abc771f974276f413dea36e87b760347141009",
        "Utilities/Fracture Split/train.csv": "c2f9f79a1eeb07c67661168c2176566c66f5ee0e4702b9db9f629fca68a9205b",
        "Utilities/Fracture Split/valid.csv": "ef9fd5aefea8b74ebe6a624d7c4bd5e1392a0a506e244de982cf14b212bd44a2",
        "Utilities/Fracture Split/test.csv": "7379223af22406fdec363cbddad0375e2df3db792e77088bf5cbb630379b926c",
    },
)
"""The 2023 release (Abedeen et al., Sci Data 10, 521), as in ``marvY-O/FracAtlas`` e548d12."""

FIGSHARE_V7 = KnownRelease(
    key="figshare-v7",
    title="FracAtlas figshare v7",
    images=4085,
    fractured=719,
    annotations=924,
    legacy_split={"test": 63},
    in_both_folders=("IMG0003375", "IMG0003376"),
    archive=FRACATLAS_FIGSHARE_V7,
)
"""figshare v7 as described (not seen by fracbench): only its zip and structure are pinned."""

KNOWN_RELEASES = (FRACATLAS_2023, FIGSHARE_V7)


def manifest_digest(entries: Iterable[tuple[str, str]]) -> str:
    """sha256 of the ``sha256sum``-style manifest of ``(path, sha256)`` entries, sorted by path."""
    h = hashlib.sha256()
    for path, digest in sorted(entries):
        h.update(f"{digest}  {path}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Identification:
    """Which release a directory is, and how that was decided.

    Attributes:
        identity: a ``KnownRelease.key`` or ``unknown``.
        note: e.g. ``FracAtlas 2023 release, complete`` or ``unknown: <what differs>``.
        fingerprint: manifest digest of every file that was hashed.
    """

    identity: str
    note: str
    fingerprint: str


def identify(
    metadata: Mapping[str, str],
    images: Mapping[str, str] | None,
    *,
    missing_images: int,
    structure: Mapping[str, object],
) -> Identification:
    """Recognise a release from its file hashes (and, for unpinned releases, its structure).

    Args:
        metadata: ``{path: sha256}`` of the metadata files present.
        images: ``{path: sha256}`` of the images present; None when images were not hashed.
        missing_images: how many images ``dataset.csv`` lists that are absent.
        structure: what the reader counted: ``images`` (JPEG files), ``fractured``,
            ``annotations``, ``in_both_folders`` (ids), ``test_split`` (size).

    Returns:
        Identification: identity, a note in words, and the fingerprint.
    """
    hashed = dict(metadata) | dict(images or {})
    fingerprint = manifest_digest(hashed.items())
    release = FRACATLAS_2023
    if manifest_digest(metadata.items()) == release.metadata_digest:
        if images is None:
            note = f"{release.title}, metadata match; images not hashed (hash_files=False)"
        elif missing_images:
            note = f"{release.title}, partial: {missing_images} images absent"
        elif fingerprint == release.fingerprint:
            note = f"{release.title}, complete"
        else:
            return _unknown(fingerprint, f"metadata match the {release.title} but image bytes differ "
                            f"(image manifest {manifest_digest(images.items())[:12]}, expected "
                            f"{release.image_digest[:12]})")
        return Identification(release.key, note, fingerprint)
    v7 = FIGSHARE_V7
    if (structure.get("images") == v7.images and structure.get("fractured") == v7.fractured
            and structure.get("annotations") == v7.annotations
            and tuple(structure.get("in_both_folders", ())) == v7.in_both_folders):
        note = (f"{v7.title} by structure ({v7.images} JPEGs, {', '.join(v7.in_both_folders)} in both "
                f"folders, {v7.annotations} annotations); its file checksums are not pinned, only its zip "
                f"(md5 {v7.archive.md5})")
        return Identification(v7.key, note, fingerprint)
    differs = [p for p, digest in release.file_sha256.items() if metadata.get(p) not in (None, digest)]
    absent = [p for p in release.file_sha256 if p not in metadata]
    what = []
    if differs:
        what.append("differs from the 2023 release: " + ", ".join(differs))
    if absent:
        what.append("absent: " + ", ".join(absent))
    if not what:
        what.append("per-image annotation files (YOLO/VOC) differ from the 2023 release")
    what.append(f"{structure.get('images')} JPEGs, {structure.get('annotations')} COCO annotations")
    return _unknown(fingerprint, "; ".join(what))


def _unknown(fingerprint: str, what: str) -> Identification:
    log.warning("unknown FracAtlas release: %s", what)
    return Identification("unknown", f"unknown: {what}", fingerprint)
