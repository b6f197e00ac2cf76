"""Headless Chromium: a screenshot of the report's first screen, and the DOM after rendering.

Debian's ``chromium`` package (``scripts/install-browser.sh``). Flags: headless, no sandbox (root in
containers), no GPU, and every background network feature off, with a throwaway profile, so opening
the report makes no request of any kind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import UserError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio")


def find_browser() -> str | None:
    """``$SHARPSET_CHROMIUM`` if set, else the first of chromium / chromium-browser / google-chrome on PATH."""
    env = os.environ.get("SHARPSET_CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    exe = find_browser()
    if exe is None:
        raise UserError("no Chromium found (install it with scripts/install-browser.sh, or set SHARPSET_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="sharpset-chromium-") as prof:
        cmd = [exe, *FLAGS, f"--user-data-dir={prof}", *args]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"chromium did not finish within {timeout} s: {' '.join(cmd)}") from None
    if res.returncode != 0:
        raise UserError(f"chromium failed (exit {res.returncode}): {res.stderr.strip()[-800:]}")
    return res


def screenshot(report_html: str | Path, png_path: str | Path, *, size: tuple[int, int] = (1280, 900),
               timeout: int = 120) -> Path:
    """Render ``report_html`` headless and save its first screen (``size`` pixels) as a PNG."""
    src, png = Path(report_html).resolve(), Path(png_path).resolve()
    if not src.is_file():
        raise UserError(f"{src}: no such report")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    _run([f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", src.as_uri()], timeout)
    if not png.is_file() or png.stat().st_size == 0:
        raise UserError(f"chromium wrote no screenshot to {png}")
    return png


def dump_dom(report_html: str | Path, *, timeout: int = 120) -> str:
    """The page's DOM after it rendered (and after any script ran), serialised as HTML."""
    src = Path(report_html).resolve()
    return _run(["--dump-dom", src.as_uri()], timeout).stdout
