// The generated frame types (src/frames.ts) are what scripts/generate-types.mjs makes of
// docs/asyncapi.yaml: the check fails when the contract changed without a regeneration, and a
// changed contract really gives a different file.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { CLIENT_FRAME_TYPES, ERROR_CODES, SERVER_FRAME_TYPES } from "@confab/client";

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const script = join(packageRoot, "scripts/generate-types.mjs");
const spec = resolve(packageRoot, "../../docs/asyncapi.yaml");

function run(...args: string[]) {
  return spawnSync(process.execPath, [script, ...args], { cwd: packageRoot, encoding: "utf8", timeout: 60_000 });
}

test("src/frames.ts is up to date with docs/asyncapi.yaml", () => {
  const r = run("--check");
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

test("a changed contract makes the check fail, and the new field shows in the generated types", () => {
  const dir = mkdtempSync(join(tmpdir(), "confab-gen-"));
  try {
    const changed = readFileSync(spec, "utf8").replace(
      "          conn_id: {type: string}\n",
      "          conn_id: {type: string}\n          region: {type: string, description: where the gateway runs}\n",
    );
    assert.notEqual(changed, readFileSync(spec, "utf8"), "the edit applied");
    const changedSpec = join(dir, "asyncapi.yaml");
    writeFileSync(changedSpec, changed);
    const stale = run("--spec", changedSpec, "--check");
    assert.equal(stale.status, 1, stale.stdout);
    assert.match(stale.stderr, /stale/);
    const out = join(dir, "frames.ts");
    assert.equal(run("--spec", changedSpec, "--out", out).status, 0);
    const text = readFileSync(out, "utf8");
    assert.match(text, /export interface HelloFrame \{[^}]*\n  \/\*\* where the gateway runs \*\/\n  region\?: string;/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the generated lists cover the contract's frames and error codes", () => {
  assert.ok(SERVER_FRAME_TYPES.includes("message:new") && SERVER_FRAME_TYPES.includes("resume:done") && SERVER_FRAME_TYPES.includes("reaction:removed"));
  assert.ok(CLIENT_FRAME_TYPES.includes("message:send") && CLIENT_FRAME_TYPES.includes("resume") && CLIENT_FRAME_TYPES.includes("reaction:remove"));
  assert.equal(new Set(SERVER_FRAME_TYPES).size, SERVER_FRAME_TYPES.length);
  assert.equal(new Set(CLIENT_FRAME_TYPES).size, CLIENT_FRAME_TYPES.length);
  assert.ok(ERROR_CODES.includes("rate_limited") && ERROR_CODES.includes("resume_unavailable"));
});
