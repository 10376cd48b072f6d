// A list of rendered messages kept in step with the store without rebuilding it: existing nodes
// stay (and keep focus) unless their message or their grouping changed. Also the keyboard model
// shared by the channel and thread lists: Up/Down/Home/End move between messages, Enter opens
// the thread, E edits your own message, Escape leaves the list.

import type { Actions } from "../actions";
import type { Store } from "../store";
import type { Message } from "../types";
import { articleOf, messageElement, startEdit, type MessageFlags } from "./message";

const GROUP_MS = 5 * 60_000;

interface Rendered {
  node: HTMLElement;
  key: string;
  msg: Message;
}

export class MessageList {
  private rendered = new Map<string, Rendered>();

  constructor(readonly el: HTMLElement, private readonly store: Store, private readonly actions: Actions, private readonly inThread: boolean) {
    el.addEventListener("keydown", (e) => this.onKey(e));
    el.addEventListener("focusin", (e) => {
      const a = (e.target as HTMLElement).closest("article");
      if (a) this.setActive(a as HTMLElement);
    });
  }

  /** Shows `msgs` (oldest first). */
  render(msgs: Message[]): void {
    const wanted: HTMLElement[] = [];
    const keep = new Set<string>();
    let prev: Message | null = null;
    for (const m of msgs) {
      // day dividers in the channel; the thread pane is short and shows times only
      const day = !this.inThread && (!prev || new Date(prev.ts).toDateString() !== new Date(m.ts).toDateString());
      const compact = !!prev && !day && (!this.inThread || prev.thread_ts === m.thread_ts) && prev.user_id === m.user_id && m.ts - prev.ts < GROUP_MS && !prev.deleted && !(prev.thread?.reply_count && !this.inThread);
      const flags: MessageFlags = { compact, day, inThread: this.inThread };
      const key = `${compact}${day}`;
      const old = this.rendered.get(m.message_id);
      let node: HTMLElement;
      if (old && old.key === key && old.msg === m) node = old.node;
      else {
        node = messageElement(m, flags, this.store, this.actions);
        if (old) this.swap(old.node, node);
      }
      this.rendered.set(m.message_id, { node, key, msg: m });
      keep.add(m.message_id);
      wanted.push(node);
      prev = m;
    }
    for (const id of [...this.rendered.keys()]) if (!keep.has(id)) this.rendered.delete(id);
    let cursor = this.el.firstChild;
    for (const node of wanted) {
      if (cursor === node) cursor = cursor.nextSibling;
      else this.el.insertBefore(node, cursor);
    }
    while (cursor) {
      const next: ChildNode | null = cursor.nextSibling;
      this.el.removeChild(cursor);
      cursor = next;
    }
    if (!this.el.querySelector('article[tabindex="0"]')) {
      const last = this.el.querySelector<HTMLElement>("article:last-of-type") ?? [...this.el.querySelectorAll<HTMLElement>("article")].pop();
      if (last) last.tabIndex = 0;
    }
  }

  /** Replaces a node in place, keeping focus on the message if it had it. */
  private swap(old: HTMLElement, node: HTMLElement): void {
    const hadFocus = old.contains(document.activeElement);
    const wasActive = articleOf(old)?.tabIndex === 0;
    if (old.parentNode === this.el) this.el.replaceChild(node, old);
    const a = articleOf(node);
    if (a && wasActive) a.tabIndex = 0;
    if (a && hadFocus) a.focus({ preventScroll: true });
  }

  articles(): HTMLElement[] {
    return [...this.el.querySelectorAll<HTMLElement>("article")];
  }

  focusLast(): void {
    const all = this.articles();
    const last = all[all.length - 1];
    if (last) {
      this.setActive(last);
      last.focus();
    }
  }

  find(messageId: string): HTMLElement | null {
    return this.el.querySelector<HTMLElement>(`article[data-message-id="${CSS.escape(messageId)}"]`);
  }

  /** Starts editing the newest message of mine (Up arrow in an empty composer). */
  editLastOwn(): boolean {
    const mine = this.articles().filter((a) => a.dataset.userId === this.store.me && a.querySelector(".msg-actions"));
    const a = mine[mine.length - 1];
    if (!a) return false;
    const m = [...this.rendered.values()].find((r) => r.msg.message_id === a.dataset.messageId)?.msg;
    if (!m) return false;
    a.scrollIntoView({ block: "nearest" });
    startEdit(a, m, this.store, this.actions);
    return true;
  }

  private setActive(a: HTMLElement): void {
    for (const x of this.el.querySelectorAll<HTMLElement>('article[tabindex="0"]')) if (x !== a) x.tabIndex = -1;
    a.tabIndex = 0;
  }

  private onKey(e: KeyboardEvent): void {
    const target = e.target as HTMLElement;
    if (!target.matches("article")) return; // typing in an editor or a button
    const all = this.articles();
    const i = all.indexOf(target);
    let next: HTMLElement | undefined;
    switch (e.key) {
      case "ArrowUp":
        next = all[Math.max(0, i - 1)];
        break;
      case "ArrowDown":
        next = all[Math.min(all.length - 1, i + 1)];
        break;
      case "Home":
        next = all[0];
        break;
      case "End":
        next = all[all.length - 1];
        break;
      case "Enter": {
        const m = this.rendered.get(target.dataset.messageId!)?.msg;
        if (m && !this.inThread && !m.deleted) this.actions.openThread(m.channel_id, m.message_id);
        e.preventDefault();
        return;
      }
      case "e":
      case "E": {
        const m = this.rendered.get(target.dataset.messageId!)?.msg;
        if (m && m.user_id === this.store.me && !m.deleted) {
          e.preventDefault();
          startEdit(target, m, this.store, this.actions);
        }
        return;
      }
      default:
        return;
    }
    e.preventDefault();
    if (next) {
      this.setActive(next);
      next.focus();
      next.scrollIntoView({ block: "nearest" });
    }
  }
}
