"""Attention payload benchmark: interp-widget's attention view vs CircuitsVis on the same patterns.

For 12 heads x {128, 512, 1024} tokens (seeded random softmax-normalised causal patterns
``[12, T, T]``, the same float32 tensors for both tools) it measures

(a) bytes before the first paint
    * ours: everything the kernel sends for the widget before the view's first complete paint,
      recorded at the comm layer: the ``comm_open`` (synced state as JSON, incl. the ES module
      text, plus binary buffers), any ``comm_msg`` (state updates, and the replies to the
      commands the view sends while it starts), and the ``display_data`` mimebundle
      (widget-view JSON + the ``text/html`` static snapshot kept for kernel-less reopening);
    * CircuitsVis: the HTML of ``circuitsvis.attention.attention_patterns(tokens, attention)``,
      taken from ``RenderedHTML.local_src`` (CircuitsVis's offline path: it inlines its own
      bundled ``dist/cdn/iife.js``). ``_repr_html_`` is NOT called: it pings google.com and would
      return an unpkg.com CDN import when online.
(b) time to first paint in headless Chromium (Debian's /usr/bin/chromium, every request other
    than the page itself aborted and counted), from navigation start to a painted frame:
    * ours (static): the bundle's static-page path with the same data the widget sends
      (state with thumbnails, scores and the first window; no full patterns), first paint =
      ``data-ready="1"`` on the view's root (set in the animation frame after the grid, the
      scores and the selected head's window are drawn);
    * ours (live): the anywidget entry in a page with a minimal anywidget host whose
      ``invoke`` calls the real Python widget (through Playwright), state as recorded above;
    * CircuitsVis: the ``attention_patterns`` HTML, first paint = its main pattern canvas has
      been drawn at T x T (the next animation frame after it is sized); also reported: every
      head's thumbnail drawn.

Run: ``python benchmarks/attention_payload.py`` (``--sizes 128 512``, ``--repeats 3``, ``--cv-timeout 240``).
Nothing here asserts a timing; it prints measurements and ratios.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
N_HEADS = 12
WORDS = ("the", " cat", " sat", " on", " mat", " and", " a", " dog", " ran", " to", " it", " was", ".", ",",
         " when", " Mary", " John", " gave", " drink", " store", " of", " in", " is", " that")


# --- data -----------------------------------------------------------------------------------------
def make_case(n_tokens: int, n_heads: int = N_HEADS, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Seeded causal attention patterns float32 ``[n_heads, T, T]`` (rows sum to 1) and T tokens."""
    rng = np.random.default_rng(seed + n_tokens)
    logits = rng.standard_normal((n_heads, n_tokens, n_tokens), dtype=np.float32) * 2.0
    causal = np.tril(np.ones((n_tokens, n_tokens), dtype=bool))
    logits = np.where(causal, logits, -np.inf)
    logits -= logits.max(axis=-1, keepdims=True)
    pat = np.exp(logits, dtype=np.float32)
    pat /= pat.sum(axis=-1, keepdims=True)
    tokens = ["<bos>", *(WORDS[i] for i in rng.integers(0, len(WORDS), n_tokens - 1))]
    return pat.astype(np.float32), tokens


# --- CircuitsVis ------------------------------------------------------------------------------------
def circuitsvis_html(patterns: np.ndarray, tokens: list[str]) -> str:
    """The offline HTML CircuitsVis produces (its own bundle inlined); no network is touched."""
    import torch
    from circuitsvis.attention import attention_patterns

    rendered = attention_patterns(tokens=tokens, attention=torch.from_numpy(patterns))
    return str(rendered.local_src)


def circuitsvis_js_bytes() -> int:
    """Size of the bundle CircuitsVis inlines into every output."""
    import circuitsvis

    return (Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js").stat().st_size


# --- ours: what the kernel sends -------------------------------------------------------------------
@dataclass
class WireRecord:
    """Messages the kernel publishes for one widget, with their sizes."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, content: Any, buffers: list[Any] | None) -> None:
        bufs = [bytes(b) for b in (buffers or [])]
        js = json.dumps(content, separators=(",", ":"), default=_json_default).encode()
        self.messages.append({"kind": kind, "content": content, "buffers": bufs,
                              "json_bytes": len(js), "buffer_bytes": sum(len(b) for b in bufs)})

    def total(self, kinds: tuple[str, ...] | None = None) -> int:
        return sum(m["json_bytes"] + m["buffer_bytes"] for m in self.messages if kinds is None or m["kind"] in kinds)


def _json_default(o: Any) -> Any:
    if isinstance(o, (bytes, memoryview)):
        msg = "bytes inside a JSON message part: buffers were not separated"
        raise TypeError(msg)
    return str(o)


def build_widget(patterns: np.ndarray, tokens: list[str]) -> tuple[Any, WireRecord]:
    """Build the attention widget on ``patterns`` (one layer of heads) and record its comm traffic."""
    import comm
    from comm.base_comm import BaseComm

    from interp_widget.widgets.attention import AttentionWidget

    record = WireRecord()

    class RecordingComm(BaseComm):  # what ipykernel's comm would publish on iopub
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            content = {"data": data or {}, "comm_id": self.comm_id, **keys}
            record.add(msg_type, content, buffers)

    previous = comm.create_comm
    comm.create_comm = lambda *a, **k: RecordingComm(*a, **k)  # type: ignore[assignment]
    try:
        w = AttentionWidget.from_patterns(patterns[None], tokens, model_name="benchmark")
        bundle = w._repr_mimebundle_()
    finally:
        comm.create_comm = previous  # type: ignore[assignment]
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
    record.add("display_data", {"data": data, "metadata": metadata}, [])
    return w, record


def open_state(record: WireRecord, comm_id: str) -> tuple[dict[str, Any], list[list[Any]], list[bytes]]:
    """The state the widget's front end holds once it is open: its comm_open plus later state updates."""
    from ipywidgets.widgets.widget import _put_buffers, _remove_buffers

    state: dict[str, Any] = {}
    for m in record.messages:
        d = m["content"].get("data", {})
        if m["content"].get("comm_id") != comm_id:
            continue
        if m["kind"] == "comm_open" or (m["kind"] == "comm_msg" and d.get("method") in ("update", "echo_update")):
            part = json.loads(json.dumps(d["state"]))
            _put_buffers(part, d.get("buffer_paths", []), m["buffers"])
            state.update(part)
    stripped, paths, bufs = _remove_buffers(state)
    return stripped, paths, [bytes(b) for b in bufs]


# --- pages -------------------------------------------------------------------------------------------
PROBE = """
(() => {
  window.__paint = {};
  const t = (k) => { if (window.__paint[k] === undefined) window.__paint[k] = performance.now(); };
  const check = () => {
    const cfg = window.__probe || {};
    if (cfg.kind === 'ours') {
      if (document.querySelector('[data-testid="iw-attention"][data-ready="1"]')) { t('first'); return; }
    } else if (cfg.kind === 'cv') {
      const cs = document.querySelectorAll('canvas');
      if (cs.length && cs[0].width === cfg.n) requestAnimationFrame(() => t('first'));
      if (cs.length > 1 && Array.from(cs).every((c) => c.width === cfg.n)) { requestAnimationFrame(() => t('all')); return; }
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""

LIVE_HOST = """<!doctype html><html><head><meta charset="utf-8"><title>interp-widget live host</title></head>
<body><div id="host"></div>
<script type="application/json" id="wire">__WIRE__</script>
<script type="module">
const wire = JSON.parse(document.getElementById('wire').textContent);
const bytesOf = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return u; };
const state = wire.state;
wire.buffer_paths.forEach((path, i) => {
  let obj = state; for (const k of path.slice(0, -1)) obj = obj[k];
  const u = bytesOf(wire.buffers[i]); obj[path[path.length - 1]] = new DataView(u.buffer);
});
const listeners = {};
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; (listeners['change:' + k] || []).forEach((f) => f()); },
  save_changes: () => {},
  on: (ev, f) => { (listeners[ev] = listeners[ev] || []).push(f); },
  off: (ev, f) => { listeners[ev] = (listeners[ev] || []).filter((g) => g !== f); },
  send: () => {},
};
const invoke = async (name, msg, opts = {}) => {
  const reply = await window.__pyInvoke(name, msg);
  return [reply.response, reply.buffers.map((b) => new DataView(bytesOf(b).buffer))];
};
const url = URL.createObjectURL(new Blob([state._esm], { type: 'text/javascript' }));
const mod = await import(url);
mod.default.render({ model, el: document.getElementById('host'), experimental: { invoke } });
</script></body></html>"""


def live_host_html(state: dict[str, Any], paths: list[list[Any]], bufs: list[bytes]) -> str:
    wire = {"state": state, "buffer_paths": paths, "buffers": [base64.b64encode(b).decode() for b in bufs]}
    return LIVE_HOST.replace("__WIRE__", json.dumps(wire).replace("</", "<\\/"))


def static_page_html(widget: Any) -> str:
    """The static-page path with exactly the data the widget sends (no full patterns)."""
    from interp_widget.widgets._static import embed_view, static_document

    doc = static_document(widget.data, widget.state_model(), pattern_budget=0)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>interp-widget</title></head><body>"
            + embed_view(doc) + "</body></html>")


@dataclass
class PaintResult:
    first_ms: float | None
    all_ms: float | None
    blocked: list[str]
    errors: list[str]


def first_paint(browser: Any, path: Path, probe: dict[str, Any], timeout_s: float,
                invoke: Any = None) -> PaintResult:
    """Open ``path`` (file://) in a fresh context, everything else blocked; time to the probe's paint."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    page = ctx.new_page()
    blocked: list[str] = []
    errors: list[str] = []
    own = path.resolve().as_uri()

    def route(r: Any) -> None:
        if r.request.url == own:
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    if invoke is not None:
        page.expose_function("__pyInvoke", invoke)
    page.add_init_script(f"window.__probe = {json.dumps(probe)};\n{PROBE}")
    try:
        page.goto(own, wait_until="commit", timeout=timeout_s * 1000)
        key = "all" if probe["kind"] == "cv" else "first"
        page.wait_for_function(f"() => window.__paint && window.__paint.{key} !== undefined",
                               timeout=timeout_s * 1000, polling=50)
    except Exception as e:
        errors.append(type(e).__name__ + ": " + str(e).splitlines()[0])
    try:
        marks = page.evaluate("() => window.__paint || {}")
    except Exception:
        marks = {}
    ctx.close()
    return PaintResult(marks.get("first"), marks.get("all"), blocked, errors)


def make_invoke(widget: Any, record: WireRecord) -> Any:
    """Playwright-exposed ``invoke``: the real widget's command handler; replies are recorded."""
    counter = iter(range(1_000_000))

    def invoke(name: str, msg: Any) -> dict[str, Any]:
        before = len(record.messages)
        content = {"id": f"bench-{next(counter)}", "kind": "anywidget-command", "name": name, "msg": msg}
        widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})
        replies = [m for m in record.messages[before:] if m["kind"] == "comm_msg"]
        for m in replies:
            m["kind"] = "command_reply"
        reply = replies[-1]
        inner = reply["content"]["data"]["content"]
        return {"response": inner["response"], "buffers": [base64.b64encode(b).decode() for b in reply["buffers"]]}

    return invoke


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:.0f} B"


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 1024])
    ap.add_argument("--repeats", type=int, default=3, help="page loads per measurement of ours (median)")
    ap.add_argument("--cv-repeats", type=int, default=1, help="page loads per CircuitsVis measurement")
    ap.add_argument("--cv-timeout", type=float, default=240.0, help="seconds to wait for CircuitsVis to paint")
    ap.add_argument("--no-circuitsvis", action="store_true", help="measure ours only (quick)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="iw-bench-"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n in args.sizes:
            patterns, tokens = make_case(n)
            t0 = time.perf_counter()
            widget, record = build_widget(patterns, tokens)
            build_s = time.perf_counter() - t0
            state, paths, bufs = open_state(record, widget.comm.comm_id)

            # ours, live: the anywidget entry with a minimal host; command replies recorded
            live_path = tmp / f"ours-live-{n}.html"
            live_path.write_text(live_host_html(state, paths, bufs), encoding="utf-8")
            live = [first_paint(browser, live_path, {"kind": "ours"}, 60, make_invoke(widget, record))
                    for _ in range(args.repeats)]
            # the replies of one page load are what the view needs before its first paint
            n_replies = sum(1 for m in record.messages if m["kind"] == "command_reply")
            reply_bytes = record.total(("command_reply",)) / max(1, args.repeats)
            ours_bytes = record.total(("comm_open", "comm_msg", "display_data")) + reply_bytes

            # ours, static page with the same data
            static_path = tmp / f"ours-static-{n}.html"
            static_path.write_text(static_page_html(widget), encoding="utf-8")
            static = [first_paint(browser, static_path, {"kind": "ours"}, 60) for _ in range(args.repeats)]

            # CircuitsVis
            cv_bytes = cv_js = 0
            cv_build_s = 0.0
            cv: list[PaintResult] = []
            if not args.no_circuitsvis:
                t0 = time.perf_counter()
                cv_html = ("<!doctype html><html><head><meta charset='utf-8'></head><body>"
                           + circuitsvis_html(patterns, tokens) + "</body></html>")
                cv_build_s = time.perf_counter() - t0
                cv_path = tmp / f"circuitsvis-{n}.html"
                cv_path.write_text(cv_html, encoding="utf-8")
                cv_bytes = len(cv_html.encode())
                cv_js = circuitsvis_js_bytes()
                del cv_html
                cv = [first_paint(browser, cv_path, {"kind": "cv", "n": n}, args.cv_timeout)
                      for _ in range(args.cv_repeats)]
                cv_path.unlink()

            opened = next(m for m in record.messages
                          if m["kind"] == "comm_open" and m["content"]["comm_id"] == widget.comm.comm_id)
            display = next(m for m in record.messages if m["kind"] == "display_data")
            snapshot = len(json.dumps(display["content"]["data"].get("text/html", "")).encode())
            esm = len(json.dumps(str(state.get("_esm", ""))).encode())
            row = {
                "tokens": n, "heads": N_HEADS,
                "ours_bytes": ours_bytes,
                "ours_bytes_no_snapshot": ours_bytes - snapshot,
                "ours_state_json": opened["json_bytes"], "ours_esm": esm,
                "ours_buffers": sum(m["buffer_bytes"] for m in record.messages if m["kind"] in ("comm_open", "comm_msg")),
                "ours_other_comm": record.total(("comm_open", "comm_msg")) - opened["json_bytes"]
                - sum(m["buffer_bytes"] for m in record.messages if m["kind"] in ("comm_open", "comm_msg")),
                "ours_display_data": display["json_bytes"], "ours_snapshot": snapshot,
                "ours_command_replies": reply_bytes, "ours_commands_per_load": n_replies / max(1, args.repeats),
                "ours_build_s": build_s,
                "ours_static_ms": median([r.first_ms for r in static if r.first_ms is not None]),
                "ours_live_ms": median([r.first_ms for r in live if r.first_ms is not None]),
                "cv_bytes": cv_bytes, "cv_js": cv_js, "cv_build_s": cv_build_s,
                "cv_first_ms": median([r.first_ms for r in cv if r.first_ms is not None]),
                "cv_all_ms": median([r.all_ms for r in cv if r.all_ms is not None]),
                "blocked_requests": sorted({u for r in (*live, *static, *cv) for u in r.blocked}),
                "errors": [e for r in (*live, *static, *cv) for e in r.errors],
            }
            rows.append(row)
            replies = row["ours_commands_per_load"]
            print(f"[{n} tokens] ours {fmt_bytes(ours_bytes)}: widget state JSON {fmt_bytes(opened['json_bytes'])} "
                  f"(ES module {fmt_bytes(esm)}), binary buffers {fmt_bytes(row['ours_buffers'])}, other comm "
                  f"messages {fmt_bytes(row['ours_other_comm'])}, display_data {fmt_bytes(display['json_bytes'])} "
                  f"(text/html snapshot {fmt_bytes(snapshot)}), {replies:.0f} command repl"
                  f"{'y' if replies == 1 else 'ies'} {fmt_bytes(reply_bytes)}; "
                  f"CircuitsVis {fmt_bytes(cv_bytes)} (inlined JS {fmt_bytes(cv_js)}); "
                  f"build: ours {build_s:.2f} s, CircuitsVis {cv_build_s:.2f} s", flush=True)
            if row["errors"]:
                print("   errors: " + "; ".join(row["errors"][:4]), flush=True)
        browser.close()

    print()
    print("12 heads, seeded random causal patterns; headless Chromium "
          f"({CHROMIUM} {' '.join(CHROMIUM_ARGS)}); every request but the page itself blocked.")
    head = (f"{'tokens':>6} | {'ours bytes':>10} | {'CV bytes':>10} | {'bytes ratio':>11} | "
            f"{'ratio w/o snapshot':>18} | {'ours paint':>10} | {'(live host)':>11} | {'CV paint':>9} | "
            f"{'(CV all heads)':>14} | {'time ratio':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ours_t, cv_t = r["ours_static_ms"], r["cv_first_ms"]
        if not r["cv_bytes"]:  # --no-circuitsvis
            print(f"{r['tokens']:>6} | {fmt_bytes(r['ours_bytes']):>10} | {'-':>10} | {'-':>11} | {'-':>18} | "
                  f"{fmt_ms(ours_t):>10} | {fmt_ms(r['ours_live_ms']):>11} | {'-':>9} | {'-':>14} | {'-':>10}")
            continue
        if ours_t and cv_t:
            time_ratio = f"{cv_t / ours_t:9.1f}x"
        elif ours_t:
            time_ratio = f">{args.cv_timeout * 1000 / ours_t:8.0f}x"
        else:
            time_ratio = "-"
        cv_paint = fmt_ms(cv_t) if cv_t else f">{args.cv_timeout:.0f} s"
        cv_all = fmt_ms(r["cv_all_ms"]) if r["cv_all_ms"] else f">{args.cv_timeout:.0f} s"
        print(f"{r['tokens']:>6} | {fmt_bytes(r['ours_bytes']):>10} | {fmt_bytes(r['cv_bytes']):>10} | "
              f"{r['cv_bytes'] / r['ours_bytes']:10.1f}x | {r['cv_bytes'] / r['ours_bytes_no_snapshot']:17.1f}x | "
              f"{fmt_ms(ours_t):>10} | {fmt_ms(r['ours_live_ms']):>11} | {cv_paint:>9} | {cv_all:>14} | {time_ratio:>10}")
    blocked = sorted({u for r in rows for u in r["blocked_requests"]})
    print(f"requests blocked (other than the pages themselves): {len(blocked)}" + (f" {blocked[:5]}" if blocked else ""))
    print("bytes ratio = CircuitsVis HTML / everything ours sends before first paint (state, buffers, command replies,")
    print("display_data incl. the text/html snapshot); 'w/o snapshot' leaves the snapshot out.")
    print("time ratio = CircuitsVis first paint (main pattern drawn) / ours (static page, data-ready=1).")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
