// Build the JupyterLab extension (labextension/) into interp_widget/labextension (a prebuilt extension).
//
//   1. esbuild compiles labextension/src/index.ts to labextension/lib/index.js (JupyterLab packages external);
//   2. @jupyterlab/builder (webpack + module federation) builds the prebuilt extension.
//
// This is what `jupyter labextension build labextension` runs, minus Python: the core package
// metadata comes from the @jupyterlab/core-meta npm package (no network, no jupyterlab needed at
// build time, so an isolated wheel build works). Also checks that labextension/package.json has
// the root package.json's version (the one version of the project).
//   node scripts/build-labextension.mjs [--development]
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ext = join(root, "labextension");
const dev = process.argv.includes("--development");

const rootVersion = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
const extPkg = JSON.parse(readFileSync(join(ext, "package.json"), "utf8"));
if (extPkg.version !== rootVersion) {
  console.error(`labextension/package.json has version ${extPkg.version} but package.json has ${rootVersion}; make them equal`);
  process.exit(1);
}

await esbuild.build({
  entryPoints: [join(ext, "src/index.ts")],
  outfile: join(ext, "lib/index.js"),
  bundle: true,
  format: "esm",
  target: "es2020",
  // everything JupyterLab provides is shared at run time, not bundled
  external: ["@jupyterlab/*", "@lumino/*", "react", "react-dom"],
  logLevel: "warning",
});

const require = createRequire(join(ext, "package.json"));
const coreMeta = require.resolve("@jupyterlab/core-meta/core.package.json");
const builder = require.resolve("@jupyterlab/builder/lib/build-labextension.js");
const corePath = mkdtempSync(join(tmpdir(), "iw-core-"));
try {
  copyFileSync(coreMeta, join(corePath, "package.json"));
  const args = [builder, "--core-path", corePath, ...(dev ? ["--development"] : []), ext];
  execFileSync(process.execPath, args, { cwd: ext, stdio: "inherit" });
} finally {
  rmSync(corePath, { recursive: true, force: true });
}
console.log(`built ${join(root, extPkg.jupyterlab.outputDir.replace(/^\.\.\//, ""))}`);
