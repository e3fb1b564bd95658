"""The committed board in headless Chromium at 1,400 x 900: every column on screen, names clamped, best-first sorting.

The page is rendered from the committed entries in ``leaderboards/`` (the real baselines and
references, whose long names and metadata are what wrapped and pushed columns off-screen),
plus, for the layout test, one entry whose every text field is at its schema maximum with no
space to break at. Skips with the reason when Chromium is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fracbench.leaderboard import load_entry
from fracbench.leaderboard.render_html import render_html
from fracbench.tasks import get_task
from tests.browser.test_board_page import REPO, browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.slow

BOARD = REPO / "leaderboards" / "fracatlas-v1"
VIEWPORT = (1400, 900)
TASKS = ("classification", "localization", "segmentation")


def _committed_entries():
    paths = sorted(BOARD.glob("*/*.json"))
    if not paths:
        pytest.skip(f"no committed board entries under {BOARD}")
    return [load_entry(p) for p in paths]


def _extreme(entry):
    """A copy of ``entry`` whose free-text fields are as long as the schema allows, without spaces."""
    model = entry.model.model_copy(update={
        "name": "N" * 200, "training_data": "T" * 500, "pretrained_weights": "P" * 300,
        "hardware": "H" * 300, "notes": "x" * 2000, "authors": ["A" * 200] * 3,
    })
    return entry.model_copy(update={"slug": "extreme-lengths", "model": model})


def _load(cdp, path: Path) -> None:
    cdp.call("Emulation.setDeviceMetricsOverride", width=VIEWPORT[0], height=VIEWPORT[1], deviceScaleFactor=1, mobile=False)
    cdp.call("Page.navigate", url="about:blank")
    cdp.wait_event("Page.loadEventFired")
    cdp.events.clear()
    cdp.call("Page.navigate", url=path.as_uri())
    cdp.wait_event("Page.loadEventFired")


@pytest.fixture(scope="module")
def layout_page(tmp_path_factory):
    entries = _committed_entries()
    extreme = _extreme(next(e for e in entries if e.task == "localization"))  # the widest table
    path = tmp_path_factory.mktemp("layout") / "index.html"
    path.write_text(render_html([*entries, extreme]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def real_page(tmp_path_factory):
    entries = _committed_entries()
    path = tmp_path_factory.mktemp("real") / "index.html"
    path.write_text(render_html(entries), encoding="utf-8")
    return path, entries


@pytest.mark.parametrize("task", TASKS)
def test_every_column_fits_1400px_and_names_take_two_lines(browser, layout_page, task):  # noqa: F811
    _load(browser, layout_page)
    browser.evaluate(f"document.getElementById('tab-v1-{task}').click()")
    view = browser.evaluate("[document.documentElement.clientWidth, innerHeight]")
    assert view[0] >= VIEWPORT[0] - 20, view
    headers = browser.evaluate(
        f"Array.from(document.querySelectorAll('#v1-{task} table.board thead th')).map(h => {{"
        "const r = h.getBoundingClientRect(); return [h.textContent, r.left, r.right, r.top, r.bottom]; })"
    )
    assert len(headers) >= 13, headers
    outside = [h for h in headers if h[1] < 0 or h[2] > view[0] or h[3] < 0]
    assert outside == [], f"headers outside the {view[0]} px wide viewport: {outside}"
    assert browser.evaluate("document.documentElement.scrollWidth") <= view[0], "the page scrolls sideways"
    names = browser.evaluate(
        f"Array.from(document.querySelectorAll('#v1-{task} td.model .name')).map(n => {{"
        "const s = getComputedStyle(n); return [n.textContent.length, n.getBoundingClientRect().height,"
        " parseFloat(s.lineHeight), n.title.length, n.scrollWidth <= n.clientWidth + 1]; })"
    )
    assert len(names) >= 2
    for chars, height, line, title, no_overflow in names:
        assert height <= 2 * line + 1, f"a {chars}-character model name is {height / line:.1f} lines tall"
        assert title == chars, "the whole name is in the tooltip"
        assert no_overflow, "the name stays inside its cell"
    # clamped metadata keeps a row from growing without bound: the extreme entry's row stays short
    if task == "localization":
        row = browser.evaluate("document.querySelector('#v1-localization tr[data-slug=\"extreme-lengths\"]').getBoundingClientRect().height")
        assert row < 160, row


def test_below_1000px_only_the_table_scrolls(browser, layout_page):  # noqa: F811
    _load(browser, layout_page)
    browser.call("Emulation.setDeviceMetricsOverride", width=800, height=900, deviceScaleFactor=1, mobile=False)
    try:
        widths = browser.evaluate(
            "(() => { const s = document.querySelector('#v1-classification .scroll');"
            " return [s.scrollWidth, s.clientWidth, document.documentElement.scrollWidth, document.documentElement.clientWidth]; })()"
        )
    finally:
        browser.call("Emulation.setDeviceMetricsOverride", width=VIEWPORT[0], height=VIEWPORT[1], deviceScaleFactor=1, mobile=False)
    assert widths[0] > widths[1], "the table scrolls inside its container"
    assert widths[2] <= widths[3], "the page itself does not scroll sideways"


def _order(cdp, task):
    return cdp.evaluate(f"Array.from(document.querySelectorAll('#v1-{task} table.board tbody tr')).map(r => r.dataset.slug)")


def test_first_click_on_a_metric_sorts_best_first(browser, real_page):  # noqa: F811
    """For every metric column: one click puts the best value first, as the task spec defines best."""
    path, entries = real_page
    _load(browser, path)
    checked = {True: 0, False: 0}
    for task in TASKS:
        spec = get_task(task)
        browser.evaluate(f"document.getElementById('tab-v1-{task}').click()")
        default = _order(browser, task)
        rank = {slug: i for i, slug in enumerate(default)}
        mine = {e.slug: e for e in entries if e.task == task}
        columns = browser.evaluate(
            f"Array.from(document.querySelectorAll('#v1-{task} table.board th[data-better]')).map(h => [h.dataset.key, h.dataset.better])"
        )
        keys = [k for k, _ in columns]
        assert keys[0] == "rank" and "main_score" in keys
        for key, better in columns:
            if key == "rank":
                assert better == "lower"
                continue
            name = spec.main_score if key == "main_score" else key.removeprefix("metric:")
            higher = spec.higher_is_better[name]
            assert better == ("higher" if higher else "lower"), f"{task} {name}"

            def value(slug, name=name, key=key, mine=mine):
                e = mine[slug]
                return e.result.main_score.value if key == "main_score" else e.result.metrics[name].value

            present = [s for s in default if value(s) is not None]
            best_first = sorted(present, key=lambda s: ((-value(s) if higher else value(s)), rank[s]))
            expected = best_first + [s for s in default if value(s) is None]
            browser.evaluate(f"document.querySelector('#v1-{task} th[data-key=\"{key}\"] button').click()")
            assert _order(browser, task) == expected, f"{task}: first click on {name} ({better} is better)"
            assert browser.evaluate(f"document.querySelector('#v1-{task} th[data-key=\"{key}\"]').getAttribute('aria-sort')") == (
                "descending" if higher else "ascending"
            )
            if len(set(map(value, present))) == len(present) > 1:
                browser.evaluate(f"document.querySelector('#v1-{task} th[data-key=\"{key}\"] button').click()")
                assert _order(browser, task)[: len(present)] == best_first[::-1], f"{task}: second click on {name} flips"
                checked[higher] += best_first != best_first[::-1]
            browser.evaluate(f"document.querySelector('#v1-{task} th[data-key=\"rank\"] button').click()")
            assert _order(browser, task) == default
    # the committed board has columns of both directions, so each branch of the script ran
    assert checked[True] >= 10 and checked[False] >= 2, checked
    errors = [e for e in browser.events if e["method"] == "Runtime.exceptionThrown"]
    assert errors == []
