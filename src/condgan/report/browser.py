"""A report page as a person sees it: rendered in headless Chromium, checked, and photographed.

`check_page(page, screenshot)` loads the page at a fixed window width (1280 px) and reports
whether every image loaded (`naturalWidth > 0`) and whether anything overflows horizontally
(`document.documentElement.scrollWidth <= window.innerWidth`); with `screenshot` it also writes a
PNG of the whole page. The checks run in a copy of the page, next to it (so that its relative image
paths resolve), with a small script appended that writes its findings into the DOM, read back
with `chromium --headless --dump-dom`; the report itself carries no script.

Chromium is the Debian package `chromium` (`scripts/setup.sh` installs it when run as root);
`find_chromium` returns None when it is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from condgan.errors import ReportError

WIDTH = 1280
HEIGHT = 900
MAX_SCREENSHOT_HEIGHT = 16_000  # px; longer pages are cut there
_MARK = "condgan-page-check"

_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return (i.getAttribute('src') || '').slice(0, 120); });
  var r = {images: imgs.length, broken: broken, scroll_width: document.documentElement.scrollWidth,
           inner_width: window.innerWidth, scroll_height: document.documentElement.scrollHeight};
  var pre = document.createElement('pre'); pre.id = '%s'; pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>""" % _MARK


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="condgan-chromium-") as profile:
        cmd = [*args[:1], "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
               "--no-first-run", "--disable-extensions", "--allow-file-access-from-files",
               f"--user-data-dir={profile}", *args[1:]]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "HOME": profile})
        except subprocess.TimeoutExpired:
            raise ReportError(f"chromium: no answer within {timeout:.0f} s for {args[-1]}") from None
    if done.returncode != 0:
        raise ReportError(f"chromium exited with {done.returncode} for {args[-1]}: {done.stderr.strip()[-300:]}")
    return done.stdout


def check_page(page: str | Path, screenshot: str | Path | None = None, *, width: int = WIDTH,
               chromium: str | None = None, timeout: float = 60.0) -> dict:
    """Render `page` in headless Chromium at `width` px; see the module docstring.

    Returns:
        {"images": count, "broken_images": count, "broken": [their src], "scroll_width": px,
         "width": the window's inner width in px, "overflow": scroll_width > width,
         "height": the page's scroll height in px, "screenshot": path or None}.
    """
    page = Path(page).resolve()
    exe = chromium or find_chromium()
    if exe is None:
        raise ReportError("chromium: not found (install the Debian package `chromium`, see scripts/setup.sh)")
    if not page.is_file():
        raise ReportError(f"{page}: no such page")
    probe = page.with_name(f".{page.stem}.check.html")
    text = page.read_text()
    probe.write_text(text.replace("</body>", _SCRIPT + "</body>") if "</body>" in text else text + _SCRIPT)
    try:
        dom = _run([exe, f"--window-size={width},{HEIGHT}", "--virtual-time-budget=10000", "--dump-dom",
                    probe.as_uri()], timeout)
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(rf'<pre id="{_MARK}">(.*?)</pre>', dom, re.S)
    if not found:
        raise ReportError(f"chromium: the page check of {page} did not run (no result in the rendered DOM)")
    r = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                   .replace("&gt;", ">"))
    out = {"images": r["images"], "broken_images": len(r["broken"]), "broken": r["broken"],
           "scroll_width": r["scroll_width"], "width": r["inner_width"],
           "overflow": r["scroll_width"] > r["inner_width"], "height": r["scroll_height"], "screenshot": None}
    if screenshot is not None:
        shot = Path(screenshot).resolve()
        height = min(max(r["scroll_height"], HEIGHT), MAX_SCREENSHOT_HEIGHT)
        _run([exe, f"--window-size={width},{height}", "--virtual-time-budget=10000", f"--screenshot={shot}",
              page.as_uri()], timeout)
        if not shot.is_file():
            raise ReportError(f"chromium: no screenshot written to {shot}")
        out["screenshot"] = str(shot)
    return out
