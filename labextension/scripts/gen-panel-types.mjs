// Generate labextension/src/panel/generated.ts from the side panel's pydantic messages
// (interp_widget/server/messages.py).
//
//   node labextension/scripts/gen-panel-types.mjs           write src/panel/wire-schema.json and src/panel/generated.ts
//   node labextension/scripts/gen-panel-types.mjs --check   exit 1 if either differs from what the models give (drift)
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { panelTypes } from "./panel-types.mjs";

const ext = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = join(ext, "..");
const schemaFile = join(ext, "src/panel/wire-schema.json");
const typesFile = join(ext, "src/panel/generated.ts");
const check = process.argv.includes("--check");

function python() {
  if (process.env.PYTHON) return process.env.PYTHON;
  const venv = join(root, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

const schemaText = execFileSync(python(), ["-m", "interp_widget.server"], {
  cwd: root,
  env: { ...process.env, PYTHONPATH: [root, process.env.PYTHONPATH].filter(Boolean).join(":") },
  encoding: "utf8",
});
const outputs = [
  [schemaFile, schemaText],
  [typesFile, await panelTypes(schemaText)],
];

if (check) {
  const drifted = outputs.filter(([file, text]) => !existsSync(file) || readFileSync(file, "utf8") !== text);
  if (drifted.length) {
    for (const [file] of drifted) console.error(`drift: ${file} does not match interp_widget/server/messages.py`);
    console.error("run `npm run gen:panel-types` and commit the result");
    process.exit(1);
  }
  console.log("panel types match the pydantic models");
} else {
  for (const [file, text] of outputs) writeFileSync(file, text);
  console.log(`wrote ${outputs.map(([f]) => f.slice(root.length + 1)).join(", ")}`);
}
