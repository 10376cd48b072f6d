// Test harness: one real `confab serve` per test file (embedded mode, ports chosen by the kernel,
// a fresh temporary data directory, stopped at the end even on failure) and, per test, a fresh
// workspace with users, tokens and a channel made with `confab admin` against it. Nothing is
// mocked: every test talks to the real server over real sockets. Every wait has a deadline.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, closeSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { WebSocket as NodeWs } from "ws";
import { ConfabClient, type ClientOptions, type ServerFrame, type WebSocketConstructor, type WebSocketLike } from "@confab/client";

export const CONFAB_BIN = process.env.CONFAB_BIN || join(homedir(), ".cache/confab-target/debug/confab");
/** A resume replays at most this many entries in the test server (the rest are gaps), so a
 * test can make gaps with a few dozen messages. */
export const RESUME_MAX_ENTRIES = 20;

/** The WebSocket the tests use: CONFAB_TEST_WEBSOCKET=ws for the `ws` package's, =global for the
 * runtime's own (Node 22, or 20 with --experimental-websocket); unset: the global one if there is
 * one, else `ws`'s. */
export const TestWebSocket: WebSocketConstructor = (() => {
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  const want = process.env.CONFAB_TEST_WEBSOCKET;
  if (want === "global" && typeof global !== "function") throw new Error("CONFAB_TEST_WEBSOCKET=global, but this runtime has no global WebSocket");
  return want !== "ws" && typeof global === "function" ? global : (NodeWs as unknown as WebSocketConstructor);
})();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 2000);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(everyMs);
  }
}

/** One `confab serve` on 127.0.0.1. */
export class ConfabServer {
  readonly root = mkdtempSync(join(tmpdir(), "confab-tsclient-"));
  readonly dataDir = join(this.root, "data");
  readonly logPath = join(this.root, "serve.log");
  baseUrl = "";
  adminUrl = "";
  private proc: ChildProcess | undefined;
  private stdout = "";

  /** The child's environment: no CONFAB_* from the caller (a CONFAB_KAFKA__BROKERS there would
   * switch it to distributed mode, a CONFAB_CONFIG would change anything), then ours. */
  static environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CONFAB_")) env[k] = v;
    return { ...env, ...extra };
  }

  async start(timeoutMs = 60_000): Promise<void> {
    const log = openSync(this.logPath, "w");
    const env = ConfabServer.environment({
      CONFAB_GATEWAY__ADMIN_LISTEN: "127.0.0.1:0",
      CONFAB_GATEWAY__RESUME_MAX_ENTRIES: String(RESUME_MAX_ENTRIES),
      CONFAB_NO_DEMO: "1",
      CONFAB_LOG: process.env.CONFAB_TEST_SERVER_LOG ?? "warn,confab=info",
    });
    const proc = spawn(CONFAB_BIN, ["serve", "--listen", "127.0.0.1:0", "--data-dir", this.dataDir], {
      cwd: this.root,
      env,
      stdio: ["ignore", "pipe", log],
    });
    closeSync(log);
    this.proc = proc;
    proc.stdout!.setEncoding("utf8");
    proc.stdout!.on("data", (d: string) => {
      this.stdout += d;
      for (const line of this.stdout.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const j = JSON.parse(line) as { event?: string; addr?: string; admin_addr?: string };
          if (j.event === "listening" && j.addr && j.admin_addr) {
            this.baseUrl = `http://${j.addr}`;
            this.adminUrl = `http://${j.admin_addr}`;
          }
        } catch {
          /* a partial line */
        }
      }
    });
    let exited: number | null = null;
    proc.on("exit", (code) => (exited = code ?? -1));
    await until(
      "confab serve to print where it listens",
      () => {
        if (exited !== null) throw new Error(`confab serve exited with ${exited}:\n${this.logTail()}`);
        return this.baseUrl;
      },
      timeoutMs,
    );
    await until("confab serve to be healthy", async () => (await fetch(`${this.baseUrl}/healthz`)).ok, timeoutMs);
  }

  logTail(lines = 40): string {
    let text = "";
    try {
      text = readFileSync(this.logPath, "utf8");
    } catch {
      /* none yet */
    }
    return [...this.stdout.split("\n"), ...text.split("\n")].filter(Boolean).slice(-lines).join("\n");
  }

  /** `confab admin ARGS` against this server (its key is found in the data directory). */
  admin<T = Record<string, string>>(...args: string[]): Promise<T> {
    return new Promise((resolve, reject) => {
      const p = spawn(CONFAB_BIN, ["admin", "--url", this.adminUrl, "--data-dir", this.dataDir, ...args], {
        env: ConfabServer.environment({ CONFAB_LOG: "warn" }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      p.stdout.on("data", (d) => (out += d));
      p.stderr.on("data", (d) => (err += d));
      const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
      p.on("close", (code) => {
        clearTimeout(timer);
        if (code !== 0) return reject(new Error(`confab admin ${args.join(" ")} failed (${code}):\n${out}\n${err}`));
        try {
          resolve(JSON.parse(out) as T);
        } catch (e) {
          reject(new Error(`confab admin ${args.join(" ")} printed no JSON: ${out}`));
        }
      });
    });
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      const timer = setTimeout(() => p.kill("SIGKILL"), 15_000);
      await gone;
      clearTimeout(timer);
    }
    if (process.env.CONFAB_TEST_KEEP === "1") console.error(`confab serve's directory kept: ${this.root}`);
    else rmSync(this.root, { recursive: true, force: true });
  }
}

export interface Person {
  name: string;
  user_id: string;
  token: string;
}

/** A fresh workspace: alice and bob in #general (alice created it). */
export class Team {
  constructor(
    readonly server: ConfabServer,
    readonly workspaceId: string,
    readonly alice: Person,
    readonly bob: Person,
    readonly general: string,
  ) {}

  get url(): string {
    return this.server.baseUrl;
  }

  async addPerson(name: string): Promise<Person> {
    const u = await this.server.admin("create-user", "--workspace", this.workspaceId, "--name", name);
    return { name, user_id: u.user_id!, token: u.token! };
  }

  async addChannel(name: string, members: Person[], opts: { private?: boolean; creator?: Person } = {}): Promise<string> {
    const args = ["create-channel", "--workspace", this.workspaceId, "--name", name];
    for (const m of members) args.push("--member", m.user_id);
    if (opts.private) args.push("--private");
    if (opts.creator) args.push("--creator", opts.creator.user_id);
    return (await this.server.admin(...args)).channel_id!;
  }

  /** A client for someone, closed by `closeAll`. */
  client(person: Person, opts: Partial<ClientOptions> = {}): ConfabClient {
    const c = new ConfabClient({ url: this.url, token: person.token, WebSocket: TestWebSocket, ...opts });
    this.clients.push(c);
    return c;
  }

  readonly clients: ConfabClient[] = [];

  closeAll(): void {
    for (const c of this.clients.splice(0)) c.close();
  }
}

let teams = 0;

export async function makeTeam(server: ConfabServer): Promise<Team> {
  const ws = await server.admin("create-workspace", "--name", `tsclient-${process.pid}-${++teams}`);
  const alice = await server.admin("create-user", "--workspace", ws.workspace_id!, "--name", "alice");
  const bob = await server.admin("create-user", "--workspace", ws.workspace_id!, "--name", "bob");
  const general = await server.admin(
    "create-channel",
    "--workspace",
    ws.workspace_id!,
    "--name",
    "general",
    "--member",
    alice.user_id!,
    "--member",
    bob.user_id!,
    "--creator",
    alice.user_id!,
  );
  return new Team(
    server,
    ws.workspace_id!,
    { name: "alice", user_id: alice.user_id!, token: alice.token! },
    { name: "bob", user_id: bob.user_id!, token: bob.token! },
    general.channel_id!,
  );
}

/** Starts a server before the file's tests and stops it after them. */
export function useServer(): { readonly server: ConfabServer } {
  const holder = { server: new ConfabServer() };
  before(async () => {
    try {
      await holder.server.start();
    } catch (e) {
      await holder.server.stop();
      throw e;
    }
  });
  after(async () => {
    await holder.server.stop();
  });
  return holder;
}

/** Records every frame a client delivers, and waits (bounded) for one or a condition. */
export class Recorder {
  readonly frames: ServerFrame[] = [];
  private readonly off: () => void;

  constructor(readonly client: ConfabClient) {
    this.off = client.on("frame", (f) => this.frames.push(f));
  }

  stop(): void {
    this.off();
  }

  /** The texts and seqs of the `message:new` frames of a channel, in the order delivered. */
  messages(channelId: string): { text: string; seq: number; message_id: string }[] {
    return this.frames.flatMap((f) => (f.type === "message:new" && f.message.channel_id === channelId ? [{ text: f.message.text, seq: f.message.seq, message_id: f.message.message_id }] : []));
  }

  async waitFor<F extends ServerFrame>(what: string, predicate: (f: ServerFrame) => f is F, timeoutMs?: number): Promise<F>;
  async waitFor(what: string, predicate: (f: ServerFrame) => boolean, timeoutMs?: number): Promise<ServerFrame>;
  async waitFor(what: string, predicate: (f: ServerFrame) => boolean, timeoutMs = 15_000): Promise<ServerFrame> {
    return until(
      what,
      () => this.frames.find(predicate) ?? (() => {
        throw new Error(`frames so far: ${this.frames.slice(-15).map(describe).join(", ")}`);
      })(),
      timeoutMs,
    );
  }
}

function describe(f: ServerFrame): string {
  return f.type === "message:new" ? `message:new(${JSON.stringify(f.message.text.slice(0, 30))} seq=${f.message.seq})` : f.type;
}

/** A WebSocket constructor whose network the test controls: while `offline`, connections go to
 * a port nothing listens on (refused, like a network that is down); `incoming` may swallow a
 * frame the server sent (false or 0) or deliver it twice (2), and `outgoing` sees each frame the
 * client sends. */
export class Network {
  offline = false;
  incoming: ((frame: { type?: string; [k: string]: unknown }, ws: WebSocketLike) => boolean | number) | undefined;
  outgoing: ((frame: { type?: string; [k: string]: unknown }, ws: WebSocketLike) => void) | undefined;
  readonly sockets: WebSocketLike[] = [];
  readonly urls: string[] = [];

  get WebSocket(): WebSocketConstructor {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const net = this;
    return function TestNetworkWebSocket(url: string, protocols?: string | string[]): WebSocketLike {
      net.urls.push(url);
      const ws = new TestWebSocket(net.offline ? "ws://127.0.0.1:1/ws" : url, protocols);
      net.sockets.push(ws);
      const setter = accessor(ws, "onmessage").set!;
      Object.defineProperty(ws, "onmessage", {
        configurable: true,
        set(fn: ((ev: { data: unknown }) => void) | null) {
          setter.call(
            ws,
            fn &&
              ((ev: { data: unknown }) => {
                let frame: { type?: string };
                try {
                  frame = JSON.parse(String(ev.data));
                } catch {
                  return fn(ev);
                }
                const times = net.incoming ? Number(net.incoming(frame, ws)) : 1;
                for (let i = 0; i < times; i++) fn(ev);
              }),
          );
        },
      });
      const send = ws.send.bind(ws);
      ws.send = (data: string) => {
        net.outgoing?.(JSON.parse(data), ws);
        send(data);
      };
      return ws;
    } as unknown as WebSocketConstructor;
  }
}

function accessor(o: object, name: string): PropertyDescriptor {
  for (let p: object | null = o; p; p = Object.getPrototypeOf(p)) {
    const d = Object.getOwnPropertyDescriptor(p, name);
    if (d?.set) return d;
  }
  throw new Error(`no ${name} setter on this WebSocket`);
}

/** A port that was free a moment ago (nothing listens on it). */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}
