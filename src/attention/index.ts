// Bundle entry (interp_widget/widgets/static/attention.js): the anywidget module, and, when loaded
// by a static page (<script type="module"> inlined next to `[data-iw-static]` elements), the mount
// of every embedded view.
import { mountAll, mountStatic } from "./static";
import { render } from "./widget";

export { renderAttention, READY_EVENT } from "./view";
export { mountAll, mountStatic };
export default { render };

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => mountAll(document));
  else mountAll(document);
}
