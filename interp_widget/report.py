"""Static HTML report: the attention views and head scores of a model in ONE self-contained file.

The page inlines the same view bundle as the notebook widget and embeds the data (base64);
it needs no kernel and makes no network request (a Content-Security-Policy forbids any).

>>> from interp_widget.report import write_report
>>> write_report("report.html")                      # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "induction-2l"
#: a random-looking block repeated: induction heads light up on the second copy
DEFAULT_TEXT = "Jq7Xm2Rv9KwZ4bTn8Lp3 Jq7Xm2Rv9KwZ4bTn8Lp3"
#: full patterns are embedded up to this many bytes (float16, before base64)
DEFAULT_PATTERN_BUDGET = 16_000_000

_PAGE_CSS = """
:root { color-scheme: light dark; }
body { margin: 0; padding: 16px 24px; font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
       background: #ffffff; color: rgba(0, 0, 0, 0.87); }
@media (prefers-color-scheme: dark) { body { background: #1e1e1e; color: rgba(255, 255, 255, 0.87); } }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
.meta { opacity: 0.7; font-size: 13px; } code, .prompt { font-family: ui-monospace, Menlo, Consolas, monospace; }
.prompt { white-space: pre-wrap; word-break: break-all; font-size: 13px; }
table.scores { border-collapse: collapse; font-size: 12px; margin: 4px 16px 12px 0; display: inline-table; }
table.scores td, table.scores th { border: 1px solid rgba(128, 128, 128, 0.35); padding: 2px 6px; text-align: right; }
table.scores caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
td.best { font-weight: 700; outline: 2px solid #1976d2; }
"""


def _best_head(scores: dict[str, Any], kind: str, n_heads: int) -> tuple[int, int] | None:
    vals = scores.get(kind)
    if vals is None:
        return None
    flat = np.nan_to_num(np.asarray(vals, dtype=np.float64), nan=-np.inf).ravel()
    if not np.isfinite(flat).any():
        return None
    layer, head = divmod(int(np.argmax(flat)), n_heads)
    return layer, head


def _scores_tables(scores: Any) -> str:
    """HTML tables (layers x heads) of model-level head scores (a HeadScores)."""
    parts = []
    for kind in scores.kinds:
        mat = np.asarray(scores.scores[kind].float().cpu().numpy(), dtype=np.float64)
        best = _best_head({kind: mat}, kind, scores.n_heads)
        head_row = "".join(f"<th>H{h}</th>" for h in range(scores.n_heads))
        rows = []
        for layer in range(scores.n_layers):
            cells = "".join(
                f'<td class="{"best" if best == (layer, h) else ""}" data-layer="{layer}" data-head="{h}">'
                f'{"n/a" if not np.isfinite(mat[layer, h]) else f"{mat[layer, h]:.2f}"}</td>'
                for h in range(scores.n_heads))
            rows.append(f"<tr><th>L{layer}</th>{cells}</tr>")
        parts.append(f'<table class="scores" data-kind="{html.escape(kind)}"><caption>{html.escape(kind.replace("_", " "))}'
                     f'</caption><tr><th></th>{head_row}</tr>{"".join(rows)}</table>')
    meta = scores.meta
    note = (f'<p class="meta">Mean over {meta.get("n_prompts")} seeded prompts of [BOS] + R + R, R = {meta.get("seq_len")} '
            f'random tokens (seed {meta.get("seed")}); 1.0 = all attention on the target tokens.</p>')
    return note + "".join(parts)


def build_report(
    model: Any = DEFAULT_MODEL,
    texts: str | Sequence[str] | None = None,
    *,
    layer: int | None = None,
    head: int | None = None,
    window_size: int = 64,
    pattern_budget: int = DEFAULT_PATTERN_BUDGET,
    model_scores: bool = True,
    title: str | None = None,
) -> str:
    """The report's HTML text. ``model``: a Model or anything :func:`interp_widget.load` accepts.

    ``texts``: one or several prompts (default: a random-looking block repeated). The view
    opens on ``layer``/``head``, by default the head with the highest induction score on the
    first prompt. ``model_scores`` adds tables of :func:`interp_widget.head_scores`.
    """
    from interp_widget import __version__
    from interp_widget.models.model import Model
    from interp_widget.widgets._patterns import collect
    from interp_widget.widgets._static import bundle_source, embed_view, fallback_html, static_document
    from interp_widget.widgets.attention import AttentionWidget

    source = bundle_source()  # fail early, before running a model, if the front end is missing
    if not isinstance(model, Model):
        from interp_widget.models.loading import load

        model = load(model)
    prompts = [texts] if isinstance(texts, str) else list(texts or [DEFAULT_TEXT])
    data = collect(model, prompts)
    if layer is None or head is None:
        best = _best_head(data.scores[0], "induction", data.n_heads) or (0, 0)
        layer = best[0] if layer is None else layer
        head = best[1] if head is None else head
    widget = AttentionWidget(data, layer=layer, head=head, window_size=window_size, snapshot=False)
    try:
        doc = static_document(data, widget.state_model(), pattern_budget=pattern_budget)
    finally:
        widget.close()
    view = embed_view(doc, fallback=fallback_html(data, 0, widget.thumb_size), bundle=source)
    scores_html = ""
    if model_scores:
        from interp_widget.analysis.heads import head_scores

        seq_len = max(1, min(40, (model.spec.n_ctx - 1) // 2))
        scores_html = ("<h2>Head scores on random repeated tokens</h2>"
                       + _scores_tables(head_scores(model, seq_len=seq_len)))
    spec = model.spec
    name = html.escape(model.name)
    page_title = html.escape(title or f"interp-widget report: {model.name}")
    prompt_html = "".join(f'<div class="prompt" data-testid="report-prompt">{html.escape(t)}</div>' for t in data.texts)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{page_title}</title>
<style>{_PAGE_CSS}</style>
</head>
<body>
<h1>{page_title}</h1>
<p class="meta" data-testid="report-meta">{name}: {spec.n_layers} layers x {spec.n_heads} heads, d_model={spec.d_model},
context {spec.n_ctx} tokens. Generated by interp-widget {html.escape(__version__)} on {stamp}; this file works offline.</p>
<h2>Prompt{"s" if len(data.texts) > 1 else ""}</h2>
{prompt_html}
<h2>Attention</h2>
<p class="meta">Rows are destination (query) tokens, columns source (key) tokens. Click a head in the grid; hover the detail view for weights.</p>
{view}
{scores_html}
</body>
</html>
"""


def write_report(path: str | Path = "report.html", model: Any = DEFAULT_MODEL, texts: str | Sequence[str] | None = None,
                 **kwargs: Any) -> Path:
    """Write :func:`build_report`'s page to ``path``; returns the path."""
    out = Path(path)
    page = build_report(model, texts, **kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
