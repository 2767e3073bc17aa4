// Minifies wasm-bindgen's snippets in a built site (the JavaScript our crates
// bind through `#[wasm_bindgen(module = ...)]`, such as app/js/chart.js) and
// writes their .br and .gz twins again. cargo-leptos minifies only the glue
// (gantry.js); the snippets it copies as written, comments and all.
//
//   node scripts/minify-snippets.mjs target/site/pkg/snippets
//
// esbuild comes from $GANTRY_ESBUILD (scripts/setup.sh site installs it).
import { createRequire } from "node:module";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

const [folder] = process.argv.slice(2);
const esbuildHome = process.env.GANTRY_ESBUILD;
if (!folder || !esbuildHome) {
  console.error("usage: GANTRY_ESBUILD=<esbuild's npm prefix> node scripts/minify-snippets.mjs <site>/pkg/snippets");
  process.exit(2);
}
const esbuild = createRequire(join(esbuildHome, "package.json"))("esbuild");

for (const entry of readdirSync(folder, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith(".js")) continue;
  const path = join(entry.parentPath, entry.name);
  const source = readFileSync(path, "utf8");
  const { code } = esbuild.transformSync(source, { minify: true, format: "esm", target: "es2022", sourcefile: path });
  writeFileSync(path, code);
  writeFileSync(`${path}.br`, brotliCompressSync(code, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: code.length },
  }));
  writeFileSync(`${path}.gz`, gzipSync(code, { level: 9 }));
  console.log(`${path}: ${source.length} -> ${code.length} bytes`);
}
