"""The paired ranks on the rendered board: the rule, the rank cell, the pairwise matrix (HTML and Markdown).

Kept apart from :mod:`~fracbench.leaderboard.render_html` and
:mod:`~fracbench.leaderboard.render_md`, which call these functions only. Every
user string is escaped by the caller's escaper (``esc`` for HTML, ``md_text`` for Markdown).
"""

from __future__ import annotations

from collections.abc import Callable

from fracbench.leaderboard.ranking import RankedEntry
from fracbench.leaderboard.view import TaskBoard, display_text

CI_RULE_HTML = (
    "Rank: entries whose 95&nbsp;% CI overlaps the CI of their tier's leader share its rank, marked <b>≈</b>."
)
PAIRED_RULE_HTML = (
    "Rank: every pair of a task's entries is compared by a <b>paired</b> group bootstrap of the main-score "
    "difference (both stored submissions re-scored on the same resampled leakage groups); the p-values of all the "
    "task's pairs are corrected together (Holm). An entry shares the rank of its class leader, marked <b>≈</b>, "
    "unless that pair is separated at 5&nbsp;%; the first separated entry leads a new class at its own position. "
    "The interval under each rank holds the ranks an entry can take given the separated pairs. Entries whose "
    "submission cannot be re-read are not ranked (—)."
)
CI_RULE_MD = """Entries are ordered by main score, best first. The first entry leads tier 1; each following entry
whose 95 % bootstrap CI overlaps the CI of the **leader of the current tier** shares that leader's
rank and is marked **≈** (not distinguishable from it at this test-set size); the first entry whose
CI does not overlap starts a new tier at its own position (1, ≈1, ≈1, 4, ...). Comparing with the
tier leader only keeps ties from chaining down the table. Entries without a score come last,
unranked (—)."""
PAIRED_RULE_MD = """Every pair of a task's entries is compared by a **paired group bootstrap** of the main-score difference:
both stored submissions are re-scored on the *same* resampled leakage groups of the test split (1,000
resamples, seed 0), which gives the difference a percentile 95 % CI and a two-sided p-value. This is far more
sensitive than comparing marginal CIs, which overlap for most adjacent entries. The p-values of all the pairs
of a task are corrected together with **Holm's** step-down method (they are strongly dependent, and Holm
controls the family-wise error rate under any dependence while being more powerful than Bonferroni); a pair
is *separated* when its corrected p-value is at most 0.05.

Entries are ordered by main score. The best leads class 1; going down, an entry shares the rank of its
**class leader** (marked **≈**) unless that pair is separated, in which case it leads a new class at its own
position (1, ≈1, 3, ...). Comparing with the class leader only keeps classes from chaining. The **rank
interval** `[a–b]` runs from 1 + the entries separated above it to n − the entries separated below it.
Entries whose stored submission cannot be re-read (absent, changed, invalid, or no built dataset at render
time for a pair not yet cached) are **not ranked** (—), with the reason under the table. Pair results are
cached in `paired-cache.json` by the two submissions' sha256, so adding an entry costs one paired pass per
existing entry of its task."""


def rank_cell_html(r: RankedEntry, esc: Callable[[object], str]) -> tuple[str, str]:
    """(title attribute, extra HTML after the label) for a rank cell."""
    if r.interval is None:
        title = ' title="95% CI overlaps the CI of this tier\'s leader"' if r.tied else ""
        return title, ""
    title = ' title="not separated from its class leader by the paired test (Holm, 5%)"' if r.tied else ""
    lo, hi = r.interval
    span = f"{lo}" if lo == hi else f"{lo}–{hi}"
    return title, f'<div class="interval" title="rank interval">[{esc(span)}]</div>'


def _p(p: float | None) -> str:
    return "—" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _diff(d: float | None) -> str:
    return "—" if d is None else f"{d:+.3f}"


def paired_html(board: TaskBoard, esc: Callable[[object], str]) -> str:
    """The task's pairwise matrix (row minus column; hover a cell for its detail) and unranked entries."""
    pt = board.paired
    if pt is None:
        return ""
    names = {r.entry.slug: display_text(r.entry.model.name) for r in board.ranked}  # no bidi or control character
    parts = [f'<section class="paired"><h3>Paired comparisons <small>{esc(pt.metric)}, row − column</small></h3>']
    if len(pt.order) >= 2:
        head = "".join(f'<th scope="col" title="{esc(names[s])}">{i}</th>' for i, s in enumerate(pt.order, start=1))
        rows = []
        for i, a in enumerate(pt.order, start=1):
            cells = []
            for b in pt.order:
                if a == b:
                    cells.append('<td class="self">·</td>')
                    continue
                c = pt.cells[(a, b)]
                ci = "" if c.ci95 is None else f", paired 95% CI [{c.ci95[0]:+.4f}, {c.ci95[1]:+.4f}]"
                verdict = "separated" if c.separated else "not separated"
                detail = (f"{names[a]} − {names[b]}: {_diff(c.difference)}{ci}; p = {_p(c.p_value)}, "
                          f"Holm p = {_p(c.p_holm)}: {verdict} at {pt.alpha:g}")
                cls = "sep" if c.separated else "tie"
                cells.append(f'<td class="{cls}" title="{esc(detail)}"><span class="d">{_diff(c.difference)}</span>'
                             f'<span class="p">p {_p(c.p_holm)}</span></td>')
            rows.append(f'<tr data-slug="{esc(a)}"><th scope="row">{i}. {esc(names[a])}</th>{"".join(cells)}</tr>')
        parts.append(f'<div class="scroll"><table class="pairs"><thead><tr><th></th>{head}</tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table></div>')
        parts.append(f'<p class="note">Cells: difference and Holm-corrected p ({len(pt.order) * (len(pt.order) - 1) // 2} '
                     f'pairs); bold: separated at {pt.alpha:g}. Paired group bootstrap, {pt.n_resamples:,} resamples, '
                     f'seed {pt.seed}. Hover a cell for its CI and raw p.</p>')
    for slug, reason in sorted(pt.unranked.items()):
        parts.append(f'<p class="unranked">Not ranked: {esc(names.get(slug, slug))}: {esc(reason)}.</p>')
    parts.append("</section>")
    return "".join(parts)


def paired_md(board: TaskBoard, md_text: Callable[[str | None], str]) -> str:
    """The pairwise matrix as a Markdown table (difference, Holm p), and the unranked entries."""
    pt = board.paired
    if pt is None:
        return ""
    names = {r.entry.slug: r.entry.model.name for r in board.ranked}
    lines = []
    if len(pt.order) >= 2:
        lines += [f"Paired comparisons ({md_text(pt.metric)}, row − column; Holm-corrected p; **bold**: separated at 5 %):", ""]
        lines.append("| | " + " | ".join(str(i) for i in range(1, len(pt.order) + 1)) + " |")
        lines.append("| :--- |" + " ---: |" * len(pt.order))
        for i, a in enumerate(pt.order, start=1):
            cells = []
            for b in pt.order:
                if a == b:
                    cells.append("·")
                    continue
                c = pt.cells[(a, b)]
                text = f"{_diff(c.difference)} (p {_p(c.p_holm)})"
                cells.append(f"**{text}**" if c.separated else text)
            lines.append(f"| {i}\\. {md_text(names[a])} | " + " | ".join(cells) + " |")
        lines.append("")
    for slug, reason in sorted(pt.unranked.items()):
        lines.append(f"Not ranked: {md_text(names.get(slug, slug))}: {md_text(reason)}.")
        lines.append("")
    return "\n".join(lines)
