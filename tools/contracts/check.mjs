// Validates an AsyncAPI document with the AsyncAPI Initiative's own parser (the rules of the
// spec and its recommended ruleset): errors fail, warnings are printed.
//   node check.mjs ../../docs/asyncapi.yaml
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node check.mjs ASYNCAPI_FILE");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: path });
// severity: 0 error, 1 warning, 2 information, 3 hint
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics.filter((d) => d.severity <= 1)) {
  const where = d.path.join(".");
  console.log(`${d.severity === 0 ? "error" : "warning"}: ${d.message} (${where}, ${d.code})`);
}
if (errors.length > 0 || !document) {
  console.error(`${path}: ${errors.length} error(s)`);
  process.exit(1);
}
const messages = document.allMessages().length;
console.log(`${path}: valid AsyncAPI ${document.version()}, ${messages} messages, ${diagnostics.length} diagnostics`);
