"""Checkpoints and provenance of a baseline run: atomic saves, RNG states, weight digests."""

from __future__ import annotations

import io
import os
import platform
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

from fracbench import atomic


def provenance() -> dict:
    """Hardware, software and code version of this process."""
    try:
        commit = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[2]), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    from fracbench import __version__

    return {
        "fracbench_version": __version__, "git_commit": commit, "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(), "cpu": platform.processor() or None,
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def save_checkpoint(path: Path, obj: dict) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (a killed run never leaves half a checkpoint)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic.write_bytes(path, buf.getvalue())


def rng_states() -> dict:
    """The Python, NumPy, torch (and CUDA) RNG states, for a checkpoint."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
    """Restore what :func:`rng_states` saved."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def weights_sha256(model, *, parameters_only: bool = False) -> str:
    """sha256 over the names and bytes of ``model.state_dict()`` (or of its parameters only).

    Under DDP the parameters of all replicas are equal; BatchNorm running statistics
    are rank 0's at each forward but then updated locally, so they may differ.
    """
    import hashlib

    h = hashlib.sha256()
    items = model.named_parameters() if parameters_only else model.state_dict().items()
    for name, tensor in items:
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
