"""Static HTML for the attention view: the same ES module bundle inlined, data embedded as base64.

Used by the notebook snapshot (``text/html`` beside the live widget's view) and by
``interp-widget report``. The page needs no kernel and makes no network request. Where
scripts do not run (an untrusted notebook, a sanitising viewer) a PNG of the head grid and
a plain-HTML summary show instead.
"""

from __future__ import annotations

import html
import json
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from interp_widget.schema import AttentionState, StaticAttention, decode, encode
from interp_widget.widgets._patterns import AttentionData

STATIC_DIR = Path(__file__).parent / "static"
BUNDLE = STATIC_DIR / "attention.js"

#: light-theme colours of the heatmaps (the views use the same defaults)
BG_RGB = (255, 255, 255)
HEAT_RGB = (8, 69, 148)


#: output mime type that interp-widget's JupyterLab extension renders (see labextension/src/snapshot.ts)
SNAPSHOT_MIME = "application/vnd.interp-widget.snapshot+json"


class FrontEndMissingError(RuntimeError):
    """The built JavaScript bundle is not there (a source checkout that was never built)."""


def add_snapshot(bundle: Any, enabled: bool, html: Callable[[], str]) -> Any:
    """Add a static snapshot to a widget's mime bundle: ``text/html`` = ``html()``, plus the marker that the
    JupyterLab extension claims (live view if the kernel has this widget, else the snapshot). Nothing is
    added when ``enabled`` is false or the front end is not built (the live view reports that itself)."""
    if bundle is None or not enabled:
        return bundle
    data, metadata = bundle
    try:
        data["text/html"] = html()
    except FrontEndMissingError:
        return data, metadata
    data[SNAPSHOT_MIME] = {"version": 1, "html": "text/html"}
    return data, metadata


def bundle_source(path: Path = BUNDLE) -> str:
    """The view bundle's source, checked to be safe to inline in a ``<script>`` element."""
    if not path.is_file():
        msg = (f"interp-widget's front end is not built ({path} is missing); in a source checkout run "
               "`npm install && npm run build`, or install the wheel")
        raise FrontEndMissingError(msg)
    return inline_script_text(path.read_text(encoding="utf-8"))


def inline_script_text(src: str) -> str:
    """Make JavaScript safe inside an HTML ``<script>``: ``</script`` is escaped; ``<!--`` is refused."""
    if re.search(r"<!--|<script", src, flags=re.IGNORECASE):
        msg = "script text contains '<!--' or '<script', which an HTML parser would misread"
        raise ValueError(msg)
    return re.sub(r"</(script)", r"<\\/\1", src, flags=re.IGNORECASE)


def json_for_script(obj: Any) -> str:
    """JSON text safe inside ``<script type="application/json">`` (``</`` escaped as ``<\\/``)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def static_document(
    data: AttentionData,
    state: AttentionState,
    *,
    pattern_budget: int,
) -> dict[str, Any]:
    """The :class:`StaticAttention` JSON (base64 ``data``) for a page showing ``state``.

    Every head's full pattern is embedded for the prompts that fit ``pattern_budget`` bytes
    (float16, before base64), so the page's detail view works for every head; otherwise only
    the thumbnails and the selected head's first window travel.
    """
    patterns: list[Any] = []
    used = 0
    for pat in data.patterns:
        if used + pat.nbytes <= pattern_budget:
            patterns.append(encode(pat.astype(np.float16)))
            used += pat.nbytes
        else:
            patterns.append(None)
    doc = StaticAttention(state=state, patterns=patterns)
    return dict(b64_tree(doc.model_dump()))


def b64_tree(node: Any) -> Any:
    """A JSON-able copy of a dumped payload tree: bytes as base64, non-finite floats as null (static HTML only)."""
    import base64

    if isinstance(node, dict):
        return {k: (base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else b64_tree(v))
                for k, v in node.items() if not (k in ("scale", "offset") and v is None)}
    if isinstance(node, list):
        return [b64_tree(v) for v in node]
    if isinstance(node, float) and not np.isfinite(node):
        return None
    return node


def embed_view(doc: dict[str, Any], *, fallback: str = "", bundle: str | None = None) -> str:
    """An HTML fragment that renders ``doc`` with the inlined bundle (``fallback`` shows until it runs)."""
    src = bundle if bundle is not None else bundle_source()
    return (
        '<div class="iw-static" data-iw-static="attention">'
        f'<div class="iw-fallback">{fallback}</div>'
        f'<script type="application/json" class="iw-static-data">{json_for_script(doc)}</script>'
        "</div>"
        f'<script type="module">{src}</script>'
    )


# --- a script-free fallback: PNG of the head grid + text ---------------------------------
def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``[h, w, 3]`` uint8 image as PNG (no dependencies)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def grid_image(thumbs: np.ndarray, *, cell: int = 24, gap: int = 2) -> np.ndarray:
    """Tile ``[n_layers, n_heads, t, t]`` values in [0, 1] into one RGB image (layers down, heads across)."""
    n_layers, n_heads, t, _ = thumbs.shape
    reps = max(1, cell // t)
    size = t * reps
    img = np.full((n_layers * (size + gap) + gap, n_heads * (size + gap) + gap, 3), 200, dtype=np.uint8)
    bg, heat = np.array(BG_RGB, np.float32), np.array(HEAT_RGB, np.float32)
    for layer in range(n_layers):
        for head in range(n_heads):
            v = np.clip(thumbs[layer, head], 0.0, 1.0).repeat(reps, 0).repeat(reps, 1)[..., None]
            y, x = gap + layer * (size + gap), gap + head * (size + gap)
            img[y:y + size, x:x + size] = (bg + (heat - bg) * v).round().astype(np.uint8)
    return img


def fallback_html(data: AttentionData, prompt: int, thumb_size: int) -> str:
    """Plain HTML (an image and a summary) that needs no script."""
    import base64

    thumbs = decode(data.thumbnails(prompt, thumb_size))
    png = base64.b64encode(png_bytes(grid_image(thumbs))).decode("ascii")
    lines = []
    for kind, vals in data.scores[prompt].items():
        flat = np.nan_to_num(np.asarray(vals, dtype=np.float64), nan=-np.inf)
        best = int(np.argmax(flat))
        layer, head = divmod(best, data.n_heads)
        lines.append(f"{html.escape(kind.replace('_', ' '))}: L{layer}H{head} ({float(flat.flat[best]):.2f})")
    n = len(data.tokens[prompt])
    caption = (f"{html.escape(data.model_name)}: {data.n_layers} layers x {data.n_heads} heads on {n} tokens"
               + (f"; best heads: {'; '.join(lines)}" if lines else ""))
    return (f'<img alt="attention patterns of every head (rows: layers, columns: heads)" '
            f'src="data:image/png;base64,{png}"><div class="iw-fallback-caption">{caption}</div>')
