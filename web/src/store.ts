// The page's state: channels, messages, threads, users, presence, typing. Views subscribe to
// changes; only the app controller (app.ts) mutates it, from HTTP pages and socket events.

import type { Attachment, Channel, Message, PresenceStatus, User, Uuid } from "./types";

export interface ChannelState {
  info: Channel;
  /** Top-level messages (and replies also sent to the channel), by id. */
  messages: Map<Uuid, Message>;
  /** Ids in display order (oldest first). */
  order: Uuid[];
  /** History loaded at least once (the newest page). */
  loaded: boolean;
  /** Cursor for the next older page; null when the start of the channel is reached. */
  olderCursor: string | null;
  loadingOlder: boolean;
  unread: number;
  mentions: number;
  lastReadSeq: number;
}

export interface ThreadState {
  channelId: Uuid;
  parentId: Uuid;
  parent: Message | null;
  replies: Map<Uuid, Message>;
  loaded: boolean;
}

/** A message typed here that the server has not acknowledged yet. */
export interface Pending {
  client_msg_id: string;
  channel_id: Uuid;
  text: string;
  thread_ts?: Uuid;
  files?: Attachment[];
  failed?: string;
}

export type Change =
  | { kind: "channels" }
  | { kind: "messages"; channelId: Uuid }
  | { kind: "message"; channelId: Uuid; messageId: Uuid }
  | { kind: "thread"; parentId: Uuid }
  | { kind: "typing"; channelId: Uuid }
  | { kind: "presence" }
  | { kind: "users" }
  | { kind: "pending"; channelId: Uuid };

const byOrder = (a: Message, b: Message) => a.seq - b.seq || a.ts - b.ts;

export class Store {
  me: Uuid = "";
  users = new Map<Uuid, User>();
  presence = new Map<Uuid, PresenceStatus>();
  channels = new Map<Uuid, ChannelState>();
  threads = new Map<Uuid, ThreadState>();
  typing = new Map<Uuid, Map<Uuid, number>>();
  pending = new Map<string, Pending>();
  private listeners = new Set<(c: Change) => void>();

  subscribe(fn: (c: Change) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(c: Change): void {
    for (const fn of this.listeners) fn(c);
  }

  // ---- users ----

  userName(id: Uuid): string {
    return this.users.get(id)?.name ?? (id === this.me ? "you" : `user ${id.slice(0, 8)}`);
  }

  userByName(name: string): User | undefined {
    const lower = name.toLowerCase();
    for (const u of this.users.values()) if (u.name.toLowerCase() === lower) return u;
    return undefined;
  }

  setUsers(users: User[]): void {
    for (const u of users) this.users.set(u.user_id, u);
    this.emit({ kind: "users" });
    this.emit({ kind: "channels" });
  }

  // ---- channels ----

  setChannels(list: Channel[]): void {
    const seen = new Set<Uuid>();
    for (const info of list) {
      seen.add(info.channel_id);
      const cur = this.channels.get(info.channel_id);
      if (cur) {
        cur.info = { ...cur.info, ...info };
        cur.unread = info.unread_count ?? 0;
        cur.mentions = info.mention_count ?? 0;
        cur.lastReadSeq = info.last_read_seq ?? 0;
      } else {
        this.channels.set(info.channel_id, newChannel(info));
      }
    }
    for (const id of [...this.channels.keys()]) if (!seen.has(id)) this.channels.delete(id);
    this.emit({ kind: "channels" });
  }

  addChannel(info: Channel): ChannelState {
    let cur = this.channels.get(info.channel_id);
    if (cur) cur.info = { ...cur.info, ...info };
    else this.channels.set(info.channel_id, (cur = newChannel(info)));
    this.emit({ kind: "channels" });
    return cur;
  }

  /** Display name: `#name` for channels, the other people for DMs. */
  channelTitle(ch: Channel): string {
    if (ch.kind === "dm" || ch.kind === "group_dm") {
      const others = (ch.members ?? []).filter((u) => u !== this.me);
      if (others.length === 0) return `${this.userName(this.me)} (you)`;
      return others.map((u) => this.userName(u)).sort().join(", ");
    }
    return ch.name;
  }

  isDm(ch: Channel): boolean {
    return ch.kind === "dm" || ch.kind === "group_dm";
  }

  /** The newest seq among the loaded messages of a channel. */
  latestSeq(ch: ChannelState): number {
    const last = ch.order[ch.order.length - 1];
    return last ? ch.messages.get(last)!.seq : 0;
  }

  // ---- messages ----

  /** Merges messages from HTTP or the socket; idempotent. Returns the ids that were new. */
  mergeMessages(channelId: Uuid, msgs: Message[]): Uuid[] {
    const ch = this.channels.get(channelId);
    if (!ch) return [];
    const added: Uuid[] = [];
    for (const m of msgs) {
      const old = ch.messages.get(m.message_id);
      if (old) ch.messages.set(m.message_id, mergeMessage(old, m));
      else {
        ch.messages.set(m.message_id, m);
        added.push(m.message_id);
      }
    }
    if (added.length) ch.order = [...ch.messages.values()].sort(byOrder).map((m) => m.message_id);
    return added;
  }

  /** Finds a loaded message (channel list or thread) and applies `fn` to every copy of it. */
  updateMessage(channelId: Uuid, messageId: Uuid, fn: (m: Message) => Message): boolean {
    let found = false;
    const ch = this.channels.get(channelId);
    const m = ch?.messages.get(messageId);
    if (ch && m) {
      ch.messages.set(messageId, fn(m));
      found = true;
      this.emit({ kind: "message", channelId, messageId });
    }
    for (const t of this.threads.values()) {
      if (t.channelId !== channelId) continue;
      if (t.parent?.message_id === messageId) {
        t.parent = fn(t.parent);
        found = true;
        this.emit({ kind: "thread", parentId: t.parentId });
      }
      const r = t.replies.get(messageId);
      if (r) {
        t.replies.set(messageId, fn(r));
        found = true;
        this.emit({ kind: "thread", parentId: t.parentId });
      }
    }
    return found;
  }

  /** Marks a file deleted in every loaded message that carries it (any channel if null). */
  markFileDeleted(channelId: Uuid | null, fileId: Uuid): void {
    const carries = (m: Message) => !!m.attachments?.some((a) => a.file_id === fileId && !a.deleted);
    const mark = (m: Message): Message => ({ ...m, attachments: m.attachments?.map((a) => (a.file_id === fileId ? { ...a, deleted: true } : a)) });
    const hits = new Map<Uuid, Set<Uuid>>();
    const note = (ch: Uuid, m: Message) => {
      if (carries(m)) hits.set(ch, (hits.get(ch) ?? new Set()).add(m.message_id));
    };
    for (const [id, ch] of this.channels) if (channelId === null || id === channelId) for (const m of ch.messages.values()) note(id, m);
    for (const t of this.threads.values()) {
      if (channelId !== null && t.channelId !== channelId) continue;
      if (t.parent) note(t.channelId, t.parent);
      for (const r of t.replies.values()) note(t.channelId, r);
    }
    for (const [ch, ids] of hits) for (const id of ids) this.updateMessage(ch, id, mark);
  }

  findMessage(channelId: Uuid, messageId: Uuid): Message | undefined {
    const m = this.channels.get(channelId)?.messages.get(messageId);
    if (m) return m;
    for (const t of this.threads.values()) {
      if (t.channelId !== channelId) continue;
      if (t.parent?.message_id === messageId) return t.parent;
      const r = t.replies.get(messageId);
      if (r) return r;
    }
    return undefined;
  }

  thread(channelId: Uuid, parentId: Uuid): ThreadState {
    let t = this.threads.get(parentId);
    if (!t) this.threads.set(parentId, (t = { channelId, parentId, parent: null, replies: new Map(), loaded: false }));
    return t;
  }

  sortedReplies(t: ThreadState): Message[] {
    return [...t.replies.values()].sort(byOrder);
  }

  // ---- typing ----

  setTyping(channelId: Uuid, userId: Uuid, expiresInMs: number): void {
    let m = this.typing.get(channelId);
    if (!m) this.typing.set(channelId, (m = new Map()));
    m.set(userId, Date.now() + expiresInMs);
    this.emit({ kind: "typing", channelId });
  }

  clearTyping(channelId: Uuid, userId: Uuid): void {
    if (this.typing.get(channelId)?.delete(userId)) this.emit({ kind: "typing", channelId });
  }

  typers(channelId: Uuid): Uuid[] {
    const m = this.typing.get(channelId);
    if (!m) return [];
    const now = Date.now();
    return [...m].filter(([, until]) => until > now).map(([u]) => u);
  }

  pendingIn(channelId: Uuid, threadTs?: Uuid): Pending[] {
    return [...this.pending.values()].filter((p) => p.channel_id === channelId && p.thread_ts === threadTs);
  }
}

function newChannel(info: Channel): ChannelState {
  return {
    info,
    messages: new Map(),
    order: [],
    loaded: false,
    olderCursor: null,
    loadingOlder: false,
    unread: info.unread_count ?? 0,
    mentions: info.mention_count ?? 0,
    lastReadSeq: info.last_read_seq ?? 0,
  };
}

/** Two copies of one message: keep the newer edit, the tombstone, the larger thread summary. */
function mergeMessage(old: Message, m: Message): Message {
  const out: Message = { ...old, ...m };
  if ((old.edited_at ?? 0) > (m.edited_at ?? 0)) {
    out.text = old.text;
    out.edited_at = old.edited_at;
  }
  if (old.deleted) {
    out.deleted = true;
    out.text = "";
  }
  if (old.thread && (!m.thread || old.thread.reply_count > m.thread.reply_count)) out.thread = old.thread;
  if (old.reactions && !m.reactions) out.reactions = old.reactions;
  const gone = new Set((old.attachments ?? []).filter((a) => a.deleted).map((a) => a.file_id));
  if (gone.size && out.attachments) out.attachments = out.attachments.map((a) => (gone.has(a.file_id) ? { ...a, deleted: true } : a));
  return out;
}
