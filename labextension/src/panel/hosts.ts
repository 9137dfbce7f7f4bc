// What the panel follows: a notebook or a console, duck-typed (no dependency on @jupyterlab/notebook or
// @jupyterlab/console): its session (kernel), the rendermime that has its kernel's widget manager, and a
// way to put code in a new cell.
import type { ISessionContext } from "@jupyterlab/apputils";
import type { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import type { Widget } from "@lumino/widgets";

interface SharedModel {
  insertCell?(index: number, cell: { cell_type: string; source: string }): unknown;
  setSource?(source: string): void;
}

interface NotebookLike {
  model: { cells: { length: number }; sharedModel: SharedModel } | null;
  activeCellIndex: number;
  rendermime: IRenderMimeRegistry;
  activeCell?: { editor?: unknown; model?: { sharedModel: SharedModel } } | null;
}

interface ConsoleLike {
  rendermime: IRenderMimeRegistry;
  promptCell: { model: { sharedModel: SharedModel } } | null;
  execute?(force?: boolean): Promise<void>;
}

export type HostKind = "notebook" | "console";

/** A notebook or console panel the side panel can follow. */
export interface Host {
  widget: Widget;
  kind: HostKind;
  sessionContext: ISessionContext;
  rendermime: IRenderMimeRegistry;
  /** e.g. "analysis.ipynb" */
  label: string;
  /** Put `code` in a new cell below the active one (notebook) or in the prompt (console); run it if asked. */
  insertCode(code: string, run: boolean, execute: (command: string) => Promise<unknown>): Promise<void>;
}

/** The host for `w`, or null when `w` is neither a notebook nor a console panel. */
export function hostOf(w: Widget | null | undefined): Host | null {
  if (!w) return null;
  const any = w as unknown as {
    sessionContext?: ISessionContext;
    content?: NotebookLike;
    console?: ConsoleLike;
    context?: { path?: string };
    title: { label: string };
  };
  const session = any.sessionContext;
  if (!session || typeof session !== "object" || !("session" in session)) return null;
  if (any.content && "activeCellIndex" in any.content && any.content.rendermime) {
    const nb = any.content;
    return {
      widget: w,
      kind: "notebook",
      sessionContext: session,
      rendermime: nb.rendermime,
      label: any.context?.path ?? any.title.label,
      insertCode: async (code, run, execute) => {
        const model = nb.model;
        if (!model?.sharedModel.insertCell) throw new Error("this notebook cannot take a new cell");
        const index = Math.min(model.cells.length, Math.max(0, nb.activeCellIndex + 1));
        model.sharedModel.insertCell(index, { cell_type: "code", source: code });
        nb.activeCellIndex = index;
        if (run) await execute("notebook:run-cell");
      },
    };
  }
  if (any.console && any.console.rendermime && "promptCell" in any.console) {
    const con = any.console;
    return {
      widget: w,
      kind: "console",
      sessionContext: session,
      rendermime: con.rendermime,
      label: any.title.label,
      insertCode: async (code, run) => {
        const prompt = con.promptCell?.model.sharedModel;
        if (!prompt?.setSource) throw new Error("this console has no prompt cell");
        prompt.setSource(code);
        if (run && con.execute) await con.execute(true);
      },
    };
  }
  return null;
}

/** The text selected in the active cell's editor of `w` (notebook or console), or "". */
export function selectedText(w: Widget | null | undefined): string {
  if (!w) return "";
  const any = w as unknown as {
    content?: { activeCell?: { editor?: EditorLike | null } | null };
    console?: { promptCell?: { editor?: EditorLike | null } | null };
  };
  const editor = any.content?.activeCell?.editor ?? any.console?.promptCell?.editor ?? null;
  if (!editor?.getSelection || !editor.getOffsetAt || !editor.model) return "";
  const sel = editor.getSelection();
  const text = editor.model.sharedModel.getSource();
  const start = editor.getOffsetAt(sel.start);
  const end = editor.getOffsetAt(sel.end);
  return text.slice(Math.min(start, end), Math.max(start, end));
}

interface Position {
  line: number;
  column: number;
}
interface EditorLike {
  getSelection?(): { start: Position; end: Position };
  getOffsetAt?(p: Position): number;
  model?: { sharedModel: { getSource(): string } };
}
