"""``interp-widget report -o report.html`` renders offline: opened from disk in headless Chromium
with every request other than the file itself aborted (and counted: there must be none), the
attention views paint, the head-scores strip is there, and a click on a head works without a kernel.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ROOT = '[data-testid="iw-attention"]'
REPO = Path(__file__).resolve().parents[2]


def _report_command(out: Path) -> list[str]:
    exe = Path(sys.executable).with_name("interp-widget")
    if exe.exists():  # the console script the README's install puts on PATH
        return [str(exe), "report", "-o", str(out)]
    return [sys.executable, "-c", "import sys; from interp_widget.cli import main; sys.exit(main())",
            "report", "-o", str(out)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run(_report_command(out), capture_output=True, text=True, timeout=180, check=False, env=env)
    assert proc.returncode == 0, f"interp-widget report failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert out.is_file() and out.stat().st_size > 0
    return out


def test_report_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    external = re.findall(
        r"<script[^>]*\ssrc=(?![\"']?data:)|<link[^>]*\shref=(?![\"']?data:)|<(?:img|iframe|source)[^>]*\ssrc=[\"']?(?:https?:)?//"
        r"|@import|url\(\s*[\"']?(?:https?:)?//|import\s*\(?\s*[\"'](?:https?:)?//",
        html, flags=re.IGNORECASE,
    )
    assert external == [], f"the report refers to outside resources: {external[:5]}"


def test_report_renders_offline(report: Path, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    page = context.new_page()
    own = report.resolve().as_uri()
    attempted: list[str] = []
    errors: list[str] = []

    def block(route: Any) -> None:
        if route.request.url == own:
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    context.route("**/*", block)
    page.on("request", lambda r: None if r.url in (own,) or r.url.startswith("data:") else attempted.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(own, wait_until="load")
        views = page.locator(ROOT)
        page.wait_for_selector(f'{ROOT}[data-ready="1"]', timeout=30_000)
        assert views.count() >= 1
        first = views.first
        assert first.get_attribute("data-mode") == "static"

        # the page's own data says what must be drawn
        doc = json.loads(page.locator("script.iw-static-data").first.text_content() or "{}")
        state = doc["state"]
        n_layers, n_heads = state["n_layers"], state["n_heads"]
        assert first.locator('[data-testid="iw-cell"]').count() == n_layers * n_heads
        assert first.locator('[data-testid="iw-scores"]').count() == 1
        assert first.locator('[data-testid="iw-score-canvas"]').count() >= 1
        assert _painted(page, f'{ROOT} [data-testid="iw-detail-canvas"]')
        assert _painted(page, f'{ROOT} [data-testid="iw-score-canvas"]')

        # a click on another head redraws the detail view from the patterns inside the page
        layer, head = n_layers - 1, n_heads - 1
        first.locator(f'[data-testid="iw-cell"][data-layer="{layer}"][data-head="{head}"]').click()
        page.wait_for_function(
            """([sel, l, h]) => { const c = document.querySelector(sel);
                                   return c && c.dataset.layer === String(l) && c.dataset.head === String(h); }""",
            arg=[f'{ROOT} [data-testid="iw-detail-canvas"]', layer, head], timeout=10_000,
        )
        assert f"L{layer}H{head}" in first.locator('[data-testid="iw-detail-title"]').inner_text()
    finally:
        context.close()
    assert sorted(set(attempted)) == [], f"the report tried to load {sorted(set(attempted))}"
    assert errors == [], errors


def _painted(page: Any, selector: str) -> bool:
    """The canvas holds more than one colour (something was drawn on it)."""
    return bool(page.evaluate(
        """(sel) => { const c = document.querySelector(sel); if (!c || !c.width || !c.height) return false;
                      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      for (let i = 4; i < d.length; i += 4)
                        if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) return true;
                      return false; }""",
        selector,
    ))
