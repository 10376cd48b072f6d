// The composer: a textarea (Enter sends, Shift+Enter breaks the line), `@` autocompletion from
// the workspace's users, typing notifications, and files (attachments.ts: the attach button, drag
// and drop or paste onto the composer, the chips of the uploads; Send waits for them).

import type { Actions } from "../actions";
import { AttachmentTray } from "../attachments";
import { h, clear } from "../dom";
import type { Store } from "../store";
import type { Uuid } from "../types";

export interface ComposerOptions {
  label: string;
  channelId: () => Uuid | null;
  threadTs?: () => Uuid | undefined;
  /** Up arrow in the empty composer: edit my last message (true if it did). */
  onEditLast?: () => boolean;
}

const TYPING_EVERY_MS = 3000;

export class Composer {
  readonly el: HTMLElement;
  readonly input: HTMLTextAreaElement;
  private readonly suggest: HTMLElement;
  private readonly typingLine: HTMLElement;
  private matches: { user_id: Uuid; name: string }[] = [];
  private selected = 0;
  private lastTyping = 0;
  private readonly tray: AttachmentTray;
  private readonly sendButton: HTMLButtonElement;
  private static count = 0;

  constructor(private readonly store: Store, private readonly actions: Actions, private readonly opts: ComposerOptions) {
    const id = `composer-${++Composer.count}`;
    this.input = h("textarea", {
      class: "composer-input",
      rows: 1,
      "aria-label": opts.label,
      placeholder: opts.label,
      "aria-autocomplete": "list",
      "aria-controls": `${id}-suggest`,
      "aria-expanded": "false",
    }) as HTMLTextAreaElement;
    this.suggest = h("ul", { class: "suggest", id: `${id}-suggest`, role: "listbox", "aria-label": "People", hidden: true });
    this.typingLine = h("div", { class: "typing", "aria-live": "polite" });
    this.tray = new AttachmentTray({ actions, channelId: opts.channelId, changed: () => this.updateSend() });
    this.sendButton = h("button", { class: "btn btn-primary composer-send", "aria-label": "Send message", title: "Send (Enter)", onclick: () => this.submit() }, "Send");
    this.el = h("div", { class: "composer" }, this.suggest, this.tray.el, h("div", { class: "composer-box" }, this.tray.button, this.input, this.sendButton), this.typingLine);
    this.tray.acceptDrops(this.el, this.input);
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("blur", () => setTimeout(() => this.closeSuggest(), 150));
  }

  focus(): void {
    this.input.focus();
  }

  /** The composer now writes to another channel (or thread): its files and typing line follow. */
  channelChanged(): void {
    this.tray.render();
    this.updateSend();
    this.renderTyping();
  }

  /** Send waits until every chosen file is uploaded (and a failed one is removed). */
  private updateSend(): void {
    this.sendButton.disabled = !this.tray.ready;
  }

  /** "alice is typing…" for this composer's channel (and, in threads, the same channel). */
  renderTyping(): void {
    const ch = this.opts.channelId();
    const who = ch ? this.store.typers(ch).filter((u) => u !== this.store.me) : [];
    const names = who.map((u) => this.store.userName(u));
    const text =
      names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : "Several people are typing…";
    if (this.typingLine.textContent !== text) this.typingLine.textContent = text;
  }

  private submit(): void {
    const ch = this.opts.channelId();
    const text = this.input.value.trim();
    const files = this.tray.files;
    if (!ch || (!text && files.length === 0) || !this.tray.ready) return;
    this.actions.send(ch, text, this.opts.threadTs?.(), files);
    this.input.value = "";
    this.tray.sent();
    this.autosize();
    this.closeSuggest();
  }

  private onKey(e: KeyboardEvent): void {
    if (!this.suggest.hidden && this.matches.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        this.selected = (this.selected + (e.key === "ArrowDown" ? 1 : this.matches.length - 1)) % this.matches.length;
        this.paintSuggest();
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        this.complete(this.matches[this.selected]);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        this.closeSuggest();
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    } else if (e.key === "ArrowUp" && this.input.value === "" && this.opts.onEditLast) {
      if (this.opts.onEditLast()) e.preventDefault();
    }
  }

  private onInput(): void {
    this.autosize();
    const ch = this.opts.channelId();
    if (ch && this.input.value.trim() && Date.now() - this.lastTyping > TYPING_EVERY_MS) {
      this.lastTyping = Date.now();
      this.actions.typing(ch);
    }
    const before = this.input.value.slice(0, this.input.selectionStart ?? 0);
    const m = /(?:^|\s)@([\w.-]*)$/.exec(before);
    if (!m) return this.closeSuggest();
    const q = m[1].toLowerCase();
    this.matches = [...this.store.users.values()]
      .filter((u) => u.name.toLowerCase().startsWith(q))
      .sort((a, b) => a.name.localeCompare(b.name))
      .slice(0, 8);
    this.selected = 0;
    if (this.matches.length === 0) return this.closeSuggest();
    this.paintSuggest();
  }

  private paintSuggest(): void {
    clear(this.suggest);
    this.matches.forEach((u, i) => {
      const li = h(
        "li",
        { role: "option", id: `${this.suggest.id}-${i}`, class: i === this.selected ? "active" : "", "aria-selected": i === this.selected ? "true" : "false", onmousedown: (e: Event) => {
          e.preventDefault();
          this.complete(u);
        } },
        `@${u.name}`,
      );
      this.suggest.append(li);
    });
    this.suggest.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `${this.suggest.id}-${this.selected}`);
  }

  private closeSuggest(): void {
    this.suggest.hidden = true;
    this.matches = [];
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  private complete(u: { name: string }): void {
    const pos = this.input.selectionStart ?? this.input.value.length;
    const before = this.input.value.slice(0, pos).replace(/@([\w.-]*)$/, `@${u.name} `);
    this.input.value = before + this.input.value.slice(pos);
    this.input.setSelectionRange(before.length, before.length);
    this.closeSuggest();
    this.input.focus();
  }

  private autosize(): void {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }
}
