"""``fracbench report``: one self-contained, offline HTML page about one submission.

``analysis`` scores the submission and gathers what the page shows (curves, reliability,
subgroups with CIs, fracture-size buckets, the error-gallery picks); ``gallery`` draws
the thumbnails from the built dataset's images; ``svg`` draws the plots; ``page`` writes
the HTML; ``board`` writes the pages linked from a leaderboard.
"""

from __future__ import annotations

from fracbench.report.analysis import ReportData, analyse_submission
from fracbench.report.page import render_report, write_report

__all__ = ["ReportData", "analyse_submission", "render_report", "write_report"]
