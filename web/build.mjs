// Bundles web/src into a directory (default web/dist): index.html, app.js, app.css. The page's
// connection and HTTP calls come from @confab/client, bundled in from its sources
// (clients/typescript/src), which tsconfig.json's `paths` names (esbuild follows it, like tsc).
// Deterministic: the same sources give the same bytes (no timestamps, no hashes of paths).
//   node build.mjs [outdir]
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, "dist"));
mkdirSync(out, { recursive: true });

const common = { bundle: true, minify: true, legalComments: "none", charset: "utf8", logLevel: "warning", absWorkingDir: here };
await build({ ...common, entryPoints: ["src/main.ts"], outfile: join(out, "app.js"), format: "iife", target: ["es2022", "chrome109", "firefox115", "safari16"] });
await build({ ...common, entryPoints: ["src/styles.css"], outfile: join(out, "app.css"), target: ["chrome109", "firefox115", "safari16"] });
copyFileSync(join(here, "src/index.html"), join(out, "index.html"));
console.log(`built ${out}`);
