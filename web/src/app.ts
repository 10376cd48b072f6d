// The controller: loads state over HTTP, applies socket events to the store, and carries out
// what the views ask for (actions.ts). Views render from the store; only this file mutates it.
// The connection (heartbeats, reconnects, lossless resume, sends retried with their
// client_msg_id) and the HTTP calls are @confab/client's (clients/typescript).

import {
  ConfabClient,
  ConfabClosedError,
  ConfabError,
  newClientMsgId,
  type CommandFrame,
  type ConfabHttp,
  type ConnectionStatus,
  type MessageAckFrame,
  type OkFrame,
  type SyncInfo,
} from "@confab/client";
import type { Actions } from "./actions";
import { h } from "./dom";
import { Files, type FileLink } from "./files";
import { encodeMentions, mentionsMe } from "./format";
import { Store } from "./store";
import type { Attachment, Message, SearchHit, SearchResult, ServerFrame, Uuid } from "./types";
import { ChannelView } from "./views/channel";
import { newChannelDialog, newDmDialog } from "./views/dialogs";
import { SearchView } from "./views/search";
import { Sidebar } from "./views/sidebar";
import { ThreadView } from "./views/thread";

const LAST_CHANNEL = "confab.channel";

export class App implements Actions {
  readonly store = new Store();
  readonly api: ConfabHttp;
  readonly files: Files;
  readonly client: ConfabClient;
  readonly root: HTMLElement;
  private readonly sidebar: Sidebar;
  private readonly channel: ChannelView;
  private readonly thread: ThreadView;
  private readonly searchView: SearchView;
  private readonly banner: HTMLElement;
  private readonly toasts: HTMLElement;
  private readonly searchInput: HTMLInputElement;
  private ready = false;
  private early: ServerFrame[] = [];
  private markTimer: number | undefined;
  private typingTimers = new Map<string, number>();
  /** client_msg_id -> the send in flight for a pending message (aborted when it is discarded). */
  private sending = new Map<string, AbortController>();
  private searchOffset: number | null = null;
  /** Thread replies already included in their parent's reply count. */
  private countedReplies = new Set<Uuid>();

  constructor(token: string, private readonly onSignOut: (reason?: string) => void) {
    this.client = new ConfabClient({
      url: location.origin,
      token,
      // the page reads the channel list itself (start() advances to each channel's last_seq)
      // and refetches over HTTP what a resume could not replay (afterReconnect)
      seedPositions: false,
      fillGaps: false,
      // "Connecting…" until the server answers, however long that takes
      connectTimeoutMs: 0,
    });
    this.api = this.client.http;
    this.files = new Files(this.api);
    this.client.on("frame", (f) => (this.ready ? this.apply(f) : this.early.push(f)));
    this.client.on("status", (s) => this.showStatus(s));
    this.client.on("synced", (info) => this.synced(info));
    const toggleDrawer = () => this.setDrawer(!this.root.classList.contains("drawer-open"));
    this.sidebar = new Sidebar(this.store, this, { newChannel: () => newChannelDialog(this), newDm: () => newDmDialog(this.store, this) });
    this.channel = new ChannelView(this.store, this, toggleDrawer);
    this.thread = new ThreadView(this.store, this);
    this.searchView = new SearchView(this.store, this, () => this.searchMore());
    this.banner = h("div", { class: "banner", role: "status", "aria-live": "polite", hidden: true });
    this.toasts = h("div", { class: "toasts", role: "alert", "aria-live": "assertive" });
    this.searchInput = h("input", {
      type: "search",
      class: "search-input",
      placeholder: "Search (in:#channel from:@name before:2026-01-31)",
      "aria-label": "Search messages",
      autocomplete: "off",
      spellcheck: "false",
    }) as HTMLInputElement;
    const searchForm = h(
      "form",
      {
        role: "search",
        class: "search-form",
        onsubmit: (e: Event) => {
          e.preventDefault();
          this.search(this.searchInput.value);
        },
      },
      this.searchInput,
    );
    const topbar = h("header", { class: "topbar" }, h("span", { class: "brand" }, "Confab"), searchForm);
    this.root = h(
      "div",
      { class: "app" },
      h("a", { class: "skip-link", href: "#", onclick: (e: Event) => (e.preventDefault(), this.channel.composer.focus()) }, "Skip to composer"),
      topbar,
      this.banner,
      h("div", { class: "layout" }, this.sidebar.el, h("div", { class: "backdrop", onclick: () => this.setDrawer(false) }), this.channel.el, this.thread.el, this.searchView.el),
      this.toasts,
    );
    this.store.subscribe((c) => {
      switch (c.kind) {
        case "channels":
        case "users":
        case "presence":
          this.sidebar.render();
          if (this.channel.current) this.channel.renderHeader();
          if (c.kind !== "channels") {
            this.channel.renderMessages();
            this.thread.render();
          }
          break;
        case "messages":
          if (c.channelId === this.channel.current) this.channel.renderMessages();
          break;
        case "message":
          if (c.channelId === this.channel.current) this.channel.renderMessages();
          break;
        case "thread":
          if (c.parentId === this.thread.parentId) this.thread.render();
          break;
        case "typing":
          if (c.channelId === this.channel.current) this.channel.composer.renderTyping();
          if (c.channelId === this.thread.channelId) this.thread.composer.renderTyping();
          break;
        case "pending":
          if (c.channelId === this.channel.current) this.channel.renderPending();
          if (c.channelId === this.thread.channelId) this.thread.render();
          break;
      }
    });
    document.addEventListener("keydown", (e) => this.onGlobalKey(e));
    document.addEventListener("visibilitychange", () => {
      this.client.setPresence(document.visibilityState === "visible" ? "active" : "away");
      if (document.visibilityState === "visible") this.markSoon();
    });
    this.channel.scroller.addEventListener("scroll", () => this.markSoon());
  }

  /** Connects, loads users, channels and presence, opens the last (or first) channel. */
  async start(): Promise<void> {
    const me = await this.api.me(); // throws 401 for a bad token
    this.store.me = me.user_id;
    await this.client.connect(); // subscribed: from here on nothing is missed, events queue until we are ready
    const [users, channels] = await Promise.all([this.api.users(), this.api.channels()]);
    this.store.setUsers(users);
    this.store.setChannels(channels);
    for (const c of channels) if (c.is_member && typeof c.last_seq === "number") this.client.advance(c.channel_id, c.last_seq);
    this.ready = true;
    const early = this.early;
    this.early = [];
    for (const f of early) {
      const ch = channels.find((c) => c.channel_id === (f as { channel_id?: Uuid }).channel_id);
      const seq = (f as { seq?: number }).seq ?? (f.type === "message:new" ? f.message.seq : undefined);
      if (ch && typeof ch.last_seq === "number" && seq !== undefined && seq <= ch.last_seq) continue; // already counted
      this.apply(f);
    }
    this.refreshPresence();
    const saved = sessionStorage.getItem(LAST_CHANNEL);
    const mine = [...this.store.channels.values()].filter((c) => c.info.is_member);
    const first = mine.find((c) => c.info.channel_id === saved) ?? mine.find((c) => c.info.name === "general" && !this.store.isDm(c.info)) ?? mine[0];
    if (first) this.openChannel(first.info.channel_id, { focus: "none" });
    this.sidebar.render();
  }

  stop(): void {
    for (const a of this.sending.values()) a.abort();
    this.sending.clear();
    this.client.close();
  }

  // ---- socket ----

  private showStatus(s: ConnectionStatus): void {
    if (s === "closed" || s === "idle") return;
    this.root.dataset.connection = s;
    if (s === "unauthorized") {
      this.stop();
      this.onSignOut("Your token was refused (expired or invalid). Sign in again.");
      return;
    }
    this.banner.hidden = s === "online";
    this.banner.textContent = s === "reconnecting" ? "Reconnecting…" : s === "connecting" ? "Connecting…" : "";
  }

  private synced(info: SyncInfo): void {
    if (!this.ready) return; // the first connect: start() goes on
    // a reconnect: fill what the resume could not, refresh counts and presence (pending
    // messages are resent by the client itself, with their client_msg_id)
    void this.afterReconnect(info);
  }

  private async afterReconnect(info: SyncInfo): Promise<void> {
    const refill = new Set<Uuid>(info.gaps.map((g) => g.channel_id));
    if (!info.resumed) for (const [id, ch] of this.store.channels) if (ch.loaded) refill.add(id);
    try {
      await Promise.all([...refill].map((id) => this.fetchNewer(id)));
      this.store.setChannels(await this.api.channels());
      if (this.thread.parentId && this.thread.channelId) await this.loadThread(this.thread.channelId, this.thread.parentId);
      this.refreshPresence();
      this.markSoon();
    } catch (e) {
      this.toast(`Could not refresh: ${(e as Error).message}`);
    }
  }

  /** Fetches what is newer than the newest loaded message of a channel (after a gap). */
  private async fetchNewer(channelId: Uuid): Promise<void> {
    const ch = this.store.channels.get(channelId);
    if (!ch || !ch.loaded) return;
    let after = ch.order[ch.order.length - 1];
    if (!after) return this.loadLatest(channelId);
    for (let i = 0; i < 20 && after; i++) {
      const page = await this.api.history(channelId, { after, limit: 100 });
      this.store.mergeMessages(channelId, page.messages);
      for (const m of page.messages) this.client.advance(channelId, m.seq);
      after = page.next_after ?? "";
    }
    this.store.emit({ kind: "messages", channelId });
  }

  private apply(f: ServerFrame): void {
    switch (f.type) {
      case "message:new":
        return this.onMessage(f.message);
      case "message:ack": // an ack no send waits for any more
        return this.acked(f);
      case "message:edited":
        this.store.updateMessage(f.channel_id, f.message_id, (m) => ((m.edited_at ?? 0) > f.edited_at ? m : { ...m, text: f.text, edited_at: f.edited_at }));
        return;
      case "message:deleted":
        this.store.updateMessage(f.channel_id, f.message_id, (m) => ({ ...m, deleted: true, text: "", reactions: {}, attachments: [] }));
        return;
      case "reaction:added":
      case "reaction:removed":
        this.store.updateMessage(f.channel_id, f.message_id, (m) => ({ ...m, reactions: { ...(m.reactions ?? {}), [f.emoji]: f.users } }));
        return;
      case "message:pinned":
        this.store.updateMessage(f.channel_id, f.message_id, (m) => ({ ...m, pinned: f.pinned }));
        return;
      case "typing": {
        if (f.user_id === this.store.me) return;
        this.store.setTyping(f.channel_id, f.user_id, f.expires_in_ms);
        const key = `${f.channel_id}/${f.user_id}`;
        clearTimeout(this.typingTimers.get(key));
        this.typingTimers.set(key, window.setTimeout(() => this.store.clearTyping(f.channel_id, f.user_id), f.expires_in_ms));
        return;
      }
      case "channel:created":
        this.store.addChannel({
          channel_id: f.channel_id,
          name: f.name,
          kind: f.kind,
          is_private: f.is_private,
          archived: false,
          is_member: true,
          member_count: f.member_count,
          members: f.members,
          unread_count: 0,
          mention_count: 0,
          last_read_seq: 0,
        });
        this.client.advance(f.channel_id, f.seq);
        return;
      case "channel:joined":
      case "channel:left": {
        if (f.user_id === this.store.me) {
          if (f.type === "channel:left") this.client.forget(f.channel_id);
          void this.refreshChannels().then(() => {
            if (f.type === "channel:left" && this.channel.current === f.channel_id) {
              const next = [...this.store.channels.values()].find((c) => c.info.is_member);
              if (next) this.openChannel(next.info.channel_id);
            } else this.channel.renderHeader();
          });
          return;
        }
        const ch = this.store.channels.get(f.channel_id);
        if (ch) {
          const members = new Set(ch.info.members ?? []);
          if (f.type === "channel:joined") members.add(f.user_id);
          else members.delete(f.user_id);
          ch.info = { ...ch.info, member_count: Math.max(0, ch.info.member_count + (f.type === "channel:joined" ? 1 : -1)), members: ch.info.members ? [...members] : undefined };
          this.store.emit({ kind: "channels" });
        }
        if (!this.store.users.has(f.user_id)) void this.api.users().then((u) => this.store.setUsers(u));
        return;
      }
      case "channel:renamed":
      case "channel:archived": {
        const ch = this.store.channels.get(f.channel_id);
        if (!ch) return;
        ch.info = f.type === "channel:renamed" ? { ...ch.info, name: f.name } : { ...ch.info, archived: f.archived };
        this.store.emit({ kind: "channels" });
        return;
      }
      case "channel:marked": {
        const ch = this.store.channels.get(f.channel_id);
        if (!ch || f.seq < ch.lastReadSeq) return;
        ch.lastReadSeq = f.seq;
        if (ch.loaded || f.seq >= this.store.latestSeq(ch)) {
          const after = ch.order.map((id) => ch.messages.get(id)!).filter((m) => m.seq > f.seq && m.user_id !== this.store.me && !m.deleted);
          ch.unread = ch.loaded ? after.length : 0;
          ch.mentions = ch.loaded ? after.filter((m) => mentionsMe(m.text, this.store.me)).length : 0;
        }
        this.store.emit({ kind: "channels" });
        return;
      }
      case "file:shared":
        return; // the message that carries the file shows it
      case "file:deleted":
        this.files.markGone(f.file_id);
        this.store.markFileDeleted(f.channel_id, f.file_id);
        return;
      case "presence:change":
        for (const u of f.users) this.store.presence.set(u.user_id, u.status);
        this.store.emit({ kind: "presence" });
        return;
      case "ok": // an answer no command waits for any more
        return;
      case "error": // one no request waits for: a refused typing indicator or read marker, ...
        this.toast(f.message || f.code);
        return;
      default:
        return;
    }
  }

  /** A send was acknowledged: the pending message becomes the message (until its message:new). */
  private acked(f: MessageAckFrame): void {
    const p = this.store.pending.get(f.client_msg_id);
    if (!p) return;
    this.store.pending.delete(f.client_msg_id);
    this.onMessage({ channel_id: f.channel_id, message_id: f.message_id, seq: f.seq, ts: f.ts, user_id: this.store.me, text: p.text, client_msg_id: p.client_msg_id, thread_ts: p.thread_ts, attachments: p.files }, true);
    this.store.emit({ kind: "pending", channelId: p.channel_id });
  }

  private onMessage(m: Message, fromAck = false): void {
    if (m.client_msg_id && this.store.pending.has(m.client_msg_id) && m.user_id === this.store.me) {
      this.store.pending.delete(m.client_msg_id);
      this.store.emit({ kind: "pending", channelId: m.channel_id });
    }
    if (!this.store.users.has(m.user_id)) void this.api.users().then((u) => this.store.setUsers(u));
    this.store.clearTyping(m.channel_id, m.user_id); // they sent what they were typing
    const ch = this.store.channels.get(m.channel_id);
    if (m.thread_ts) {
      const t = this.store.threads.get(m.thread_ts);
      if (t) {
        const old = t.replies.get(m.message_id);
        t.replies.set(m.message_id, old ? { ...old, ...m } : m);
        this.store.emit({ kind: "thread", parentId: m.thread_ts });
      }
      if (!fromAck && !this.countedReplies.has(m.message_id)) {
        // the parent's thread summary, wherever it is shown (an ack only previews the reply:
        // its message:new counts it)
        this.countedReplies.add(m.message_id);
        this.store.updateMessage(m.channel_id, m.thread_ts, (p) => {
          const th = p.thread ?? { reply_count: 0, reply_users: [] };
          return { ...p, thread: { reply_count: th.reply_count + 1, reply_users: th.reply_users.includes(m.user_id) ? th.reply_users : [...th.reply_users, m.user_id], last_reply_at: m.ts } };
        });
      }
      if (!m.also_in_channel) return;
    }
    if (!ch) {
      void this.refreshChannels();
      return;
    }
    const isNew = ch.loaded ? this.store.mergeMessages(m.channel_id, [m]).length > 0 : true;
    if (ch.loaded) this.store.emit({ kind: "messages", channelId: m.channel_id });
    if (!isNew || m.user_id === this.store.me || m.seq <= ch.lastReadSeq) {
      if (m.user_id === this.store.me && m.channel_id === this.channel.current) this.channel.scrollToBottom();
      return;
    }
    if (m.channel_id === this.channel.current && this.channel.isReading()) {
      this.markSoon();
      return;
    }
    ch.unread++;
    if (mentionsMe(m.text, this.store.me)) ch.mentions++;
    this.store.emit({ kind: "channels" });
  }

  private async refreshChannels(): Promise<void> {
    try {
      this.store.setChannels(await this.api.channels());
    } catch (e) {
      this.toast(`Could not load channels: ${(e as Error).message}`);
    }
  }

  private async refreshPresence(): Promise<void> {
    try {
      const users = await this.api.presence([...this.store.users.keys()]);
      for (const [u, s] of Object.entries(users)) this.store.presence.set(u, s);
      this.store.emit({ kind: "presence" });
    } catch {
      /* presence is decoration */
    }
  }

  // ---- reading ----

  /** Marks the open channel read up to its newest message, soon (coalesced). */
  private markSoon(): void {
    clearTimeout(this.markTimer);
    this.markTimer = window.setTimeout(() => this.markRead(), 300);
  }

  private markRead(): void {
    const id = this.channel.current;
    const ch = id ? this.store.channels.get(id) : undefined;
    if (!ch || !ch.loaded || !ch.info.is_member || !this.channel.isReading()) return;
    const seq = this.store.latestSeq(ch);
    if (ch.unread || ch.mentions) {
      ch.unread = ch.mentions = 0;
      this.store.emit({ kind: "channels" });
    }
    if (seq > ch.lastReadSeq && this.client.sendFrame({ type: "channel:mark", channel_id: ch.info.channel_id, seq })) ch.lastReadSeq = seq;
  }

  private async loadLatest(channelId: Uuid): Promise<void> {
    const ch = this.store.channels.get(channelId);
    if (!ch) return;
    try {
      const page = await this.api.history(channelId, { limit: 50 });
      this.store.mergeMessages(channelId, page.messages);
      for (const m of page.messages) this.client.advance(channelId, m.seq);
      ch.olderCursor = page.next_cursor ?? null;
      ch.loaded = true;
      this.store.emit({ kind: "messages", channelId });
    } catch (e) {
      this.toast(`Could not load messages: ${(e as Error).message}`);
    }
  }

  // ---- actions (views call these) ----

  openChannel(channelId: Uuid, opts: { focus?: "composer" | "none" } = {}): void {
    const ch = this.store.channels.get(channelId);
    if (!ch) return;
    if (this.channel.current && this.channel.current !== channelId) this.markRead(); // leaving: flush
    sessionStorage.setItem(LAST_CHANNEL, channelId);
    this.sidebar.current = channelId;
    this.channel.show(channelId);
    this.sidebar.render();
    this.setDrawer(false);
    if (this.thread.channelId && this.thread.channelId !== channelId) this.closeThread();
    const done = () => {
      if (this.channel.current !== channelId) return;
      this.channel.scrollToBottom();
      this.markRead(); // on screen now: read, even if the reader moves on at once
    };
    if (!ch.loaded) void this.loadLatest(channelId).then(done);
    else done();
    if (opts.focus !== "none") this.channel.composer.focus();
  }

  openThread(channelId: Uuid, parentId: Uuid): void {
    this.searchView.close();
    this.thread.open(channelId, parentId);
    this.root.classList.add("pane-open");
    void this.loadThread(channelId, parentId).then(() => this.thread.composer.focus());
  }

  private async loadThread(channelId: Uuid, parentId: Uuid): Promise<void> {
    const t = this.store.thread(channelId, parentId);
    try {
      let after: string | undefined;
      for (let i = 0; i < 20; i++) {
        const page = await this.api.replies(channelId, parentId, { limit: 200, after });
        t.parent = page.parent;
        for (const r of page.replies) {
          t.replies.set(r.message_id, r);
          this.countedReplies.add(r.message_id);
        }
        if (!page.next_after) break;
        after = page.next_after;
      }
      t.loaded = true;
      if (t.parent) this.store.updateMessage(channelId, parentId, (m) => ({ ...m, thread: t.parent!.thread ?? m.thread }));
      this.store.emit({ kind: "thread", parentId });
    } catch (e) {
      this.toast(`Could not load the thread: ${(e as Error).message}`);
    }
  }

  closeThread(): void {
    const parent = this.thread.parentId;
    this.thread.close();
    if (!this.searchView.isOpen) this.root.classList.remove("pane-open");
    if (parent) this.channel.list.find(parent)?.focus();
  }

  send(channelId: Uuid, text: string, threadTs?: Uuid, files?: Attachment[]): void {
    const id = newClientMsgId();
    this.store.pending.set(id, { client_msg_id: id, channel_id: channelId, text: encodeMentions(text, this.store), thread_ts: threadTs, files: files?.length ? files : undefined });
    this.store.emit({ kind: "pending", channelId });
    this.sendPending(id);
    if (!threadTs) this.channel.scrollToBottom();
  }

  /** Sends a pending message until it is acknowledged: while offline it waits, after a drop or
   * `rate_limited` it is sent again with the same client_msg_id (the client does that); a
   * refusal marks it failed (retry or discard). */
  private sendPending(id: string): void {
    const p = this.store.pending.get(id);
    if (!p || this.sending.has(id)) return;
    const abort = new AbortController();
    this.sending.set(id, abort);
    this.client
      .send(p.channel_id, p.text, {
        clientMsgId: p.client_msg_id,
        threadTs: p.thread_ts,
        alsoSendToChannel: p.thread_ts ? false : undefined,
        fileIds: p.files?.map((f) => f.file_id),
        timeoutMs: 0, // no deadline: it stays pending until sent, however long we are offline
        signal: abort.signal,
      })
      .then(
        (ack) => this.acked(ack),
        (e: unknown) => {
          if (e instanceof ConfabClosedError) return; // discarded, or the page is closing
          const q = this.store.pending.get(id);
          if (!q) return;
          q.failed = e instanceof ConfabError ? e.message || e.code : String(e);
          this.store.emit({ kind: "pending", channelId: q.channel_id });
        },
      )
      .finally(() => {
        if (this.sending.get(id) === abort) this.sending.delete(id);
      });
  }

  retry(clientMsgId: string): void {
    const p = this.store.pending.get(clientMsgId);
    if (!p) return;
    p.failed = undefined;
    this.store.emit({ kind: "pending", channelId: p.channel_id });
    this.sendPending(clientMsgId);
  }

  discard(clientMsgId: string): void {
    const p = this.store.pending.get(clientMsgId);
    if (!p) return;
    this.sending.get(clientMsgId)?.abort();
    this.sending.delete(clientMsgId);
    this.store.pending.delete(clientMsgId);
    this.store.emit({ kind: "pending", channelId: p.channel_id });
  }

  /** A command answered by `ok` (or an error, shown as a toast); only while connected. */
  private command(frame: CommandFrame, onOk?: (f: OkFrame) => void): void {
    if (!this.client.online) {
      this.toast("Not connected: try again in a moment.");
      return;
    }
    this.client.command(frame).then(
      (ok) => onOk?.(ok),
      (e: unknown) => {
        if (e instanceof ConfabClosedError) return;
        this.toast(e instanceof ConfabError ? e.message || e.code : String(e));
      },
    );
  }

  edit(channelId: Uuid, messageId: Uuid, text: string): void {
    this.command({ type: "message:edit", channel_id: channelId, message_id: messageId, text: encodeMentions(text, this.store) });
  }

  remove(channelId: Uuid, messageId: Uuid): void {
    this.command({ type: "message:delete", channel_id: channelId, message_id: messageId });
  }

  toggleReaction(channelId: Uuid, messageId: Uuid, emoji: string): void {
    const m = this.store.findMessage(channelId, messageId);
    const mine = m?.reactions?.[emoji]?.includes(this.store.me);
    this.command({ type: mine ? "reaction:remove" : "reaction:add", channel_id: channelId, message_id: messageId, emoji });
  }

  async loadOlder(channelId: Uuid): Promise<void> {
    const ch = this.store.channels.get(channelId);
    if (!ch || !ch.olderCursor || ch.loadingOlder) return;
    ch.loadingOlder = true;
    this.store.emit({ kind: "messages", channelId });
    try {
      const page = await this.api.history(channelId, { cursor: ch.olderCursor, limit: 50 });
      this.store.mergeMessages(channelId, page.messages);
      ch.olderCursor = page.next_cursor ?? null;
    } catch (e) {
      this.toast(`Could not load older messages: ${(e as Error).message}`);
    } finally {
      ch.loadingOlder = false;
      this.store.emit({ kind: "messages", channelId });
    }
  }

  typing(channelId: Uuid): void {
    this.client.typing(channelId);
  }

  search(query: string): void {
    const q = query.trim();
    if (!q) return;
    this.searchInput.value = q;
    this.thread.close();
    this.searchView.loading(q);
    this.root.classList.add("pane-open");
    this.searchPage(q, 0).then(
      (res) => {
        if (this.searchView.query !== q) return;
        this.searchOffset = res.next_offset ?? null;
        this.searchView.show(res);
      },
      (e) => this.searchView.failed((e as Error).message),
    );
  }

  private searchMore(): void {
    const q = this.searchView.query;
    if (this.searchOffset == null) return;
    this.searchPage(q, this.searchOffset).then((res) => {
      this.searchOffset = res.next_offset ?? null;
      this.searchView.show(res, true);
    }, (e) => this.toast((e as Error).message));
  }

  /** 20 hits from `offset`, dates in the reader's time zone. */
  private searchPage(q: string, offset: number): Promise<SearchResult> {
    return this.api.search(q, { limit: 20, offset, tz: -new Date().getTimezoneOffset() });
  }

  closeSearch(): void {
    this.searchView.close();
    if (!this.thread.isOpen) this.root.classList.remove("pane-open");
    this.searchInput.focus();
  }

  async jumpTo(hit: SearchHit): Promise<void> {
    if (!this.store.channels.has(hit.channel_id)) await this.refreshChannels();
    this.openChannel(hit.channel_id, { focus: "none" });
    if (hit.thread_ts) {
      this.openThread(hit.channel_id, hit.thread_ts);
      return;
    }
    if (window.matchMedia("(max-width: 800px)").matches) this.closeSearch();
    const ch = this.store.channels.get(hit.channel_id);
    for (let i = 0; i < 40 && ch; i++) {
      if (ch.loaded && ch.messages.has(hit.message_id)) break;
      if (!ch.loaded) await this.loadLatest(hit.channel_id);
      else if (ch.olderCursor) await this.loadOlder(hit.channel_id);
      else break;
    }
    if (!this.channel.reveal(hit.message_id)) this.toast("That message is no longer in the channel.");
  }

  openDm(userIds: Uuid[]): void {
    this.command({ type: "dm:open", user_ids: userIds }, (ok) => this.openWhenKnown(ok.channel_id));
  }

  createChannel(name: string, isPrivate: boolean): void {
    this.command({ type: "channel:create", name, is_private: isPrivate, members: [this.store.me] }, (ok) => this.openWhenKnown(ok.channel_id));
  }

  join(channelId: Uuid): void {
    this.command({ type: "channel:join", channel_id: channelId }, () => this.openWhenKnown(channelId));
  }

  private async openWhenKnown(channelId: Uuid): Promise<void> {
    const ch = this.store.channels.get(channelId);
    if (!ch || !ch.info.is_member) await this.refreshChannels();
    this.openChannel(channelId);
  }

  signOut(): void {
    this.stop();
    this.onSignOut();
  }

  toast(text: string): void {
    const t = h("div", { class: "toast" }, text);
    this.toasts.append(t);
    window.setTimeout(() => t.remove(), 5000);
  }

  upload(channelId: Uuid, file: File, onProgress: (sent: number) => void, signal: AbortSignal): Promise<Attachment> {
    return this.files.upload(channelId, file, onProgress, signal);
  }

  deleteFile(fileId: Uuid): Promise<void> {
    return this.files.remove(fileId);
  }

  fileLink(fileId: Uuid, fresh = false): Promise<FileLink> {
    return this.files.link(fileId, fresh).catch((e) => {
      if (this.files.isGone(fileId)) this.store.markFileDeleted(null, fileId);
      throw e;
    });
  }

  private setDrawer(open: boolean): void {
    this.root.classList.toggle("drawer-open", open);
    this.channel.el.querySelector(".drawer-toggle")?.setAttribute("aria-expanded", String(open));
    if (open) this.sidebar.focusCurrent();
  }

  private onGlobalKey(e: KeyboardEvent): void {
    const t = e.target as HTMLElement;
    const typing = t.matches("input, textarea, [contenteditable]");
    if (e.key === "Escape") {
      if (document.querySelector("dialog[open]")) return;
      if (this.searchView.isOpen) this.closeSearch();
      else if (this.thread.isOpen) this.closeThread();
      else if (this.root.classList.contains("drawer-open")) this.setDrawer(false);
      else return;
      e.preventDefault();
    } else if ((e.key === "k" && (e.ctrlKey || e.metaKey)) || (e.key === "/" && !typing)) {
      e.preventDefault();
      this.searchInput.focus();
      this.searchInput.select();
    }
  }
}
