// The connection against a real `confab serve`: the bearer subprotocol and hello, heartbeats in
// seconds and a missing pong taken for a dead connection, refused and revoked tokens (with and
// without a token provider), and error frames turned into ConfabErrors with their codes.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { ConfabAuthError, ConfabClient, ConfabError, SERVER_FRAME_TYPES, type ErrorFrame, type ServerFrame } from "@confab/client";
import { makeTeam, Network, Recorder, TestWebSocket, until, useServer, type Team } from "./harness.js";

const ctx = useServer();
let team: Team | undefined;
afterEach(() => team?.closeAll());

test("connects to /ws offering the bearer subprotocol, and says hello", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  const alice = team.client(team.alice, { WebSocket: net.WebSocket });
  const statuses: string[] = [];
  alice.on("status", (s) => statuses.push(s));
  const hello = await alice.connect();
  assert.equal(hello.type, "hello");
  assert.equal(hello.user_id, team.alice.user_id);
  assert.equal(hello.workspace_id, team.workspaceId);
  assert.equal(typeof hello.conn_id, "string");
  assert.equal(alice.status, "online");
  assert.ok(alice.online);
  assert.deepEqual(statuses, ["connecting", "online"]);
  assert.equal(alice.connectionCount, 1);
  // the server selected `confab`; the token stayed out of the URL
  assert.equal((net.sockets[0] as unknown as { protocol: string }).protocol, "confab");
  assert.equal(net.urls[0], `${team.url.replace("http://", "ws://")}/ws`);
  assert.ok(!net.urls[0]!.includes(team.alice.token));
  // hello.heartbeat_interval is in seconds
  assert.equal(typeof hello.heartbeat_interval, "number");
  assert.ok(hello.heartbeat_interval > 0 && hello.heartbeat_interval < 1000, `heartbeat_interval ${hello.heartbeat_interval}`);
  assert.equal(alice.heartbeatMs, hello.heartbeat_interval * 1000);
  // positions seeded from GET /api/channels: #general is resumable before any event in it
  assert.equal(typeof alice.positions()[team.general], "number");
});

test("heartbeats: pings answered keep the connection; a missing pong drops it and the client reconnects", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  const pings: unknown[] = [];
  let swallowPongs = false;
  net.outgoing = (f) => void (f.type === "ping" && pings.push(f.id));
  net.incoming = (f) => !(swallowPongs && f.type === "pong");
  const alice = team.client(team.alice, { WebSocket: net.WebSocket, heartbeatIntervalMs: 150, pongTimeoutMs: 600, reconnectDelaysMs: [50] });
  const disconnects: { code: number; reason: string }[] = [];
  alice.on("disconnected", (d) => disconnects.push(d));
  await alice.connect();
  await until("five pings", () => pings.length >= 5, 10_000);
  assert.equal(alice.connectionCount, 1, "answered pings keep the connection");
  assert.equal(disconnects.length, 0);
  swallowPongs = true;
  await until("the dead connection dropped", () => disconnects.length >= 1, 10_000);
  assert.equal(disconnects[0]!.reason, "no pong");
  swallowPongs = false;
  await until("a new connection", () => alice.connectionCount === 2 && alice.online, 10_000);
  const ack = await alice.send(team.general, "after the dead connection");
  assert.equal(ack.type, "message:ack");
});

test("a refused token: connect rejects with ConfabAuthError and the status is unauthorized", async () => {
  team = await makeTeam(ctx.server);
  const c = new ConfabClient({ url: team.url, token: "cfb1.forged.token", WebSocket: TestWebSocket, connectTimeoutMs: 20_000 });
  await assert.rejects(c.connect(), (e: unknown) => {
    assert.ok(e instanceof ConfabAuthError, `got ${e}`);
    assert.equal(e.code, "unauthorized");
    assert.equal(e.status, 401);
    assert.equal(e.retryable, false);
    return true;
  });
  assert.equal(c.status, "unauthorized");
  await assert.rejects(c.send(team.general, "never"), ConfabAuthError);
  c.close();
});

test("error frames become ConfabErrors with their codes; unanswered ones reach listeners", async () => {
  team = await makeTeam(ctx.server);
  const alice = team.client(team.alice);
  const rec = new Recorder(alice);
  await alice.connect();
  const nowhere = "00000000-0000-4000-8000-000000000000";
  await assert.rejects(alice.send(nowhere, "into the void", { clientMsgId: "cmid-void" }), (e: unknown) => {
    assert.ok(e instanceof ConfabError);
    assert.equal(e.code, "channel_not_found");
    assert.equal(e.clientMsgId, "cmid-void");
    assert.equal(e.retryable, false);
    assert.ok(e.message.length > 0);
    return true;
  });
  await assert.rejects(alice.send(team.general, ""), { code: "empty_text" });
  await assert.rejects(alice.send(team.general, "x".repeat(40_001)), { code: "text_too_long" });
  await assert.rejects(alice.join(nowhere), { code: "channel_not_found" });
  await assert.rejects(alice.edit(team.general, nowhere, "no such message"), (e: unknown) => e instanceof ConfabError && ["message_not_found", "forbidden"].includes(e.code));
  // a frame without client_msg_id: its error goes to the listeners
  assert.ok(alice.sendFrame({ type: "typing:start", channel_id: "not-a-uuid" }));
  const err = (await rec.waitFor("an error frame", (f): f is ErrorFrame => f.type === "error")) as ErrorFrame;
  const typed = ConfabError.fromFrame(err);
  assert.equal(typed.code, err.code);
  assert.ok(["invalid_field", "malformed_frame"].includes(typed.code), typed.code);
  // the connection survived all of it
  assert.equal(alice.connectionCount, 1);
  assert.equal((await alice.send(team.general, "still here")).type, "message:ack");
  // every frame received is one the contract knows
  for (const f of rec.frames as ServerFrame[]) assert.ok(SERVER_FRAME_TYPES.includes(f.type), f.type);
});

test("revoked tokens close the socket with 4003: without a token provider the client ends unauthorized", async () => {
  team = await makeTeam(ctx.server);
  const bob = team.client(team.bob);
  const disconnects: { code: number; reconnecting: boolean }[] = [];
  bob.on("disconnected", (d) => disconnects.push(d));
  await bob.connect();
  await ctx.server.admin("revoke-tokens", "--workspace", team.workspaceId, "--user", team.bob.user_id);
  await until("bob unauthorized", () => bob.status === "unauthorized", 20_000);
  assert.equal(disconnects.length, 1);
  assert.equal(disconnects[0]!.code, 4003);
  assert.equal(disconnects[0]!.reconnecting, false);
  await assert.rejects(bob.send(team.general, "too late"), (e: unknown) => e instanceof ConfabAuthError && e.code === "token_revoked");
});

test("a token provider replaces a revoked token; the client reconnects and resumes", async () => {
  team = await makeTeam(ctx.server);
  const t = team;
  const minted: string[] = [];
  const alice = team.client(team.alice);
  const bob = team.client(team.bob, {
    tokenProvider: async () => {
      // tokens issued in the second of the revocation are revoked too
      await new Promise((r) => setTimeout(r, 1100));
      const { token } = await t.server.admin("token", "--workspace", t.workspaceId, "--user", t.bob.user_id);
      minted.push(token!);
      return token!;
    },
  });
  const rec = new Recorder(bob);
  await alice.connect();
  await bob.connect();
  const synced = bob.next("synced", (s) => s.resumed, 30_000);
  await ctx.server.admin("revoke-tokens", "--workspace", team.workspaceId, "--user", team.bob.user_id);
  await until("the 4003 close", () => bob.status === "reconnecting", 20_000);
  const missed = await alice.send(team.general, "sent while bob changed tokens");
  await synced;
  await rec.waitFor("the missed message", (f) => f.type === "message:new" && f.message.message_id === missed.message_id);
  assert.equal(minted.length, 1);
  assert.equal(bob.token, minted[0]);
  assert.equal(bob.http.token, minted[0]);
  assert.equal(bob.connectionCount, 2);
  assert.equal((await bob.http.me()).user_id, team.bob.user_id);
  assert.equal((await bob.send(team.general, "back with a new token")).type, "message:ack");
});
