// The channel and DM list with unread and mention badges and presence dots. Keyboard: Tab
// reaches the list (the open channel), Up/Down/Home/End move, Enter opens.

import type { Actions } from "../actions";
import { h, clear } from "../dom";
import { badgeCount } from "../format";
import type { ChannelState, Store } from "../store";
import type { PresenceStatus, Uuid } from "../types";

export class Sidebar {
  readonly el: HTMLElement;
  private readonly lists: HTMLElement;
  private readonly meLine: HTMLElement;
  current: Uuid | null = null;

  constructor(private readonly store: Store, private readonly actions: Actions, private readonly dialogs: { newChannel(): void; newDm(): void }) {
    this.lists = h("div", { class: "sidebar-lists" });
    this.lists.addEventListener("keydown", (e) => this.onKey(e));
    this.meLine = h("div", { class: "me" });
    this.el = h("nav", { class: "sidebar", id: "sidebar", "aria-label": "Channels and direct messages" }, this.lists, this.meLine);
  }

  render(): void {
    const focusedId = (document.activeElement as HTMLElement | null)?.closest?.(".chan")?.getAttribute("data-channel-id");
    const all = [...this.store.channels.values()];
    const title = (c: ChannelState) => this.store.channelTitle(c.info).toLowerCase();
    const mine = all.filter((c) => c.info.is_member && !this.store.isDm(c.info) && !c.info.archived).sort((a, b) => title(a).localeCompare(title(b)));
    const dms = all.filter((c) => c.info.is_member && this.store.isDm(c.info)).sort((a, b) => title(a).localeCompare(title(b)));
    const other = all.filter((c) => !c.info.is_member && !this.store.isDm(c.info) && !c.info.archived).sort((a, b) => title(a).localeCompare(title(b)));
    const archived = all.filter((c) => c.info.is_member && !this.store.isDm(c.info) && c.info.archived);
    clear(this.lists);
    this.lists.append(
      this.section("Channels", "channels", mine, { label: "Create a channel", run: this.dialogs.newChannel }),
      this.section("Direct messages", "dms", dms, { label: "New direct message", run: this.dialogs.newDm }),
    );
    if (other.length) this.lists.append(this.section("More channels", "more", other));
    if (archived.length) this.lists.append(this.section("Archived", "archived", archived));
    // roving tabindex: one entry in the tab order, the open channel (or the first)
    const items = this.items();
    const active = items.find((b) => b.dataset.channelId === this.current) ?? items[0];
    for (const b of items) b.tabIndex = b === active ? 0 : -1;
    if (focusedId) items.find((b) => b.dataset.channelId === focusedId)?.focus();

    clear(this.meLine);
    const status = this.store.presence.get(this.store.me) ?? "active";
    this.meLine.append(
      dot(status),
      h("span", { class: "me-name" }, this.store.userName(this.store.me)),
      h("button", { class: "btn btn-small", onclick: () => this.actions.signOut(), "aria-label": "Sign out" }, "Sign out"),
    );
  }

  private section(title: string, id: string, chans: ChannelState[], add?: { label: string; run: () => void }): HTMLElement {
    const headId = `sidebar-${id}`;
    return h(
      "section",
      { class: "sidebar-section", "aria-labelledby": headId },
      h(
        "div",
        { class: "sidebar-head" },
        h("h2", { id: headId }, title),
        add && h("button", { class: "icon-btn", "aria-label": add.label, title: add.label, onclick: add.run }, "+"),
      ),
      h("ul", { role: "list" }, chans.map((c) => h("li", {}, this.item(c)))),
    );
  }

  private item(c: ChannelState): HTMLElement {
    const isDm = this.store.isDm(c.info);
    const name = this.store.channelTitle(c.info);
    const others = (c.info.members ?? []).filter((u) => u !== this.store.me);
    const status: PresenceStatus = isDm ? (others.some((u) => this.store.presence.get(u) === "active") ? "active" : others.some((u) => this.store.presence.get(u) === "away") ? "away" : "offline") : "offline";
    const icon = isDm ? dot(status) : h("span", { class: "chan-icon", "aria-hidden": "true" }, c.info.is_private ? "🔒" : "#");
    const unread = c.info.is_member && c.unread > 0 && c.info.channel_id !== this.current;
    const parts = [name];
    if (isDm) parts.push(status);
    if (unread) parts.push(`${c.unread} unread`);
    if (c.mentions > 0 && c.info.channel_id !== this.current) parts.push(`${c.mentions} mention${c.mentions === 1 ? "" : "s"}`);
    return h(
      "button",
      {
        class: `chan${unread ? " chan-unread" : ""}${c.info.channel_id === this.current ? " chan-current" : ""}`,
        "data-channel-id": c.info.channel_id,
        "data-name": name,
        "aria-current": c.info.channel_id === this.current ? "page" : null,
        "aria-label": parts.join(", "),
        onclick: () => this.actions.openChannel(c.info.channel_id),
      },
      icon,
      h("span", { class: "chan-name" }, name),
      c.mentions > 0 && c.info.channel_id !== this.current
        ? h("span", { class: "badge badge-mention", "aria-hidden": "true" }, badgeCount(c.mentions))
        : unread
          ? h("span", { class: "badge badge-unread", "aria-hidden": "true" }, badgeCount(c.unread))
          : null,
    );
  }

  items(): HTMLElement[] {
    return [...this.lists.querySelectorAll<HTMLElement>("button.chan")];
  }

  focusCurrent(): void {
    (this.items().find((b) => b.tabIndex === 0) ?? this.items()[0])?.focus();
  }

  private onKey(e: KeyboardEvent): void {
    const target = e.target as HTMLElement;
    if (!target.matches("button.chan")) return;
    const items = this.items();
    const i = items.indexOf(target);
    let next: HTMLElement | undefined;
    if (e.key === "ArrowDown") next = items[Math.min(items.length - 1, i + 1)];
    else if (e.key === "ArrowUp") next = items[Math.max(0, i - 1)];
    else if (e.key === "Home") next = items[0];
    else if (e.key === "End") next = items[items.length - 1];
    else return;
    e.preventDefault();
    for (const b of items) b.tabIndex = b === next ? 0 : -1;
    next?.focus();
  }
}

export function dot(status: PresenceStatus): HTMLElement {
  return h("span", { class: `presence presence-${status}`, title: status, "aria-hidden": "true" });
}
