// jsdom lacks DragEvent, which @lumino/dragdrop touches when it is imported.
if (typeof window !== "undefined" && typeof (globalThis as { DragEvent?: unknown }).DragEvent === "undefined") {
  (globalThis as { DragEvent?: unknown }).DragEvent = class DragEvent extends MouseEvent {};
}
