// The side panel's plugin: the panel in the right sidebar, following the active notebook or console;
// commands in the palette and the notebook's context menu (menus and shortcuts are declared in
// schema/panel.json); settings from the same schema.
import { ILabShell, ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from "@jupyterlab/application";
import { ICommandPalette } from "@jupyterlab/apputils";
import { ISettingRegistry } from "@jupyterlab/settingregistry";
import type { Widget } from "@lumino/widgets";
import { hostOf, selectedText } from "./hosts";
import { DEFAULT_SETTINGS, InterpPanel, type PanelSettings } from "./panel";

export const PLUGIN_ID = "interp-widget:panel";
export const COMMANDS = {
  open: "interp-widget:open-panel",
  toggle: "interp-widget:toggle-panel",
  refresh: "interp-widget:refresh-panel",
  showAttention: "interp-widget:show-attention",
  importPackage: "interp-widget:import",
} as const;

function readSettings(settings: ISettingRegistry.ISettings): PanelSettings {
  const c = settings.composite as Partial<PanelSettings>;
  return {
    defaultPrompt: typeof c.defaultPrompt === "string" ? c.defaultPrompt : DEFAULT_SETTINGS.defaultPrompt,
    showUnnamed: typeof c.showUnnamed === "boolean" ? c.showUnnamed : DEFAULT_SETTINGS.showUnnamed,
    runInsertedCode: typeof c.runInsertedCode === "boolean" ? c.runInsertedCode : DEFAULT_SETTINGS.runInsertedCode,
    requestTimeoutSeconds: typeof c.requestTimeoutSeconds === "number" && c.requestTimeoutSeconds > 0
      ? c.requestTimeoutSeconds : DEFAULT_SETTINGS.requestTimeoutSeconds,
  };
}

export const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: "interp-widget: a side panel listing the models, results and views in the active kernel.",
  autoStart: true,
  optional: [ILabShell, ILayoutRestorer, ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell | null,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
  ) => {
    const panel = new InterpPanel((command, args) => app.commands.execute(command, args as never));
    app.shell.add(panel, "right", { rank: 600 });
    restorer?.add(panel, "interp-widget-panel");

    // follow the active notebook / console (keep the last one while a text file or the launcher is active)
    let last: Widget | null = null;
    const follow = () => {
      const current = app.shell.currentWidget;
      const host = hostOf(current);
      if (host) {
        last = current;
        panel.follow(host);
      } else if (last && last.isDisposed) {
        last = null;
        panel.follow(null);
      }
    };
    // register the comm target on every kernel a notebook or console has, so each one's announcement is heard
    const watchAll = () => {
      if (labShell) for (const w of labShell.widgets("main")) {
        const host = hostOf(w);
        if (host) panel.watch(host);
      }
      follow();
    };
    labShell?.currentChanged.connect(follow);
    labShell?.layoutModified.connect(watchAll);
    void app.restored.then(watchAll);

    const { commands } = app;
    commands.addCommand(COMMANDS.open, {
      label: "interp-widget: Open the Side Panel",
      caption: "Models, results and views interp-widget holds in the active kernel",
      execute: () => {
        app.shell.activateById(panel.id);
      },
    });
    commands.addCommand(COMMANDS.toggle, {
      label: "interp-widget: Toggle the Side Panel",
      execute: () => {
        if (panel.isVisible && labShell) labShell.collapseRight();
        else app.shell.activateById(panel.id);
      },
    });
    commands.addCommand(COMMANDS.refresh, {
      label: "interp-widget: Refresh the Side Panel",
      execute: () => panel.refresh(),
    });
    commands.addCommand(COMMANDS.showAttention, {
      label: "interp-widget: Show Attention of the Selected Text",
      caption: "A model variable's attention, or the selected model's attention on the selected text",
      isEnabled: () => panel.current?.client.state === "connected",
      execute: async (args) => {
        const text = typeof args.text === "string" ? args.text : selectedText(app.shell.currentWidget);
        app.shell.activateById(panel.id);
        await panel.showAttention(text);
      },
    });
    commands.addCommand(COMMANDS.importPackage, {
      label: "interp-widget: Import in the Active Kernel",
      isEnabled: () => panel.current?.client.state === "not-imported",
      execute: async () => {
        const kernel = panel.followed?.sessionContext.session?.kernel;
        if (kernel) await kernel.requestExecute({ code: "import interp_widget as iw", store_history: false }).done;
      },
    });
    for (const command of Object.values(COMMANDS)) palette?.addItem({ command, category: "interp-widget" });

    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then((settings) => {
        panel.applySettings(readSettings(settings));
        settings.changed.connect(() => panel.applySettings(readSettings(settings)));
      }).catch((err) => console.warn("interp-widget: panel settings could not be loaded", err));
    }
  },
};
