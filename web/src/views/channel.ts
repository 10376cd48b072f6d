// The open channel: header, the message list with infinite scroll back through history, the
// pending messages and the composer (or a "join" bar for a public channel you are not in).

import type { Actions } from "../actions";
import { h, clear } from "../dom";
import type { ChannelState, Store } from "../store";
import type { Uuid } from "../types";
import { Composer } from "./composer";
import { MessageList } from "./list";
import { renderPending } from "./pending";
import { dot } from "./sidebar";

export class ChannelView {
  readonly el: HTMLElement;
  readonly composer: Composer;
  readonly list: MessageList;
  private readonly title: HTMLElement;
  private readonly subtitle: HTMLElement;
  readonly scroller: HTMLElement;
  private readonly top: HTMLElement;
  private readonly pending: HTMLElement;
  private readonly joinBar: HTMLElement;
  private readonly newBelow: HTMLElement;
  private channelId: Uuid | null = null;
  private stick = true;

  constructor(private readonly store: Store, private readonly actions: Actions, toggleDrawer: () => void) {
    this.title = h("h1", { class: "channel-title", id: "channel-title" });
    this.subtitle = h("div", { class: "channel-subtitle" });
    const header = h(
      "header",
      { class: "channel-header" },
      h("button", { class: "icon-btn drawer-toggle", "aria-label": "Open channel list", "aria-controls": "sidebar", "aria-expanded": "false", onclick: toggleDrawer }, "☰"),
      h("div", { class: "channel-heading" }, this.title, this.subtitle),
    );
    this.top = h("div", { class: "history-top", "aria-live": "polite" });
    const listEl = h("div", { class: "messages", role: "log", "aria-labelledby": "channel-title", "aria-live": "polite", "aria-relevant": "additions" });
    this.list = new MessageList(listEl, store, actions, false);
    this.pending = h("div", { class: "pending" });
    this.scroller = h("div", { class: "scroller", tabindex: "-1" }, this.top, listEl, this.pending);
    this.newBelow = h("button", { class: "new-below", hidden: true, onclick: () => this.scrollToBottom() }, "New messages ↓");
    this.scroller.addEventListener("scroll", () => {
      this.stick = this.atBottom();
      if (this.stick) this.newBelow.hidden = true;
    });
    this.composer = new Composer(store, actions, {
      label: "Message",
      channelId: () => this.channelId,
      onEditLast: () => this.list.editLastOwn(),
    });
    this.joinBar = h("div", { class: "join-bar", hidden: true });
    this.el = h("main", { class: "channel", "aria-labelledby": "channel-title" }, header, h("div", { class: "scroller-wrap" }, this.scroller, this.newBelow), this.joinBar, this.composer.el);
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && this.channelId) this.loadOlder();
    }, { root: this.scroller, rootMargin: "400px 0px 0px 0px" }).observe(this.top);
  }

  get current(): Uuid | null {
    return this.channelId;
  }

  /** Switches to a channel (its history may still be loading). */
  show(channelId: Uuid): void {
    const changed = channelId !== this.channelId;
    this.channelId = channelId;
    if (changed) {
      this.list.render([]);
      this.stick = true;
      this.newBelow.hidden = true;
    }
    this.renderHeader();
    this.renderMessages();
    this.renderPending();
    this.composer.channelChanged();
  }

  renderHeader(): void {
    const ch = this.state();
    if (!ch) return;
    const isDm = this.store.isDm(ch.info);
    clear(this.title);
    clear(this.subtitle);
    const name = this.store.channelTitle(ch.info);
    this.title.append(isDm ? "" : ch.info.is_private ? "🔒 " : "# ", name);
    if (isDm) {
      const others = (ch.info.members ?? []).filter((u) => u !== this.store.me);
      for (const u of others) {
        const s = this.store.presence.get(u) ?? "offline";
        this.subtitle.append(h("span", { class: "who" }, dot(s), `${this.store.userName(u)} (${s})`));
      }
    } else {
      this.subtitle.append(`${ch.info.member_count} member${ch.info.member_count === 1 ? "" : "s"}${ch.info.archived ? " · archived" : ""}`);
    }
    this.composer.input.setAttribute("aria-label", `Message ${isDm ? name : "#" + name}`);
    this.composer.input.placeholder = `Message ${isDm ? name : "#" + name}`;
    const canPost = ch.info.is_member && !ch.info.archived;
    this.composer.el.hidden = !canPost;
    this.joinBar.hidden = canPost;
    clear(this.joinBar);
    if (!ch.info.is_member) {
      this.joinBar.append(h("span", {}, `You are viewing #${name}.`), h("button", { class: "btn btn-primary", onclick: () => this.actions.join(ch.info.channel_id) }, `Join #${name}`));
    } else if (ch.info.archived) {
      this.joinBar.append(h("span", {}, "This channel is archived: it is read-only."));
    }
    document.title = `${isDm ? name : "#" + name} · Confab`;
  }

  renderMessages(): void {
    const ch = this.state();
    if (!ch) return;
    const wasBottom = this.stick;
    const anchor = wasBottom ? null : this.firstVisible();
    const anchorId = anchor?.dataset.messageId;
    const anchorTop = anchor?.getBoundingClientRect().top ?? 0;
    const count = this.list.articles().length;
    this.list.render(ch.order.map((id) => ch.messages.get(id)!));
    clear(this.top);
    if (!ch.loaded) this.top.append(h("div", { class: "hint" }, "Loading messages…"));
    else if (ch.olderCursor) this.top.append(h("div", { class: "hint" }, ch.loadingOlder ? "Loading older messages…" : ""));
    else this.top.append(h("div", { class: "channel-start" }, h("strong", {}, this.store.isDm(ch.info) ? `This is the start of your conversation with ${this.store.channelTitle(ch.info)}.` : `This is the very beginning of #${ch.info.name}.`)));
    if (wasBottom) this.scrollToBottom();
    else {
      // keep what the reader looks at in place when older pages arrive above it
      const now = anchorId ? this.list.find(anchorId) : null;
      if (now) this.scroller.scrollTop += now.getBoundingClientRect().top - anchorTop;
      if (this.list.articles().length > count) this.newBelow.hidden = false;
    }
  }

  renderPending(): void {
    if (!this.channelId) return;
    renderPending(this.pending, this.store.pendingIn(this.channelId), this.store, this.actions);
    if (this.stick) this.scrollToBottom();
  }

  /** The newest messages are on screen and the page is visible: they count as read. */
  isReading(): boolean {
    return document.visibilityState === "visible" && this.atBottom();
  }

  scrollToBottom(): void {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.stick = true;
    this.newBelow.hidden = true;
  }

  /** Scrolls a message into view and flashes it. */
  reveal(messageId: Uuid): boolean {
    const a = this.list.find(messageId);
    if (!a) return false;
    this.stick = false;
    a.scrollIntoView({ block: "center" });
    a.classList.remove("flash");
    void a.offsetWidth;
    a.classList.add("flash");
    a.focus({ preventScroll: true });
    return true;
  }

  private firstVisible(): HTMLElement | null {
    const top = this.scroller.getBoundingClientRect().top;
    return this.list.articles().find((a) => a.getBoundingClientRect().bottom > top) ?? null;
  }

  private atBottom(): boolean {
    return this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 40;
  }

  private state(): ChannelState | undefined {
    return this.channelId ? this.store.channels.get(this.channelId) : undefined;
  }

  private async loadOlder(): Promise<void> {
    const ch = this.state();
    if (!ch || !ch.loaded || !ch.olderCursor || ch.loadingOlder) return;
    await this.actions.loadOlder(ch.info.channel_id);
    // still in view (a short page): keep going
    const r = this.top.getBoundingClientRect();
    const s = this.scroller.getBoundingClientRect();
    if (r.bottom > s.top - 400 && this.state()?.olderCursor) requestAnimationFrame(() => this.loadOlder());
  }
}
