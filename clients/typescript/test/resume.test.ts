// Lossless resume against a real `confab serve`: what was sent while a client was cut off arrives
// after it reconnects, exactly once and in order, then live events; gaps the server could not
// replay (the test server replays at most RESUME_MAX_ENTRIES) are fetched over HTTP, by the client
// itself (`fillGaps`) or by the caller (`fetchGap`); a channel quiet on the socket is resumed too;
// a send made while cut off goes out once after the reconnect; frames that come twice, or that
// the caller has seen otherwise (`advance`), are delivered once or not at all.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import type { ConfabClient, SyncInfo } from "@confab/client";
import { makeTeam, Network, Recorder, RESUME_MAX_ENTRIES, until, useServer, type Team } from "./harness.js";

const ctx = useServer();
let team: Team | undefined;
afterEach(() => team?.closeAll());

/** Cuts a client off: its connection drops and reconnecting fails until `net.offline` is false. */
async function cutOff(client: ConfabClient, net: Network): Promise<void> {
  net.offline = true;
  client.dropConnection();
  await until("the client to notice", () => client.status === "reconnecting", 10_000);
  // at least one refused attempt: the client really was kept away
  const before = net.sockets.length;
  await until("a refused reconnect", () => net.sockets.length > before, 10_000);
}

test("resume after a forced drop: what was sent meanwhile arrives once, in order, then live events", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  const alice = team.client(team.alice);
  const bob = team.client(team.bob, { WebSocket: net.WebSocket, reconnectDelaysMs: [50, 100, 200] });
  const bobs = new Recorder(bob);
  const syncs: SyncInfo[] = [];
  bob.on("synced", (s) => syncs.push(s));
  await alice.connect();
  await bob.connect();
  const first = await alice.send(team.general, "before the drop");
  await bobs.waitFor("the first message", (f) => f.type === "message:new" && f.message.message_id === first.message_id);

  await cutOff(bob, net);
  const missed = [];
  for (let i = 0; i < 5; i++) missed.push(await alice.send(team.general, `missed ${i}`));
  assert.deepEqual(
    missed.map((a) => a.seq),
    [1, 2, 3, 4, 5].map((i) => first.seq + i),
  );
  assert.equal(bobs.messages(team.general).length, 1, "bob was cut off");
  net.offline = false;

  await until("bob resumed", () => syncs.some((s) => s.resumed), 20_000);
  const done = bob.lastResume!;
  assert.equal(done.type, "resume:done");
  assert.equal(done.replayed, 5);
  assert.deepEqual(done.gaps, []);
  assert.equal(done.channels[team.general], missed[4]!.seq);
  assert.ok(net.urls.at(-1)!.endsWith("/ws?resume=1"), net.urls.at(-1));
  const live = await alice.send(team.general, "after the resume");
  await bobs.waitFor("the live message", (f) => f.type === "message:new" && f.message.message_id === live.message_id);
  await new Promise((r) => setTimeout(r, 500)); // room for a duplicate

  assert.deepEqual(bobs.messages(team.general).map((m) => [m.text, m.seq]), [
    ["before the drop", first.seq],
    ...missed.map((a, i) => [`missed ${i}`, a.seq]),
    ["after the resume", live.seq],
  ]);
  // the replay came before the second hello's synced, the live message after it
  const order = bobs.frames.filter((f) => f.type === "message:new" || f.type === "hello").map((f) => (f.type === "hello" ? "hello" : f.message.text));
  assert.deepEqual(order, ["hello", "before the drop", "hello", ...missed.map((_, i) => `missed ${i}`), "after the resume"]);
  assert.equal(bob.status, "online");
});

test("gaps the server cannot replay are fetched over HTTP and delivered in seq order (fillGaps)", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  const alice = team.client(team.alice);
  const bob = team.client(team.bob, { WebSocket: net.WebSocket, reconnectDelaysMs: [50, 100, 200] });
  const bobs = new Recorder(bob);
  const syncs: SyncInfo[] = [];
  bob.on("synced", (s) => syncs.push(s));
  await alice.connect();
  await bob.connect();
  const anchor = await alice.send(team.general, "anchor");
  await bobs.waitFor("the anchor", (f) => f.type === "message:new" && f.message.message_id === anchor.message_id);
  await cutOff(bob, net);
  const count = RESUME_MAX_ENTRIES + 10;
  const missed = [];
  for (let i = 0; i < count; i++) missed.push(await alice.send(team.general, `gap ${i}`));
  net.offline = false;

  await until("bob resumed", () => syncs.some((s) => s.resumed), 30_000);
  const sync = syncs.find((s) => s.resumed)!;
  assert.ok(sync.gaps.length > 0, `${count} missed events but no gap (resume_max_entries=${RESUME_MAX_ENTRIES})`);
  assert.ok(sync.gaps.every((g) => g.channel_id === team!.general));
  assert.ok(sync.filled > 0, "the client fetched the gaps' messages");
  assert.equal(sync.filled + bob.lastResume!.replayed, count);
  const live = await alice.send(team.general, "live after the gap");
  await bobs.waitFor("the live message", (f) => f.type === "message:new" && f.message.message_id === live.message_id);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(bobs.messages(team.general).map((m) => [m.text, m.seq]), [
    ["anchor", anchor.seq],
    ...missed.map((a, i) => [`gap ${i}`, a.seq]),
    ["live after the gap", live.seq],
  ]);
});

test("with fillGaps off, replayed frames come as they arrive and fetchGap returns the rest", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  const alice = team.client(team.alice);
  const bob = team.client(team.bob, { WebSocket: net.WebSocket, reconnectDelaysMs: [50, 100, 200], fillGaps: false });
  const bobs = new Recorder(bob);
  const syncs: SyncInfo[] = [];
  bob.on("synced", (s) => syncs.push(s));
  await alice.connect();
  await bob.connect();
  const anchor = await alice.send(team.general, "anchor");
  await bobs.waitFor("the anchor", (f) => f.type === "message:new" && f.message.message_id === anchor.message_id);
  await cutOff(bob, net);
  const count = RESUME_MAX_ENTRIES + 10;
  const missed = [];
  for (let i = 0; i < count; i++) missed.push(await alice.send(team.general, `gap ${i}`));
  net.offline = false;
  await until("bob resumed", () => syncs.some((s) => s.resumed), 30_000);
  const sync = syncs.find((s) => s.resumed)!;
  assert.ok(sync.gaps.length > 0);
  assert.equal(sync.filled, 0);
  assert.equal(sync.gaps[0]!.from_seq, anchor.seq + 1);
  const replayed = bobs.messages(team.general).filter((m) => m.text.startsWith("gap "));
  assert.equal(replayed.length, bob.lastResume!.replayed);
  const fetched = (await Promise.all(sync.gaps.map((g) => bob.fetchGap(g)))).flat();
  const together = [...replayed, ...fetched].map((m) => [m.seq, m.text]).sort((a, b) => (a[0] as number) - (b[0] as number));
  assert.deepEqual(together, missed.map((a, i) => [a.seq, `gap ${i}`]));
  // without an anchor fetchMissed pages backwards from the newest and finds the same
  const again = await bob.fetchMissed(team.general, anchor.seq, sync.gaps.at(-1)!.to_seq);
  assert.deepEqual(
    again.map((m) => [m.seq, m.text]),
    fetched.map((m) => [m.seq, m.text]),
  );
});

test("a channel quiet on the socket is resumed too (its position came from GET /api/channels)", async () => {
  team = await makeTeam(ctx.server);
  const quiet = await team.addChannel("quiet", [team.alice, team.bob], { creator: team.alice });
  const net = new Network();
  const alice = team.client(team.alice);
  const bob = team.client(team.bob, { WebSocket: net.WebSocket, reconnectDelaysMs: [50, 100, 200] });
  const bobs = new Recorder(bob);
  await alice.connect();
  await bob.connect();
  assert.equal(typeof bob.positions()[quiet], "number", "bob saw nothing in #quiet on the socket, yet it is resumable");
  await cutOff(bob, net);
  const ack = await alice.send(quiet, "while you were away");
  net.offline = false;
  const got = await bobs.waitFor("the missed message", (f) => f.type === "message:new" && f.message.message_id === ack.message_id, 30_000);
  assert.ok(got.type === "message:new" && got.message.text === "while you were away");
  assert.ok(bob.lastResume, "it came through a resume");
});

test("a send made while cut off is held, then sent once after the reconnect", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  const sends: string[] = [];
  net.outgoing = (f) => void (f.type === "message:send" && sends.push(String(f.client_msg_id)));
  const alice = team.client(team.alice, { WebSocket: net.WebSocket, reconnectDelaysMs: [50, 100, 200] });
  const bob = team.client(team.bob);
  const bobs = new Recorder(bob);
  await alice.connect();
  await bob.connect();
  await cutOff(alice, net);
  let settled = false;
  const pending = alice.send(team.general, "written while offline").finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(settled, false, "the send waits for the connection");
  assert.equal(sends.length, 0);
  net.offline = false;
  const ack = await pending;
  assert.equal(sends.length, 1);
  await bobs.waitFor("bob's copy", (f) => f.type === "message:new" && f.message.message_id === ack.message_id);
});

test("dedupe by (channel, seq): a frame the network delivers twice reaches listeners once", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  net.incoming = (f) => (f.type === "message:new" || f.type === "message:edited" ? 2 : 1);
  const alice = team.client(team.alice);
  const bob = team.client(team.bob, { WebSocket: net.WebSocket });
  const bobs = new Recorder(bob);
  await alice.connect();
  await bob.connect();
  const acks = [];
  for (let i = 0; i < 3; i++) acks.push(await alice.send(team.general, `twice ${i}`));
  await alice.edit(team.general, acks[0]!.message_id, "twice 0, edited");
  await bobs.waitFor("the edit", (f) => f.type === "message:edited");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(bobs.messages(team.general).map((m) => m.text), ["twice 0", "twice 1", "twice 2"]);
  assert.equal(bobs.frames.filter((f) => f.type === "message:edited").length, 1);
  assert.equal(bob.duplicatesDropped, 4);
});

test("advance: events up to a seq the caller saw otherwise (HTTP) are not delivered, nor resumed", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  const alice = team.client(team.alice);
  const bob = team.client(team.bob, { WebSocket: net.WebSocket, reconnectDelaysMs: [50, 100, 200] });
  const bobs = new Recorder(bob);
  await alice.connect();
  await bob.connect();
  const first = await alice.send(team.general, "seen live");
  await bobs.waitFor("the first", (f) => f.type === "message:new" && f.message.message_id === first.message_id);
  // bob's page read the next two over HTTP (say): the socket must not hand them on again
  bob.advance(team.general, first.seq + 2);
  assert.equal(bob.position(team.general), first.seq + 2);
  await alice.send(team.general, "read over HTTP 1");
  await alice.send(team.general, "read over HTTP 2");
  const third = await alice.send(team.general, "new to bob");
  await bobs.waitFor("the third", (f) => f.type === "message:new" && f.message.message_id === third.message_id);
  // and a resume starts from there
  await cutOff(bob, net);
  const missed = await alice.send(team.general, "missed");
  const resumeFrames: unknown[] = [];
  net.outgoing = (f) => void (f.type === "resume" && resumeFrames.push(f));
  net.offline = false;
  await bobs.waitFor("the missed one", (f) => f.type === "message:new" && f.message.message_id === missed.message_id, 20_000);
  assert.deepEqual(resumeFrames, [{ type: "resume", channels: { [team.general]: third.seq } }]);
  assert.deepEqual(bobs.messages(team.general).map((m) => m.text), ["seen live", "new to bob", "missed"]);
});
