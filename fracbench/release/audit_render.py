"""Writing an :class:`~fracbench.release.audit.AuditReport`: JSON, Markdown and review images.

``write_audit`` puts into one directory:

* ``audit.json``: the report (the splits read ``leakage_groups`` from it);
* ``audit.md``: the findings for a person, with the distributions behind every threshold;
* ``near_duplicate_candidates.png``: the verified pairs just above (green) and just below
  (red) the same-radiograph threshold, side by side with ids and scores;
* ``neighbour_candidates.png``: consecutive same-flag pairs around the neighbour threshold;
* ``detail_scores.png``, ``phash_distances.png``: the histograms.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from fracbench.atomic import write_text
from fracbench.release.audit import AuditReport, PairEvidence
from fracbench.release.contact_sheet import PairTile, render_histogram, write_pair_sheet, write_png
from fracbench.release.images import decode
from fracbench.release.records import Release

SHEET_PAIRS = 24
"""Pairs drawn on each side of a threshold on the contact sheets."""


def write_audit(report: AuditReport, release: Release, out_dir: str | Path) -> dict[str, Path]:
    """Write the report and its review images into ``out_dir`` (created if needed).

    Args:
        report: from :func:`fracbench.release.audit.audit_release`.
        release: the audited release (its images are drawn on the contact sheets).
        out_dir: the output directory.

    Returns:
        dict: artifact name → path written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_id = release.by_id()

    def load(image_id: str) -> Image.Image:
        return decode(release.root / by_id[image_id].path, draft=(256, 256)).image

    written = {"audit.json": write_text(out / "audit.json", report.model_dump_json(indent=1) + "\n")}
    threshold = report.thresholds.detail_accept
    tiles = [_tile(e) for e in _around_threshold(report.verified_pairs, threshold)]
    written["near_duplicate_candidates.png"] = write_pair_sheet(
        out / "near_duplicate_candidates.png", tiles, load,
        title=f"verified candidate pairs by detail score; same radiograph (green) iff detail >= {threshold}",
    )
    study = report.neighbour_study
    neighbour_tiles = [PairTile(a, b, f"corr={c:.3f}", c >= study.threshold) for a, b, c in study.borderline]
    neighbour_tiles = _middle(neighbour_tiles, [t.accepted for t in neighbour_tiles], SHEET_PAIRS)
    written["neighbour_candidates.png"] = write_pair_sheet(
        out / "neighbour_candidates.png", neighbour_tiles, load,
        title=f"consecutive ids, same flags: neighbours (green) iff correlation >= {study.threshold}",
    )
    written["detail_scores.png"] = write_png(out / "detail_scores.png", render_histogram(
        report.detail_scores.edges, report.detail_scores.counts, threshold=threshold,
        title=f"detail score of the {report.candidate_pairs:,} candidate pairs"))
    written["phash_distances.png"] = write_png(out / "phash_distances.png", render_histogram(
        report.phash_distances.edges, report.phash_distances.counts,
        threshold=report.thresholds.phash_candidate + 0.5, title="pHash distance, all pairs"))
    written["audit.md"] = write_text(out / "audit.md", render_markdown(report))
    return written


def _tile(e: PairEvidence) -> PairTile:
    return PairTile(e.a, e.b, f"det={e.detail:.3f} co={e.coarse:.3f} ph={e.phash} {e.mode[0]}{e.scale:.2f}",
                    e.same_radiograph)


def _around_threshold(pairs: list[PairEvidence], threshold: float) -> list[PairEvidence]:
    """The ``SHEET_PAIRS`` lowest accepted and highest rejected pairs, by detail descending."""
    accepted = [e for e in pairs if e.detail >= threshold]
    rejected = [e for e in pairs if e.detail < threshold]
    return accepted[-SHEET_PAIRS:] + rejected[:SHEET_PAIRS]


def _middle(items: list, accepted: list[bool], k: int) -> list:
    """Up to ``k`` items either side of the first rejected one (items sorted by score)."""
    cut = next((i for i, a in enumerate(accepted) if not a), len(items))
    return items[max(0, cut - k) : cut + k]


def _groups_line(groups: list[list[str]]) -> str:
    sizes: dict[int, int] = {}
    for g in groups:
        sizes[len(g)] = sizes.get(len(g), 0) + 1
    detail = ", ".join(f"{n} of size {s}" for s, n in sorted(sizes.items()))
    return f"{len(groups)} groups, {sum(len(g) for g in groups)} images" + (f" ({detail})" if detail else "")


def _table(groups: list[list[str]], limit: int = 200) -> list[str]:
    lines = [f"- {', '.join(g)}" for g in groups[:limit]]
    if len(groups) > limit:
        lines.append(f"- … and {len(groups) - limit} more (see audit.json)")
    return lines


def render_markdown(report: AuditReport) -> str:
    """The human-readable audit (``audit.md``)."""
    t = report.thresholds
    s = report.neighbour_study
    lines = [
        "# FracAtlas release audit", "",
        f"- Release: `{report.release.identity}`, fingerprint `{report.release.fingerprint}` "
        f"({report.release.identity_note})",
        f"- Images: {report.images:,} listed, {report.present:,} present, {len(report.missing)} files missing",
        f"- fracbench {report.fracbench_version}, format `{report.format}`; timings (s): "
        + ", ".join(f"{k} {v}" for k, v in report.timings_s.items()),
        "", "## Findings", "",
        f"- Truncated JPEGs (decode only with recovery): {len(report.truncated)}",
        f"- EXIF-rotated images: {len(report.exif_rotated)}: {', '.join(report.exif_rotated)}",
        f"- Label conflicts: {len(report.label_conflicts)}: "
        + "; ".join(f"{c.image_id} (decided {'fractured' if c.decided else 'not fractured'}; disagreeing: "
                    f"{', '.join(k for k, v in c.sources.items() if v != c.decided)})" for c in report.label_conflicts),
        f"- Byte-identical files: {_groups_line(report.exact_duplicate_groups)}",
        f"- Pixel-identical after decoding (includes the byte-identical): {_groups_line(report.pixel_duplicate_groups)}",
        f"- Same radiograph (includes both above): {_groups_line(report.near_duplicate_groups)}",
        f"- Same-radiograph groups with both labels: {_groups_line(report.mixed_label_groups)}",
        f"- Same-study neighbours: {_groups_line(report.neighbour_groups)}",
        f"- Leakage groups (union of all the above): {_groups_line(report.leakage_groups)}",
        *[f"- Warning: {w}" for w in report.warnings],
        "", "## Method and thresholds", "",
        "Candidates (all pairs): pHash distance (min of whole image / content) <= "
        f"{t.phash_candidate}, or 16x16 content correlation >= {t.tiny_candidate}, or centre-80 %/top-half "
        f"view correlation >= {t.view_candidate}, or truncated-image top-fraction correlation >= "
        f"{t.truncated_candidate}: {report.candidate_pairs:,} pairs verified.",
        f"Same radiograph iff the detail score >= {t.detail_accept}. Same-study neighbours: ids n, n+1, "
        f"same {', '.join(s.rule_flags)} flags, content correlation >= {t.neighbour_tiny}. See docs/AUDIT.md.",
        "", "Detail scores of the verified candidates (`near_duplicate_candidates.png` shows the pairs "
        "either side of the threshold):", "", "| detail score | pairs |", "|---|---|",
        *[f"| {lo:.2f} – {hi:.2f} | {c} |" for lo, hi, c in
          zip(report.detail_scores.edges, report.detail_scores.edges[1:], report.detail_scores.counts) if c],
        "", "pHash distance over all pairs (min of whole-image and content hash):", "",
        "| distance | pairs |", "|---|---|",
        *[f"| {int(e)} | {c:,} |" for e, c in zip(report.phash_distances.edges, report.phash_distances.counts)
          if c and e <= 20],
        "", "## Do images of one study sit next to each other in id order?", "",
        "Agreement of ids n and n+lag (both present):", "",
        "| lag | pairs | same region | same view | same hardware | same label | median correlation |",
        "|---|---|---|---|---|---|---|",
        *[f"| {k} | {v.pairs:,} | {v.region:.1%} | {v.view:.1%} | {v.hardware:.1%} | {v.label:.1%} | "
          f"{v.median_correlation:.3f} |" for k, v in s.by_lag.items()],
        "", "Correlation of the 16x16 equalised contents (same flags: "
        + ", ".join(s.rule_flags) + "); quantiles at " + ", ".join(f"{q:g}" for q in s.quantile_levels) + ".", "",
        f"| pairs | n | quantiles | share >= {s.threshold} |", "|---|---|---|---|",
        *[f"| {name} | {p.pairs:,} | {', '.join(f'{q:.2f}' for q in p.quantiles)} | {p.at_or_above_threshold:.4f} |"
          for name, p in (("consecutive ids", s.consecutive), ("consecutive, same flags", s.consecutive_same_flags),
                          ("random", s.random), ("random, same flags", s.random_same_flags))],
        "",
        f"- At the threshold {s.threshold}: consecutive same-flag pairs are {s.enrichment}x as often above it as "
        f"random same-flag pairs; estimated precision of the neighbour rule {s.estimated_precision:.1%}; "
        f"{s.neighbour_pairs} neighbour pairs.",
        "", "| threshold | neighbour pairs | consecutive share | random share | estimated precision |",
        "|---|---|---|---|---|",
        *[f"| {t} | {r.pairs} | {r.consecutive_share:.4f} | {r.random_share:.4f} | {r.estimated_precision:.1%} |"
          for t, r in s.by_threshold.items()],
        "",
        f"- Runs of consecutive ids with one body region: {s.region_runs:,} (largest {s.largest_region_run}); "
        f"as groups: {_groups_line(report.region_run_groups)}. Not merged into the leakage groups.",
        "", "## Groups", "",
        "### Same-radiograph groups with both labels", "", *_table(report.mixed_label_groups),
        "", "### Same-radiograph groups", "", *_table(report.near_duplicate_groups),
        "", "### Same-study neighbour groups", "", *_table(report.neighbour_groups), "",
    ]
    return "\n".join(lines)
