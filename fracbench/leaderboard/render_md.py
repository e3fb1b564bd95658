"""Render the board as Markdown (``leaderboards/README.md``).

Every user-supplied string is escaped for Markdown *and* inline HTML, so a
model named ``<script>`` or ``a | b`` shows as typed and cannot break a table;
links are emitted only for http(s) URLs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote

from fracbench.leaderboard.entry import LeaderboardEntry, safe_url
from fracbench.leaderboard.render_paired import CI_RULE_MD, PAIRED_RULE_MD, paired_md
from fracbench.leaderboard.view import TaskBoard, build_boards, display_text, entry_key, fmt_ci, fmt_params, fmt_value

MAX_SECONDARY_METRICS = 4
"""Secondary metric columns in the Markdown tables (the HTML board shows all)."""

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def md_text(text: str | None) -> str:
    """Escape ``text`` for a Markdown table cell: controls and bidi controls dropped, HTML entities,
    Markdown punctuation, newlines."""
    if not text:
        return "—"
    one_line = " ".join(display_text(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def md_link(label: str, url: str | None) -> str | None:
    """``[label](url)`` for an http(s) URL, with the URL's risky characters percent-encoded."""
    url = safe_url(url)
    if url is None:
        return None
    return f"[{label}]({quote(url, safe=':/?#@!$&*+,;=%~-._')})"


def _links(entry: LeaderboardEntry) -> str:
    m = entry.model
    links = [md_link("paper", m.paper_url), md_link("code", m.code_url)]
    return " · ".join(x for x in links if x) or "—"


def _table(board: TaskBoard, unverified: Mapping[str, str]) -> str:
    if not board.ranked:
        return "_No entries yet._\n"
    metrics = board.metrics[:MAX_SECONDARY_METRICS]
    head = ["Rank", "Model", f"{md_text(board.main_score)} (95% CI)", *map(md_text, metrics),
            "Params", "Training data", "Pretrained", "Date", "Links"]
    align = ["---:", ":---", "---:", *["---:"] * len(metrics), "---:", ":---", ":---", ":---", ":---"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    for r in board.ranked:
        e = r.entry
        ms = e.result.main_score
        main = f"**{fmt_value(ms.value)}** {fmt_ci(ms.ci95)}".strip()
        cells = [
            r.rank_label + ("" if not r.interval else f" [{r.interval[0]}]" if r.interval[0] == r.interval[1] else f" [{r.interval[0]}–{r.interval[1]}]"),
            md_text(e.model.name) + (" ⚠ _unverified_" if entry_key(e) in unverified else ""),
            main,
            *(fmt_value(e.result.metrics[m].value) if m in e.result.metrics else "—" for m in metrics),
            fmt_params(e.model.parameters),
            md_text(e.model.training_data),
            md_text(e.model.pretrained_weights),
            e.model.date.isoformat() if e.model.date else e.added_at[:10],
            _links(e),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(entries: list[LeaderboardEntry], *, unverified: Mapping[str, str] | None = None, paired: Any = None) -> str:
    """The board's ``README.md``: how to add an entry, the ranking rule, one table per task.

    Args:
        entries: every (verified) entry on the board.
        unverified: entries published without re-scoring (``view.entry_key`` -> why),
            marked "unverified" in the table.

    Returns:
        str: Markdown text, deterministic for the same entries.
    """
    sections = []
    for board in build_boards(entries, paired=paired):
        title = f"## {md_text(board.task.capitalize())} (splits {md_text(board.splits_version)})"
        n = len(board.ranked)
        note = f"{n} entr{'y' if n == 1 else 'ies'}; main score: `{board.main_score or '—'}`."
        sections.append(f"{title}\n\n{note}\n\n{_table(board, unverified or {})}" + (f"\n{paired_md(board, md_text)}" if board.paired else ""))
    template = Template(resources.files("fracbench.leaderboard").joinpath("templates/README.md").read_text("utf-8"))
    return template.substitute(ranking=PAIRED_RULE_MD if paired is not None else CI_RULE_MD, boards="\n".join(sections).rstrip() + "\n")
