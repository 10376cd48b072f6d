// Search results: the server's ranking, each hit with its channel, author, time and the
// highlighted match (the server escapes the text and marks matches with <em>). Enter or a click
// opens the message in its channel (or its thread).

import type { Actions } from "../actions";
import { h, clear, append } from "../dom";
import { formatFull, formatTime, renderHighlight } from "../format";
import type { Store } from "../store";
import type { SearchHit, SearchResult } from "../types";
import { avatar } from "./message";

export class SearchView {
  readonly el: HTMLElement;
  private readonly results: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly more: HTMLElement;
  query = "";

  constructor(private readonly store: Store, private readonly actions: Actions, private readonly loadMore: () => void) {
    this.summary = h("div", { class: "pane-subtitle", role: "status" });
    this.results = h("ol", { class: "search-results", "aria-label": "Search results" });
    this.results.addEventListener("keydown", (e) => this.onKey(e));
    this.more = h("button", { class: "btn", hidden: true, onclick: () => this.loadMore() }, "More results");
    this.el = h(
      "aside",
      { class: "pane search-pane", "aria-labelledby": "search-title", hidden: true },
      h(
        "header",
        { class: "pane-header" },
        h("div", {}, h("h2", { id: "search-title" }, "Search"), this.summary),
        h("button", { class: "icon-btn", "aria-label": "Close search", title: "Close (Escape)", onclick: () => actions.closeSearch() }, "✕"),
      ),
      h("div", { class: "scroller" }, this.results, h("div", { class: "more" }, this.more)),
    );
  }

  get isOpen(): boolean {
    return !this.el.hidden;
  }

  loading(query: string): void {
    this.query = query;
    this.el.hidden = false;
    clear(this.results);
    this.summary.textContent = `Searching for “${query}”…`;
    this.more.hidden = true;
  }

  failed(message: string): void {
    this.summary.textContent = `Search failed: ${message}`;
  }

  show(res: SearchResult, append_ = false): void {
    if (!append_) clear(this.results);
    this.summary.textContent = res.total === 0 ? `No results for “${this.query}”` : `${res.total} result${res.total === 1 ? "" : "s"} for “${this.query}”`;
    for (const hit of res.messages) this.results.append(this.item(hit));
    this.more.hidden = res.next_offset == null;
    const first = this.results.querySelector<HTMLElement>("button");
    if (first && !append_) first.tabIndex = 0;
  }

  close(): void {
    this.el.hidden = true;
  }

  focusFirst(): void {
    this.results.querySelector<HTMLElement>("button")?.focus();
  }

  private item(hit: SearchHit): HTMLElement {
    const name = this.store.userName(hit.user_id);
    const text = h("div", { class: "hit-text" });
    append(text, renderHighlight(hit.highlight || hit.text, this.store));
    return h(
      "li",
      {},
      h(
        "button",
        { class: "hit", tabindex: "-1", "data-message-id": hit.message_id, onclick: () => this.actions.jumpTo(hit) },
        h("div", { class: "hit-where" }, `#${hit.channel_name}`, hit.thread_ts ? " · in a thread" : ""),
        h("div", { class: "hit-main" }, avatar(name, hit.user_id, "md"), h("div", {}, h("div", { class: "msg-meta" }, h("span", { class: "msg-author" }, name), h("time", { title: formatFull(hit.ts) }, `${new Date(hit.ts).toLocaleDateString()} ${formatTime(hit.ts)}`)), text)),
      ),
    );
  }

  private onKey(e: KeyboardEvent): void {
    const items = [...this.results.querySelectorAll<HTMLElement>("button.hit")];
    const i = items.indexOf(e.target as HTMLElement);
    if (i < 0) return;
    let next: HTMLElement | undefined;
    if (e.key === "ArrowDown") next = items[Math.min(items.length - 1, i + 1)];
    else if (e.key === "ArrowUp") next = items[Math.max(0, i - 1)];
    else return;
    e.preventDefault();
    for (const b of items) b.tabIndex = b === next ? 0 : -1;
    next?.focus();
  }
}
