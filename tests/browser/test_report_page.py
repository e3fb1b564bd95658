"""``fracbench report`` pages in headless Chromium: they open offline with no console error, draw, and print.

Reports of the synthetic built dataset's test split (localization: curves, forest plot, gallery
thumbnails; segmentation: masks) are opened from ``file://`` with the DevTools driver of
``test_board_page``; the screenshot is kept at ``tests/artifacts/report.png``.
"""

from __future__ import annotations

import base64

import pytest

from tests.browser.test_board_page import ARTIFACT, browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.slow
SHOT = ARTIFACT.parent / "report.png"


@pytest.fixture(scope="module")
def reports(built_v1, tmp_path_factory):
    from fracbench.dataset.groundtruth import load_ground_truth
    from fracbench.report.page import make_report
    from tests.synthetic_gt import localization_predictions, segmentation_predictions, submission, write_submission

    gt = load_ground_truth(built_v1, "test")
    tmp = tmp_path_factory.mktemp("report-pages")
    out = {}
    for task, preds in (("localization", localization_predictions(gt, miss=0.4)), ("segmentation", segmentation_predictions(gt, miss=0.4))):
        doc = submission(gt, task, preds)
        doc["model"]["name"] = "<script>alert(1)</script> & co"
        path, _, note = make_report(write_submission(tmp / f"{task}.json", doc), tmp / f"{task}.html", data=built_v1, n_resamples=40)
        assert note is None
        out[task] = path
    return out


def _open(cdp, path):
    cdp.call("Page.navigate", url="about:blank")
    cdp.wait_event("Page.loadEventFired")
    cdp.events.clear()
    cdp.call("Page.navigate", url=path.as_uri())
    cdp.wait_event("Page.loadEventFired")


def _errors(cdp) -> list:
    bad = [e for e in cdp.events if e["method"] in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")]
    bad += [e for e in cdp.events if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning")]
    bad += [e for e in cdp.events if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning")]
    return bad


@pytest.mark.parametrize("task", ["localization", "segmentation"])
def test_report_opens_offline_without_console_errors(browser, reports, task):  # noqa: F811
    _open(browser, reports[task])
    assert _errors(browser) == []
    images = browser.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert images and all(done and width > 0 for done, width in images), "every thumbnail decodes"
    assert browser.evaluate("document.querySelectorAll('svg.plot').length") >= 3
    assert browser.evaluate("document.querySelector('h1').textContent") == "<script>alert(1)</script> & co"
    assert browser.evaluate("document.querySelectorAll('script').length") == 0
    if task == "localization":
        shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        SHOT.write_bytes(base64.b64decode(shot["data"]))
        assert SHOT.stat().st_size > 20_000


def test_print_layout(browser, reports):  # noqa: F811
    _open(browser, reports["localization"])
    columns = "getComputedStyle(document.querySelector('.gallery')).gridTemplateColumns.split(' ').length"
    width = "getComputedStyle(document.body).maxWidth"
    assert browser.evaluate(width) == "1180px"
    browser.call("Emulation.setEmulatedMedia", media="print")
    try:
        assert browser.evaluate(columns) == 4 and browser.evaluate(width) == "none"
        pdf = browser.call("Page.printToPDF", printBackground=True)
        assert base64.b64decode(pdf["data"])[:5] == b"%PDF-"
    finally:
        browser.call("Emulation.setEmulatedMedia", media="")
    assert _errors(browser) == []
