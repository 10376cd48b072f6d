// The thread pane: the parent message, its replies (live), and a composer for replies.

import type { Actions } from "../actions";
import { h, clear } from "../dom";
import type { Store } from "../store";
import type { Uuid } from "../types";
import { Composer } from "./composer";
import { MessageList } from "./list";
import { renderPending } from "./pending";

export class ThreadView {
  readonly el: HTMLElement;
  readonly composer: Composer;
  private readonly parentList: MessageList;
  private readonly replies: MessageList;
  private readonly count: HTMLElement;
  private readonly subtitle: HTMLElement;
  private readonly pending: HTMLElement;
  private readonly scroller: HTMLElement;
  channelId: Uuid | null = null;
  parentId: Uuid | null = null;

  constructor(private readonly store: Store, private readonly actions: Actions) {
    this.subtitle = h("div", { class: "pane-subtitle" });
    this.count = h("div", { class: "thread-count", role: "status" });
    this.parentList = new MessageList(h("div", { class: "thread-parent" }), store, actions, true);
    this.replies = new MessageList(h("div", { class: "thread-replies", role: "log", "aria-label": "Replies", "aria-live": "polite" }), store, actions, true);
    this.pending = h("div", { class: "pending" });
    this.scroller = h("div", { class: "scroller" }, this.parentList.el, this.count, this.replies.el, this.pending);
    this.composer = new Composer(store, actions, {
      label: "Reply in thread",
      channelId: () => this.channelId,
      threadTs: () => this.parentId ?? undefined,
      onEditLast: () => this.replies.editLastOwn(),
    });
    this.el = h(
      "aside",
      { class: "pane thread-pane", "aria-labelledby": "thread-title", hidden: true },
      h(
        "header",
        { class: "pane-header" },
        h("div", {}, h("h2", { id: "thread-title" }, "Thread"), this.subtitle),
        h("button", { class: "icon-btn", "aria-label": "Close thread", title: "Close (Escape)", onclick: () => actions.closeThread() }, "✕"),
      ),
      this.scroller,
      this.composer.el,
    );
  }

  open(channelId: Uuid, parentId: Uuid): void {
    const changed = this.parentId !== parentId;
    this.channelId = channelId;
    this.parentId = parentId;
    this.el.hidden = false;
    if (changed) {
      this.parentList.render([]);
      this.replies.render([]);
    }
    this.composer.channelChanged();
    this.render();
  }

  close(): void {
    this.el.hidden = true;
    this.channelId = this.parentId = null;
  }

  get isOpen(): boolean {
    return !this.el.hidden;
  }

  render(): void {
    if (!this.parentId || !this.channelId) return;
    const t = this.store.threads.get(this.parentId);
    const ch = this.store.channels.get(this.channelId);
    clear(this.subtitle);
    if (ch) this.subtitle.append(this.store.isDm(ch.info) ? this.store.channelTitle(ch.info) : `#${ch.info.name}`);
    const nearBottom = this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 40;
    const parent = t?.parent ?? this.store.findMessage(this.channelId, this.parentId) ?? null;
    this.parentList.render(parent ? [parent] : []);
    const replies = t ? this.store.sortedReplies(t) : [];
    this.replies.render(replies);
    const n = Math.max(replies.length, parent?.thread?.reply_count ?? 0);
    this.count.textContent = !t?.loaded ? "Loading replies…" : `${n} ${n === 1 ? "reply" : "replies"}`;
    renderPending(this.pending, this.store.pendingIn(this.channelId, this.parentId), this.store, this.actions);
    if (nearBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
  }
}
