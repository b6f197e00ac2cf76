"""The report in a real browser (headless Chromium): it renders, the plots are there, hostile text
stays text and runs nothing; and the first-screen screenshot quickstart keeps."""

from __future__ import annotations

import re
import struct

import pytest
from report_helpers import IMG, SCRIPT, shared_pipeline

from sharpset.report import build_report
from sharpset.report.browser import dump_dom, find_browser, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_browser() is None, reason="no Chromium: install it with scripts/install-browser.sh "
                                                      "(Debian's chromium package) or set SHARPSET_CHROMIUM"),
]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory, tiny_model_dir):
    pipe = shared_pipeline(tmp_path_factory, tiny_model_dir)
    out = tmp_path_factory.mktemp("browser-report")
    return build_report([pipe], out)["html"]


def test_report_renders_with_plots_and_runs_no_planted_script(report_html):
    dom = dump_dom(report_html)
    # rendered: the page's own title and every section, plots as inline SVG
    assert re.search(r"<title>tiny pipeline · sharpset report</title>", dom)
    for s in ("summary", "effects", "size", "invariance", "shape", "token-shift", "training", "answers", "pipeline"):
        assert f'id="{s}"' in dom, s
    assert len(re.findall(r"<svg\b", dom)) >= 8
    assert len(re.findall(r"<(circle|rect|path)\b", dom)) > 50
    # the planted payloads are text: serialised escaped, never as elements
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
    assert SCRIPT not in dom and IMG not in dom
    assert not re.search(r"<script\b", dom, re.I) and not re.search(r"<img\b", dom, re.I)
    # had they run, document.title would read PWNED and <body> would carry data-pwned
    assert "PWNED" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "data-pwned" not in re.search(r"<body[^>]*>", dom).group(0)


def test_screenshot_of_the_first_screen(report_html, tmp_path):
    png = screenshot(report_html, tmp_path / "shot" / "report.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000  # a rendered page, not a blank one (a blank 1280x900 PNG is ~6 KB)
