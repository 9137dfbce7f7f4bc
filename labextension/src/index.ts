// JupyterLab extension of interp-widget:
//   * "interp-widget: About" in the command palette (shows the installed version);
//   * static snapshots of interp-widget views in notebooks opened without the widget's kernel.
//   * the side panel (./panel/plugin.ts): what interp_widget holds in the active kernel.
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { Dialog, ICommandPalette, showDialog } from "@jupyterlab/apputils";
import { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import { version } from "../package.json";
import { panelPlugin } from "./panel/plugin";
import { registerSnapshotRenderer } from "./snapshot";

export const COMMAND_ABOUT = "interp-widget:about";

export function aboutText(): string {
  return `interp-widget ${version}: a notebook microscope for neural networks. `
    + "Show every attention head of a model with interp_widget.attention(model, text).";
}

const about: JupyterFrontEndPlugin<void> = {
  id: "interp-widget:about",
  description: "interp-widget: the About command.",
  autoStart: true,
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null) => {
    app.commands.addCommand(COMMAND_ABOUT, {
      label: "interp-widget: About",
      caption: `Show the interp-widget version (${version})`,
      execute: async () => {
        await showDialog({ title: `interp-widget ${version}`, body: aboutText(), buttons: [Dialog.okButton()] });
        return version;
      },
    });
    palette?.addItem({ command: COMMAND_ABOUT, category: "interp-widget" });
  },
};

const snapshots: JupyterFrontEndPlugin<void> = {
  id: "interp-widget:snapshots",
  description: "interp-widget: show a static snapshot of a view when its kernel-side widget is gone.",
  autoStart: true,
  requires: [IRenderMimeRegistry],
  activate: (_app: JupyterFrontEnd, rendermime: IRenderMimeRegistry) => {
    registerSnapshotRenderer(rendermime);
  },
};

export default [about, snapshots, panelPlugin];
