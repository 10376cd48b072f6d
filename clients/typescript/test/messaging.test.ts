// Sending against a real `confab serve`: ack, delivery to another member exactly once, sends
// retried with the same client_msg_id (a resend, a lost ack, a burst over the rate limit) giving
// one message each, threads, and commands answered by `ok` with their events.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { WebSocket as NodeWs } from "ws";
import { ConfabHttp, type MessageView } from "@confab/client";
import { makeTeam, Network, Recorder, until, useServer, type Team } from "./harness.js";

const ctx = useServer();
let team: Team | undefined;
afterEach(() => team?.closeAll());

/** Every message of a channel over HTTP, oldest first. */
async function history(t: Team, channelId: string): Promise<MessageView[]> {
  const http = new ConfabHttp(t.url, t.alice.token);
  const all: MessageView[] = [];
  for await (const m of http.iterHistory(channelId, { pageSize: 200 })) all.push(m);
  return all.reverse();
}

/** History once `accept` takes it (the read side follows the log shortly after the ack). */
function historyWhen(t: Team, channelId: string, what: string, accept: (msgs: MessageView[]) => boolean): Promise<MessageView[]> {
  return until(what, async () => {
    const msgs = await history(t, channelId);
    return accept(msgs) ? msgs : undefined;
  }, 20_000, 100);
}

test("send: acked, and another member receives message:new exactly once", async () => {
  team = await makeTeam(ctx.server);
  const alice = team.client(team.alice);
  const bob = team.client(team.bob);
  const bobs = new Recorder(bob);
  const alices = new Recorder(alice);
  await alice.connect();
  await bob.connect();
  const ack = await alice.send(team.general, "hello, bob");
  assert.equal(ack.type, "message:ack");
  assert.equal(ack.channel_id, team.general);
  assert.match(ack.client_msg_id, /^[0-9a-f-]{36}$/);
  assert.equal(typeof ack.seq, "number");
  const got = await bobs.waitFor("bob's message:new", (f) => f.type === "message:new" && f.message.message_id === ack.message_id);
  assert.ok(got.type === "message:new");
  assert.equal(got.message.text, "hello, bob");
  assert.equal(got.message.user_id, team.alice.user_id);
  assert.equal(got.message.seq, ack.seq);
  assert.equal(got.message.client_msg_id, ack.client_msg_id);
  // the sender gets it too (its own message:new), once
  await alices.waitFor("alice's own message:new", (f) => f.type === "message:new" && f.message.message_id === ack.message_id);
  const second = await alice.send(team.general, "and again");
  await bobs.waitFor("the second message", (f) => f.type === "message:new" && f.message.message_id === second.message_id);
  await new Promise((r) => setTimeout(r, 300)); // room for a duplicate
  assert.deepEqual(
    bobs.messages(team.general).map((m) => m.text),
    ["hello, bob", "and again"],
  );
  assert.equal(second.seq, ack.seq + 1);
});

test("a resend with the same client_msg_id yields one message", async () => {
  team = await makeTeam(ctx.server);
  const alice = team.client(team.alice);
  await alice.connect();
  const first = await alice.send(team.general, "once only", { clientMsgId: "same-id-1" });
  const again = await alice.send(team.general, "once only", { clientMsgId: "same-id-1" });
  assert.equal(again.message_id, first.message_id);
  assert.equal(again.seq, first.seq);
  const msgs = await historyWhen(team, team.general, "the message in history", (ms) => ms.some((m) => m.client_msg_id === "same-id-1"));
  assert.equal(msgs.filter((m) => m.client_msg_id === "same-id-1").length, 1);
  assert.equal(msgs.filter((m) => m.text === "once only").length, 1);
});

test("a first attempt whose ack never came: the client's send with that id gets the original message", async () => {
  team = await makeTeam(ctx.server);
  // the first attempt, on a bare socket closed before reading the ack
  const raw = new NodeWs(`${team.url.replace("http", "ws")}/ws`, ["confab", `bearer.${team.alice.token}`]);
  await new Promise<void>((resolve, reject) => {
    raw.once("error", reject);
    raw.on("message", (d) => {
      const f = JSON.parse(String(d));
      if (f.type === "hello") raw.send(JSON.stringify({ type: "message:send", channel_id: team!.general, text: "lost ack", client_msg_id: "lost-ack-1" }));
      if (f.type === "message:ack") resolve();
    });
  });
  raw.terminate();
  const [original] = (await historyWhen(team, team.general, "the first attempt in history", (ms) => ms.some((m) => m.client_msg_id === "lost-ack-1"))).filter(
    (m) => m.client_msg_id === "lost-ack-1",
  );
  assert.ok(original, "the first attempt was stored");
  const alice = team.client(team.alice);
  await alice.connect();
  const ack = await alice.send(team.general, "lost ack", { clientMsgId: "lost-ack-1" });
  assert.equal(ack.message_id, original.message_id);
  assert.equal(ack.seq, original.seq);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await history(team, team.general)).filter((m) => m.text === "lost ack").length, 1);
});

test("an ack lost in a dropped connection: the send is retried after the reconnect and exists once", async () => {
  team = await makeTeam(ctx.server);
  const net = new Network();
  let swallowed = 0;
  // the first ack is lost with the connection it came on
  net.incoming = (f, ws) => {
    if (f.type !== "message:ack" || swallowed > 0) return true;
    swallowed++;
    (ws as unknown as NodeWs).terminate?.() ?? ws.close(4000);
    return false;
  };
  const sent: string[] = [];
  net.outgoing = (f) => void (f.type === "message:send" && sent.push(String(f.client_msg_id)));
  const alice = team.client(team.alice, { WebSocket: net.WebSocket, reconnectDelaysMs: [50] });
  const bob = team.client(team.bob);
  const bobs = new Recorder(bob);
  await alice.connect();
  await bob.connect();
  const ack = await alice.send(team.general, "through a drop");
  assert.equal(swallowed, 1);
  assert.equal(sent.length, 2, "sent twice");
  assert.equal(sent[0], sent[1], "with the same client_msg_id");
  assert.equal(ack.client_msg_id, sent[0]);
  assert.equal(alice.connectionCount, 2);
  await bobs.waitFor("bob's copy", (f) => f.type === "message:new" && f.message.message_id === ack.message_id);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(bobs.messages(team.general).filter((m) => m.text === "through a drop").length, 1);
  const stored = await historyWhen(team, team.general, "the message in history", (ms) => ms.some((m) => m.message_id === ack.message_id));
  assert.equal(stored.filter((m) => m.text === "through a drop").length, 1);
});

test("a burst over the user's rate limit: rate_limited sends are retried with their id, each stored once", async () => {
  team = await makeTeam(ctx.server);
  const notes: string[] = [];
  const alice = team.client(team.alice, { logger: { info: (m) => notes.push(m), warn: (m) => notes.push(m) } });
  await alice.connect();
  const n = 70; // the user's bucket: bursts of 50, 10 a second
  const acks = await Promise.all(Array.from({ length: n }, (_, i) => alice.send(team!.general, `burst ${i}`, { timeoutMs: 60_000 })));
  assert.ok(notes.some((m) => m.includes("rate_limited")), "some sends were refused with rate_limited and resent");
  assert.equal(new Set(acks.map((a) => a.message_id)).size, n);
  assert.equal(new Set(acks.map((a) => a.seq)).size, n);
  const stored = (
    await historyWhen(team, team.general, "the burst in history", (ms) => ms.filter((m) => m.text.startsWith("burst ")).length >= n)
  ).filter((m) => m.text.startsWith("burst "));
  assert.equal(stored.length, n);
  assert.deepEqual(new Set(stored.map((m) => m.text)), new Set(acks.map((_, i) => `burst ${i}`)));
});

test("threads and commands: replies, edits, reactions, pins and read markers answered by ok, with their events", async () => {
  team = await makeTeam(ctx.server);
  const alice = team.client(team.alice);
  const bob = team.client(team.bob);
  const bobs = new Recorder(bob);
  await alice.connect();
  await bob.connect();
  const parent = await alice.send(team.general, "a thread starts");
  const reply = await bob.send(team.general, "a reply", { threadTs: parent.message_id });
  const newReply = await bobs.waitFor("the reply", (f) => f.type === "message:new" && f.message.message_id === reply.message_id);
  assert.ok(newReply.type === "message:new");
  assert.equal(newReply.message.thread_ts, parent.message_id);
  assert.equal(newReply.parent_thread?.reply_count, 1);

  const edited = await alice.edit(team.general, parent.message_id, "a thread starts (edited)");
  assert.equal(edited.type, "ok");
  assert.equal(edited.channel_id, team.general);
  const ev = await bobs.waitFor("message:edited", (f) => f.type === "message:edited" && f.message_id === parent.message_id);
  assert.ok(ev.type === "message:edited" && ev.text === "a thread starts (edited)");

  await alice.react(team.general, parent.message_id, "tada");
  const r = await bobs.waitFor("reaction:added", (f) => f.type === "reaction:added");
  assert.ok(r.type === "reaction:added" && r.users.includes(team.alice.user_id));

  await alice.pin(team.general, parent.message_id);
  await bobs.waitFor("message:pinned", (f) => f.type === "message:pinned" && f.pinned);
  const pins = await bob.http.pins(team.general);
  assert.deepEqual(pins.map((m) => m.message_id), [parent.message_id]);

  const mark = await bob.markRead(team.general, reply.seq);
  assert.equal(mark.type, "ok");
  const thread = await bob.http.replies(team.general, parent.message_id);
  assert.equal(thread.parent.message_id, parent.message_id);
  assert.equal(thread.parent.thread?.reply_count, 1);
  assert.deepEqual(thread.replies.map((m) => m.text), ["a reply"]);

  // the listeners per type get the same frames as `frame`
  const typed: string[] = [];
  const off = bob.on("message:new", (f) => typed.push(f.message.text));
  const last = await alice.send(team.general, "typed listener");
  await until("the typed listener", () => typed.includes("typed listener"));
  off();
  assert.equal(bobs.messages(team.general).filter((m) => m.message_id === last.message_id).length, 1);

  // a DM: opened by command, then used
  const dm = await alice.openDm([team.bob.user_id]);
  assert.equal(dm.type, "ok");
  await bobs.waitFor("the DM's channel:created", (f) => f.type === "channel:created" && f.channel_id === dm.channel_id);
  const inDm = await alice.send(dm.channel_id, "psst");
  await bobs.waitFor("the DM message", (f) => f.type === "message:new" && f.message.message_id === inDm.message_id);
});
