// Bundle the anywidget front ends (src/) with esbuild into interp_widget/widgets/static/ (ESM, no CDN).
//   node scripts/build-widgets.mjs            production build (minified)
//   node scripts/build-widgets.mjs --watch    rebuild on change (use with ANYWIDGET_HMR=1)
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const watch = process.argv.includes("--watch");
const outdir = join(root, "interp_widget/widgets/static");
// one bundle per anywidget entry: src/attention/index.ts, and every src/widgets/NAME.ts (tests excluded)
const entries = { attention: join(root, "src/attention/index.ts") };
for (const f of readdirSync(join(root, "src/widgets")).sort()) {
  if (f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.endsWith(".d.ts")) entries[f.slice(0, -3)] = join(root, "src/widgets", f);
}

// The bundle is also inlined in static HTML (<script type="module">...</script>): refuse text an HTML parser would misread.
const inlineSafe = {
  name: "inline-safe",
  setup(build) {
    build.onEnd((result) => {
      if (result.errors.length) return;
      for (const name of Object.keys(entries)) {
        const file = join(outdir, `${name}.js`);
        const text = readFileSync(file, "utf8");
        if (/<!--|<script|<\/script/i.test(text)) {
          result.errors.push({ text: `${file} contains '<!--', '<script' or '</script', which breaks inlining in HTML` });
        }
      }
    });
  },
};

const options = {
  entryPoints: entries,
  outdir,
  bundle: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  legalComments: "none",
  logLevel: "info",
  plugins: [inlineSafe],
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  const result = await esbuild.build({ ...options, metafile: true });
  if (result.errors.length) process.exit(1);
}
