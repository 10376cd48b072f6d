// End-to-end tests of the web client against a real `confab serve`, in headless Chromium.
//   CONFAB_BIN=path/to/confab node tests/e2e.mjs
// Env: CONFAB_BIN (default ~/.cache/confab-target/debug/confab), CONFAB_WEB_DIR (serve the page
// from this directory instead of the one embedded in the binary; scripts/web-e2e.sh sets it to
// web/dist), SCREENSHOTS (default ../docs/screenshots), E2E_TIMEOUT_MS (whole run, default 420000),
// KEEP=1 keeps the server's temp directory and logs.

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import { CHROMIUM, Server, until } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.CONFAB_BIN ?? path.join(os.homedir(), ".cache/confab-target/debug/confab");
const SHOTS = path.resolve(process.env.SCREENSHOTS ?? path.join(here, "../../docs/screenshots"));
const RESULTS = path.join(here, "../test-results");
const GLOBAL_TIMEOUT = Number(process.env.E2E_TIMEOUT_MS ?? 420_000);
const TEST_TIMEOUT = 90_000;
const RUN = Date.now().toString(36).slice(-5);

const server = new Server(BIN, { webDir: process.env.CONFAB_WEB_DIR });
let browser;
const killAll = () => {
  try {
    server.proc?.kill("SIGKILL");
  } catch {}
};
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => (killAll(), process.exit(130)));
const globalTimer = setTimeout(() => {
  console.error(`\nFAIL: the whole run exceeded ${GLOBAL_TIMEOUT} ms`);
  killAll();
  process.exit(2);
}, GLOBAL_TIMEOUT);

// ---------------------------------------------------------------- helpers

const msg = (page, text) => page.locator("article.msg", { hasText: text });
const channelButton = (page, name) => page.locator(`button.chan[data-name="${name}"]`);
const composer = (page) => page.locator(".channel .composer-input");

async function countOf(page, text) {
  return page.evaluate((t) => [...document.querySelectorAll(".channel .messages article .msg-text")].filter((e) => e.textContent.includes(t)).length, text);
}

async function channelTexts(page) {
  return page.evaluate(() => [...document.querySelectorAll(".channel .messages article .msg-text")].map((e) => e.textContent));
}

async function expectText(page, locator, what, timeout = 15_000) {
  await locator.first().waitFor({ state: "visible", timeout }).catch(() => {
    throw new Error(`${what}: not visible within ${timeout} ms`);
  });
}

async function send(page, text) {
  const box = composer(page);
  await box.click();
  await box.fill(text);
  await box.press("Enter");
  await expectText(page, msg(page, text), `own message "${text}"`);
}

async function openChannel(page, name) {
  await channelButton(page, name).click();
  await until(`#${name} to open`, async () => (await page.locator(".channel-title").textContent())?.includes(name));
}

/** A third client: a bare WebSocket in its own browser context, for sending as someone. */
async function wsClient(base) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/healthz`);
  const wsUrl = base.replace(/^http/, "ws") + "/ws";
  return {
    /** Sends texts in order over one socket; resolves with their seqs once all are acked. */
    send: (token, channel, texts, extra = {}) =>
      page.evaluate(
        async ({ wsUrl, token, channel, texts, extra }) => {
          const ws = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`);
          await new Promise((res, rej) => {
            ws.onopen = res;
            ws.onerror = () => rej(new Error("websocket refused"));
          });
          // one send in flight at a time; a rate_limited answer (the server caps each user's sends a
          // second) is retried with the same client_msg_id a moment later, as a real client would
          const acks = new Map();
          const ids = texts.map((_, i) => `e2e-${Date.now()}-${i}`);
          const sendNth = (i) => ws.send(JSON.stringify({ type: "message:send", channel_id: channel, text: texts[i], client_msg_id: ids[i], ...extra }));
          const done = new Promise((res, rej) => {
            ws.onmessage = (e) => {
              const f = JSON.parse(e.data);
              if (f.type === "message:ack") {
                acks.set(f.client_msg_id, f.seq);
                if (acks.size === texts.length) res();
                else sendNth(acks.size);
              } else if (f.type === "error" && f.code === "rate_limited") {
                setTimeout(() => sendNth(acks.size), 200);
              } else if (f.type === "error") rej(new Error(`${f.code}: ${f.message}`));
            };
            setTimeout(() => rej(new Error("no acks within 60 s")), 60_000);
          });
          sendNth(0);
          await done;
          // close cleanly (and wait for it): the server then forgets this device at once
          await new Promise((res) => {
            ws.onclose = res;
            ws.close(1000);
            setTimeout(res, 5000);
          });
          return ids.map((id) => acks.get(id));
        },
        { wsUrl, token, channel, texts, extra },
      ),
    close: () => ctx.close(),
  };
}

/** A real PNG: a w×h RGB gradient. */
function png(w, h) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) {
      raw[row + 1 + x * 3] = 255 - Math.round((120 * y) / h);
      raw[row + 2 + x * 3] = Math.round(90 + (110 * x) / w);
      raw[row + 3 + x * 3] = Math.round(60 + (160 * y) / h);
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

const fileInput = (page) => page.locator(".channel input[type=file]");
const chips = (page, state = "") => page.locator(`.channel .chip${state ? `.chip-${state}` : ""}`);
const loaded = (img) => img.evaluate((i) => i.complete && i.naturalWidth > 0);

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

// ---------------------------------------------------------------- tests

const tests = [];
const pageErrors = [];
function watch(page, who) {
  if (process.env.DEBUG_FRAMES)
    page.on("websocket", (ws) => {
      ws.on("framesent", (f) => String(f.payload).includes("presence") && console.log(`  ${who} >`, f.payload));
      ws.on("framereceived", (f) => String(f.payload).includes("presence") && console.log(`  ${who} <`, f.payload));
      ws.on("close", () => console.log(`  ${who} socket closed`));
    });
  page.on("pageerror", (e) => {
    console.error(`  [${who} page error] ${e.message}`);
    pageErrors.push(`${who}: ${e.message}`);
  });
}
const test = (name, fn) => tests.push({ name, fn });
const ctx = {};

test("sign in from the URL fragment; the token leaves the address bar", async () => {
  for (const who of ["alice", "bob"]) {
    const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await c.newPage();
    watch(page, who);
    await page.goto(server[who]);
    await until(`${who}'s page to load #general`, async () => (await page.locator(".channel-title").textContent())?.includes("general"));
    const url = page.url();
    if (url.includes("token=")) throw new Error(`token still in the address bar: ${url}`);
    const stored = await page.evaluate(() => sessionStorage.getItem("confab.token"));
    if (stored !== server[`${who}Token`]) throw new Error("token not kept in sessionStorage");
    await until(`${who}'s name in the sidebar`, async () => (await page.locator(".me-name").textContent()) === who);
    ctx[who] = page;
  }
  // and a bad token gets the sign-in form
  const c = await browser.newContext();
  const page = await c.newPage();
  await page.goto(`${server.base}/#token=not-a-token`);
  await expectText(page, page.getByRole("alert").filter({ hasText: /refused/ }), "the sign-in error");
  await page.getByLabel("Access token").fill(server.bobToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await until("signed in with a pasted token", async () => (await page.locator(".me-name").textContent().catch(() => "")) === "bob");
  await c.close();
});

test("alice sends, bob sees it live (once); mentions render as @name", async () => {
  const { alice, bob } = ctx;
  const text = `hello from alice ${RUN}`;
  await send(alice, text);
  await expectText(bob, msg(bob, text), "alice's message on bob's page");
  if ((await countOf(bob, text)) !== 1) throw new Error("message shown more than once");
  // mention autocompletion: @bo -> @bob -> <@bob_id> on the wire -> @bob highlighted for bob
  const box = composer(alice);
  await box.click();
  await box.pressSequentially("ping @bo");
  await expectText(alice, alice.getByRole("option", { name: "@bob" }), "the mention suggestion");
  await box.press("Enter");
  await box.pressSequentially(`look ${RUN}`);
  await box.press("Enter");
  const m = msg(bob, `look ${RUN}`);
  await expectText(bob, m.locator(".mention-me", { hasText: "@bob" }), "the @bob mention on bob's page");
});

test("typing indicator", async () => {
  const { alice, bob } = ctx;
  await composer(bob).click();
  await composer(bob).pressSequentially("typing something");
  await expectText(alice, alice.locator(".channel .typing", { hasText: "bob is typing…" }), "bob is typing…");
  await composer(bob).fill("");
});

test("bob replies in a thread; alice sees the reply count and the reply", async () => {
  const { alice, bob } = ctx;
  const parent = `deployment of the thread parent ${RUN}`;
  await send(alice, parent);
  const m = msg(bob, parent);
  await expectText(bob, m, "the parent on bob's page");
  await m.hover();
  await m.getByRole("button", { name: "Reply in thread" }).click();
  const reply = bob.getByRole("textbox", { name: "Reply in thread" });
  await reply.waitFor({ state: "visible", timeout: 10_000 });
  await reply.fill(`a thread reply ${RUN}`);
  await reply.press("Enter");
  await expectText(bob, bob.locator(".thread-replies article", { hasText: `a thread reply ${RUN}` }), "the reply in bob's thread pane");
  const link = msg(alice, parent).locator(".thread-link", { hasText: "1 reply" });
  await expectText(alice, link, "'1 reply' under the parent on alice's page");
  await link.click();
  await expectText(alice, alice.locator(".thread-replies article", { hasText: `a thread reply ${RUN}` }), "the reply in alice's thread pane");
  await shot(alice, "thread");
  await alice.keyboard.press("Escape");
  await until("the thread pane to close", async () => !(await alice.locator(".thread-pane").isVisible()));
  await bob.getByRole("button", { name: "Close thread" }).click();
});

test("a reaction by one shows for the other", async () => {
  const { alice, bob } = ctx;
  const text = `react to this ${RUN}`;
  await send(alice, text);
  const m = msg(alice, text);
  await m.hover();
  await m.getByRole("button", { name: "Add reaction" }).click();
  await alice.getByRole("menuitem", { name: "React with tada" }).click();
  const onBob = msg(bob, text).locator('.reaction[data-emoji="tada"]');
  await expectText(bob, onBob, "alice's reaction on bob's page");
  if ((await onBob.locator(".reaction-count").textContent()) !== "1") throw new Error("reaction count is not 1");
  await onBob.click();
  await until("2 reactions on alice's page", async () => (await m.locator('.reaction[data-emoji="tada"] .reaction-count').textContent()) === "2");
});

test("edit (Up arrow in the empty composer) and delete propagate", async () => {
  const { alice, bob } = ctx;
  const text = `to be edited ${RUN}`;
  await send(alice, text);
  await expectText(bob, msg(bob, text), "the message on bob's page");
  await composer(alice).click();
  await composer(alice).press("ArrowUp");
  const editor = alice.getByRole("textbox", { name: "Edit message" });
  await editor.waitFor({ state: "visible", timeout: 5000 });
  await editor.fill(`edited version ${RUN}`);
  await editor.press("Enter");
  const edited = msg(bob, `edited version ${RUN}`);
  await expectText(bob, edited, "the edit on bob's page");
  await expectText(bob, edited.locator(".msg-edited"), "(edited) on bob's page");
  const doomed = `delete me ${RUN}`;
  await send(alice, doomed);
  await expectText(bob, msg(bob, doomed), "the doomed message on bob's page");
  alice.once("dialog", (d) => d.accept());
  const m = msg(alice, doomed);
  await m.hover();
  await m.getByRole("button", { name: "Delete message" }).click();
  await until("the text to disappear on bob's page", async () => (await countOf(bob, doomed)) === 0);
  await expectText(bob, bob.locator("article .msg-deleted"), "the tombstone on bob's page");
});

test("files: alice attaches an image and a text file; bob sees the preview and downloads the text", async () => {
  const { alice, bob } = ctx;
  await openChannel(alice, "files");
  await openChannel(bob, "files");
  const image = png(240, 160);
  const notes = Buffer.from(`Release notes ${RUN}\n${"a line of the notes\n".repeat(3500)}`);
  await alice.getByRole("button", { name: "Attach files" }).waitFor({ state: "visible", timeout: 5000 });
  await fileInput(alice).setInputFiles([
    { name: "sunset.png", mimeType: "image/png", buffer: image },
    { name: "release-notes.txt", mimeType: "text/plain", buffer: notes },
  ]);
  await until("both chips uploaded", async () => (await chips(alice, "done").count()) === 2);
  if (await alice.locator(".channel .composer-send").isDisabled()) throw new Error("Send is disabled with every upload done");
  const text = `the files for the release ${RUN}`;
  await send(alice, text);
  await until("the chips to go once sent", async () => (await chips(alice).count()) === 0);
  const m = msg(bob, text);
  await expectText(bob, m, "the message with files on bob's page");
  await until("bob's image preview to load", () => loaded(m.locator(".file-thumb img")));
  await until("alice's own image preview to load", () => loaded(msg(alice, text).locator(".file-thumb img")));
  const card = m.locator(".file-card", { hasText: "release-notes.txt" });
  await expectText(bob, card, "the text file's card");
  const size = await card.locator(".file-size").textContent();
  if (!/^\d+(\.\d)? KB · TXT$/.test(size)) throw new Error(`card size: ${size}`);
  const [dl] = await Promise.all([bob.waitForEvent("download", { timeout: 15_000 }), card.getByRole("link", { name: /^Download release-notes\.txt/ }).click()]);
  const got = readFileSync(await dl.path());
  if (!got.equals(notes)) throw new Error(`downloaded ${got.length} bytes that differ from the ${notes.length} sent`);
  // the preview opens the lightbox; Escape closes it and focus returns to the preview
  await m.getByRole("button", { name: /^View image sunset\.png/ }).click();
  const dialog = bob.getByRole("dialog", { name: "sunset.png" });
  await dialog.waitFor({ state: "visible", timeout: 5000 });
  await until("the image in the lightbox", () => dialog.locator("img").evaluate((i) => i.complete && i.naturalWidth === 240));
  await bob.keyboard.press("Escape");
  await until("the lightbox to close", async () => (await bob.locator("dialog.lightbox").count()) === 0);
  await until("focus back on the preview", () => bob.evaluate(() => document.activeElement?.classList.contains("file-thumb")));
  await bob.evaluate(() => document.activeElement?.blur());
  await bob.mouse.move(640, 790);
  await shot(bob, "files");
  ctx.filesMessage = text;
});

test("files: a type the server refuses shows its 415 on the chip, and nothing is sent", async () => {
  const { alice, bob } = ctx;
  await fileInput(alice).setInputFiles({ name: "setup.exe", mimeType: "application/x-msdownload", buffer: Buffer.from("MZ not really a program") });
  const chip = alice.locator('.channel .chip[data-name="setup.exe"]');
  await expectText(alice, chip.locator(".chip-error", { hasText: /^file_type_not_allowed: application\/x-msdownload/ }), "the 415 on the chip");
  if (!(await alice.locator(".channel .composer-send").isDisabled())) throw new Error("Send is enabled with a failed upload");
  const text = `no program attached ${RUN}`;
  await composer(alice).fill(text);
  await composer(alice).press("Enter");
  if ((await composer(alice).inputValue()) !== text) throw new Error("Enter sent the message despite the failed upload");
  if ((await alice.locator(".channel .msg-pending").count()) !== 0) throw new Error("a pending message appeared");
  await chip.getByRole("button", { name: "Remove setup.exe" }).click();
  await until("the failed chip to go", async () => (await chips(alice).count()) === 0);
  // with the chip gone it sends: once, so the Enter above sent nothing
  await composer(alice).press("Enter");
  await expectText(bob, msg(bob, text), "the text on bob's page");
  if ((await countOf(bob, text)) !== 1) throw new Error("the text arrived more than once");
  if ((await msg(bob, text).locator("[data-file-id]").count()) !== 0) throw new Error("the refused file came along");
});

test("files: a deleted file shows 'File deleted'; deleting the message deletes its files", async () => {
  const { alice, bob } = ctx;
  // a file with no text, then deleted on its own (DELETE /api/files/{id}): file:deleted
  await fileInput(alice).setInputFiles({ name: "figures.csv", mimeType: "text/csv", buffer: Buffer.from("q,revenue\n1,100\n2,140\n") });
  await until("the csv uploaded", async () => (await chips(alice, "done").count()) === 1);
  await alice.locator(".channel .composer-send").click();
  const card = bob.locator(".channel .file-card", { hasText: "figures.csv" });
  await expectText(bob, card, "the csv's card on bob's page");
  const fileId = await card.getAttribute("data-file-id");
  await server.api(server.aliceToken, `/api/files/${fileId}`, { method: "DELETE" });
  await expectText(bob, bob.locator(".channel .file-gone", { hasText: "File deleted" }), "'File deleted' on bob's page");
  await expectText(alice, alice.locator(".channel .file-gone", { hasText: "File deleted" }), "'File deleted' on alice's page");
  // from history (which still lists the file) the page learns it from the 410
  await bob.reload();
  await until("bob's page back on #files", async () => (await bob.locator(".channel-title").textContent().catch(() => ""))?.includes("files"));
  await until("the preview loaded from history", () => loaded(msg(bob, ctx.filesMessage).locator(".file-thumb img")));
  await expectText(bob, bob.locator(".channel .file-gone", { hasText: "File deleted" }), "'File deleted' after a reload");
  if ((await bob.locator(".channel .file-card", { hasText: "figures.csv" }).count()) !== 0) throw new Error("the deleted csv still has a card");
  // the message with the image and the text file: alice deletes it, its files go with it
  const text = ctx.filesMessage;
  const ids = await msg(bob, text).locator("[data-file-id]").evaluateAll((els) => els.map((e) => e.dataset.fileId));
  if (ids.length !== 2) throw new Error(`expected 2 attachments, found ${ids.length}`);
  alice.once("dialog", (d) => d.accept());
  const m = msg(alice, text);
  await m.hover();
  await m.getByRole("button", { name: "Delete message" }).click();
  await until("the message to go on bob's page", async () => (await countOf(bob, text)) === 0);
  await expectText(bob, bob.locator(".channel article .msg-deleted"), "the tombstone on bob's page");
  await until("its attachments to go on bob's page", async () => (await bob.locator(`.channel [data-file-id="${ids[0]}"], .channel [data-file-id="${ids[1]}"]`).count()) === 0);
  for (const id of ids) {
    const res = await fetch(`${server.base}/api/files/${id}`, { headers: { Authorization: `Bearer ${server.bobToken}` } });
    if (res.status !== 410) throw new Error(`GET /api/files/${id} after the message was deleted: ${res.status}, not 410`);
  }
  await openChannel(alice, "general");
  await openChannel(bob, "general");
});

test("search with in:#general and a misspelt word finds the message, highlighted", async () => {
  const { bob } = ctx;
  const q = bob.getByRole("searchbox", { name: "Search messages" });
  await q.fill("in:#general deploymnet");
  await q.press("Enter");
  const hit = bob.locator(".search-results .hit", { hasText: `thread parent ${RUN}` });
  await expectText(bob, hit, "the search hit", 20_000);
  const marked = await hit.locator("mark").allTextContents();
  if (!marked.some((t) => t.toLowerCase() === "deployment")) throw new Error(`no highlighted match: ${JSON.stringify(marked)}`);
  await shot(bob, "search");
  await hit.click();
  await until("the hit revealed in the channel", async () => (await bob.evaluate(() => document.activeElement?.textContent ?? "")).includes(`thread parent ${RUN}`));
  await bob.keyboard.press("Escape");
  await until("search to close", async () => !(await bob.locator(".search-pane").isVisible()));
});

test("unread and mention badges appear for a channel not open and clear when it is opened", async () => {
  const { alice, bob } = ctx;
  await openChannel(alice, "random");
  await send(alice, `news in random ${RUN}`);
  const badge = channelButton(bob, "random").locator(".badge");
  await until("an unread badge on #random", async () => (await badge.textContent().catch(() => "")) === "1");
  const box = composer(alice);
  await box.fill("hey @bob");
  await expectText(alice, alice.getByRole("option", { name: "@bob" }), "the suggestion");
  await box.press("Enter");
  await box.pressSequentially("are you there");
  await box.press("Enter");
  await until("a mention badge on #random", async () => (await channelButton(bob, "random").locator(".badge-mention").textContent().catch(() => "")) === "1");
  await openChannel(bob, "random");
  await until("the badge to clear", async () => (await channelButton(bob, "random").locator(".badge").count()) === 0);
  // opening the channel moved bob's read marker on the server (channel:mark)
  await until("the server to count nothing unread in #random for bob", async () => {
    const { channels } = await server.api(server.bobToken, "/api/channels");
    const r = channels.find((c) => c.name === "random");
    return r.unread_count === 0 && r.mention_count === 0;
  });
  await openChannel(bob, "general");
  await bob.reload();
  await until("bob's page back on #general", async () => (await bob.locator(".channel-title").textContent().catch(() => ""))?.includes("general"));
  if ((await channelButton(bob, "random").locator(".badge").count()) !== 0) throw new Error("#random has a badge again after a reload");
  await openChannel(alice, "general");
  await shot(alice, "channel");
});

test("infinite scroll back through 120 messages of history, each once, in order", async () => {
  const { bob } = ctx;
  await until("the 99+ badge on #history", async () => (await channelButton(bob, "history").locator(".badge").textContent().catch(() => "")) === "99+");
  await openChannel(bob, "history");
  await expectText(bob, msg(bob, "hist-120"), "the newest message");
  await until("the start of #history", async () => {
    await bob.evaluate(() => (document.querySelector(".channel .scroller").scrollTop = 0));
    return bob.locator(".channel-start").isVisible();
  }, { timeout: 30_000, every: 200 });
  const texts = (await channelTexts(bob)).filter((t) => t.startsWith("hist-"));
  const want = Array.from({ length: 120 }, (_, i) => `hist-${String(i + 1).padStart(3, "0")}`);
  if (JSON.stringify(texts) !== JSON.stringify(want)) throw new Error(`history is not 1..120 once each in order: ${texts.length} messages, first ${texts.slice(0, 3)}, last ${texts.slice(-3)}`);
  await openChannel(bob, "general");
});

test("a DM from the dialog; presence dots follow the page's visibility", async () => {
  const { alice, bob } = ctx;
  await alice.getByRole("button", { name: "New direct message" }).click();
  await alice.getByRole("dialog").getByLabel("bob").check();
  await alice.getByRole("dialog").getByRole("button", { name: "Open" }).click();
  await until("the DM to open", async () => (await alice.locator(".channel-title").textContent())?.includes("bob"));
  await send(alice, `a direct word ${RUN}`);
  const dm = channelButton(bob, "alice");
  await until("the DM with a badge on bob's page", async () => (await dm.locator(".badge").textContent().catch(() => "")) === "1");
  await dm.locator(".presence-active").waitFor({ timeout: 10_000 });
  // alice's tab goes to the background: she shows as away
  await alice.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await dm.locator(".presence-away").waitFor({ timeout: 10_000 });
  await alice.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await dm.locator(".presence-active").waitFor({ timeout: 10_000 });
  await openChannel(alice, "general");
});

test("kill -9 and restart: 'Reconnecting…', then every message exactly once, in order", async () => {
  const { alice, bob } = ctx;
  const helper = await wsClient(server.base);
  await helper.send(server.aliceToken, server.general, [1, 2, 3].map((i) => `before-kill-${i} ${RUN}`));
  await expectText(bob, msg(bob, `before-kill-3 ${RUN}`), "the last message before the crash");
  await helper.close();

  await server.crash();
  await expectText(bob, bob.locator(".banner", { hasText: "Reconnecting…" }), "Reconnecting… on bob's page", 10_000);
  await expectText(alice, alice.locator(".banner", { hasText: "Reconnecting…" }), "Reconnecting… on alice's page", 10_000);
  // bob writes while the server is down: the page keeps it and sends it once back
  await composer(bob).fill(`written while down ${RUN}`);
  await composer(bob).press("Enter");
  await expectText(bob, bob.locator(".msg-pending", { hasText: `written while down ${RUN}` }), "the pending message");
  // keep the pages away until messages were sent after the restart
  await bob.context().setOffline(true);
  await alice.context().setOffline(true);
  await server.start();
  const after = [1, 2, 3, 4, 5].map((i) => `after-restart-${i} ${RUN}`);
  const helper2 = await wsClient(server.base);
  await until("messages sent right after the restart", () => helper2.send(server.aliceToken, server.general, after).then(() => true), { timeout: 20_000, every: 250 });
  await helper2.close();
  if (!(await bob.locator(".banner").isVisible())) throw new Error("bob's page reconnected before the messages were sent: the test proves nothing");
  await bob.context().setOffline(false);
  await alice.context().setOffline(false);
  for (const page of [bob, alice]) {
    await until("the banner to go", async () => !(await page.locator(".banner").isVisible()), { timeout: 20_000 });
    for (const t of [...[1, 2, 3].map((i) => `before-kill-${i} ${RUN}`), ...after, `written while down ${RUN}`]) {
      await expectText(page, msg(page, t), `"${t}" after the recovery`);
    }
    await until("no pending messages", async () => (await page.locator(".msg-pending").count()) === 0);
    const texts = await channelTexts(page);
    for (const t of [...after, `written while down ${RUN}`, `before-kill-1 ${RUN}`]) {
      const n = texts.filter((x) => x.includes(t)).length;
      if (n !== 1) throw new Error(`"${t}" shown ${n} times`);
    }
    const pos = after.map((t) => texts.findIndex((x) => x.includes(t)));
    if (pos.some((p, i) => i > 0 && p <= pos[i - 1])) throw new Error(`after-restart messages out of order: ${pos}`);
    const ids = await page.evaluate(() => [...document.querySelectorAll(".channel .messages article")].map((a) => a.dataset.messageId));
    if (new Set(ids).size !== ids.length) throw new Error("a message id appears twice");
  }
});

test("360 px wide: the sidebar is a drawer and the composer works", async () => {
  // reduced motion: the drawer opens without its slide, so the screenshot shows it open
  const c = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, reducedMotion: "reduce" });
  const page = await c.newPage();
  watch(page, "bob (360 px)");
  await page.goto(server.bob);
  await until("the page", async () => (await page.locator(".channel-title").textContent().catch(() => ""))?.includes("general"));
  if (await page.locator("#sidebar").isVisible()) throw new Error("the sidebar should be hidden at 360 px");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  if (overflow > 360) throw new Error(`page is ${overflow}px wide at 360 px`);
  await page.getByRole("button", { name: "Open channel list" }).click();
  await page.locator("#sidebar").waitFor({ state: "visible", timeout: 5000 });
  await until("the drawer fully open", async () => (await page.locator("#sidebar").boundingBox())?.x === 0);
  await shot(page, "mobile-drawer");
  await channelButton(page, "random").click();
  await until("the drawer to close", async () => !(await page.locator("#sidebar").isVisible()));
  await until("#random open", async () => (await page.locator(".channel-title").textContent())?.includes("random"));
  await send(page, `from a phone ${RUN}`);
  await shot(page, "mobile");
  await c.close();
});

test("360 px wide: the attach button and the chips fit", async () => {
  const c = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const page = await c.newPage();
  watch(page, "alice (360 px)");
  await page.goto(server.alice);
  await until("the page", async () => (await page.locator(".channel-title").textContent().catch(() => ""))?.includes("general"));
  const attach = page.getByRole("button", { name: "Attach files" });
  await attach.waitFor({ state: "visible", timeout: 5000 });
  await fileInput(page).setInputFiles([
    { name: "a-rather-long-name-for-the-quarterly-report-final-version-2.txt", mimeType: "text/plain", buffer: Buffer.from("report\n".repeat(300)) },
    { name: "whiteboard-photo-from-the-planning-meeting.png", mimeType: "image/png", buffer: png(64, 48) },
  ]);
  await until("both chips uploaded", async () => (await chips(page, "done").count()) === 2);
  const inside = async (loc, what) => {
    const b = await loc.boundingBox();
    if (!b || b.x < 0 || b.x + b.width > 360) throw new Error(`${what} does not fit in 360 px: ${JSON.stringify(b)}`);
  };
  await inside(attach, "the attach button");
  await inside(page.locator(".channel .composer-send"), "the Send button");
  for (let i = 0; i < 2; i++) await inside(chips(page).nth(i), `chip ${i + 1}`);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  if (width > 360) throw new Error(`page is ${width}px wide with chips at 360 px`);
  for (let i = 0; i < 2; i++) await chips(page).first().getByRole("button", { name: /^Remove / }).click();
  await until("the chips removed", async () => (await chips(page).count()) === 0);
  await c.close();
});

test("keyboard only: Tab to the channel list, arrows, Enter, type, send", async () => {
  const { alice } = ctx;
  await alice.reload();
  await until("alice's page", async () => (await alice.locator(".me-name").textContent().catch(() => "")) === "alice");
  await alice.locator("body").focus();
  const active = () => alice.evaluate(() => ({ tag: document.activeElement?.tagName, cls: document.activeElement?.className ?? "", name: document.activeElement?.getAttribute("data-name") }));
  await until("Tab to reach the channel list", async () => {
    if ((await active()).cls.includes("chan")) return true;
    await alice.keyboard.press("Tab");
    return false;
  }, { timeout: 10_000, every: 10 });
  await until("arrows to reach #random", async () => {
    const a = await active();
    if (a.name === "random") return true;
    await alice.keyboard.press(a.name < "random" ? "ArrowDown" : "ArrowUp");
    return false;
  }, { timeout: 10_000, every: 10 });
  await alice.keyboard.press("Enter");
  await until("#random open", async () => (await alice.locator(".channel-title").textContent())?.includes("random"));
  await until("focus in the composer", async () => (await active()).cls.includes("composer-input"));
  await alice.keyboard.type(`typed with the keyboard ${RUN}`);
  await alice.keyboard.press("Enter");
  await expectText(alice, msg(alice, `typed with the keyboard ${RUN}`), "the keyboard message");
  // into the message list and back out: Shift+Tab reaches the newest message, Up moves
  await alice.locator(`article.msg:has-text("typed with the keyboard ${RUN}")`).focus();
  await alice.keyboard.press("ArrowUp");
  const focused = await alice.evaluate(() => document.activeElement?.tagName);
  if (focused !== "ARTICLE") throw new Error("arrow keys left the message list");
});

// ---------------------------------------------------------------- run

async function main() {
  const t0 = Date.now();
  console.log(`confab: ${BIN}\nchromium: ${CHROMIUM}`);
  await server.start();
  console.log(`server: ${server.base} (data in ${server.dir})`);
  // fixtures: #random and #files (alice, bob) and #history with 120 messages
  const [a, b] = await Promise.all([server.api(server.aliceToken, "/api/me"), server.api(server.bobToken, "/api/me")]);
  // carol seeds #history, so that no short-lived socket of alice's or bob's blurs their presence
  // (the server counts a device that just left as active for a few seconds: web/API-NOTES.md)
  const carol = await server.admin(`/admin/workspaces/${server.workspace}/users`, { name: "carol" });
  await server.admin(`/admin/workspaces/${server.workspace}/channels`, { name: "random", members: [a.user_id, b.user_id] });
  await server.admin(`/admin/workspaces/${server.workspace}/channels`, { name: "files", members: [a.user_id, b.user_id] });
  const hist = await server.admin(`/admin/workspaces/${server.workspace}/channels`, { name: "history", members: [carol.user_id, a.user_id, b.user_id] });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  const seeder = await wsClient(server.base);
  await seeder.send(carol.token, hist.channel_id, Array.from({ length: 120 }, (_, i) => `hist-${String(i + 1).padStart(3, "0")}`));
  await seeder.close();

  let failed = 0;
  for (const t of tests) {
    const start = Date.now();
    try {
      let timer;
      await Promise.race([t.fn(), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`test timed out after ${TEST_TIMEOUT} ms`)), TEST_TIMEOUT)))]).finally(() => clearTimeout(timer));
      console.log(`ok   ${t.name} (${((Date.now() - start) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name} (${((Date.now() - start) / 1000).toFixed(1)} s)\n     ${e.stack ?? e}`);
      mkdirSync(RESULTS, { recursive: true });
      for (const [who, page] of Object.entries(ctx)) if (typeof page?.screenshot === "function") await page.screenshot({ path: path.join(RESULTS, `${t.name.slice(0, 40).replace(/\W+/g, "-")}-${who}.png`) }).catch(() => {});
    }
  }
  const passed = tests.length - failed;
  if (pageErrors.length) {
    failed++;
    console.log(`FAIL the pages threw ${pageErrors.length} uncaught error(s):\n     ${pageErrors.join("\n     ")}`);
  }
  console.log(`\n${passed} passed, ${failed} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return failed;
}

let code = 1;
try {
  code = (await main()) ? 1 : 0;
} catch (e) {
  console.error(`FAIL (setup): ${e.stack ?? e}`);
} finally {
  await browser?.close().catch(() => {});
  await server.stop().catch(() => {});
  server.cleanup(process.env.KEEP === "1" || code !== 0);
  if (code !== 0) console.error(`server logs kept in ${server.dir}`);
  clearTimeout(globalTimer);
}
process.exit(code);
