// Embedded views on static pages: read a `[data-iw-static=KIND]` element's JSON (base64 payloads decoded)
// and mount every such element of a document once. Shared by the static views of every widget kind.
import { decodeBase64Payloads } from "../schema/wire";

export function embedded(container: HTMLElement, kind: string): unknown {
  const script = container.querySelector("script.iw-static-data");
  if (!script?.textContent) throw new Error("no embedded data (script.iw-static-data) in this element");
  const doc = decodeBase64Payloads(JSON.parse(script.textContent)) as { kind: string; version: number };
  if (doc.kind !== kind || doc.version !== 1) {
    throw new Error(`cannot show embedded data of kind ${JSON.stringify(doc.kind)} version ${doc.version}`);
  }
  container.dataset.iwMounted = "1";
  container.querySelector(".iw-fallback")?.remove();
  return doc;
}

/** Mount every not-yet-mounted embedded view of `kind` in `doc`. */
export function mountAll(doc: Document, kind: string, mount: (el: HTMLElement) => unknown): void {
  for (const el of Array.from(doc.querySelectorAll<HTMLElement>(`[data-iw-static="${kind}"]:not([data-iw-mounted])`))) {
    try {
      mount(el);
    } catch (err) {
      el.dataset.iwMounted = "error";
      const msg = doc.createElement("div");
      msg.textContent = `interp-widget could not render this view: ${err instanceof Error ? err.message : String(err)}`;
      el.append(msg);
    }
  }
}
