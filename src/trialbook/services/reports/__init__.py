"""Reports, the lessons archive: a project or some of its runs as Markdown, HTML, CSV or
JSON. :func:`build_report` makes the document once; each format renders it."""

from __future__ import annotations

import json

from trialbook.errors import InvalidInput
from trialbook.services.reports.build import Report, build_report
from trialbook.services.reports.csv import to_csv
from trialbook.services.reports.html import overlay_svg, to_html
from trialbook.services.reports.markdown import to_markdown

__all__ = ["FORMATS", "Report", "build_report", "overlay_svg", "render", "to_csv", "to_html", "to_markdown"]

FORMATS = ("md", "html", "csv", "json")


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps(report, indent=2, default=str, allow_nan=False) + "\n"
    if fmt == "md":
        return to_markdown(report)
    if fmt == "html":
        return to_html(report)
    if fmt == "csv":
        return to_csv(report)
    raise InvalidInput(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
