"""Render the board as one static, offline HTML page (``leaderboards/index.html``).

The tables are rendered here, in Python, so the page shows everything without
JavaScript; the inline script (``templates/board.js``) adds tabs and column
sorting from the data embedded as JSON. Safety:

* every user string goes through :func:`html.escape`, loses its control and bidi-control
  characters and sits in its own ``<bdi>`` (:func:`user_text`), so it cannot reorder the page;
* the embedded JSON escapes ``<``, ``>``, ``&``, U+2028 and U+2029
  (:func:`script_json`), so no string can close the ``<script>`` element;
* links are emitted only for http(s) URLs, with ``rel="noopener noreferrer nofollow"``;
* a Content-Security-Policy allows only the page's own inline script (by hash)
  and no network access at all.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping
from importlib import resources
from string import Template
from typing import Any

from fracbench.leaderboard.entry import LeaderboardEntry, safe_url
from fracbench.leaderboard.plots import ci_bar, curve_plot, curve_title, curve_x_max
from fracbench.leaderboard.ranking import higher_is_better
from fracbench.leaderboard.render_paired import CI_RULE_HTML, PAIRED_RULE_HTML, paired_html, rank_cell_html
from fracbench.leaderboard.view import (
    TaskBoard,
    build_boards,
    display_text,
    entry_key,
    fmt_ci,
    fmt_params,
    fmt_value,
    metric_label,
)

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def esc(text: Any) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


def user_text(text: Any, empty: str = "") -> str:
    """A user string for the page: controls dropped, HTML-escaped, isolated in ``<bdi>``."""
    clean = display_text(text)
    return f"<bdi>{esc(clean)}</bdi>" if clean else empty


def script_json(obj: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&``, U+2028/9 literal."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, allow_nan=False)
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text)


def _template(name: str) -> str:
    return resources.files("fracbench.leaderboard").joinpath(f"templates/{name}").read_text("utf-8")


def _link(label: str, url: str | None) -> str:
    url = safe_url(url)
    if url is None:
        return ""
    return f'<a href="{esc(url)}" rel="noopener noreferrer nofollow" target="_blank">{esc(label)}</a>'


def _columns(board: TaskBoard) -> list[tuple[str, str, str, str, str]]:
    """(key, header HTML, type, better, tooltip) of every sortable column.

    ``better`` is ``higher``, ``lower`` or empty: which way is best, from the task spec
    (:func:`~fracbench.leaderboard.ranking.higher_is_better`), so the first click sorts best first.
    """

    def better(name: str) -> str:
        return "higher" if higher_is_better(name, board.task) else "lower"

    def metric(key: str, name: str, header: str) -> tuple[str, str, str, str, str]:
        return key, header, "num", better(name), f"{name}: {better(name)} is better"

    main = board.main_score
    return [
        ("rank", "Rank", "num", "lower", "rank: 1 is best"),
        ("name", "Model", "text", "", ""),
        metric("main_score", main, f"{esc(metric_label(main))} <small>(95% CI)</small>"),
        *(metric(f"metric:{m}", m, esc(metric_label(m))) for m in board.metrics),
        ("parameters", "Params", "num", "", "parameter count"),
        ("training_data", "Training data", "text", "", ""),
        ("pretrained_weights", "Pre&shy;trained", "text", "", "pretrained weights"),  # may wrap: Pre-/trained
        ("hardware", "Hardware", "text", "", ""),
        ("date", "Date", "text", "", ""),
    ]


def _th(key: str, header: str, kind: str, better: str, tooltip: str) -> str:
    """A sortable header cell; ``header`` is HTML already escaped."""
    attrs = f' data-better="{better}"' if better else ""
    attrs += f' title="{esc(tooltip)}"' if tooltip else ""
    return f'<th scope="col" data-key="{esc(key)}" data-type="{kind}"{attrs} aria-sort="none"><button type="button">{header}</button></th>'


def _meta_cell(text: object) -> str:
    """A compact cell for a long user string: clamped on the page, whole in the tooltip."""
    clean = display_text(text)
    return f'<td class="meta" title="{esc(clean)}">{user_text(clean)}</td>' if clean else '<td class="meta">—</td>'


def _row_data(board: TaskBoard) -> dict[str, dict[str, Any]]:
    """Sort keys per row, by slug (what the script sorts on)."""
    rows = {}
    for r in board.ranked:
        e, m = r.entry, r.entry.model
        row = {
            "rank": r.position, "name": m.name, "main_score": e.result.main_score.value,
            "parameters": m.parameters, "training_data": m.training_data,
            "pretrained_weights": m.pretrained_weights, "hardware": m.hardware,
            "date": m.date.isoformat() if m.date else e.added_at[:10],
        }
        for name in board.metrics:
            mv = e.result.metrics.get(name)
            row[f"metric:{name}"] = mv.value if mv else None
        rows[e.slug] = row
    return rows


def _table(board: TaskBoard, unverified: Mapping[str, str], reports: dict[str, str] | None = None) -> str:
    if not board.ranked:
        return '<p class="empty">No entries yet.</p>'
    cols = _columns(board)
    head = "".join(_th(*col) for col in cols) + '<th scope="col" class="links">Links</th>'
    bounds = [v for r in board.ranked for v in (r.entry.result.main_score.ci95 or (r.entry.result.main_score.value,)) if v is not None]
    lo, hi = (min(bounds), max(bounds)) if bounds else (0.0, 1.0)
    pad = (hi - lo) * 0.05 or 0.01
    rows = []
    for r in board.ranked:
        e, m = r.entry, r.entry.model
        ms = e.result.main_score
        tie, interval = rank_cell_html(r, esc)
        name = display_text(m.name)
        authors = (
            f'<div class="authors" title="{esc(", ".join(display_text(a) for a in m.authors))}">'
            f'{", ".join(user_text(a) for a in m.authors)}</div>'
        ) if m.authors else ""
        notes = f'<div class="notes" title="{esc(display_text(m.notes))}">{user_text(m.notes)}</div>' if m.notes else ""
        why = unverified.get(entry_key(e))
        flag = f' <span class="unverified" title="{esc(why)}">unverified</span>' if why is not None else ""
        metric_cells = "".join(
            f'<td class="num" title="{esc(fmt_ci(e.result.metrics[n].ci95))}">{fmt_value(e.result.metrics[n].value)}</td>'
            if n in e.result.metrics else '<td class="num">—</td>'
            for n in board.metrics
        )
        report = f'<a href="{esc(reports[e.slug])}">report</a>' if reports and e.slug in reports else ""
        links = " ".join(x for x in (_link("paper", m.paper_url), _link("code", m.code_url), report) if x) or "—"
        rows.append(
            f'<tr data-slug="{esc(e.slug)}"><td class="num rank"{tie}>{esc(r.rank_label)}{interval}</td>'
            f'<td class="model"><span class="name" title="{esc(name)}">{user_text(name)}</span>{flag}{authors}{notes}</td>'
            f'<td class="num main"><span class="score">{fmt_value(ms.value)}</span> '
            f'<span class="ci">{fmt_ci(ms.ci95)}</span>{ci_bar(ms.value, ms.ci95, lo - pad, hi + pad)}</td>'
            f"{metric_cells}"
            f'<td class="num params">{fmt_params(m.parameters)}</td>{_meta_cell(m.training_data)}'
            f"{_meta_cell(m.pretrained_weights)}{_meta_cell(m.hardware)}"
            f'<td class="date">{esc(m.date.isoformat() if m.date else e.added_at[:10])}</td><td class="links">{links}</td></tr>'
        )
    return (
        f'<div class="scroll"><table class="board" data-board="{esc(board.key)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _panel(board: TaskBoard, unverified: Mapping[str, str], reports: dict[str, str] | None = None) -> str:
    plots = []
    for kind in board.curves:
        svg = curve_plot(kind, board.ranked, title=f"{curve_title(kind)} curves, {board.task}")
        if svg:
            cap = curve_x_max(kind)
            note = f" <small>to {cap:g} FP/image, the range of the {esc(kind.upper())} metrics</small>" if cap is not None else ""
            plots.append(f'<figure class="curve"><figcaption>{esc(curve_title(kind))}{note}</figcaption>{svg}</figure>')
    n = len(board.ranked)
    return (
        f'<section class="panel" id="{esc(board.key)}" role="tabpanel" aria-labelledby="tab-{esc(board.key)}">'
        f"<h2>{esc(board.task.capitalize())} <small>splits {esc(board.splits_version)} · {n} "
        f"entr{'y' if n == 1 else 'ies'}</small></h2>{_table(board, unverified, reports)}{paired_html(board, esc)}"
        f'<div class="plots">{"".join(plots)}</div></section>'
    )


def render_html(entries: list[LeaderboardEntry], *, unverified: Mapping[str, str] | None = None, paired: Any = None,
                reports: dict[str, str] | None = None) -> str:
    """The whole board page: tabs, sortable tables with CI bars, curve plots.

    Args:
        entries: every (verified) entry on the board.
        unverified: entries published without re-scoring (``view.entry_key`` -> why),
            marked "unverified" next to the name.
        paired: a :class:`~fracbench.leaderboard.paired.PairedBoard` to rank by (None: CI overlap).
        reports: slug -> relative link of the entry's report page.

    Returns:
        str: a self-contained HTML document (no external resources), deterministic.
    """
    boards = build_boards(entries, paired=paired)
    script = _template("board.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    data = {"boards": {b.key: {"task": b.task, "rows": _row_data(b)} for b in boards}}
    tabs = "".join(
        f'<button type="button" role="tab" id="tab-{esc(b.key)}" aria-controls="{esc(b.key)}" '
        f'data-tab="{esc(b.key)}">{esc(b.task.capitalize())} <small>{esc(b.splits_version)}</small></button>'
        for b in boards
    )
    latest = max((e.added_at for e in entries), default="")
    return Template(_template("board.html")).substitute(
        csp=f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
        "img-src data:; base-uri 'none'; form-action 'none'",
        css=_template("board.css"),
        tabs=tabs,
        panels="".join(_panel(b, unverified or {}, reports) for b in boards),
        rule=PAIRED_RULE_HTML if paired is not None else CI_RULE_HTML,
        data=script_json(data),
        script=script,
        updated=esc(latest[:10] or "no entries yet"),
        count=len(entries),
    )
