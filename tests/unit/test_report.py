"""``fracbench report`` on the synthetic built dataset: the page, escaping, and where the gallery draws."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fracbench.cli import main
from fracbench.report.analysis import GalleryPick, analyse_submission, reliability_bins, wilson
from fracbench.report.gallery import GT_COLOUR, PRED_COLOUR, THUMB, draw_gallery, draw_thumbnail, window
from fracbench.report.page import make_report

pytestmark = pytest.mark.slow

PREDICTORS = ("classification", "localization", "segmentation")


@pytest.fixture(scope="module")
def test_gt(built_v1):
    from fracbench.dataset.groundtruth import load_ground_truth

    return load_ground_truth(built_v1, "test")


@pytest.fixture(scope="module")
def subs(test_gt, tmp_path_factory):
    from tests.synthetic_gt import classification_predictions, localization_predictions, segmentation_predictions, submission, write_submission

    tmp = tmp_path_factory.mktemp("report-subs")
    preds = {"classification": classification_predictions(test_gt, separation=1.0),
             "localization": localization_predictions(test_gt, miss=0.4, jitter=0.3),
             "segmentation": segmentation_predictions(test_gt, miss=0.4)}
    out = {t: write_submission(tmp / f"{t}.json", submission(test_gt, t, p)) for t, p in preds.items()}
    evil = submission(test_gt, "classification", preds["classification"])
    evil["model"] = {"name": "<script>alert(1)</script>", "url": "javascript:alert(2)", "description": '"><img src=x onerror=alert(3)>'}
    out["evil"] = write_submission(tmp / "evil.json", evil)
    return out


def _pngs(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


@pytest.mark.parametrize("task", PREDICTORS)
def test_report_page_is_complete_and_offline(task, subs, built_v1, tmp_path, capsys):
    out = tmp_path / "deep" / "report.html"
    assert main(["report", str(subs[task]), "--out", str(out), "--data", str(built_v1), "--bootstrap", "40"]) == 0
    assert f"wrote {out}" in " ".join(capsys.readouterr().out.split())
    page = out.read_text()
    assert "default-src 'none'" in page and "<script" not in page
    assert not re.search(r'(src|href)="(?!data:|#)', page.replace('href="https://example.org"', "")), "nothing is fetched"
    assert "@media print" in page and "Provenance" in page and "split sha256" in page
    titles = re.findall(r"<figcaption>([^<]+)</figcaption><svg", page)
    expected = {"classification": ["ROC", "Precision-recall", "Reliability diagram"],
                "localization": ["ROC (image score = highest box score)", "Precision-recall (IoU 0.5, COCO interpolated)", "FROC"],
                "segmentation": ["Precision-recall (IoU 0.5, COCO interpolated)", "FROC"]}[task]
    assert titles == expected
    assert "by subgroup" in page and ("fracture size" in page) == (task != "classification")
    thumbs = _pngs(page)
    assert thumbs and all(max(t.size) == THUMB for t in thumbs)
    assert page.count('data-image="') == len(thumbs)


def test_user_text_is_escaped(subs, built_v1, tmp_path):
    path, _, _ = make_report(subs["evil"], tmp_path / "evil.html", data=built_v1, n_resamples=20)
    page = path.read_text()
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "javascript:" not in page and "<img src=x" not in page


def test_no_dataset_images_means_no_gallery_and_says_why(subs, built_v1, tmp_path):
    path, report, note = make_report(subs["localization"], tmp_path / "r.html", data=built_v1, gallery=False, n_resamples=20)
    assert report.picks and note and "Not drawn" in path.read_text() and not _pngs(path.read_text())


def test_size_buckets_and_reliability(subs, built_v1, test_gt):
    rep = analyse_submission(subs["localization"], data=built_v1, n_resamples=30)
    sizes = [r for r in rep.forest if r.attribute == "fracture size"]
    fractured = sum(g.label for g in test_gt.images if g.scored)
    negatives = sum(1 - g.label for g in test_gt.images if g.scored)
    assert sum(r.n_fractured for r in sizes) == fractured and all(r.n_images == r.n_fractured + negatives for r in sizes)
    scores, labels = np.array([0.05, 0.05, 0.5, 0.52, 0.99]), np.array([0, 1, 1, 0, 1])
    bins = reliability_bins(scores, labels)
    assert [(b.n, b.rate) for b in bins] == [(2, 0.5), (2, 0.5), (1, 1.0)]
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)


def test_drawn_ground_truth_lands_on_the_scaled_box_edges():
    """Independent of the drawing code: the box edges computed from the window and scale are pure GT colour."""
    image = Image.new("L", (2000, 1600), 90)
    box = (700.0, 500.0, 120.0, 80.0)
    pick = GalleryPick("IMG", "missed fracture", "", focus=box, gt_boxes=[box], pred_boxes=[((720.0, 510.0, 60.0, 40.0), 0.9)])
    for decoded in (image, image.resize((500, 400))):  # full resolution and a 1/4 draft decode
        thumb = draw_thumbnail(decoded, pick, 2000, 1600)
        x0, y0, side, _ = window(pick, 2000, 1600)
        assert side == pytest.approx(0.4 * 1600) and thumb.scale == pytest.approx(THUMB / side)
        px = np.asarray(Image.open(io.BytesIO(thumb.png)).convert("RGB"))
        left, top = round((box[0] - x0) * thumb.scale), round((box[1] - y0) * thumb.scale)
        right, bottom = round((box[0] + box[2] - x0) * thumb.scale), round((box[1] + box[3] - y0) * thumb.scale)
        mid_y, mid_x = (top + bottom) // 2, (left + right) // 2
        for y, x in ((mid_y, left), (mid_y, right), (top, mid_x), (bottom, mid_x)):
            assert tuple(px[y, x]) == GT_COLOUR, (y, x)
        assert tuple(px[mid_y, left + 6]) != GT_COLOUR, "only the outline is drawn"
        pred_left = round((720 - x0) * thumb.scale)
        assert tuple(px[round((530 - y0) * thumb.scale), pred_left]) == PRED_COLOUR
        assert tuple(px[2, 2]) == (90, 90, 90)


def test_gallery_draws_on_the_right_image(subs, built_v1, test_gt):
    """Each thumbnail's undrawn pixels match its own image, decoded independently, not another one."""
    import pyarrow.parquet as pq

    rep = analyse_submission(subs["localization"], data=built_v1, n_resamples=10)
    missed = [p for p in rep.picks if p.kind == "missed fracture"][:3]
    assert missed
    thumbs = draw_gallery(built_v1, rep.gt, missed)
    sizes = {g.image_id: (g.width, g.height) for g in test_gt.images}
    table = pq.read_table(next(Path(built_v1).glob("segmentation/test-*.parquet")), columns=["image_id", "image"])
    images = {i: c["bytes"] for i, c in zip(table.column("image_id").to_pylist(), table.column("image").to_pylist())}
    for t in thumbs:
        px = np.asarray(Image.open(io.BytesIO(t.png)).convert("RGB")).astype(float)
        for bx, by, bw, bh in t.pick.gt_boxes:  # the truth is drawn where it is
            y = round((by + bh / 2 - t.y0) * t.scale)
            assert tuple(px[y, round((bx - t.x0) * t.scale)].astype(int)) == GT_COLOUR
        grey = (px[..., 0] == px[..., 1]) & (px[..., 1] == px[..., 2])

        def diff(image_id: str) -> float:
            w, h = sizes[t.pick.image_id]  # another image is stretched to this one's frame
            full = Image.open(io.BytesIO(images[image_id])).convert("L").resize((w, h))
            side = t.size[0] / t.scale
            ref = np.asarray(full.crop((round(t.x0), round(t.y0), round(t.x0 + side), round(t.y0 + side))).resize(t.size, Image.Resampling.BILINEAR)).astype(float)
            return float(np.abs(ref[grey] - px[..., 0][grey]).mean())

        own = diff(t.pick.image_id)
        other = next(i for i in images if i != t.pick.image_id)
        assert own < 6 and own < diff(other) / 2, (own, diff(other))
