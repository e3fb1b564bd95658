"""Read an nnU-Net v2 prediction folder (``nnUNetv2_predict -o FOLDER``) as scored instances.

Files are named after the case (:func:`fracbench.convert.nnunet.case_id`, the image id):

* ``<case>.png``: the hard mask nnU-Net writes (``NaturalImage2DIO``), ``(H, W)`` labels
  0 (background) / 1 (fracture) as in the export's ``dataset.json``. Each 8-connected
  component is one instance with score **1.0**: a hard mask carries no confidence, so
  every instance ties and AP is that of one operating point.
* ``<case>.npz`` (``--save_probabilities``): key ``probabilities``, shape ``(2, 1, H, W)``
  (or ``(2, H, W)``), class 1 = fracture. Instances are the 8-connected components of
  ``p_fracture >= threshold`` (default 0.5: the same pixels as nnU-Net's argmax mask),
  each scored by the **maximum** fracture probability inside it
  (:func:`fracbench.metrics.rle.probability_instances`). Where both files exist the
  ``.npz`` is used.

The ``.pkl`` beside each ``.npz`` is never opened: unpickling runs code from the file,
and the ``.npz`` holds everything needed. Other files nnU-Net writes there
(``dataset.json``, ``plans.json``, ``predict_from_raw_data_args.json``) are ignored.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fracbench.convert.detections import Detection, predictions_error
from fracbench.convert.nnunet import FILE_ENDING, case_id
from fracbench.errors import SubmissionError

PROBABILITIES_KEY = "probabilities"
"""The array name nnU-Net v2 gives the class probabilities in ``<case>.npz``."""

FRACTURE_CLASS = 1
"""The fracture label (``dataset.json``: background 0, fracture 1)."""

DEFAULT_THRESHOLD = 0.5
"""Foreground cut on the fracture probability; 0.5 reproduces nnU-Net's own two-class argmax."""


@dataclass
class NnunetPredictions:
    """What :func:`read_nnunet` found.

    Attributes:
        detections: instances per image id (an image whose prediction is empty maps to ``[]``).
        unknown: file names that are no case of the dataset.
        from_probabilities: images read from ``.npz`` probabilities.
        from_masks: images read from ``.png`` hard masks (scores 1.0).
    """

    detections: dict[str, list[Detection]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    from_probabilities: int = 0
    from_masks: int = 0


def read_nnunet(folder: str | Path, sizes: dict[str, tuple[int, int]], *,
                threshold: float = DEFAULT_THRESHOLD) -> NnunetPredictions:
    """Read every ``<case>.npz`` / ``<case>.png`` of an nnU-Net prediction folder.

    Args:
        folder: the ``-o`` folder of ``nnUNetv2_predict``.
        sizes: ``(width, height)`` of every image of the dataset, by image id.
        threshold: fracture-probability cut for ``.npz`` files, in (0, 1].

    Returns:
        NnunetPredictions: instances per image id, with the box, RLE and score of each.

    Raises:
        SubmissionError: no such folder, no prediction file in it, or files that cannot be
            read, have another size than the image, or hold other labels or shapes (every
            problem listed).
    """
    from fracbench.metrics.rle import probability_instances

    root = Path(folder)
    if not root.is_dir():
        raise SubmissionError(f"{root}: expected an nnU-Net prediction folder (nnUNetv2_predict -o), "
                              f"found {'a file' if root.exists() else 'nothing'}")
    if not 0.0 < threshold <= 1.0:
        raise SubmissionError(f"--prob-threshold: expected a probability in (0, 1], found {threshold}")
    cases = {case_id(i): i for i in sizes}
    listing = sorted(root.iterdir())
    files = {p.stem: p for p in listing if p.suffix == FILE_ENDING and p.is_file()}
    files.update({p.stem: p for p in listing if p.suffix == ".npz" and p.is_file()})  # probabilities win
    if not files:
        raise SubmissionError(f"{root}: no nnU-Net predictions here; expected <case>{FILE_ENDING} masks or "
                              "<case>.npz probabilities (nnUNetv2_predict --save_probabilities), named after the image id")
    out = NnunetPredictions()
    problems: list[str] = []
    for case, path in files.items():
        if case not in cases:
            out.unknown.append(path.name)
            continue
        image_id = cases[case]
        width, height = sizes[image_id]
        try:
            if path.suffix == ".npz":
                prob = _fracture_probability(path)
                out.from_probabilities += 1
            else:
                prob = _hard_mask(path)
                out.from_masks += 1
        except ValueError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        if prob.shape != (height, width):
            problems.append(f"{path.name}: {prob.shape[1]}x{prob.shape[0]} pixels, but image {image_id} is "
                            f"{width}x{height}; predict on the images of `fracbench export nnunet`")
            continue
        out.detections[image_id] = [Detection(d["score"], bbox=d["bbox"], rle=d["rle"])
                                    for d in probability_instances(prob, threshold)]
    if problems:
        raise predictions_error(root, "not nnU-Net predictions for this dataset", problems)
    return out


def _fracture_probability(path: Path) -> np.ndarray:
    """``(H, W)`` float32 fracture probability of a ``<case>.npz``; ValueError says what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if PROBABILITIES_KEY not in npz.files:
                raise ValueError(f"expected the array {PROBABILITIES_KEY!r} (nnUNetv2_predict --save_probabilities), "
                                 f"found {', '.join(npz.files) or 'none'}")
            probs = npz[PROBABILITIES_KEY]
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"not a readable .npz ({exc})") from None
    if probs.ndim == 4 and probs.shape[1] == 1:  # 2D cases are stored as (classes, 1, H, W)
        probs = probs[:, 0]
    if probs.ndim != 3 or probs.shape[0] != 2:
        raise ValueError(f"expected probabilities of shape (2, 1, H, W) or (2, H, W) (background, fracture), "
                         f"found {tuple(probs.shape)}")
    fracture = probs[FRACTURE_CLASS].astype(np.float32)
    if not np.isfinite(fracture).all() or fracture.min() < 0 or fracture.max() > 1:
        raise ValueError("expected probabilities in 0..1 (nnU-Net's softmax), found values outside it")
    return fracture


def _hard_mask(path: Path) -> np.ndarray:
    """``(H, W)`` float32 0/1 mask of a ``<case>.png``; ValueError says what is wrong."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            labels = np.asarray(img)
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"not a readable PNG ({exc})") from None
    if labels.ndim != 2:
        raise ValueError(f"expected a single-channel label image (H, W), found shape {labels.shape}")
    values = np.unique(labels)
    if not set(values.tolist()) <= {0, FRACTURE_CLASS}:
        raise ValueError(f"expected labels 0 (background) and {FRACTURE_CLASS} (fracture), "
                         f"found {', '.join(str(v) for v in values[:5].tolist())}")
    return (labels == FRACTURE_CLASS).astype(np.float32)
