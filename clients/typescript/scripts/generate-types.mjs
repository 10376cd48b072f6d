// Generates src/frames.ts, the TypeScript types of every WebSocket frame, from the protocol's
// contract docs/asyncapi.yaml (AsyncAPI 3.0, validated in CI): one interface per message, the
// shared schemas (Message, Thread, Attachment, the enums), the unions ClientFrame (what
// `operations.clientSends` lists) and ServerFrame (`operations.serverSends`), maps from each
// `type` to its frame, and the lists of types as constants.
//
//   node scripts/generate-types.mjs                     # writes src/frames.ts
//   node scripts/generate-types.mjs --check             # exit 1 when src/frames.ts is stale
//   node scripts/generate-types.mjs --spec FILE [--out FILE] [--check]
//
// Deterministic: the same document gives the same bytes. test/generated.test.ts runs --check.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = resolve(here, "..");
const repoRoot = resolve(packageRoot, "../..");

/** Names for the shared schemas whose keys in the document are not good TypeScript names. */
const SCHEMA_NAMES = { uuid: "Uuid", cmid: "ClientMsgId", kind: "ChannelKind", presence: "PresenceStatus" };

const pascal = (s) =>
  s
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join("");

const schemaName = (key) => SCHEMA_NAMES[key] ?? pascal(key);

/** A `/** ... *\/` comment (or nothing), indented. */
function doc(text, indent) {
  if (!text) return "";
  const lines = String(text).trim().replace(/\*\//g, "*\\/").split("\n");
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} *${l ? ` ${l}` : ""}`).join("\n")}\n${indent} */\n`;
}

/** What a property's comment says: its description, default and bounds. */
function describe(schema) {
  const parts = [];
  if (schema.description) parts.push(String(schema.description).trim());
  const bounds = [];
  if (schema.minLength !== undefined) bounds.push(`min length ${schema.minLength}`);
  if (schema.maxLength !== undefined) bounds.push(`max length ${schema.maxLength}`);
  if (schema.minItems !== undefined) bounds.push(`min items ${schema.minItems}`);
  if (schema.maxItems !== undefined) bounds.push(`max items ${schema.maxItems}`);
  if (schema.minimum !== undefined) bounds.push(`minimum ${schema.minimum}`);
  if (schema.pattern !== undefined) bounds.push(`pattern \`${schema.pattern}\``);
  if (schema.default !== undefined) bounds.push(`default ${JSON.stringify(schema.default)}`);
  if (bounds.length) parts.push(`(${bounds.join("; ")})`);
  return parts.join(" ");
}

const refName = (ref) => {
  const m = /^#\/components\/schemas\/(.+)$/.exec(ref);
  if (!m) throw new Error(`unsupported $ref ${ref}`);
  return schemaName(m[1]);
};

/** A long union, one member per line. */
const wrapUnion = (t) => (t.length > 90 && !t.includes("\n") ? `\n  | ${t.split(" | ").join("\n  | ")}` : t);

const needsParens = (t) => /[|&]/.test(t) && !/^[{(]/.test(t);

/** The TypeScript type of a JSON schema (the subset the contract uses). */
function tsType(schema, indent) {
  if (schema === undefined || schema === true) return "unknown";
  if (schema.$ref) return refName(schema.$ref);
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) return [...new Set(alternatives.map((s) => tsType(s, indent)))].join(" | ");
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.length > 1) return types.map((t) => tsType({ ...schema, type: t }, indent)).join(" | ");
  switch (types[0]) {
    case "string":
      return schema.format === "uuid" ? "Uuid" : "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      const item = tsType(schema.items, indent);
      return needsParens(item) ? `(${item})[]` : `${item}[]`;
    }
    case "object":
    case undefined:
      if (schema.properties) return `{\n${properties(schema, indent + "  ")}${indent}}`;
      if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
        return `Record<string, ${tsType(schema.additionalProperties, indent)}>`;
      }
      return types[0] === "object" ? "Record<string, unknown>" : "unknown";
    default:
      throw new Error(`unsupported schema type ${JSON.stringify(schema.type)}`);
  }
}

/** The members of an object type, one per line, each with its comment. */
function properties(schema, indent) {
  const required = new Set(schema.required ?? []);
  let out = "";
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    out += doc(describe(prop), indent);
    const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
    out += `${indent}${key}${required.has(name) ? "" : "?"}: ${tsType(prop, indent)};\n`;
  }
  return out;
}

/** The `type` values a message's payload may have. */
function frameTypes(payload) {
  const t = payload.properties?.type;
  if (!t) throw new Error("a message payload without a `type` property");
  if (t.const !== undefined) return [t.const];
  if (t.enum) return t.enum;
  throw new Error(`a \`type\` that is neither const nor enum: ${JSON.stringify(t)}`);
}

/** The frame's interface name: from its one `type` (`message:ack` -> MessageAckFrame), or from
 * the message's key when the payload allows several types (reactionChanged). */
function frameName(key, payload) {
  const types = frameTypes(payload);
  return `${pascal(types.length === 1 ? types[0] : key)}Frame`;
}

const messageKeyOfRef = (ref) => {
  const m = /^#\/channels\/([^/]+)\/messages\/(.+)$/.exec(ref);
  if (!m) throw new Error(`unsupported operation message $ref ${ref}`);
  return m[2];
};

/** Generates the text of src/frames.ts from the text of an AsyncAPI document. */
export function generate(yamlText, sourceLabel = "docs/asyncapi.yaml") {
  const spec = parse(yamlText);
  const { schemas = {}, messages = {} } = spec.components ?? {};
  const channelMessages = Object.values(spec.channels ?? {})[0]?.messages ?? {};
  const componentKey = (channelKey) => {
    const ref = channelMessages[channelKey]?.$ref;
    const m = ref && /^#\/components\/messages\/(.+)$/.exec(ref);
    if (!m) throw new Error(`channel message ${channelKey} is not a $ref to components/messages`);
    return m[1];
  };
  const operationKeys = (action) =>
    Object.values(spec.operations ?? {})
      .filter((op) => op.action === action)
      .flatMap((op) => op.messages.map((m) => componentKey(messageKeyOfRef(m.$ref))));
  // `receive`: the server receives what clients send
  const clientKeys = operationKeys("receive");
  const serverKeys = operationKeys("send");
  if (!clientKeys.length || !serverKeys.length) throw new Error("operations must list what clients and the server send");

  let out = "";
  out += "// Generated by clients/typescript/scripts/generate-types.mjs from " + sourceLabel + "\n";
  out += `// (${spec.info?.title} ${spec.info?.version}): the type of every WebSocket frame a client sends or\n`;
  out += "// receives. Do not edit: run `npm run generate`. test/generated.test.ts fails when it is stale.\n";
  out += "/* eslint-disable */\n\n";

  out += "// ---- shared schemas ----\n\n";
  for (const [key, schema] of Object.entries(schemas)) {
    const name = schemaName(key);
    out += doc(describe(schema), "");
    if ((schema.type === "object" || schema.properties) && schema.properties) {
      out += `export interface ${name} {\n${properties(schema, "  ")}}\n\n`;
    } else {
      let t = tsType(schema, "");
      if (t === name) t = tsType({ ...schema, format: undefined }, ""); // Uuid itself
      t = wrapUnion(t);
      out += `export type ${name} =${t.startsWith("\n") ? "" : " "}${t};\n\n`;
    }
  }

  // one interface per payload; messages sharing a payload (YAML anchors) share the interface
  const byPayload = new Map();
  const names = new Map();
  const byKey = new Map();
  out += "// ---- frames ----\n\n";
  for (const [key, message] of Object.entries(messages)) {
    const payload = message.payload;
    const json = JSON.stringify(payload);
    const existing = byPayload.get(json);
    let name = frameName(key, payload);
    if (names.has(name) && names.get(name) !== json) name = `${pascal(key)}Frame`;
    if (existing) {
      // the same payload (a YAML anchor): an alias of the first message's interface
      byKey.set(key, existing);
      const alias = `${pascal(key)}Frame`;
      if (alias !== existing && !names.has(alias)) {
        names.set(alias, json);
        out += doc(message.summary ?? `The same frame as ${existing}.`, "");
        out += `export type ${alias} = ${existing};\n\n`;
      }
      continue;
    }
    byPayload.set(json, name);
    names.set(name, json);
    byKey.set(key, name);
    const text = [message.summary, message.description].filter(Boolean).join("\n\n");
    out += doc(text || `\`${frameTypes(payload).join("` / `")}\``, "");
    out += `export interface ${name} {\n${properties(payload, "  ")}}\n\n`;
  }

  const union = (keys) => [...new Set(keys.map((k) => byKey.get(k)))];
  const typeMap = (keys) => {
    const entries = new Map();
    for (const k of keys) for (const t of frameTypes(messages[k].payload)) if (!entries.has(t)) entries.set(t, byKey.get(k));
    return [...entries];
  };
  const emitUnion = (name, comment, keys) => {
    out += doc(comment, "");
    out += `export type ${name} =\n${union(keys).map((n) => `  | ${n}`).join("\n")};\n\n`;
  };
  emitUnion("ClientFrame", "Every frame a client sends (`operations.clientSends`).", clientKeys);
  emitUnion("ServerFrame", "Every frame the server sends (`operations.serverSends`).", serverKeys);
  for (const [side, keys] of [["Client", clientKeys], ["Server", serverKeys]]) {
    const entries = typeMap(keys);
    out += doc(`Each \`type\` a ${side.toLowerCase()} frame may have, to its frame.`, "");
    out += `export interface ${side}FrameByType {\n${entries.map(([t, n]) => `  ${JSON.stringify(t)}: ${n};`).join("\n")}\n}\n\n`;
    out += `export type ${side}FrameType = keyof ${side}FrameByType;\n\n`;
    out += doc(`Every \`type\` of a ${side.toLowerCase()} frame, in the contract's order.`, "");
    out += `export const ${side.toUpperCase()}_FRAME_TYPES: readonly ${side}FrameType[] = [\n${entries.map(([t]) => `  ${JSON.stringify(t)},`).join("\n")}\n];\n\n`;
  }
  const codes = schemas.errorCode?.enum;
  if (codes) {
    out += doc("Every error code (`components.schemas.errorCode`).", "");
    out += `export const ERROR_CODES: readonly ErrorCode[] = [\n${codes.map((c) => `  ${JSON.stringify(c)},`).join("\n")}\n];\n`;
  }
  return out;
}

function main(argv) {
  const arg = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const specPath = resolve(arg("--spec") ?? join(repoRoot, "docs/asyncapi.yaml"));
  const outPath = resolve(arg("--out") ?? join(packageRoot, "src/frames.ts"));
  const label = relative(repoRoot, specPath).startsWith("..") ? specPath : relative(repoRoot, specPath);
  const text = generate(readFileSync(specPath, "utf8"), label);
  if (argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(outPath, "utf8");
    } catch {
      /* missing: stale */
    }
    if (current !== text) {
      console.error(`${relative(process.cwd(), outPath)} is stale: ${label} changed. Run: (cd clients/typescript && npm run generate)`);
      process.exit(1);
    }
    console.log(`${relative(process.cwd(), outPath)} is up to date with ${label}`);
    return;
  }
  writeFileSync(outPath, text);
  console.log(`wrote ${relative(process.cwd(), outPath)} from ${label}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
