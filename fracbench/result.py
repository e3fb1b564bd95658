"""The Result of scoring one submission: scores, CIs, subgroups, curves, provenance.

This is a public, versioned file format (``fracbench.result/v1``): leaderboard
entries embed it, and old files must keep loading. Add optional fields only;
anything else is a new schema version.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

RESULT_SCHEMA = "fracbench.result/v1"


class MetricValue(BaseModel):
    """A metric with its 95 % bootstrap confidence interval (None where undefined)."""

    model_config = ConfigDict(extra="forbid")

    value: float | None
    ci95: tuple[float, float] | None = None


class MainScore(MetricValue):
    """The task's main score, named."""

    name: str


class BootstrapInfo(BaseModel):
    """How the confidence intervals were computed."""

    n_resamples: int
    seed: int
    unit: str = "group"
    method: str = "percentile"


class Provenance(BaseModel):
    """Everything needed to reproduce or check a score."""

    protocol_version: str
    splits_version: str
    split: str
    split_sha256: str
    dataset_fingerprint: str
    dataset_version: str
    fracbench_version: str
    submission_sha256: str
    scored_at: str
    n_images: int
    n_scored: int
    bootstrap: BootstrapInfo
    manifest_sha256: str | None = None


class ModelInfo(BaseModel):
    """The submitted model as the submission describes it."""

    name: str
    url: str | None = None
    description: str | None = None


class Result(BaseModel):
    """One scored submission.

    Attributes:
        schema_: always ``fracbench.result/v1`` (serialised as ``schema``).
        task: ``classification|localization|segmentation``.
        model: the submission's model block.
        threshold: the submitted operating threshold, if any.
        main_score: the task's main score with CI.
        metrics: every metric of the task, by name.
        subgroups: ``{attribute: {value: {metric: MetricValue}}}`` for body region,
            hardware and view.
        curves: stored curves for plotting, e.g. ``{"roc": {"fpr": [...], "tpr": [...]}}``
            or ``{"froc": {"fp_per_image": [...], "sensitivity": [...]}}``.
        provenance: versions, hashes and bootstrap settings.
        operating_threshold: the threshold the thresholded metrics used (the submitted
            one, else the protocol default 0.5); None for tasks without any.
        subgroup_sizes: ``{attribute: {value: {"n_images": .., "n_fractured": ..}}}``,
            the scored images behind each subgroup's metrics.
        notes: warnings a reader must see (e.g. a positive-only ``legacy`` split); empty for v1.
    """

    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(default=RESULT_SCHEMA, alias="schema")
    task: str
    model: ModelInfo
    threshold: float | None = None
    main_score: MainScore
    metrics: dict[str, MetricValue]
    subgroups: dict[str, dict[str, dict[str, MetricValue]]] = Field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = Field(default_factory=dict)
    provenance: Provenance
    operating_threshold: float | None = None
    subgroup_sizes: dict[str, dict[str, dict[str, int]]] = Field(default_factory=dict)
    # Omitted when empty, so Results written before this field existed re-serialise to the
    # same bytes (leaderboard entries hash them).
    notes: list[str] = Field(default_factory=list, exclude_if=lambda notes: not notes)

    def to_json(self) -> str:
        """Serialise with the public field names, stable key order, 2-space indent."""
        return self.model_dump_json(by_alias=True, indent=2) + "\n"
