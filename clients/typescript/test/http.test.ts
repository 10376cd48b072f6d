// The HTTP helpers against a real `confab serve`: the caller, users, presence, the channel list
// followed through `next_after`, history in all three directions, threads, search (found within a
// bounded poll: the index follows the log) and typed errors from `{"error":{"code","message"}}`.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { ConfabAuthError, ConfabConnectionError, ConfabError, ConfabHttp, type MessageAckFrame, type MessageView } from "@confab/client";
import { freePort, makeTeam, until, useServer, type Team } from "./harness.js";

const ctx = useServer();
let team: Team | undefined;
afterEach(() => team?.closeAll());

test("me, users and presence", async () => {
  team = await makeTeam(ctx.server);
  const http = new ConfabHttp(team.url, team.alice.token);
  const me = await http.me();
  assert.equal(me.user_id, team.alice.user_id);
  assert.equal(me.workspace_id, team.workspaceId);
  assert.equal(me.name, "alice");
  assert.deepEqual(me.channels, [team.general]);
  const users = await http.users();
  assert.deepEqual(users.map((u) => u.name), ["alice", "bob"]);
  const alice = team.client(team.alice);
  await alice.connect();
  const presence = await until("alice active", async () => {
    const p = await http.presence([team!.alice.user_id, team!.bob.user_id]);
    return p[team!.alice.user_id] === "active" ? p : undefined;
  });
  assert.equal(presence[team.bob.user_id], "offline");
});

test("channels: every page through next_after, sorted by name", async () => {
  team = await makeTeam(ctx.server);
  const names = ["delta", "alpha", "echo", "charlie", "bravo"];
  for (const n of names) await team.addChannel(n, [team.alice], { creator: team.alice });
  const secret = await team.addChannel("secret", [team.bob], { private: true, creator: team.bob });
  const http = new ConfabHttp(team.url, team.alice.token);
  const first = await http.channelPage({ limit: 2 });
  assert.ok(first.next_after, "a first page of 2 of 7 says where to go on");
  const all = await http.channels({ pageSize: 2 });
  assert.deepEqual(all.map((c) => c.name), ["alpha", "bravo", "charlie", "delta", "echo", "general"]);
  assert.ok(!all.some((c) => c.channel_id === secret), "a private channel of others is not listed");
  const general = all.find((c) => c.name === "general")!;
  assert.equal(general.is_member, true);
  assert.equal(general.kind, "public");
  assert.equal(typeof general.last_seq, "number");
  assert.deepEqual((await http.channels()).map((c) => c.name), all.map((c) => c.name));
  const detail = await http.channel(team.general);
  assert.deepEqual(new Set(detail.members), new Set([team.alice.user_id, team.bob.user_id]));
});

test("history: newest first with cursor pages, after= oldest first, around= a message", async () => {
  team = await makeTeam(ctx.server);
  const alice = team.client(team.alice);
  await alice.connect();
  const acks: MessageAckFrame[] = [];
  for (let i = 0; i < 25; i++) acks.push(await alice.send(team.general, `history ${i}`));
  const http = alice.http;
  await until("the timeline has all 25", async () => (await http.history(team!.general, { limit: 1 })).messages[0]?.message_id === acks[24]!.message_id, 20_000, 100);

  const pages: MessageView[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 10; i++) {
    const page = await http.history(team.general, { limit: 10, cursor });
    pages.push(page.messages);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  assert.deepEqual(pages.map((p) => p.length), [10, 10, 5]);
  const newestFirst = pages.flat().map((m) => m.text);
  assert.deepEqual(newestFirst, acks.map((_, i) => `history ${i}`).reverse());

  const forward = await http.history(team.general, { limit: 10, after: acks[4]!.message_id });
  assert.deepEqual(forward.messages.map((m) => m.text), Array.from({ length: 10 }, (_, i) => `history ${i + 5}`));
  assert.ok(forward.next_after);
  const rest: string[] = [];
  for await (const m of http.iterHistory(team.general, { after: acks[4]!.message_id, pageSize: 7 })) rest.push(m.text);
  assert.deepEqual(rest, Array.from({ length: 20 }, (_, i) => `history ${i + 5}`));

  const around = await http.history(team.general, { limit: 4, around: acks[12]!.message_id });
  const texts = around.messages.map((m) => m.text);
  assert.ok(texts.includes("history 12"), texts.join(", "));
  assert.ok(texts.length >= 3 && texts.length <= 5, texts.join(", "));
  assert.throws(() => http.history(team!.general, { cursor: acks[1]!.message_id, after: acks[2]!.message_id }), TypeError);
});

test("search: a message is found within a bounded poll", async () => {
  team = await makeTeam(ctx.server);
  const alice = team.client(team.alice);
  await alice.connect();
  const word = `zebrafish${Date.now().toString(36)}`;
  const ack = await alice.send(team.general, `the ${word} swam by`);
  await alice.send(team.general, "an unrelated message");
  const found = await until(
    "the search hit",
    async () => {
      const r = await alice.http.search(word, { limit: 5 });
      return r.total >= 1 ? r : undefined;
    },
    30_000,
    200,
  );
  assert.equal(found.total, 1);
  const hit = found.messages[0]!;
  assert.equal(hit.message_id, ack.message_id);
  assert.equal(hit.channel_id, team.general);
  assert.ok(hit.highlight.includes("<em>"), hit.highlight);
  const none = await alice.http.search(`${word}nothing`);
  assert.equal(none.total, 0);
  assert.deepEqual(none.messages, []);
});

test("HTTP errors are ConfabErrors with the server's code and status", async () => {
  team = await makeTeam(ctx.server);
  const http = new ConfabHttp(team.url, team.alice.token);
  const nowhere = "00000000-0000-4000-8000-000000000000";
  await assert.rejects(http.history(nowhere), (e: unknown) => {
    assert.ok(e instanceof ConfabError);
    assert.equal(e.code, "channel_not_found");
    assert.equal(e.status, 404);
    assert.equal(e.retryable, false);
    return true;
  });
  await assert.rejects(http.history(team.general, { limit: 5000 }), { code: "invalid_field", status: 400 });
  await assert.rejects(new ConfabHttp(team.url, "cfb1.forged").me(), (e: unknown) => e instanceof ConfabAuthError && e.code === "unauthorized" && e.status === 401);
  // nothing listens there
  const dead = new ConfabHttp(`http://127.0.0.1:${await freePort()}`, team.alice.token);
  await assert.rejects(dead.me(), (e: unknown) => e instanceof ConfabConnectionError && e.code === "network" && e.retryable);
});
