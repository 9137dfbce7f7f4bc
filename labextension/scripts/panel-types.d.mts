/** TypeScript source for the schema text that `python -m interp_widget.server` prints. */
export function panelTypes(schemaText: string): Promise<string>;
