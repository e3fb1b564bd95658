"""fracbench: FracAtlas as a benchmark that fracture-detection research can trust."""

from __future__ import annotations

__version__ = "0.1.0"

PROTOCOL_VERSION = "1"
from fracbench.vocab import SPLITS_VERSION  # noqa: E402  (the current frozen splits)

__all__ = ["__version__", "PROTOCOL_VERSION", "SPLITS_VERSION", "load"]


def load(task: str = "classification", split: str = "train", data: str | None = None):
    """Load a built fracbench dataset config as a Hugging Face ``Dataset``.

    Args:
        task: ``classification``, ``localization``, ``segmentation`` or ``legacy``.
        split: ``train``, ``validation`` or ``test``.
        data: built dataset directory; defaults to ``$FRACBENCH_DATA`` then the cache dir.

    Returns:
        datasets.Dataset: the requested split.
    """
    from fracbench.dataset.load import load as _load

    return _load(task, split=split, data=data)
