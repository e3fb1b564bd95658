"""The board's paired ranks in headless Chromium: the pairwise matrix renders, hovers, and breaks nothing."""

from __future__ import annotations

import pytest

from tests.browser.test_board_page import browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page_path(built_v1, tmp_path_factory):
    from fracbench.dataset.groundtruth import load_ground_truth
    from fracbench.leaderboard import Board, add_entry, parse_meta, render_board
    from tests.synthetic_gt import classification_predictions, submission, write_submission

    gt = load_ground_truth(built_v1, "test")
    tmp = tmp_path_factory.mktemp("paired-board")
    board = Board(tmp / "board")
    for name, sep in (("strong", 4.0), ("middle", 1.0), ("weak", 0.2)):
        path = write_submission(tmp / f"{name}.json", submission(gt, "classification", classification_predictions(gt, separation=sep, seed=int(sep * 10))))
        add_entry(board, path, parse_meta({"name": f"{name} <b>model</b>"}), data=built_v1, n_resamples=50)
    render_board(board, data=built_v1, reports=True)
    return board.root / "index.html"


def test_matrix_hover_and_report_links(browser, page_path):  # noqa: F811
    browser.call("Page.navigate", url="about:blank")
    browser.wait_event("Page.loadEventFired")
    browser.events.clear()
    browser.call("Page.navigate", url=page_path.as_uri())
    browser.wait_event("Page.loadEventFired")
    cells = browser.evaluate("Array.from(document.querySelectorAll('#v1-classification table.pairs td[title]')).map(c => c.title)")
    assert len(cells) == 6 and all("Holm p" in c and " − " in c for c in cells)
    assert browser.evaluate("document.querySelectorAll('#v1-classification td.rank .interval').length") == 3
    links = browser.evaluate("Array.from(document.querySelectorAll('#v1-classification a')).filter(a => a.textContent == 'report').map(a => a.href)")
    assert len(links) == 3 and all(h.startswith("file://") and h.endswith(".html") for h in links)
    errors = [e for e in browser.events if e["method"] == "Runtime.exceptionThrown"
              or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []
    browser.call("Page.navigate", url=links[0])
    browser.wait_event("Page.loadEventFired")
    assert browser.evaluate("document.querySelector('h1').textContent") == "synthetic"
