// Test harness: runs `confab serve` on a free port in a temp directory, drives Chromium through
// playwright-core, and gives bounded waits. Nothing here sleeps for correctness: every wait polls
// a condition until a deadline.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, createWriteStream } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it returns a truthy value; throws with `what` after `timeout` ms. */
export async function until(what, fn, { timeout = 15_000, every = 50 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** One `confab serve` process; restartable on the same port and data directory. */
export class Server {
  constructor(bin, { webDir } = {}) {
    this.bin = bin;
    this.webDir = webDir;
    this.dir = mkdtempSync(path.join(os.tmpdir(), "confab-web-e2e-"));
    this.proc = null;
    this.port = null;
    this.out = "";
    this.runs = 0;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (this.port == null) this.port = await freePort();
    this.runs++;
    const log = createWriteStream(path.join(this.dir, `serve-${this.runs}.log`));
    const env = { ...process.env, CONFAB_GATEWAY__LISTEN: `127.0.0.1:${this.port}`, CONFAB_LOG: process.env.CONFAB_LOG ?? "warn" };
    if (this.webDir) env.CONFAB_WEB_DIR = this.webDir;
    else delete env.CONFAB_WEB_DIR;
    const proc = spawn(this.bin, ["serve"], { cwd: this.dir, env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      log.write(d);
    });
    proc.stderr.on("data", (d) => log.write(d));
    const exited = new Promise((resolve) => proc.once("exit", (code, sig) => resolve(`exited (${code ?? sig})`)));
    this.exited = exited;
    const ready = until("`confab serve` to print the web client's URLs", () => /bob: http\S+#token=\S+/.test(out) && out, { timeout: 60_000 });
    const r = await Promise.race([ready, exited.then((why) => Promise.reject(new Error(`confab serve ${why}; log in ${this.dir}`)))]);
    this.out = r;
    this.alice = /alice: (http\S+#token=\S+)/.exec(r)[1];
    this.bob = /bob: (http\S+#token=\S+)/.exec(r)[1];
    this.aliceToken = this.alice.split("#token=")[1];
    this.bobToken = this.bob.split("#token=")[1];
    this.workspace = /Demo workspace ([0-9a-f-]{36})/.exec(r)?.[1];
    this.general = /#general ([0-9a-f-]{36})/.exec(r)?.[1];
    this.adminKey = /CONFAB_ADMIN_KEY=(\S+)/.exec(r)?.[1] ?? "confab-dev-admin-key";
    await until("the gateway's /healthz", async () => (await fetch(`${this.base}/healthz`)).ok, { timeout: 30_000 });
    return this;
  }

  /** kill -9: no goodbye to the sockets, no graceful shutdown. */
  async crash() {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill("SIGKILL");
    await this.exited;
  }

  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(t);
  }

  cleanup(keep) {
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }

  async api(token, p, init = {}) {
    const res = await fetch(`${this.base}${p}`, { ...init, headers: { Authorization: `Bearer ${token}`, "content-type": "application/json", ...(init.headers ?? {}) } });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${init.method ?? "GET"} ${p}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }

  admin(p, body) {
    return this.api(this.adminKey, p, { method: "POST", body: JSON.stringify(body) });
  }
}
