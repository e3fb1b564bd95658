"""One declarative spec per task: its submission model, metrics and main score.

Adding a task means adding a module here with a :class:`TaskSpec` and registering
it in :data:`TASKS`; scoring, the CLI and the protocol document read the spec.
"""

from __future__ import annotations

from fracbench.errors import ScoringError, closest
from fracbench.tasks.spec import TaskSpec


def _registry() -> dict[str, TaskSpec]:
    from fracbench.tasks.classification import TASK as CLASSIFICATION  # the task modules import spec, not this
    from fracbench.tasks.localization import TASK as LOCALIZATION
    from fracbench.tasks.segmentation import TASK as SEGMENTATION

    return {t.name: t for t in (CLASSIFICATION, LOCALIZATION, SEGMENTATION)}


TASKS: dict[str, TaskSpec] = _registry()
"""Every task, by name."""


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``.

    Raises:
        ScoringError: unknown task, with the closest name.
    """
    try:
        return TASKS[name]
    except KeyError:
        near = closest(name, TASKS)
        hint = f" Did you mean: {near}?" if near else ""
        raise ScoringError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}.{hint}") from None
