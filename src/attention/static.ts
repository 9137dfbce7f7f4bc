// Static pages (the HTML report, notebook snapshots): data embedded as JSON with base64 payloads.
import type { StaticAttention } from "../schema/generated";
import { decodeBase64Payloads } from "../schema/wire";
import { decodeState, decodeWindow } from "./model";
import { staticSource } from "./source";
import { createStore } from "./store";
import { renderAttention } from "./view";

export const STATIC_SELECTOR = '[data-iw-static="attention"]';

/** Render the static view held in `container` (a `[data-iw-static]` element with a `script.iw-static-data` child). */
export function mountStatic(container: HTMLElement): () => void {
  const script = container.querySelector("script.iw-static-data");
  if (!script?.textContent) throw new Error("no embedded data (script.iw-static-data) in this element");
  const doc = decodeBase64Payloads(JSON.parse(script.textContent)) as StaticAttention;
  if (doc.kind !== "attention" || doc.version !== 1) {
    throw new Error(`cannot show embedded data of kind ${JSON.stringify(doc.kind)} version ${doc.version}`);
  }
  const s = doc.state;
  container.dataset.iwMounted = "1";
  container.querySelector(".iw-fallback")?.remove();
  return renderAttention(container, {
    data: decodeState(s),
    selection: createStore({ prompt: s.prompt, layer: s.layer, head: s.head }),
    source: staticSource(doc.patterns, s.n_heads),
    windowSize: s.window_size,
    initialWindow: s.window ? decodeWindow(s.window) : null,
    mode: "static",
  });
}

/** Mount every not-yet-mounted static view in `doc`. */
export function mountAll(doc: Document): void {
  for (const el of Array.from(doc.querySelectorAll<HTMLElement>(`${STATIC_SELECTOR}:not([data-iw-mounted])`))) {
    try {
      mountStatic(el);
    } catch (err) {
      el.dataset.iwMounted = "error";
      const msg = doc.createElement("div");
      msg.textContent = `interp-widget could not render this view: ${err instanceof Error ? err.message : String(err)}`;
      el.append(msg);
    }
  }
}
