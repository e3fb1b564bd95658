"""The report page: one self-contained HTML file, readable offline, on screen and in print.

No script and no external resource: plots are inline SVG, thumbnails are PNG data URIs,
and a Content-Security-Policy forbids any network access. Every string from the
submission or the dataset (model name, description, URL, image ids) is HTML-escaped;
the model URL becomes a link only when it is http(s).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path

from fracbench.atomic import write_text
from fracbench.report.analysis import ReportData, analyse_submission
from fracbench.report.svg import forest_plot, line_plot, reliability_plot

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { --fg: #1b1f24; --muted: #5b6470; --line: #d8dde3; --accent: #1f5fbf; --head: #f3f5f8; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 1rem 1.5rem 3rem; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
h1 { font-size: 1.5rem; margin: .3rem 0; } h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.muted, figcaption small { color: var(--muted); font-weight: normal; }
.headline { display: flex; gap: 2rem; flex-wrap: wrap; align-items: baseline; }
.main-score { font-size: 2rem; font-weight: 700; } .main-score small { font-size: 1rem; font-weight: normal; color: var(--muted); }
table { border-collapse: collapse; } th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.prov td:first-child { color: var(--muted); white-space: nowrap; } .prov code { word-break: break-all; }
.notes li { color: #8a4b00; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5rem; } figure { margin: 0; } figure > figcaption { font-weight: 600; margin-bottom: .25rem; }
svg .frame { fill: none; stroke: var(--muted); } svg .grid { stroke: var(--line); stroke-width: .6; }
svg .chance { stroke: var(--muted); stroke-dasharray: 4 4; } svg .tick { font-size: 10px; fill: var(--muted); }
svg .axis, svg .label { font-size: 12px; fill: var(--fg); } svg .group { font-size: 12px; font-weight: 600; fill: var(--fg); }
svg .series { fill: none; stroke: var(--accent); stroke-width: 2; } svg .dot { fill: var(--accent); } svg .whisker { stroke: var(--accent); stroke-width: 2; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 1rem; }
.gallery figure { border: 1px solid var(--line); padding: .4rem; } .gallery img { display: block; max-width: 100%; image-rendering: auto; }
.gallery figcaption { font-weight: normal; font-size: .85em; margin-top: .3rem; }
.key span { display: inline-block; width: .9em; height: .9em; vertical-align: -1px; margin: 0 .3em 0 1em; }
footer { margin-top: 2rem; color: var(--muted); font-size: .9em; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; } figure, tr, .gallery figure { break-inside: avoid; }
  .plots { gap: .6rem; } svg.plot { max-width: 48%; height: auto; }
  .gallery { grid-template-columns: repeat(4, 1fr); gap: .4rem; }
  a { color: inherit; text-decoration: none; } a[href^="http"]::after { content: " (" attr(href) ")"; font-size: .8em; }
}
"""


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _ci(ci) -> str:
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _val(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def render_report(report: ReportData, thumbs: list | None = None, gallery_note: str | None = None) -> str:
    """The report's HTML text.

    Args:
        report: from :func:`~fracbench.report.analysis.analyse_submission`.
        thumbs: drawn :class:`~fracbench.report.gallery.Thumbnail` s (None: no gallery).
        gallery_note: why there is no gallery, shown in its place.
    """
    from fracbench.leaderboard.entry import safe_url
    from fracbench.tasks import get_task

    r, prov = report.result, report.result.provenance
    spec = get_task(r.task)
    url = safe_url(r.model.url)
    link = f' · <a href="{_e(url)}" rel="noopener noreferrer nofollow">{_e(url)}</a>' if url else ""
    parts = [
        f'<header><h1>{_e(r.model.name)}</h1><p class="muted">fracbench report · {_e(r.task)} · {_e(prov.split)} split of '
        f"splits {_e(prov.splits_version)}{link}</p>"
        + (f"<p>{_e(r.model.description)}</p>" if r.model.description else "") + "</header>",
        f'<section class="headline"><div><div class="muted">{_e(r.main_score.name)} (main score)</div>'
        f'<div class="main-score">{_val(r.main_score.value)} <small>95% CI {_ci(r.main_score.ci95) or "—"}</small></div></div>'
        f"<div><div class=\"muted\">scored images</div><div>{prov.n_scored} of {prov.n_images}</div></div>"
        + (f'<div><div class="muted">operating threshold</div><div>{report.operating_threshold:g}</div></div>'
           if report.operating_threshold is not None else "") + "</section>",
    ]
    if r.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in r.notes) + "</ul>")
    rows = "".join(
        f'<tr><td>{_e(name)}{" (main)" if name == r.main_score.name else ""}</td><td class="num">{_val(mv.value)}</td>'
        f'<td class="num">{_ci(mv.ci95)}</td><td>{"↑" if spec.higher_is_better.get(name, True) else "↓"}</td></tr>'
        for name, mv in r.metrics.items()
    )
    parts.append(f"<h2>Metrics</h2><table><thead><tr><th>metric</th><th>value</th><th>95% CI</th><th>better</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>")
    plots = [(c, line_plot(c)) for c in report.curves]
    figures = [f"<figure><figcaption>{_e(c.title)}</figcaption>{svg}"
               + (f'<figcaption><small>{_e(c.note)}</small></figcaption>' if c.note else "") + "</figure>"
               for c, svg in plots if svg]
    rel = reliability_plot(report.reliability)
    if rel:
        figures.append(f"<figure><figcaption>Reliability diagram</figcaption>{rel}<figcaption><small>15 equal-width bins "
                       "(those of the ECE); whiskers: Wilson 95% interval of the rate; dot area: images in the bin</small>"
                       "</figcaption></figure>")
    parts.append(f'<h2>Curves</h2><div class="plots">{"".join(figures) or "<p class=muted>No curve is defined.</p>"}</div>')
    forest = forest_plot(report.forest, r.main_score.name, r.main_score.value)
    if forest:
        size_note = (" Fracture size: a fractured image counts in the bucket of its largest ground-truth box, with every "
                     "non-fractured image in each bucket." if r.task != "classification" else "")
        parts.append(f"<h2>Subgroups</h2><figure>{forest}<figcaption><small>{_e(r.main_score.name)} with group-bootstrap 95% "
                     f"CIs; dashed: all images; img = images, fx = fractured.{size_note}</small></figcaption></figure>")
    parts.append(_gallery(thumbs, gallery_note))
    boot = prov.bootstrap
    prov_rows = [
        ("protocol version", prov.protocol_version), ("splits version / split", f"{prov.splits_version} / {prov.split}"),
        ("split sha256", prov.split_sha256), ("split manifest sha256", prov.manifest_sha256 or "—"),
        ("dataset", f"{prov.dataset_version} (fingerprint {prov.dataset_fingerprint})"),
        ("submission sha256", prov.submission_sha256), ("fracbench version", prov.fracbench_version),
        ("bootstrap", f"{boot.n_resamples} resamples of whole leakage groups ({boot.unit}), {boot.method} intervals, seed {boot.seed}"),
        ("scored at", prov.scored_at), ("submission file", report.source),
    ]
    parts.append("<h2>Provenance</h2><table class=\"prov\"><tbody>"
                 + "".join(f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>" for k, v in prov_rows) + "</tbody></table>")
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n<meta name="generator" content="fracbench report">\n'
        f"<title>{_e(r.model.name)}: fracbench {_e(r.task)} report</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f'<footer><p>Written by <code>fracbench report</code> (fracbench {_e(prov.fracbench_version)}). Every number was '
        "computed from the submission file against the built dataset; re-run the command to check it.</p></footer>\n</body>\n</html>\n"
    )


def _gallery(thumbs: list | None, note: str | None) -> str:
    head = ('<h2>Error gallery</h2><p class="key">Drawn: <span style="background:#0f0"></span>ground truth '
            '<span style="background:#f0f"></span>prediction</p>')
    if thumbs is None:
        return head + f'<p class="muted">{_e(note or "Not drawn.")}</p>'
    out = [head]
    for kind, title in (("false positive", "Highest-scoring false positives on images without fracture"),
                        ("missed fracture", "Missed fractures")):
        items = [t for t in thumbs if t.pick.kind == kind]
        out.append(f"<h3>{_e(title)}</h3>")
        if not items:
            out.append('<p class="muted">None.</p>')
            continue
        figs = "".join(
            f'<figure data-image="{_e(t.pick.image_id)}"><img src="data:image/png;base64,{base64.b64encode(t.png).decode()}" '
            f'width="{t.size[0]}" height="{t.size[1]}" alt="{_e(t.pick.image_id)}: {_e(t.pick.caption)}">'
            f"<figcaption><b>{_e(t.pick.image_id)}</b>: {_e(t.pick.caption)}</figcaption></figure>"
            for t in items
        )
        out.append(f'<div class="gallery">{figs}</div>')
    return "".join(out)


def write_report(path: str | Path, text: str) -> Path:
    """Write the page atomically."""
    return write_text(path, text)


def make_report(
    submission: str | Path,
    out: str | Path,
    *,
    data: str | Path | None = None,
    gallery: bool = True,
    n_resamples: int | None = None,
    seed: int | None = None,
    gt=None,
    progress: Callable[[int, int], None] | None = None,
    label: str | None = None,
) -> tuple[Path, ReportData, str | None]:
    """Analyse a submission, draw its gallery when the dataset's images are at hand, write the page.

    Returns:
        tuple: the page's path, the analysis, and why the gallery was not drawn (None if it was).
    """
    from fracbench.errors import DatasetError

    options = {k: v for k, v in (("n_resamples", n_resamples), ("seed", seed)) if v is not None}
    report = analyse_submission(submission, data=data, gt=gt, progress=progress, **options)
    report.source = label or report.source
    thumbs, note = None, None
    if not gallery:
        note = "Not drawn (no dataset images used for this page; run `fracbench report preds.json --data DIR` to see it)."
    elif not report.picks:
        thumbs = []
    else:
        from fracbench.dataset.locate import resolve_data_dir
        from fracbench.report.gallery import draw_gallery

        try:
            thumbs = draw_gallery(resolve_data_dir(data), report.gt, report.picks)
        except DatasetError as exc:
            note = f"Not drawn: {exc}"
    return write_report(out, render_report(report, thumbs, note)), report, note
